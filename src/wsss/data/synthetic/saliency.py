"""The saliency map an off-the-shelf detector would give, faults included: it misses some classes
(``saliency_missed_classes``), blurs boundaries and fires on background blobs. These are the
faults EPS's map selection is there to handle, so they must be present and measurable."""

from __future__ import annotations

import cv2
import numpy as np

from wsss.core.params import SyntheticParams
from wsss.data.synthetic.vocabulary import CLASS_NAMES


def simulate_saliency(
    rng: np.random.Generator, inst: np.ndarray, class_ids: list[int], config: SyntheticParams
) -> np.ndarray:
    """An imperfect detector's map: misses some classes, blurs edges, fires on background blobs."""
    missed = {CLASS_NAMES.index(name) for name in config.saliency_missed_classes}
    levels = [0.0] + [
        rng.uniform(0.0, config.saliency_missed_level) if c in missed else rng.uniform(0.75, 1.0)
        for c in class_ids
    ]
    sal = np.asarray(levels, np.float32)[inst]
    h, w = inst.shape
    ys, xs = np.nonzero(inst == 0)
    side = min(h, w)
    for _ in range(rng.poisson(config.saliency_false_blob_rate)):
        if not len(ys):
            break
        i = rng.integers(len(ys))
        blob = np.zeros_like(sal)
        axes = (int(rng.uniform(0.04, 0.12) * side) + 1, int(rng.uniform(0.03, 0.09) * side) + 1)
        cv2.ellipse(
            blob, (int(xs[i]), int(ys[i])), axes, rng.uniform(0, 180), 0, 360, rng.uniform(0.35, 0.85), -1
        )
        sal = np.maximum(sal, blob)
    if config.saliency_blur_sigma > 0:
        sal = cv2.GaussianBlur(sal, (0, 0), sigmaX=config.saliency_blur_sigma)
    if config.saliency_noise > 0:
        sal = sal + rng.normal(0.0, config.saliency_noise, sal.shape).astype(np.float32)
    return np.round(np.clip(sal, 0.0, 1.0) * 255.0).astype(np.uint8)
