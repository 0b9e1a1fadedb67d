"""The counts synthetic_meta.json reports per split: which classes and contexts appear, how
often together (the measured co-occurrence beside the configured rate), how much of the image
they cover, and how salient each class is."""

from __future__ import annotations

import numpy as np

from wsss.core.params import SyntheticParams
from wsss.data.base import IGNORE_INDEX
from wsss.data.synthetic.sample import SyntheticSample
from wsss.data.synthetic.vocabulary import (
    CLASS_NAMES,
    CONTEXT_NAMES,
    cooccurrence_triples,
)


class Stats:
    """Counts for synthetic_meta.json: which classes and contexts appear, and how much."""

    def __init__(self) -> None:
        c, k = len(CLASS_NAMES), len(CONTEXT_NAMES)
        self.images = 0
        self.class_images = np.zeros(c, np.int64)
        self.class_context_images = np.zeros((c, k), np.int64)  # images holding class c and stuff k
        self.class_pixels = np.zeros(c, np.int64)
        self.class_saliency = np.zeros(c, np.float64)  # summed saliency (0..1) per class's pixels
        self.context_images = np.zeros(k, np.int64)
        self.context_pixels = np.zeros(k, np.int64)
        self.ignore_pixels = 0
        self.pixels = 0
        self.objects_per_image: dict[int, int] = {}

    def add(self, sample: SyntheticSample) -> None:
        c, k = len(CLASS_NAMES), len(CONTEXT_NAMES)
        class_px = np.bincount(sample.mask.ravel(), minlength=c)[:c]
        context_px = np.bincount(sample.context.ravel(), minlength=k)[:k]
        classes, contexts = class_px > 0, context_px > 0
        classes[0] = contexts[0] = False
        self.images += 1
        self.class_images += classes
        self.class_context_images += np.outer(classes, contexts)
        self.class_pixels += class_px
        sal = sample.saliency.ravel().astype(np.float64) / 255.0
        self.class_saliency += np.bincount(sample.mask.ravel(), weights=sal, minlength=c)[:c]
        self.context_images += contexts
        self.context_pixels += context_px
        self.ignore_pixels += int(np.count_nonzero(sample.mask_voc == IGNORE_INDEX))
        self.pixels += sample.mask.size
        n = int(classes.sum())
        self.objects_per_image[n] = self.objects_per_image.get(n, 0) + 1

    def summary(self, config: SyntheticParams) -> dict:
        total = max(self.pixels, 1)
        classes = {}
        for c, name in enumerate(CLASS_NAMES):
            n = int(self.class_images[c])
            entry = {
                "pixel_fraction": round(float(self.class_pixels[c]) / total, 5),
                "mean_saliency": round(float(self.class_saliency[c] / max(self.class_pixels[c], 1)), 4),
            }
            if c > 0:
                presence = {
                    ctx: round(float(self.class_context_images[c, k]) / n, 4) if n else None
                    for k, ctx in enumerate(CONTEXT_NAMES) if k > 0
                }  # fmt: skip
                paired = {ctx: presence[ctx] for ctx, cls, _ in cooccurrence_triples(config) if cls == name}
                entry = {
                    "images": n,
                    **entry,
                    "paired_context_presence": paired,
                    "context_presence": presence,
                }
            classes[name] = entry
        contexts = {
            name: {
                "images": int(self.context_images[k]),
                "image_fraction": round(float(self.context_images[k]) / max(self.images, 1), 4),
                "pixel_fraction": round(float(self.context_pixels[k]) / total, 5),
            }
            for k, name in enumerate(CONTEXT_NAMES) if k > 0
        }  # fmt: skip
        return {
            "images": self.images,
            "objects_per_image": {str(n): self.objects_per_image[n] for n in sorted(self.objects_per_image)},
            "ignore_pixel_fraction": round(self.ignore_pixels / total, 5),
            "classes": classes,
            "contexts": contexts,
        }
