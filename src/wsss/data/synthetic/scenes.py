"""Scene layout: which contexts ("stuff") an image holds, and where each lies.

Co-occurrence is decided here: a context paired with a present class appears at the pair's
configured rate, any other at the base rate, so context predicts a class without labelling it.
The layout is sky above a wavy horizon and the other stuff as wavy horizontal bands (plus, at
times, an irregular blob), with each pixel's position in its band recorded for the painters.
"""

from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np

from wsss.core.params import SyntheticParams
from wsss.data.synthetic.styles import CLASS_STYLES, CONTEXT_STYLES
from wsss.data.synthetic.textures import Grid
from wsss.data.synthetic.vocabulary import (
    CLASS_NAMES,
    CONTEXT_NAMES,
    SKY,
    cooccurrence_triples,
)


def choose_contexts(rng: np.random.Generator, class_ids: Sequence[int], config: SyntheticParams) -> list[int]:
    """Context ids present in an image holding ``class_ids``.

    A context paired with a present class appears with the pair's rate (the largest, if several
    present classes pair with it), any other context with the base rate. So P(k | c) equals the
    configured rate exactly when c is the only class paired with k.
    """
    names = {CLASS_NAMES[c] for c in class_ids}
    present, paired_here = [], set()
    for k, context in enumerate(CONTEXT_NAMES[1:], start=1):
        rates = [r for ctx, cls, r in cooccurrence_triples(config) if ctx == context and cls in names]
        if rates:
            paired_here.add(k)
        if rng.random() < (max(rates) if rates else config.context_base_rate):
            present.append(k)
    needs_ground = any(CLASS_STYLES[n].anchor == "bottom" for n in names)
    if not present or (needs_ground and present == [SKY]):
        # Every pixel needs some stuff. Take it from contexts not paired with these classes,
        # so the configured P(context | class) stays exact.
        ground = [k for k in range(1, len(CONTEXT_NAMES)) if k != SKY and k not in present]
        candidates = [k for k in ground if k not in paired_here] or ground
        present.append(int(candidates[rng.integers(len(candidates))]))
    return sorted(present)


def _wave(rng: np.random.Generator, width: int, amp: float) -> np.ndarray:
    """A smooth irregular curve over x: two sines, one long and one short."""
    x = np.arange(width, dtype=np.float32)
    long_ = np.sin(2 * np.pi * x / (width * rng.uniform(0.6, 2.0)) + rng.uniform(0, 2 * np.pi))
    short = np.sin(2 * np.pi * x / (width * rng.uniform(0.1, 0.3)) + rng.uniform(0, 2 * np.pi))
    return amp * (0.75 * long_ + 0.25 * short)


def _fill_band(ctx: np.ndarray, grid: Grid, top: np.ndarray, bottom: np.ndarray, k: int) -> None:
    """Label rows top(x) <= y < bottom(x) as context k and record the band coordinates."""
    sel = (grid.yy >= top[None, :]) & (grid.yy < bottom[None, :])
    height = np.broadcast_to(np.maximum(bottom - top, 1.0)[None, :], ctx.shape)
    ctx[sel] = k
    grid.rel[sel] = ((grid.yy - top[None, :]) / height)[sel]
    grid.span[sel] = height[sel]


def layout(rng: np.random.Generator, present: list[int], height: int, width: int) -> tuple[np.ndarray, Grid]:
    """Context id map: sky above a wavy horizon, the other stuff as wavy horizontal bands."""
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    grid = Grid(yy, xx, np.zeros_like(yy), np.ones_like(yy))
    ctx = np.zeros((height, width), np.uint8)
    ground = [k for k in present if k != SKY]
    top = np.zeros(width, np.float32)
    if SKY in present:
        if ground:
            horizon = rng.uniform(0.3, 0.55) * height + _wave(rng, width, 0.06 * height)
            top = np.clip(horizon, 0.15 * height, 0.8 * height).astype(np.float32)
        else:
            top = np.full(width, float(height), np.float32)
        _fill_band(ctx, grid, np.zeros(width, np.float32), top, SKY)
    if ground:
        order = [ground[i] for i in rng.permutation(len(ground))]
        m = len(order)
        # Every band gets at least half its equal share, so none is too thin to stand on.
        shares = 0.5 / m + 0.5 * rng.dirichlet(np.full(m, 2.0))
        cum = np.cumsum(shares)
        extent = height - top
        bounds = [top]
        for i in range(1, m):
            amp = 0.2 * (0.5 / m) * float(extent.mean())
            b = top + cum[i - 1] * extent + _wave(rng, width, amp)
            bounds.append(np.maximum(b, bounds[-1] + 2).astype(np.float32))
        bounds.append(np.full(width, float(height), np.float32))
        for i, k in enumerate(order):
            _fill_band(ctx, grid, bounds[i], bounds[i + 1], k)
    return ctx, grid


def add_blob(rng: np.random.Generator, ctx: np.ndarray, present: list[int], min_pixels: int) -> None:
    """Paint an irregular patch of an amorphous stuff (lake, grass patch, junk pile) into the ground."""
    candidates = [k for k in present if CONTEXT_STYLES[CONTEXT_NAMES[k]].blob]
    ground = ctx != SKY
    if not candidates or not ground.any():
        return
    k = candidates[rng.integers(len(candidates))]
    h, w = ctx.shape
    ys, xs = np.nonzero(ground)
    i = rng.integers(len(ys))
    blob = np.zeros((h, w), np.uint8)
    side = min(h, w)
    for _ in range(rng.integers(1, 4)):  # a union of ellipses reads as an irregular patch
        centre = (int(xs[i] + rng.normal(0, 0.06 * side)), int(ys[i] + rng.normal(0, 0.04 * side)))
        axes = (int(rng.uniform(0.06, 0.2) * side) + 1, int(rng.uniform(0.03, 0.1) * side) + 1)
        cv2.ellipse(blob, centre, axes, rng.uniform(-20, 20), 0, 360, 1, -1)
    new = ctx.copy()
    new[(blob > 0) & ground] = k
    # A blob must not wipe out another present context.
    if all(np.count_nonzero(new == j) >= min_pixels for j in present):
        ctx[:] = new
