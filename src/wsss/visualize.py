"""Overlay pictures for MLflow: image | score map | pseudo mask | ground truth, side by side."""

from __future__ import annotations

import cv2
import numpy as np

from wsss.io import voc_palette

_PALETTE = np.array(voc_palette(), dtype=np.uint8).reshape(256, 3)


def colorize_mask(mask: np.ndarray) -> np.ndarray:
    """Label mask -> RGB with the VOC palette (255 = ignore shows as near-white)."""
    return _PALETTE[mask.astype(np.uint8)]


def heatmap(image: np.ndarray, scores: np.ndarray) -> np.ndarray:
    """Max over score maps (K x H x W in [0,1]) as a jet overlay on the image."""
    peak = scores.max(axis=0) if len(scores) else np.zeros(image.shape[:2], np.float32)
    colored = cv2.applyColorMap(np.clip(peak * 255, 0, 255).astype(np.uint8), cv2.COLORMAP_JET)
    colored = cv2.cvtColor(colored, cv2.COLOR_BGR2RGB)
    return (0.5 * image + 0.5 * colored).astype(np.uint8)


def overlay_row(image: np.ndarray, scores: np.ndarray | None, pred: np.ndarray | None,
                gt: np.ndarray | None, gap: int = 4) -> np.ndarray:
    """One row of panels separated by white gaps; absent panels are skipped."""
    panels = [image]
    if scores is not None:
        panels.append(heatmap(image, scores))
    if pred is not None:
        panels.append(colorize_mask(pred))
    if gt is not None:
        panels.append(colorize_mask(gt))
    spacer = np.full((image.shape[0], gap, 3), 255, dtype=np.uint8)
    row = []
    for panel in panels:
        row.extend([panel, spacer])
    return np.concatenate(row[:-1], axis=1)
