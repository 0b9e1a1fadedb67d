"""Placing objects: where each one stands (on its home context when the image has it: the
co-occurrence cue), how large and how turned, and whether the result leaves it, every earlier
object and every context visible enough.

Shapes are rasterised on a padded canvas, so the area cut off by the image border is known and
an object can be marked truncated, as in VOC.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np

from wsss.core.params import SyntheticParams
from wsss.data.synthetic.shapes import SHAPES, Parts
from wsss.data.synthetic.styles import CLASS_STYLES, CONTEXT_STYLES
from wsss.data.synthetic.textures import Grid
from wsss.data.synthetic.vocabulary import (
    CLASS_NAMES,
    CONTEXT_NAMES,
    cooccurrence_triples,
)


@dataclass
class Placed:
    class_id: int
    parts: np.ndarray  # H x W uint8: 0 outside the object, p + 1 on part p (in-image part only)
    full_area: int  # pixels of the whole object, including any cut off by the image border
    centre: tuple[float, float]  # (x, y) centroid of its in-image pixels
    size: float  # largest dimension in px

    @property
    def mask(self) -> np.ndarray:
        return self.parts > 0

    @property
    def truncated(self) -> bool:
        return int(np.count_nonzero(self.parts)) < self.full_area


def _homes(class_id: int, config: SyntheticParams) -> list[int]:
    """Contexts the class stands on, best first: configured pairs by rate, then its style's home."""
    name = CLASS_NAMES[class_id]
    pairs = sorted((r, ctx) for ctx, cls, r in cooccurrence_triples(config) if cls == name)
    homes = [CONTEXT_NAMES.index(ctx) for _, ctx in reversed(pairs)]
    home = CLASS_STYLES[name].home
    if home is not None and CONTEXT_NAMES.index(home) not in homes:
        homes.append(CONTEXT_NAMES.index(home))
    return homes


def _pick_anchor(
    rng: np.random.Generator, class_id: int, ctx: np.ndarray, grid: Grid, config: SyntheticParams, size: float
) -> tuple[float, float]:
    """Where the object goes: on its home context when present (the co-occurrence cue)."""
    style = CLASS_STYLES[CLASS_NAMES[class_id]]
    sel = None
    for k in _homes(class_id, config):
        if (ctx == k).any():
            sel = _standing_area(ctx, grid, [k])
            break
    if sel is None and style.anchor == "bottom":  # stand anywhere on walkable ground
        walkable = [k for k, n in enumerate(CONTEXT_NAMES) if k > 0 and CONTEXT_STYLES[n].walkable]
        sel = _standing_area(ctx, grid, walkable)
    if sel is None or not sel.any():
        sel = np.ones_like(ctx, dtype=bool)
    # Keep most objects off the left/right edges (some truncation stays, as in VOC).
    margin = min(0.4 * size, 0.3 * ctx.shape[1])
    inside = sel & (grid.xx >= margin) & (grid.xx <= ctx.shape[1] - 1 - margin)
    sel = inside if inside.any() else sel
    ys, xs = np.nonzero(sel)
    i = rng.integers(len(ys))
    return float(xs[i]) + rng.uniform(-0.5, 0.5), float(ys[i]) + rng.uniform(0.0, 0.5)


def _standing_area(ctx: np.ndarray, grid: Grid, contexts: list[int]) -> np.ndarray:
    """Pixels of ``contexts`` at the band heights where objects stand on them (else anywhere on them)."""
    area = np.zeros(ctx.shape, bool)
    for k in contexts:
        lo, hi = CONTEXT_STYLES[CONTEXT_NAMES[k]].anchor_rel
        area |= (ctx == k) & (grid.rel >= lo) & (grid.rel <= hi)
    return area if area.any() else np.isin(ctx, contexts)


def _to_pixels(
    parts: Parts, size: float, angle: float, flip: bool, anchor: tuple[float, float], mode: str
) -> Parts:
    """Normalise a shape to largest dimension ``size`` px, flip, rotate and move it onto ``anchor``."""
    points = np.concatenate([poly for _, poly in parts])
    (x0, y0), (x1, y1) = points.min(0), points.max(0)
    scale = size / max(x1 - x0, y1 - y0)
    origin = np.array([(x0 + x1) / 2, y1 if mode == "bottom" else (y0 + y1) / 2], np.float32)
    a = math.radians(angle)
    rot = np.array([[math.cos(a), -math.sin(a)], [math.sin(a), math.cos(a)]], np.float32)
    out = []
    for part, poly in parts:
        q = (poly - origin) * scale
        if flip:
            q[:, 0] *= -1
        out.append((part, q @ rot.T + np.asarray(anchor, np.float32)))
    return out


def place_object(
    rng: np.random.Generator, class_id: int, ctx: np.ndarray, grid: Grid, config: SyntheticParams
) -> Placed:
    """One try at placing an object of ``class_id``: its shape drawn, sized, turned and rasterised."""
    name = CLASS_NAMES[class_id]
    style = CLASS_STYLES[name]
    h, w = ctx.shape
    size = min(rng.uniform(*config.object_scale) * min(h, w) * style.size, 0.95 * w)
    anchor = _pick_anchor(rng, class_id, ctx, grid, config, size)
    angle = rng.uniform(-style.rotation, style.rotation)
    polys = _to_pixels(SHAPES[name](rng), size, angle, bool(rng.random() < 0.5), anchor, style.anchor)
    # Draw on a padded canvas so the area cut off by the image border is known.
    pad = math.ceil(1.5 * size) + 2
    canvas = np.zeros((h + 2 * pad, w + 2 * pad), np.uint8)
    for part, poly in polys:
        points = np.round((poly + pad) * 16).astype(np.int32)  # 4 fractional bits (shift=4)
        cv2.fillPoly(canvas, [points], part + 1, lineType=cv2.LINE_8, shift=4)
    parts = canvas[pad : pad + h, pad : pad + w].copy()
    ys, xs = np.nonzero(parts)
    centre = (float(xs.mean()), float(ys.mean())) if len(xs) else anchor
    return Placed(class_id, parts, int(np.count_nonzero(canvas)), centre, size)


def acceptable(
    placed: Placed, inst: np.ndarray, objects: list[Placed], ctx: np.ndarray, present: list[int],
    config: SyntheticParams,
) -> bool:  # fmt: skip
    """Enough of the new object and of every earlier one stays visible, and no context vanishes."""
    h, w = inst.shape
    min_pixels = max(12, int(0.0008 * h * w))
    trial = inst.copy()
    trial[placed.mask] = len(objects) + 1
    counts = np.bincount(trial.ravel(), minlength=len(objects) + 2)
    for j, obj in enumerate([*objects, placed], start=1):
        if counts[j] < min_pixels or counts[j] < config.min_visible_fraction * obj.full_area:
            return False
    background = trial == 0
    min_context = max(8, int(0.01 * h * w))
    return all(np.count_nonzero((ctx == k) & background) >= min_context for k in present)
