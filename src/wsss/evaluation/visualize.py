"""Overlay pictures for MLflow: image | score map | pseudo mask | ground truth, side by side, one
row per image, for images of any size and aspect ratio."""

from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np

from wsss.core.io import voc_palette

_PALETTE = np.array(voc_palette(), dtype=np.uint8).reshape(256, 3)
_WHITE = 255


def colorize_mask(mask: np.ndarray) -> np.ndarray:
    """Label mask -> RGB with the VOC palette (255 = ignore shows as near-white)."""
    return _PALETTE[mask.astype(np.uint8)]


def blend(image: np.ndarray, mask: np.ndarray, alpha: float = 0.5) -> np.ndarray:
    """The image with the mask's class colours laid over it; background (0) shows the image."""
    colored = (1 - alpha) * image + alpha * colorize_mask(mask)
    return np.where((mask != 0)[..., None], colored, image).astype(np.uint8)


def heatmap(image: np.ndarray, scores: np.ndarray) -> np.ndarray:
    """Max over score maps (K x H x W in [0,1]) as a jet overlay on the image."""
    peak = scores.max(axis=0) if len(scores) else np.zeros(image.shape[:2], np.float32)
    colored = cv2.applyColorMap(np.clip(peak * 255, 0, 255).astype(np.uint8), cv2.COLORMAP_JET)
    colored = cv2.cvtColor(colored, cv2.COLOR_BGR2RGB)
    return (0.5 * image + 0.5 * colored).astype(np.uint8)


def overlay_panels(image: np.ndarray, scores: np.ndarray | None, pred: np.ndarray | None,
                   gt: np.ndarray | None) -> list[np.ndarray]:
    """One image's panels (RGB uint8): the image, the score heatmap, the colourised prediction and
    ground truth; absent ones are skipped. A row of `gallery`."""
    panels = [image]
    if scores is not None:
        panels.append(heatmap(image, scores))
    if pred is not None:
        panels.append(colorize_mask(pred))
    if gt is not None:
        panels.append(colorize_mask(gt))
    return panels


def gallery(rows: Sequence[Sequence[np.ndarray]], gap: int = 4) -> np.ndarray:
    """Rows of panels (H x W x 3 uint8, any sizes) as one picture: every panel scaled to the tallest
    panel's height (aspect ratio kept), panels of a row joined by white `gap`-px spacers, rows one
    under the other, padded with white on the right to the widest. Panels of one size come out
    unscaled, so a set of same-size images gives the plain side-by-side picture."""
    if not rows or not all(rows):
        raise ValueError("a gallery needs at least one row, and every row at least one panel")
    height = max(panel.shape[0] for row in rows for panel in row)
    lines = [_join([to_height(panel, height) for panel in row], gap) for row in rows]
    width = max(line.shape[1] for line in lines)
    return np.concatenate([_pad_right(line, width) for line in lines], axis=0)


def to_height(panel: np.ndarray, height: int) -> np.ndarray:
    """The panel scaled to `height` rows, aspect ratio kept. Nearest neighbour: label colours stay
    exact (no blended colours that name no class) and the pixels are shown as they are."""
    if panel.shape[0] == height:
        return panel
    width = max(1, round(panel.shape[1] * height / panel.shape[0]))
    return cv2.resize(panel, (width, height), interpolation=cv2.INTER_NEAREST)


def _join(panels: list[np.ndarray], gap: int) -> np.ndarray:
    spacer = np.full((panels[0].shape[0], gap, 3), _WHITE, dtype=np.uint8)
    parts = []
    for panel in panels:
        parts.extend([panel, spacer])
    return np.concatenate(parts[:-1], axis=1)


def _pad_right(line: np.ndarray, width: int) -> np.ndarray:
    if line.shape[1] == width:
        return line
    return np.pad(line, ((0, 0), (0, width - line.shape[1]), (0, 0)), constant_values=_WHITE)
