"""Painters of the background stuff: one per context, each giving the whole image's worth of its
texture, of which `paint_background` keeps the pixels the layout gave that context.

Each stuff has a look of its own (sky gradients and clouds, water ripples, grass streaks, rails
and sleepers, road markings, wallpaper and floorboards, clutter of random shapes), so a
classifier can learn context as a cue.
"""

from __future__ import annotations

from collections.abc import Callable

import cv2
import numpy as np

from wsss.data.synthetic.colour import hsv, mix
from wsss.data.synthetic.textures import Grid, checker, smooth_noise, stripes
from wsss.data.synthetic.vocabulary import CONTEXT_NAMES

SatVal = tuple[tuple[float, float], tuple[float, float]]  # (saturation range, value range)


def _grainy(rng: np.random.Generator, grid: Grid, hue: float, dark: SatVal, light: SatVal, grain: float) -> np.ndarray:
    """Two shades of one hue mixed by fine noise of blur ``grain`` px: gravel, asphalt."""
    return mix(hsv(rng, hue, *dark), hsv(rng, hue, *light), smooth_noise(rng, grid.shape, grain))


def _periodic_columns(rng: np.random.Generator, grid: Grid, period: tuple[float, float], duty: float) -> np.ndarray:
    """Columns of a pattern repeating every ``period`` (a range, drawn) px at a random phase: True
    on the first ``duty`` of each period (railway sleepers, lane dashes)."""
    length = rng.uniform(*period)
    return (grid.xx + rng.uniform(0, length)) % length < duty * length


def _paint_sky(rng: np.random.Generator, grid: Grid) -> np.ndarray:
    hue = rng.uniform(195, 220)
    top = hsv(rng, hue, (0.45, 0.7), (0.55, 0.75))
    low = hsv(rng, hue, (0.15, 0.35), (0.8, 0.95))
    rgb = mix(top, low, grid.rel)
    if rng.random() < 0.7:  # clouds: soft white patches
        noise = smooth_noise(rng, grid.shape, rng.uniform(4, 8) * grid.shape[0] / 128)
        cover = np.clip((noise - rng.uniform(0.6, 0.75)) * 4.0, 0.0, 1.0)
        rgb = mix(rgb, np.full(3, 245.0, np.float32), cover * 0.9)
    return rgb


def _paint_water(rng: np.random.Generator, grid: Grid) -> np.ndarray:
    hue = rng.uniform(200, 230)
    deep = hsv(rng, hue, (0.55, 0.85), (0.3, 0.5))
    crest = hsv(rng, hue, (0.2, 0.45), (0.65, 0.85))
    warp = rng.uniform(0.3, 0.8) * np.sin(2 * np.pi * grid.xx / rng.uniform(15, 40) + rng.uniform(0, 6.3))
    ripples = 0.5 + 0.5 * np.sin(2 * np.pi * (grid.yy / rng.uniform(3, 6) + warp))
    t = ripples ** rng.uniform(2, 4) * 0.75 + 0.25 * smooth_noise(rng, grid.shape, 1.0)
    return mix(deep, crest, t)


def _paint_grass(rng: np.random.Generator, grid: Grid) -> np.ndarray:
    hue = rng.uniform(80, 115)
    dark = hsv(rng, hue, (0.5, 0.8), (0.25, 0.4))
    light = hsv(rng, hue + rng.uniform(-10, 10), (0.4, 0.7), (0.5, 0.7))
    blades = smooth_noise(rng, grid.shape, 0.6, sigma_y=rng.uniform(2, 4))  # vertical streaks
    patches = smooth_noise(rng, grid.shape, 8.0)
    return mix(dark, light, np.clip(0.65 * blades + 0.35 * patches, 0, 1))


def _paint_railroad(rng: np.random.Generator, grid: Grid) -> np.ndarray:
    hue = rng.uniform(20, 40)
    gravel = _grainy(rng, grid, hue, ((0.1, 0.25), (0.28, 0.4)), ((0.05, 0.2), (0.5, 0.65)), 0.7)
    rails = (0.42, 0.76)
    on_sleeper = _periodic_columns(rng, grid, (5, 9), 0.4)
    under_rails = (grid.rel > rails[0] - 0.12) & (grid.rel < rails[1] + 0.1)
    gravel[on_sleeper & under_rails] = hsv(rng, 25, (0.4, 0.6), (0.15, 0.25))
    for f in rails:
        gravel[np.abs((grid.rel - f) * grid.span) < 0.9] = hsv(rng, 210, (0.0, 0.08), (0.7, 0.85))
    return gravel


def _paint_road(rng: np.random.Generator, grid: Grid) -> np.ndarray:
    hue = rng.uniform(0, 360)
    asphalt = _grainy(rng, grid, hue, ((0.0, 0.08), (0.18, 0.3)), ((0.0, 0.08), (0.35, 0.45)), 0.6)
    on_dash = _periodic_columns(rng, grid, (10, 20), 0.55)
    centre_line = np.abs((grid.rel - 0.5) * grid.span) < 1.0
    yellow = rng.random() < 0.4
    lane = hsv(rng, 50, (0.6, 0.9), (0.85, 1.0)) if yellow else hsv(rng, 0, (0.0, 0.05), (0.85, 1.0))
    asphalt[on_dash & centre_line] = lane
    if rng.random() < 0.5:  # a solid edge line
        asphalt[np.abs((grid.rel - 0.1) * grid.span) < 0.7] = hsv(rng, 0, (0.0, 0.05), (0.8, 0.95))
    return asphalt


def _paint_indoor(rng: np.random.Generator, grid: Grid) -> np.ndarray:
    wall = hsv(rng, rng.uniform(20, 60), (0.1, 0.3), (0.65, 0.85))
    if rng.random() < 0.5:
        paper = stripes(rng, grid, rng.uniform(4, 10), rng.uniform(-5, 5), sharp=2.0)
    else:
        paper = checker(rng, grid, rng.uniform(4, 9), 0.0)
    rgb = mix(wall, wall * 0.82, paper)
    floor_at = rng.uniform(0.55, 0.72)
    wood = hsv(rng, rng.uniform(20, 35), (0.4, 0.6), (0.35, 0.55))
    plank = rng.uniform(3, 6)
    grain = 0.6 * (((grid.rel * grid.span) % plank) < 1.0) + 0.4 * smooth_noise(rng, grid.shape, 3.0, sigma_y=0.5)
    floor = grid.rel >= floor_at
    rgb[floor] = mix(wood, wood * 0.7, grain)[floor]
    rgb[np.abs((grid.rel - floor_at) * grid.span) < 1.0] = wood * 0.4  # skirting board
    return rgb


def _paint_clutter(rng: np.random.Generator, grid: Grid) -> np.ndarray:
    """Many random coloured shapes: distractors that share colours with objects."""
    h, w = grid.shape
    canvas = np.empty((h, w, 3), np.float32)
    canvas[:] = hsv(rng, rng.uniform(0, 360), (0.0, 0.3), (0.3, 0.7))
    side = min(h, w)
    for _ in range(int(rng.integers(25, 50) * h * w / (128 * 160)) + 5):
        colour = tuple(float(c) for c in hsv(rng, rng.uniform(0, 360), (0.0, 1.0), (0.15, 1.0)))
        x, y = int(rng.integers(w)), int(rng.integers(h))
        a, b = int(rng.uniform(0.02, 0.12) * side) + 1, int(rng.uniform(0.02, 0.12) * side) + 1
        kind = rng.integers(3)
        if kind == 0:
            cv2.rectangle(canvas, (x - a, y - b), (x + a, y + b), colour, -1)
        elif kind == 1:
            cv2.ellipse(canvas, (x, y), (a, b), rng.uniform(0, 180), 0, 360, colour, -1)
        else:
            cv2.line(canvas, (x - a, y - b), (x + a, y + b), colour, int(rng.integers(1, 3)))
    return canvas + (smooth_noise(rng, (h, w), 0.8)[..., None] - 0.5) * 20.0


_PAINTERS: dict[str, Callable[[np.random.Generator, Grid], np.ndarray]] = {
    "sky": _paint_sky,
    "water": _paint_water,
    "grass": _paint_grass,
    "railroad": _paint_railroad,
    "road": _paint_road,
    "indoor": _paint_indoor,
    "clutter": _paint_clutter,
}


def paint_background(rng: np.random.Generator, ctx: np.ndarray, grid: Grid, present: list[int]) -> np.ndarray:
    """The background image (H x W x 3 float RGB): each present context painted where ``ctx`` has it."""
    image = np.zeros(ctx.shape + (3,), np.float32)
    for k in present:
        sel = ctx == k
        if sel.any():
            image[sel] = _PAINTERS[CONTEXT_NAMES[k]](rng, grid)[sel]
    return image
