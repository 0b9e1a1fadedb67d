"""What one rendered image is: the arrays written for it and its objects, as the writer and the
statistics read them."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from wsss.data.synthetic.vocabulary import CLASS_NAMES


@dataclass(frozen=True)
class SyntheticObject:
    class_id: int
    bbox: tuple[int, int, int, int]  # visible box, VOC 1-based inclusive (xmin, ymin, xmax, ymax)
    truncated: bool

    @property
    def name(self) -> str:
        return CLASS_NAMES[self.class_id]


@dataclass
class SyntheticSample:
    """One rendered image with everything written for it."""

    image: np.ndarray  # uint8 H x W x 3 RGB
    mask: np.ndarray  # uint8 H x W, 0..C, no ignore band (SegmentationClassAug)
    mask_voc: np.ndarray  # uint8 H x W, 0..C and 255 (SegmentationClass)
    context: np.ndarray  # uint8 H x W, 0 = object, 1..K stuff
    saliency: np.ndarray  # uint8 H x W
    objects: list[SyntheticObject] = field(default_factory=list)
