"""The interface every data set reader implements.

A data set is a list of image ids plus per-id access to the image, the ground-truth mask,
the image-level labels and (when there is one) the saliency map. Class 0 is background and
``class_names[0] == "background"``; foreground classes are 1..C; 255 in a mask means ignore.
"""

from __future__ import annotations

from abc import ABC, abstractmethod

import numpy as np

IGNORE_INDEX = 255


class SegmentationDataset(ABC):
    class_names: list[str]  # index 0 is "background"
    ids: list[str]

    @property
    def num_classes(self) -> int:
        """Number of classes including background (VOC: 21)."""
        return len(self.class_names)

    def __len__(self) -> int:
        return len(self.ids)

    @abstractmethod
    def load_image(self, image_id: str) -> np.ndarray:
        """uint8 H x W x 3 RGB; DataError naming the file if missing or corrupt."""

    @abstractmethod
    def load_mask(self, image_id: str) -> np.ndarray | None:
        """uint8 H x W with values in 0..C or 255; None if the image has no mask."""

    @abstractmethod
    def labels(self, image_id: str) -> np.ndarray:
        """Sorted int64 array of the foreground class ids (1..C) present in the image."""

    saliency = None  # the data set's SaliencySource (wsss.data.saliency), or None

    def image_size(self, image_id: str) -> tuple[int, int]:
        """(H, W) of the image; readers that know it without decoding the image override this."""
        return self.load_image(image_id).shape[:2]

    def load_saliency(self, image_id: str, image: np.ndarray | None = None) -> np.ndarray | None:
        """float32 H x W in [0, 1], or None when the data set carries no saliency maps; pass
        ``image`` when you have it (saves a decode)."""
        if self.saliency is None:
            return None
        from wsss.data.saliency import load_checked

        if image is None and self.saliency.needs_image:
            image = self.load_image(image_id)
        size = image.shape[:2] if image is not None else self.image_size(image_id)
        return load_checked(self.saliency, image_id, image, size)

    def load_context(self, image_id: str) -> np.ndarray | None:
        """uint8 H x W full-scene context labels (synthetic set only), else None."""
        return None

    def label_vector(self, image_id: str) -> np.ndarray:
        """Multi-hot float32 vector over the C foreground classes (background excluded)."""
        vector = np.zeros(self.num_classes - 1, dtype=np.float32)
        vector[self.labels(image_id) - 1] = 1.0
        return vector
