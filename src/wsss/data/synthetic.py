"""A synthetic data set in the exact PASCAL VOC 2012 layout, built to exercise WSSS.

Why synthetic scenes: the failure modes that WSSS methods exist to fix must be present and
measurable, in a set small enough to train on a CPU in minutes.

- **Co-occurrence**: each object class usually sits on a context "stuff" class (boat on water,
  train on rails, aeroplane in sky, ...) at a configured rate; the stuff also appears without its
  object, so context is predictive but not a label. A full-scene context mask (stuff id where
  background, 0 under objects) lets m_{k,c} = FP_{k,c} / TP_c be measured.
- **Partial activation**: objects are procedural multi-part shapes with per-class colour and
  texture families, varied in size, so a classifier can rely on a discriminative part.
- **Boundaries**: labels and colours come from the same polygons (no anti-aliasing), and a
  contrast guard keeps each object visibly different from what surrounds it.
- **Saliency faults**: the saliency map imitates an off-the-shelf detector: it misses some classes,
  blurs boundaries and fires on background blobs (what EPS's map selection handles).

Layout under ``root`` (the ``VOC2012`` folder)::

    JPEGImages/<id>.jpg                 RGB, JPEG quality 95 (4:4:4, so colour edges stay put)
    SegmentationClass/<id>.png          palette PNG, 0..C, 255 on a thin band along boundaries
    SegmentationClassAug/<id>.png       the same masks without the 255 band (as SBD masks)
    SegmentationContext/<id>.png        palette PNG, 0 = object, 1..K = stuff
    SaliencyMaps/<id>.png               8-bit grayscale saliency
    Annotations/<id>.xml                VOC XML, one <object> per visible instance
    ImageSets/Segmentation/{train,val,train_aug}.txt
    classes.txt, context_classes.txt, synthetic_meta.json
"""

from __future__ import annotations

import colorsys
import math
import xml.etree.ElementTree as ET
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np
from PIL import Image
from tqdm import tqdm

from wsss.data.base import IGNORE_INDEX
from wsss.core.errors import DataError, ParamsError
from wsss.core.io import atomic_dir, write_json, write_palette_png
from wsss.core.params import SyntheticParams

CLASS_NAMES: list[str] = ["background", "aeroplane", "boat", "bottle", "car", "cow", "person", "train"]
CONTEXT_NAMES: list[str] = ["object", "sky", "water", "grass", "railroad", "road", "indoor", "clutter"]

_KEY = "data.synthetic"
_SKY = CONTEXT_NAMES.index("sky")
_MAX_SCENE_ATTEMPTS = 50  # layout redraws per image before giving up (defaults never need 2)
_MAX_PLACE_ATTEMPTS = 25  # placements of one object before the layout is redrawn


# ---------------------------------------------------------------------------------------------
# Configuration: params.yaml `data.synthetic` (wsss.core.params.SyntheticParams); the names it
# uses must be this set's
# ---------------------------------------------------------------------------------------------
def check_names(config: SyntheticParams) -> None:
    """The class and context names of ``data.synthetic`` are this set's (ParamsError otherwise)."""
    for i, pair in enumerate(config.cooccurrence):
        if pair.context not in CONTEXT_NAMES[1:]:
            raise ParamsError(f"{_KEY}.cooccurrence[{i}].context: unknown context {pair.context!r}; "
                              f"known: {CONTEXT_NAMES[1:]}")
        if pair.class_ not in CLASS_NAMES[1:]:
            raise ParamsError(f"{_KEY}.cooccurrence[{i}].class: unknown class {pair.class_!r}; known: {CLASS_NAMES[1:]}")
    for name in config.saliency_missed_classes:
        if name not in CLASS_NAMES[1:]:
            raise ParamsError(f"{_KEY}.saliency_missed_classes: unknown class {name!r}; known: {CLASS_NAMES[1:]}")


def _pairs(config: SyntheticParams) -> list[tuple[str, str, float]]:
    """``data.synthetic.cooccurrence`` as (context, class, rate) triples."""
    return [(p.context, p.class_, p.rate) for p in config.cooccurrence]


def _config_record(config: SyntheticParams) -> dict:
    """The config as the meta file records it (image_sizes absent at its default: the default
    set's meta stays byte-identical)."""
    out = config.model_dump(mode="json", by_alias=True)
    if config.image_sizes is None:
        del out["image_sizes"]
    return out


# ---------------------------------------------------------------------------------------------
# Styles: how each class and each stuff looks
# ---------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class _ClassStyle:
    hue: float  # degrees; the class's hue family
    hue_jitter: float
    sat: tuple[float, float]
    val: tuple[float, float]
    texture: str  # texture family of the main body (part 0)
    second: str  # colour rule of the texture's second colour
    parts: tuple[str, ...]  # colour rules of parts 1, 2, ...
    anchor: str  # "bottom": stands on its anchor; "center": floats around it
    size: float  # factor on the sampled scale
    rotation: float  # max |rotation| in degrees
    home: str | None  # context it sits on when no pair is configured for it


# fmt: off
_CLASS_STYLES: dict[str, _ClassStyle] = {
    "aeroplane": _ClassStyle(
        hue=210, hue_jitter=15, sat=(0.0, 0.12), val=(0.8, 1.0), texture="gradient", second="shade",
        parts=("dark", "accent"), anchor="center", size=1.2, rotation=30, home="sky"),
    "boat": _ClassStyle(
        hue=0, hue_jitter=12, sat=(0.6, 0.9), val=(0.55, 0.9), texture="stripes", second="light",
        parts=("dark", "light", "light"), anchor="bottom", size=1.0, rotation=6, home="water"),
    "bottle": _ClassStyle(
        hue=125, hue_jitter=15, sat=(0.5, 0.85), val=(0.3, 0.6), texture="glass", second="light",
        parts=("accent", "light"), anchor="bottom", size=0.9, rotation=10, home="indoor"),
    "car": _ClassStyle(
        hue=52, hue_jitter=8, sat=(0.7, 0.95), val=(0.75, 0.95), texture="checker", second="dark",
        parts=("glass", "dark", "silver"), anchor="bottom", size=1.0, rotation=4, home="road"),
    "cow": _ClassStyle(
        hue=28, hue_jitter=8, sat=(0.4, 0.7), val=(0.35, 0.6), texture="spots", second="contrast",
        parts=("base", "shade", "light"), anchor="bottom", size=1.0, rotation=4, home="grass"),
    "person": _ClassStyle(
        hue=295, hue_jitter=20, sat=(0.45, 0.8), val=(0.45, 0.85), texture="plaid", second="shade",
        parts=("skin", "dark"), anchor="bottom", size=1.1, rotation=6, home=None),
    "train": _ClassStyle(
        hue=180, hue_jitter=12, sat=(0.5, 0.8), val=(0.35, 0.6), texture="noise", second="shade",
        parts=("glass", "accent", "dark"), anchor="bottom", size=1.6, rotation=0, home="railroad"),
}
# fmt: on


@dataclass(frozen=True)
class _ContextStyle:
    anchor_rel: tuple[float, float]  # band-relative height (0 top, 1 bottom) where objects stand
    blob: bool  # may also appear as an irregular blob inside the ground bands
    walkable: bool  # objects without a home context may stand on it


_CONTEXT_STYLES: dict[str, _ContextStyle] = {
    "sky": _ContextStyle((0.15, 0.85), blob=False, walkable=False),
    "water": _ContextStyle((0.2, 0.85), blob=True, walkable=False),
    "grass": _ContextStyle((0.25, 1.0), blob=True, walkable=True),
    "railroad": _ContextStyle((0.72, 0.8), blob=False, walkable=True),  # the lower rail: trains stand on it
    "road": _ContextStyle((0.35, 0.95), blob=False, walkable=True),
    "indoor": _ContextStyle((0.72, 1.0), blob=False, walkable=True),  # the floor, below the wall
    "clutter": _ContextStyle((0.2, 1.0), blob=True, walkable=True),
}


# ---------------------------------------------------------------------------------------------
# Small numeric helpers
# ---------------------------------------------------------------------------------------------
def _hsv(
    rng: np.random.Generator, hue: float, sat: tuple[float, float], val: tuple[float, float]
) -> np.ndarray:
    h = (hue % 360.0) / 360.0
    rgb = colorsys.hsv_to_rgb(h, rng.uniform(*sat), rng.uniform(*val))
    return np.array(rgb, dtype=np.float32) * 255.0


def _colour_rule(rule: str, rng: np.random.Generator, base: np.ndarray) -> np.ndarray:
    """A part or texture colour relative to an object's base colour."""
    if rule == "base":
        return base
    if rule == "shade":
        return base * rng.uniform(0.5, 0.7)
    if rule == "contrast":  # cow spots: black or white
        rule = "light" if rng.random() < 0.5 else "dark"
    rules = {
        "light": (rng.uniform(0, 360), (0.0, 0.1), (0.85, 1.0)),
        "dark": (rng.uniform(0, 360), (0.0, 0.3), (0.05, 0.2)),
        "accent": (rng.uniform(0, 360), (0.6, 1.0), (0.6, 1.0)),
        "glass": (rng.uniform(190, 220), (0.1, 0.3), (0.55, 0.8)),
        "silver": (0.0, (0.0, 0.0), (0.6, 0.8)),
        "skin": (rng.uniform(15, 35), (0.3, 0.6), (0.5, 0.95)),
    }
    hue, sat, val = rules[rule]
    return _hsv(rng, hue, sat, val)


def _mix(c1: np.ndarray, c2: np.ndarray, t: np.ndarray) -> np.ndarray:
    """Per-pixel blend of two colours by weight field t (H x W) -> H x W x 3."""
    return c1 + (c2 - c1) * t[..., None]


def _smooth_noise(rng: np.random.Generator, shape: tuple[int, int], sigma: float) -> np.ndarray:
    """Blurred white noise mapped to [0, 1] (tanh of the standardised field)."""
    field_ = rng.standard_normal(shape).astype(np.float32)
    if sigma > 0:
        field_ = cv2.GaussianBlur(field_, (0, 0), sigmaX=sigma, sigmaY=sigma)
    field_ = (field_ - field_.mean()) / (field_.std() + 1e-6)
    return 0.5 + 0.5 * np.tanh(field_)


def _aniso_noise(rng: np.random.Generator, shape: tuple[int, int], sx: float, sy: float) -> np.ndarray:
    field_ = cv2.GaussianBlur(rng.standard_normal(shape).astype(np.float32), (0, 0), sigmaX=sx, sigmaY=sy)
    field_ = (field_ - field_.mean()) / (field_.std() + 1e-6)
    return 0.5 + 0.5 * np.tanh(field_)


def _wave(rng: np.random.Generator, width: int, amp: float) -> np.ndarray:
    """A smooth irregular curve over x: two sines, one long and one short."""
    x = np.arange(width, dtype=np.float32)
    long_ = np.sin(2 * np.pi * x / (width * rng.uniform(0.6, 2.0)) + rng.uniform(0, 2 * np.pi))
    short = np.sin(2 * np.pi * x / (width * rng.uniform(0.1, 0.3)) + rng.uniform(0, 2 * np.pi))
    return amp * (0.75 * long_ + 0.25 * short)


@dataclass
class _Grid:
    """Pixel coordinates plus each pixel's position within its stuff band."""

    yy: np.ndarray  # H x W float32 row index
    xx: np.ndarray  # H x W float32 column index
    rel: np.ndarray  # H x W, 0 at the top of the pixel's band, 1 at its bottom
    span: np.ndarray  # H x W, the band's height in px at that column

    @property
    def shape(self) -> tuple[int, int]:
        return self.yy.shape


# ---------------------------------------------------------------------------------------------
# Textures: weight fields in [0, 1] used to blend two colours
# ---------------------------------------------------------------------------------------------
def _rotated(grid: _Grid, angle_deg: float) -> tuple[np.ndarray, np.ndarray]:
    a = math.radians(angle_deg)
    return grid.xx * math.cos(a) + grid.yy * math.sin(a), -grid.xx * math.sin(a) + grid.yy * math.cos(a)


def _stripes(
    rng: np.random.Generator, grid: _Grid, period: float, angle: float, sharp: float = 4.0
) -> np.ndarray:
    u, _ = _rotated(grid, angle)
    t = 0.5 + 0.5 * np.sin(2 * np.pi * u / period + rng.uniform(0, 2 * np.pi))
    return np.clip((t - 0.5) * sharp + 0.5, 0.0, 1.0)


def _checker(rng: np.random.Generator, grid: _Grid, period: float, angle: float) -> np.ndarray:
    u, v = _rotated(grid, angle)
    cells = np.floor(u / period + rng.uniform(0, 1)) + np.floor(v / period + rng.uniform(0, 1))
    return (cells % 2).astype(np.float32)


def _gradient(rng: np.random.Generator, grid: _Grid, centre: tuple[float, float], size: float) -> np.ndarray:
    """A linear ramp in a random direction, centred on the object rather than on the image."""
    u, _ = _rotated(grid, rng.uniform(0, 360))
    mid = _value_at(u, centre)
    return np.clip(0.5 + (u - mid) / (size * rng.uniform(0.6, 1.2)), 0.0, 1.0)


def _value_at(field_: np.ndarray, point: tuple[float, float]) -> float:
    """``field_`` at pixel ``point`` (x, y), clamped to the grid."""
    h, w = field_.shape
    x = int(min(max(round(point[0]), 0), w - 1))
    y = int(min(max(round(point[1]), 0), h - 1))
    return float(field_[y, x])


def _object_texture(
    kind: str, rng: np.random.Generator, grid: _Grid, centre: tuple[float, float], size: float
) -> np.ndarray:
    """Texture of an object's body; scales with the object so it reads the same at any size."""
    shape = grid.shape
    if kind == "stripes":  # mostly horizontal bands
        return _stripes(rng, grid, max(3.0, size * rng.uniform(0.08, 0.18)), 90 + rng.uniform(-15, 15))
    if kind == "checker":
        return _checker(rng, grid, max(2.5, size * rng.uniform(0.06, 0.12)), rng.uniform(-10, 10))
    if kind == "spots":
        noise = _smooth_noise(rng, shape, max(1.0, size * rng.uniform(0.04, 0.08)))
        return (noise > rng.uniform(0.6, 0.72)).astype(np.float32)
    if kind == "plaid":
        period = max(3.0, size * rng.uniform(0.07, 0.14))
        angle = rng.uniform(0, 90)
        return 0.5 * (_stripes(rng, grid, period, angle) + _stripes(rng, grid, period, angle + 90))
    if kind == "noise":
        return _smooth_noise(rng, shape, rng.uniform(0.6, 1.8))
    if kind == "gradient":
        return _gradient(rng, grid, centre, size)
    if kind == "glass":  # a highlight ramp with fine speckle
        return 0.7 * _gradient(rng, grid, centre, size) + 0.3 * _smooth_noise(rng, shape, 0.7)
    raise ValueError(f"unknown texture {kind!r}")


# ---------------------------------------------------------------------------------------------
# Background stuff: which contexts are present, where they lie, how they look
# ---------------------------------------------------------------------------------------------
def _choose_contexts(
    rng: np.random.Generator, class_ids: Sequence[int], config: SyntheticParams
) -> list[int]:
    """Context ids present in an image holding ``class_ids``.

    A context paired with a present class appears with the pair's rate (the largest, if several
    present classes pair with it), any other context with the base rate. So P(k | c) equals the
    configured rate exactly when c is the only class paired with k.
    """
    names = {CLASS_NAMES[c] for c in class_ids}
    present, paired_here = [], set()
    for k, context in enumerate(CONTEXT_NAMES[1:], start=1):
        rates = [r for ctx, cls, r in _pairs(config) if ctx == context and cls in names]
        if rates:
            paired_here.add(k)
        if rng.random() < (max(rates) if rates else config.context_base_rate):
            present.append(k)
    needs_ground = any(_CLASS_STYLES[n].anchor == "bottom" for n in names)
    if not present or (needs_ground and present == [_SKY]):
        # Every pixel needs some stuff. Take it from contexts not paired with these classes,
        # so the configured P(context | class) stays exact.
        ground = [k for k in range(1, len(CONTEXT_NAMES)) if k != _SKY and k not in present]
        candidates = [k for k in ground if k not in paired_here] or ground
        present.append(int(candidates[rng.integers(len(candidates))]))
    return sorted(present)


def _fill_band(ctx: np.ndarray, grid: _Grid, top: np.ndarray, bottom: np.ndarray, k: int) -> None:
    """Label rows top(x) <= y < bottom(x) as context k and record the band coordinates."""
    sel = (grid.yy >= top[None, :]) & (grid.yy < bottom[None, :])
    height = np.broadcast_to(np.maximum(bottom - top, 1.0)[None, :], ctx.shape)
    ctx[sel] = k
    grid.rel[sel] = ((grid.yy - top[None, :]) / height)[sel]
    grid.span[sel] = height[sel]


def _layout(
    rng: np.random.Generator, present: list[int], height: int, width: int
) -> tuple[np.ndarray, _Grid]:
    """Context id map: sky above a wavy horizon, the other stuff as wavy horizontal bands."""
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    grid = _Grid(yy, xx, np.zeros_like(yy), np.ones_like(yy))
    ctx = np.zeros((height, width), np.uint8)
    ground = [k for k in present if k != _SKY]
    top = np.zeros(width, np.float32)
    if _SKY in present:
        if ground:
            horizon = rng.uniform(0.3, 0.55) * height + _wave(rng, width, 0.06 * height)
            top = np.clip(horizon, 0.15 * height, 0.8 * height).astype(np.float32)
        else:
            top = np.full(width, float(height), np.float32)
        _fill_band(ctx, grid, np.zeros(width, np.float32), top, _SKY)
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


def _add_blob(rng: np.random.Generator, ctx: np.ndarray, present: list[int], min_pixels: int) -> None:
    """Paint an irregular patch of an amorphous stuff (lake, grass patch, junk pile) into the ground."""
    candidates = [k for k in present if _CONTEXT_STYLES[CONTEXT_NAMES[k]].blob]
    ground = ctx != _SKY
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


def _paint_sky(rng: np.random.Generator, grid: _Grid) -> np.ndarray:
    hue = rng.uniform(195, 220)
    top = _hsv(rng, hue, (0.45, 0.7), (0.55, 0.75))
    low = _hsv(rng, hue, (0.15, 0.35), (0.8, 0.95))
    rgb = _mix(top, low, grid.rel)
    if rng.random() < 0.7:  # clouds: soft white patches
        noise = _smooth_noise(rng, grid.shape, rng.uniform(4, 8) * grid.shape[0] / 128)
        cover = np.clip((noise - rng.uniform(0.6, 0.75)) * 4.0, 0.0, 1.0)
        rgb = _mix(rgb, np.full(3, 245.0, np.float32), cover * 0.9)
    return rgb


def _paint_water(rng: np.random.Generator, grid: _Grid) -> np.ndarray:
    hue = rng.uniform(200, 230)
    deep = _hsv(rng, hue, (0.55, 0.85), (0.3, 0.5))
    crest = _hsv(rng, hue, (0.2, 0.45), (0.65, 0.85))
    warp = rng.uniform(0.3, 0.8) * np.sin(2 * np.pi * grid.xx / rng.uniform(15, 40) + rng.uniform(0, 6.3))
    ripples = 0.5 + 0.5 * np.sin(2 * np.pi * (grid.yy / rng.uniform(3, 6) + warp))
    t = ripples ** rng.uniform(2, 4) * 0.75 + 0.25 * _smooth_noise(rng, grid.shape, 1.0)
    return _mix(deep, crest, t)


def _paint_grass(rng: np.random.Generator, grid: _Grid) -> np.ndarray:
    hue = rng.uniform(80, 115)
    dark = _hsv(rng, hue, (0.5, 0.8), (0.25, 0.4))
    light = _hsv(rng, hue + rng.uniform(-10, 10), (0.4, 0.7), (0.5, 0.7))
    blades = _aniso_noise(rng, grid.shape, 0.6, rng.uniform(2, 4))  # vertical streaks
    patches = _smooth_noise(rng, grid.shape, 8.0)
    return _mix(dark, light, np.clip(0.65 * blades + 0.35 * patches, 0, 1))


def _paint_railroad(rng: np.random.Generator, grid: _Grid) -> np.ndarray:
    hue = rng.uniform(20, 40)
    gravel = _mix(
        _hsv(rng, hue, (0.1, 0.25), (0.28, 0.4)), _hsv(rng, hue, (0.05, 0.2), (0.5, 0.65)),
        _smooth_noise(rng, grid.shape, 0.7),
    )  # fmt: skip
    rails = (0.42, 0.76)
    period = rng.uniform(5, 9)
    on_sleeper = (grid.xx + rng.uniform(0, period)) % period < 0.4 * period
    under_rails = (grid.rel > rails[0] - 0.12) & (grid.rel < rails[1] + 0.1)
    gravel[on_sleeper & under_rails] = _hsv(rng, 25, (0.4, 0.6), (0.15, 0.25))
    for f in rails:
        gravel[np.abs((grid.rel - f) * grid.span) < 0.9] = _hsv(rng, 210, (0.0, 0.08), (0.7, 0.85))
    return gravel


def _paint_road(rng: np.random.Generator, grid: _Grid) -> np.ndarray:
    hue = rng.uniform(0, 360)
    asphalt = _mix(
        _hsv(rng, hue, (0.0, 0.08), (0.18, 0.3)), _hsv(rng, hue, (0.0, 0.08), (0.35, 0.45)),
        _smooth_noise(rng, grid.shape, 0.6),
    )  # fmt: skip
    period = rng.uniform(10, 20)
    on_dash = (grid.xx + rng.uniform(0, period)) % period < 0.55 * period
    centre_line = np.abs((grid.rel - 0.5) * grid.span) < 1.0
    yellow = rng.random() < 0.4
    lane = _hsv(rng, 50, (0.6, 0.9), (0.85, 1.0)) if yellow else _hsv(rng, 0, (0.0, 0.05), (0.85, 1.0))
    asphalt[on_dash & centre_line] = lane
    if rng.random() < 0.5:  # a solid edge line
        asphalt[np.abs((grid.rel - 0.1) * grid.span) < 0.7] = _hsv(rng, 0, (0.0, 0.05), (0.8, 0.95))
    return asphalt


def _paint_indoor(rng: np.random.Generator, grid: _Grid) -> np.ndarray:
    wall = _hsv(rng, rng.uniform(20, 60), (0.1, 0.3), (0.65, 0.85))
    if rng.random() < 0.5:
        paper = _stripes(rng, grid, rng.uniform(4, 10), rng.uniform(-5, 5), sharp=2.0)
    else:
        paper = _checker(rng, grid, rng.uniform(4, 9), 0.0)
    rgb = _mix(wall, wall * 0.82, paper)
    floor_at = rng.uniform(0.55, 0.72)
    wood = _hsv(rng, rng.uniform(20, 35), (0.4, 0.6), (0.35, 0.55))
    plank = rng.uniform(3, 6)
    grain = 0.6 * (((grid.rel * grid.span) % plank) < 1.0) + 0.4 * _aniso_noise(rng, grid.shape, 3.0, 0.5)
    floor = grid.rel >= floor_at
    rgb[floor] = _mix(wood, wood * 0.7, grain)[floor]
    rgb[np.abs((grid.rel - floor_at) * grid.span) < 1.0] = wood * 0.4  # skirting board
    return rgb


def _paint_clutter(rng: np.random.Generator, grid: _Grid) -> np.ndarray:
    """Many random coloured shapes: distractors that share colours with objects."""
    h, w = grid.shape
    canvas = np.empty((h, w, 3), np.float32)
    canvas[:] = _hsv(rng, rng.uniform(0, 360), (0.0, 0.3), (0.3, 0.7))
    side = min(h, w)
    for _ in range(int(rng.integers(25, 50) * h * w / (128 * 160)) + 5):
        colour = tuple(float(c) for c in _hsv(rng, rng.uniform(0, 360), (0.0, 1.0), (0.15, 1.0)))
        x, y = int(rng.integers(w)), int(rng.integers(h))
        a, b = int(rng.uniform(0.02, 0.12) * side) + 1, int(rng.uniform(0.02, 0.12) * side) + 1
        kind = rng.integers(3)
        if kind == 0:
            cv2.rectangle(canvas, (x - a, y - b), (x + a, y + b), colour, -1)
        elif kind == 1:
            cv2.ellipse(canvas, (x, y), (a, b), rng.uniform(0, 180), 0, 360, colour, -1)
        else:
            cv2.line(canvas, (x - a, y - b), (x + a, y + b), colour, int(rng.integers(1, 3)))
    return canvas + (_smooth_noise(rng, (h, w), 0.8)[..., None] - 0.5) * 20.0


_PAINTERS: dict[str, Callable[[np.random.Generator, _Grid], np.ndarray]] = {
    "sky": _paint_sky,
    "water": _paint_water,
    "grass": _paint_grass,
    "railroad": _paint_railroad,
    "road": _paint_road,
    "indoor": _paint_indoor,
    "clutter": _paint_clutter,
}


def _paint_background(
    rng: np.random.Generator, ctx: np.ndarray, grid: _Grid, present: list[int]
) -> np.ndarray:
    image = np.zeros(ctx.shape + (3,), np.float32)
    for k in present:
        sel = ctx == k
        if sel.any():
            image[sel] = _PAINTERS[CONTEXT_NAMES[k]](rng, grid)[sel]
    return image


# ---------------------------------------------------------------------------------------------
# Object shapes: lists of (part, polygon) in local units (x right, y down); any scale, since
# they are normalised to a largest dimension of 1 before placement. Part 0 carries the class
# texture, parts 1.. the colours of _ClassStyle.parts.
# ---------------------------------------------------------------------------------------------
Parts = list[tuple[int, np.ndarray]]


def _poly(*points: tuple[float, float]) -> np.ndarray:
    return np.array(points, np.float32)


def _rect(x0: float, y0: float, x1: float, y1: float) -> np.ndarray:
    return _poly((x0, y0), (x1, y0), (x1, y1), (x0, y1))


def _ellipse(cx: float, cy: float, rx: float, ry: float, n: int = 28) -> np.ndarray:
    t = np.linspace(0, 2 * np.pi, n, endpoint=False)
    return np.stack([cx + rx * np.cos(t), cy + ry * np.sin(t)], axis=1).astype(np.float32)


def _segment(p0: tuple[float, float], p1: tuple[float, float], width: float) -> np.ndarray:
    """A thick line (limb, mast, tail) as a quadrilateral."""
    a, b = np.asarray(p0, np.float32), np.asarray(p1, np.float32)
    d = b - a
    n = np.array([-d[1], d[0]], np.float32) / (np.linalg.norm(d) + 1e-6) * width / 2
    return np.stack([a + n, b + n, b - n, a - n])


def _shape_boat(rng: np.random.Generator) -> Parts:
    hull_h, keel, bow = rng.uniform(0.14, 0.22), rng.uniform(0.5, 0.8), rng.uniform(0.0, 0.12)
    deck = -hull_h
    parts: Parts = [(0, _poly((-0.5, deck), (0.5 + bow, deck - 0.4 * bow), (keel / 2, 0), (-keel / 2, 0)))]
    if rng.random() < 0.7:  # sailing boat: mast, mainsail, maybe a jib
        mx, mh, mw = rng.uniform(-0.12, 0.08), rng.uniform(0.45, 0.75), 0.03
        left, right, foot = mx - mw / 2, mx + mw / 2, deck - 0.05
        parts.append((1, _rect(left, deck - mh, right, deck + 0.01)))
        clew = mx + rng.uniform(0.25, 0.42)
        parts.append((2, _poly((right, deck - 0.95 * mh), (right, foot), (clew, foot))))
        if rng.random() < 0.6:
            tack = mx - rng.uniform(0.15, 0.3)
            parts.append((2, _poly((left, deck - 0.85 * mh), (left, foot), (tack, foot))))
    else:  # motor boat: a cabin
        cx, cw, ch = rng.uniform(-0.25, 0.05), rng.uniform(0.25, 0.4), rng.uniform(0.1, 0.18)
        parts.append((3, _rect(cx, deck - ch, cx + cw, deck + 0.01)))
    return parts


def _shape_train(rng: np.random.Generator) -> Parts:
    body_h, wheel_r, nose = rng.uniform(0.17, 0.25), rng.uniform(0.025, 0.04), rng.uniform(0.05, 0.12)
    y0, y1 = -2 * wheel_r - body_h, -wheel_r * 1.2
    front = 0.5 + nose
    parts: Parts = [
        (0, _rect(-0.5, y0, 0.5, y1)),
        (0, _poly((0.5, y0 + 0.1 * body_h), (front, y0 + 0.55 * body_h), (front, y1), (0.5, y1))),
    ]
    n_win = int(rng.integers(4, 10))
    win_w = 0.8 / n_win * rng.uniform(0.45, 0.7)
    for i in range(n_win):
        x = -0.45 + (i + 0.5) * 0.9 / n_win
        parts.append((1, _rect(x - win_w / 2, y0 + 0.18 * body_h, x + win_w / 2, y0 + 0.5 * body_h)))
    parts.append((2, _rect(-0.5, y1 - 0.25 * body_h, front, y1 - 0.12 * body_h)))  # livery stripe
    for x in np.linspace(-0.42, 0.42, int(rng.integers(4, 9))):
        parts.append((3, _ellipse(x, -wheel_r, wheel_r, wheel_r, 12)))
    return parts


def _shape_aeroplane(rng: np.random.Generator) -> Parts:
    """Seen from below: fuselage along x (nose right), swept wings, tailplane."""
    fus = rng.uniform(0.08, 0.13)
    root, span = rng.uniform(-0.05, 0.1), rng.uniform(0.7, 1.0)
    sweep, chord = rng.uniform(0.05, 0.25), rng.uniform(0.18, 0.26)
    tip = chord * rng.uniform(0.3, 0.6)
    parts: Parts = [(0, _ellipse(0, 0, 0.5, fus / 2, 32))]
    for s in (-1, 1):
        y_tip, x_tip = s * span / 2, root - sweep
        wing = _poly(
            (root + chord / 2, 0), (root - chord / 2, 0), (x_tip - tip / 2, y_tip), (x_tip + tip / 2, y_tip)
        )
        parts.append((0, wing))
        y_fin = s * span * 0.18
        parts.append((2, _poly((-0.36, 0), (-0.46, 0), (-0.5, y_fin), (-0.44, y_fin))))
        if rng.random() < 0.7:  # an engine under each wing
            parts.append((1, _ellipse(root - sweep / 2 + chord * 0.1, s * span * 0.22, 0.08, 0.03, 16)))
    return parts


def _shape_cow(rng: np.random.Generator) -> Parts:
    bw, bh = rng.uniform(0.55, 0.7), rng.uniform(0.26, 0.34)
    leg, lw = rng.uniform(0.18, 0.26), rng.uniform(0.04, 0.06)
    cy = -leg - 0.35 * bh
    parts: Parts = []
    for fx in (-0.38, -0.24, 0.22, 0.36):
        x = fx * bw + rng.normal(0, 0.01)
        parts.append((2, _rect(x - lw / 2, cy, x + lw / 2, 0)))
    rear = -bw / 2
    parts.append((0, _segment((rear + 0.02, cy - 0.2 * bh), (rear - 0.04, cy + 0.35 * bh), 0.025)))  # tail
    parts.append((0, _ellipse(0, cy, bw / 2, bh / 2)))
    hx, hy, hr = bw / 2 + rng.uniform(0.05, 0.1), cy - bh * rng.uniform(0.2, 0.5), rng.uniform(0.08, 0.11)
    parts.append((1, _segment((bw / 2 - 0.06, cy - 0.1 * bh), (hx, hy), 0.12)))  # neck
    parts.append((1, _ellipse(hx, hy, hr, 0.75 * hr)))
    for s in (-1, 1):  # horns
        horn = _poly((0.3 * s, -0.6), (0.6 * s, -1.3), (0.05 * s, -0.7)) * hr + np.float32([hx, hy])
        parts.append((3, horn))
    return parts


def _shape_car(rng: np.random.Generator) -> Parts:
    bh, wr = rng.uniform(0.2, 0.28), rng.uniform(0.08, 0.11)
    y1 = -0.8 * wr
    y0, c = y1 - bh, 0.05  # roofline of the body, chamfer of its corners
    body = _poly((-0.5, y0 + c), (-0.5 + c, y0), (0.5 - c, y0), (0.5, y0 + c), (0.5, y1), (-0.5, y1))
    parts: Parts = [(0, body)]
    top, bottom = rng.uniform(0.35, 0.5) / 2, rng.uniform(0.55, 0.7) / 2  # cabin half widths
    cab_h, off = rng.uniform(0.16, 0.22), rng.uniform(-0.1, 0.05)
    yc = y0 - cab_h
    cabin = _poly((off - top, yc), (off + top, yc), (off + bottom, y0 + 0.01), (off - bottom, y0 + 0.01))
    parts.append((0, cabin))
    m, p = 0.025, 0.02  # window inset, half pillar width
    yt, yb = yc + m, y0 - m
    parts.append((1, _poly((off - top + m, yt), (off - p, yt), (off - p, yb), (off - bottom + 2 * m, yb))))
    parts.append((1, _poly((off + p, yt), (off + top - m, yt), (off + bottom - 2 * m, yb), (off + p, yb))))
    for s in (-1, 1):
        wx = s * rng.uniform(0.28, 0.34)
        parts.append((2, _ellipse(wx, -wr, wr, wr, 20)))
        parts.append((3, _ellipse(wx, -wr, 0.45 * wr, 0.45 * wr, 12)))  # hubcap
    return parts


def _shape_person(rng: np.random.Generator) -> Parts:
    hr = rng.uniform(0.07, 0.09)
    torso_h, torso_w = rng.uniform(0.3, 0.36), rng.uniform(0.18, 0.24)
    neck = -1.0 + 2 * hr
    hip = neck + 0.02 + torso_h
    spread, lw = rng.uniform(0.0, 0.12), rng.uniform(0.07, 0.09)
    parts: Parts = []
    for s in (-1, 1):  # legs first: the torso covers their tops
        foot = torso_w * 0.25 + spread
        parts.append((2, _segment((s * torso_w * 0.25, hip - 0.02), (s * foot, 0.0), lw)))
    top_w = torso_w * rng.uniform(1.0, 1.2)
    chest = neck + 0.02
    torso = _poly((-top_w / 2, chest), (top_w / 2, chest), (torso_w / 2, hip), (-torso_w / 2, hip))
    parts.append((0, torso))
    arm = rng.uniform(0.3, 0.38)
    for s in (-1, 1):
        angle = math.radians(rng.uniform(5, 60))
        raised = -1 if rng.random() < 0.2 else 1
        shoulder = (s * top_w / 2, neck + 0.05)
        hand = (shoulder[0] + s * arm * math.sin(angle), shoulder[1] + raised * arm * math.cos(angle))
        parts.append((0, _segment(shoulder, hand, lw * 0.8)))
    parts.append((1, _ellipse(0, -1.0 + hr, hr, hr * 1.1, 20)))
    return parts


def _shape_bottle(rng: np.random.Generator) -> Parts:
    bw, body_h = rng.uniform(0.28, 0.38), rng.uniform(0.55, 0.65)
    shoulder, cap = rng.uniform(0.1, 0.15), rng.uniform(0.05, 0.08)
    nw = bw * rng.uniform(0.3, 0.4)
    y_body, y_neck = -body_h, -body_h - shoulder
    parts: Parts = [
        (0, _rect(-bw / 2, y_body, bw / 2, 0)),
        (0, _poly((-bw / 2, y_body + 0.01), (bw / 2, y_body + 0.01), (nw / 2, y_neck), (-nw / 2, y_neck))),
        (0, _rect(-nw / 2, -1.0 + cap, nw / 2, y_neck + 0.01)),
        (1, _rect(-nw / 2 - 0.01, -1.0, nw / 2 + 0.01, -1.0 + cap)),
    ]
    if rng.random() < 0.7:  # a label band
        mid, lh = -body_h * rng.uniform(0.35, 0.6), rng.uniform(0.12, 0.22)
        parts.append((2, _rect(-bw / 2, mid - lh / 2, bw / 2, mid + lh / 2)))
    return parts


_SHAPES: dict[str, Callable[[np.random.Generator], Parts]] = {
    "aeroplane": _shape_aeroplane,
    "boat": _shape_boat,
    "bottle": _shape_bottle,
    "car": _shape_car,
    "cow": _shape_cow,
    "person": _shape_person,
    "train": _shape_train,
}


# ---------------------------------------------------------------------------------------------
# Placing and colouring objects
# ---------------------------------------------------------------------------------------------
@dataclass
class _Placed:
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
    pairs = sorted((r, ctx) for ctx, cls, r in _pairs(config) if cls == name)
    homes = [CONTEXT_NAMES.index(ctx) for _, ctx in reversed(pairs)]
    home = _CLASS_STYLES[name].home
    if home is not None and CONTEXT_NAMES.index(home) not in homes:
        homes.append(CONTEXT_NAMES.index(home))
    return homes


def _pick_anchor(
    rng: np.random.Generator,
    class_id: int,
    ctx: np.ndarray,
    grid: _Grid,
    config: SyntheticParams,
    size: float,
) -> tuple[float, float]:
    """Where the object goes: on its home context when present (the co-occurrence cue)."""
    style = _CLASS_STYLES[CLASS_NAMES[class_id]]
    sel = None
    for k in _homes(class_id, config):
        if (ctx == k).any():
            sel = _standing_area(ctx, grid, [k])
            break
    if sel is None and style.anchor == "bottom":  # stand anywhere on walkable ground
        walkable = [k for k, n in enumerate(CONTEXT_NAMES) if k > 0 and _CONTEXT_STYLES[n].walkable]
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


def _standing_area(ctx: np.ndarray, grid: _Grid, contexts: list[int]) -> np.ndarray:
    """Pixels of ``contexts`` at the band heights where objects stand on them (else anywhere on them)."""
    area = np.zeros(ctx.shape, bool)
    for k in contexts:
        lo, hi = _CONTEXT_STYLES[CONTEXT_NAMES[k]].anchor_rel
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


def _place_object(
    rng: np.random.Generator, class_id: int, ctx: np.ndarray, grid: _Grid, config: SyntheticParams
) -> _Placed:
    name = CLASS_NAMES[class_id]
    style = _CLASS_STYLES[name]
    h, w = ctx.shape
    size = min(rng.uniform(*config.object_scale) * min(h, w) * style.size, 0.95 * w)
    anchor = _pick_anchor(rng, class_id, ctx, grid, config, size)
    angle = rng.uniform(-style.rotation, style.rotation)
    polys = _to_pixels(_SHAPES[name](rng), size, angle, bool(rng.random() < 0.5), anchor, style.anchor)
    # Draw on a padded canvas so the area cut off by the image border is known.
    pad = math.ceil(1.5 * size) + 2
    canvas = np.zeros((h + 2 * pad, w + 2 * pad), np.uint8)
    for part, poly in polys:
        points = np.round((poly + pad) * 16).astype(np.int32)  # 4 fractional bits (shift=4)
        cv2.fillPoly(canvas, [points], part + 1, lineType=cv2.LINE_8, shift=4)
    parts = canvas[pad : pad + h, pad : pad + w].copy()
    ys, xs = np.nonzero(parts)
    centre = (float(xs.mean()), float(ys.mean())) if len(xs) else anchor
    return _Placed(class_id, parts, int(np.count_nonzero(canvas)), centre, size)


def _acceptable(
    placed: _Placed, inst: np.ndarray, objects: list[_Placed], ctx: np.ndarray, present: list[int],
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


def _render_object(rng: np.random.Generator, placed: _Placed, grid: _Grid) -> np.ndarray:
    """Colour layer (H x W x 3, valid on the object): textured body, flat-coloured parts."""
    style = _CLASS_STYLES[CLASS_NAMES[placed.class_id]]
    base = _hsv(rng, style.hue + rng.uniform(-style.hue_jitter, style.hue_jitter), style.sat, style.val)
    second = _colour_rule(style.second, rng, base)
    layer = _mix(base, second, _object_texture(style.texture, rng, grid, placed.centre, placed.size))
    for part, rule in enumerate(style.parts, start=1):
        colour = _colour_rule(rule, rng, base)
        layer[placed.parts == part + 1] = colour
    return layer


_CROSS = cv2.getStructuringElement(cv2.MORPH_CROSS, (3, 3))
_LUMA = np.array([0.299, 0.587, 0.114], np.float32)


def _ensure_contrast(
    layer: np.ndarray, mask: np.ndarray, image: np.ndarray, min_contrast: float
) -> np.ndarray:
    """Shift the object's brightness if it blends into what surrounds it.

    Compares the mean colour just inside the boundary with the mean colour just outside; when
    they differ by less than ``min_contrast`` the object is moved away in luminance.
    """
    m = mask.astype(np.uint8)
    inner = mask & (cv2.erode(m, _CROSS) == 0)
    outer = (cv2.dilate(m, _CROSS) > 0) & ~mask
    if not inner.any() or not outer.any():
        return layer
    c_in, c_out = layer[inner].mean(0), image[outer].mean(0)
    if float(np.abs(c_in - c_out).mean()) >= min_contrast:
        return layer
    l_in, l_out = float(c_in @ _LUMA), float(c_out @ _LUMA)
    target = l_out - 1.5 * min_contrast if l_out > 127.5 else l_out + 1.5 * min_contrast
    return np.clip(layer + (target - l_in), 0.0, 255.0)


# ---------------------------------------------------------------------------------------------
# Masks, saliency, annotation
# ---------------------------------------------------------------------------------------------
def ignore_band(mask: np.ndarray, width: int) -> np.ndarray:
    """VOC-style mask: 255 on a band of ``width`` px along every object boundary.

    The band lies ceil(width / 2) px inside objects and floor(width / 2) px outside them, so the
    default width 1 marks the objects' own outermost pixels. Image borders are not boundaries.
    """
    out = mask.copy()
    for radius, side in ((width - width // 2, mask > 0), (width // 2, mask == 0)):
        if radius == 0:
            continue
        size = 2 * radius + 1
        kernel = _CROSS if radius == 1 else cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (size, size))
        differs = cv2.dilate(mask, kernel) != cv2.erode(mask, kernel)
        out[differs & side] = IGNORE_INDEX
    return out


def _saliency(
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


def _annotation_xml(image_id: str, sample: SyntheticSample) -> bytes:
    h, w = sample.mask.shape
    root = ET.Element("annotation")
    ET.SubElement(root, "folder").text = "VOC2012"
    ET.SubElement(root, "filename").text = f"{image_id}.jpg"
    ET.SubElement(ET.SubElement(root, "source"), "database").text = "wsss synthetic"
    size = ET.SubElement(root, "size")
    for tag, value in (("width", w), ("height", h), ("depth", 3)):
        ET.SubElement(size, tag).text = str(value)
    ET.SubElement(root, "segmented").text = "1"
    for obj in sample.objects:
        node = ET.SubElement(root, "object")
        ET.SubElement(node, "name").text = obj.name
        ET.SubElement(node, "pose").text = "Unspecified"
        ET.SubElement(node, "truncated").text = str(int(obj.truncated))
        ET.SubElement(node, "difficult").text = "0"
        box = ET.SubElement(node, "bndbox")
        for tag, value in zip(("xmin", "ymin", "xmax", "ymax"), obj.bbox):
            ET.SubElement(box, tag).text = str(value)
    ET.indent(root)
    return ET.tostring(root, encoding="utf-8") + b"\n"


# ---------------------------------------------------------------------------------------------
# One image
# ---------------------------------------------------------------------------------------------
def render_sample(config: SyntheticParams, index: int) -> SyntheticSample:
    """Image ``index`` of the set. It depends only on (seed, index), not on generation order.

    The generator is seeded with ``SeedSequence(seed, spawn_key=(index,))``, i.e. child ``index``
    of ``SeedSequence(seed).spawn(n)``.
    """
    rng = np.random.default_rng(np.random.SeedSequence(config.seed, spawn_key=(index,)))
    size = _image_size(rng, config)
    n = int(rng.integers(config.min_objects, config.max_objects + 1))
    class_ids = [int(c) for c in rng.choice(np.arange(1, len(CLASS_NAMES)), size=n, replace=False)]
    present = _choose_contexts(rng, class_ids, config)
    # Redraw only the layout and placement on failure: redrawing the classes or contexts would
    # bias the co-occurrence rates towards scenes that are easy to place.
    for _ in range(_MAX_SCENE_ATTEMPTS):
        sample = _try_scene(rng, size, class_ids, present, config)
        if sample is not None:
            return sample
    raise RuntimeError(
        f"synthetic image {index}: no valid scene in {_MAX_SCENE_ATTEMPTS} attempts; "
        f"objects may be too large for {size[0]}x{size[1]} images"
    )


def _image_size(rng: np.random.Generator, config: SyntheticParams) -> tuple[int, int]:
    """(height, width) of one image. Draws from ``rng`` only when ``image_sizes`` is set, so a
    set of one size gets the random stream, and so the files, it always had."""
    if config.image_sizes is None:
        return config.image_height, config.image_width
    return tuple(config.image_sizes[int(rng.integers(len(config.image_sizes)))])


def _try_scene(
    rng: np.random.Generator, size: tuple[int, int], class_ids: list[int], present: list[int],
    config: SyntheticParams,
) -> SyntheticSample | None:
    """Lay out and fill a ``size`` = (height, width) scene; None when its objects cannot all be
    placed visibly."""
    h, w = size
    ctx, grid = _layout(rng, present, h, w)
    if rng.random() < config.context_blob_prob:
        _add_blob(rng, ctx, present, max(8, int(0.02 * h * w)))
    image = _paint_background(rng, ctx, grid, present)

    inst = np.zeros((h, w), np.uint8)  # 0 background, i + 1 instance i (later ones occlude)
    objects: list[_Placed] = []
    for class_id in class_ids:
        for _ in range(_MAX_PLACE_ATTEMPTS):
            placed = _place_object(rng, class_id, ctx, grid, config)
            if _acceptable(placed, inst, objects, ctx, present, config):
                break
        else:
            return None
        layer = _ensure_contrast(_render_object(rng, placed, grid), placed.mask, image, config.min_contrast)
        image[placed.mask] = layer[placed.mask]
        inst[placed.mask] = len(objects) + 1
        objects.append(placed)

    mask = np.asarray([0] + class_ids, np.uint8)[inst]
    mask_voc = ignore_band(mask, config.ignore_border)
    if set(np.unique(mask_voc).tolist()) - {0, IGNORE_INDEX} != set(class_ids):
        return None  # an object would exist only as ignore band
    return SyntheticSample(
        image=_finish_image(rng, image),
        mask=mask,
        mask_voc=mask_voc,
        context=np.where(inst > 0, 0, ctx).astype(np.uint8),
        saliency=_saliency(rng, inst, class_ids, config),
        objects=[_describe(obj, inst == i) for i, obj in enumerate(objects, start=1)],
    )


def _finish_image(rng: np.random.Generator, image: np.ndarray) -> np.ndarray:
    """Per-image exposure change and sensor noise, then 8 bits."""
    image = image * rng.uniform(0.85, 1.15) + rng.uniform(-12, 12)
    image = image + rng.normal(0.0, 2.5, image.shape).astype(np.float32)
    return np.round(np.clip(image, 0, 255)).astype(np.uint8)


def _describe(obj: _Placed, visible: np.ndarray) -> SyntheticObject:
    ys, xs = np.nonzero(visible)
    bbox = (int(xs.min()) + 1, int(ys.min()) + 1, int(xs.max()) + 1, int(ys.max()) + 1)
    return SyntheticObject(obj.class_id, bbox, obj.truncated)


# ---------------------------------------------------------------------------------------------
# The whole data set
# ---------------------------------------------------------------------------------------------
_FOLDERS = (
    "JPEGImages",
    "SegmentationClass",
    "SegmentationClassAug",
    "SegmentationContext",
    "SaliencyMaps",
    "Annotations",
)


class _Stats:
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
                paired = {ctx: presence[ctx] for ctx, cls, _ in _pairs(config) if cls == name}
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


def _write_sample(folder: Path, image_id: str, sample: SyntheticSample, config: SyntheticParams) -> None:
    Image.fromarray(sample.image, mode="RGB").save(
        folder / "JPEGImages" / f"{image_id}.jpg", format="JPEG", quality=config.jpeg_quality, subsampling=0
    )
    write_palette_png(folder / "SegmentationClass" / f"{image_id}.png", sample.mask_voc)
    write_palette_png(folder / "SegmentationClassAug" / f"{image_id}.png", sample.mask)
    write_palette_png(folder / "SegmentationContext" / f"{image_id}.png", sample.context)
    Image.fromarray(sample.saliency, mode="L").save(folder / "SaliencyMaps" / f"{image_id}.png", format="PNG")
    (folder / "Annotations" / f"{image_id}.xml").write_bytes(_annotation_xml(image_id, sample))


def _check_replaceable(root: Path) -> None:
    """Refuse to delete a folder that is not an earlier synthetic set (a mistyped root)."""
    if not root.exists():
        return
    if not root.is_dir():
        raise DataError(f"{root}: exists and is not a folder; refusing to replace it with the synthetic set")
    if any(root.iterdir()) and not (root / "synthetic_meta.json").is_file():
        raise DataError(
            f"{root}: a non-empty folder without synthetic_meta.json; refusing to replace it with the "
            "synthetic set (delete it yourself or choose another root)"
        )


def generate(root: str | Path, config: SyntheticParams, progress: bool = False) -> dict:
    """Write the whole data set under ``root`` (the ``VOC2012`` folder) and return its meta dict.

    Built in a temporary folder beside ``root``, then renamed onto it (replacing an earlier
    synthetic set). The same config gives byte-identical files.
    """
    check_names(config)
    root = Path(root)
    _check_replaceable(root)
    splits = {
        "train": range(config.num_train),
        "val": range(config.num_train, config.num_train + config.num_val),
    }
    stats = {"all": _Stats(), "train": _Stats(), "val": _Stats()}
    with atomic_dir(root) as tmp:
        for name in _FOLDERS:
            (tmp / name).mkdir()
        bar = tqdm(total=config.num_train + config.num_val, desc="synthetic data", disable=not progress)
        with bar:
            for split, indices in splits.items():
                for index in indices:
                    sample = render_sample(config, index)
                    _write_sample(tmp, _image_id(index), sample, config)
                    stats["all"].add(sample)
                    stats[split].add(sample)
                    bar.update()
        _write_lists(tmp, splits)
        meta = _meta(config, stats)
        write_json(tmp / "synthetic_meta.json", meta)
    return meta


def _image_id(index: int) -> str:
    return f"syn_{index:06d}"


def _write_lists(folder: Path, splits: dict[str, range]) -> None:
    lists = folder / "ImageSets" / "Segmentation"
    lists.mkdir(parents=True)
    for split, indices in {**splits, "train_aug": splits["train"]}.items():
        (lists / f"{split}.txt").write_text("".join(f"{_image_id(i)}\n" for i in indices))
    (folder / "classes.txt").write_text("\n".join(CLASS_NAMES) + "\n")
    (folder / "context_classes.txt").write_text("\n".join(CONTEXT_NAMES) + "\n")


def _meta(config: SyntheticParams, stats: dict[str, _Stats]) -> dict:
    overall = stats["all"].summary(config)
    pairs = [
        {
            "context": ctx,
            "class": cls,
            "rate": rate,
            "measured": overall["classes"][cls]["context_presence"][ctx],
        }
        for ctx, cls, rate in _pairs(config)
    ]
    return {
        "generator": "wsss.data.synthetic",
        "config": _config_record(config),
        "class_names": list(CLASS_NAMES),
        "context_names": list(CONTEXT_NAMES),
        "cooccurrence": pairs,
        "saliency_missed_classes": list(config.saliency_missed_classes),
        "splits": {"train": config.num_train, "val": config.num_val, "train_aug": config.num_train},
        "stats": {split: (overall if split == "all" else s.summary(config)) for split, s in stats.items()},
    }
