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
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Callable

import cv2
import numpy as np
from PIL import Image

from wsss.data.base import IGNORE_INDEX
from wsss.errors import ParamsError
from wsss.io import atomic_dir, write_json, write_palette_png

CLASS_NAMES: list[str] = ["background", "aeroplane", "boat", "bottle", "car", "cow", "person", "train"]
CONTEXT_NAMES: list[str] = ["object", "sky", "water", "grass", "railroad", "road", "indoor", "clutter"]

_KEY = "data.synthetic"
_SKY = CONTEXT_NAMES.index("sky")
_MAX_SCENE_ATTEMPTS = 50  # whole-scene redraws before giving up (never reached in practice)
_MAX_PLACE_ATTEMPTS = 25  # placements of one object before the scene is redrawn

DEFAULT_COOCCURRENCE: tuple[tuple[str, str, float], ...] = (
    ("water", "boat", 0.9),
    ("railroad", "train", 0.9),
    ("sky", "aeroplane", 0.9),
    ("grass", "cow", 0.85),
    ("road", "car", 0.8),
    ("indoor", "bottle", 0.8),
)


# ---------------------------------------------------------------------------------------------
# Configuration
# ---------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class SyntheticConfig:
    """Every knob of the generator (params.yaml section ``data.synthetic``)."""

    image_height: int = 128
    image_width: int = 160
    num_train: int = 400
    num_val: int = 100
    seed: int = 0
    min_objects: int = 1  # distinct object classes per image (one instance each)
    max_objects: int = 3
    ignore_border: int = 1  # width (px) of the 255 band along boundaries in SegmentationClass
    # Largest dimension of an object as a fraction of the shorter image side (before the
    # per-class size factor: train 1.4, aeroplane 1.2, person 0.9, bottle 0.8).
    object_scale: tuple[float, float] = (0.12, 0.5)
    # (context, class, rate): P(context present | class present) = rate.
    cooccurrence: tuple[tuple[str, str, float], ...] = DEFAULT_COOCCURRENCE
    context_base_rate: float = 0.15  # P(context present) when no class paired with it is
    context_blob_prob: float = 0.4  # chance of an extra irregular stuff blob in the ground
    min_visible_fraction: float = 0.35  # of an instance's area left after occlusion/cropping
    min_contrast: float = 40.0  # mean |RGB| difference across an object's boundary (0..255)
    saliency_missed_classes: tuple[str, ...] = ("train", "bottle")
    saliency_missed_level: float = 0.12  # missed classes get saliency in [0, this]
    saliency_blur_sigma: float = 2.0  # px
    saliency_false_blob_rate: float = 0.6  # mean number of false background blobs per image
    saliency_noise: float = 0.03  # std of additive noise
    jpeg_quality: int = 95

    def __post_init__(self) -> None:
        for f in fields(self):
            object.__setattr__(self, f.name, _CHECKS[f.name](f.name, getattr(self, f.name)))
        if self.min_objects > self.max_objects:
            raise ParamsError(
                f"{_KEY}.min_objects: {self.min_objects} exceeds max_objects = {self.max_objects}"
            )
        lo, hi = self.object_scale
        if lo > hi:
            raise ParamsError(f"{_KEY}.object_scale: [low, high] needs low <= high, got {[lo, hi]}")

    @classmethod
    def from_dict(cls, d: Mapping | None) -> "SyntheticConfig":
        """Build from a params.yaml section; ParamsError naming ``data.synthetic.<key>``."""
        if d is None:
            return cls()
        if not isinstance(d, Mapping):
            raise ParamsError(f"{_KEY}: expected a mapping of generator settings, got {type(d).__name__}")
        known = {f.name for f in fields(cls)}
        for key in d:
            if key not in known:
                raise ParamsError(f"{_KEY}.{key}: unknown key; known keys: {sorted(known)}")
        return cls(**dict(d))

    def to_dict(self) -> dict:
        """Plain JSON/YAML-able values (tuples become lists, pairs become mappings)."""
        out = asdict(self)
        out["object_scale"] = list(self.object_scale)
        out["cooccurrence"] = [{"context": k, "class": c, "rate": r} for k, c, r in self.cooccurrence]
        out["saliency_missed_classes"] = list(self.saliency_missed_classes)
        return out


def _int(low: int, high: int | None = None) -> Callable[[str, object], int]:
    def check(key: str, value: object) -> int:
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
            raise ParamsError(f"{_KEY}.{key}: expected an integer, got {value!r}")
        if value < low or (high is not None and value > high):
            raise ParamsError(f"{_KEY}.{key}: {value} outside [{low}, {high if high is not None else 'inf'}]")
        return int(value)

    return check


def _float(low: float, high: float | None = None) -> Callable[[str, object], float]:
    def check(key: str, value: object) -> float:
        if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
            raise ParamsError(f"{_KEY}.{key}: expected a number, got {value!r}")
        if not math.isfinite(value) or value < low or (high is not None and value > high):
            raise ParamsError(f"{_KEY}.{key}: {value} outside [{low}, {high if high is not None else 'inf'}]")
        return float(value)

    return check


def _check_scale(key: str, value: object) -> tuple[float, float]:
    if isinstance(value, (str, bytes)) or not isinstance(value, Sequence) or len(value) != 2:
        raise ParamsError(f"{_KEY}.{key}: expected [low, high], got {value!r}")
    number = _float(1e-3, 1.0)
    return number(key, value[0]), number(key, value[1])


def _check_pairs(key: str, value: object) -> tuple[tuple[str, str, float], ...]:
    if isinstance(value, (str, bytes)) or not isinstance(value, Sequence):
        raise ParamsError(f"{_KEY}.{key}: expected a list of {{context, class, rate}}, got {value!r}")
    pairs, seen = [], set()
    for i, item in enumerate(value):
        where = f"{key}[{i}]"
        if isinstance(item, Mapping):
            extra = set(item) - {"context", "class", "rate"}
            if extra or len(item) != 3:
                raise ParamsError(f"{_KEY}.{where}: expected keys context, class, rate; got {sorted(item)}")
            context, name, rate = item["context"], item["class"], item["rate"]
        elif isinstance(item, Sequence) and not isinstance(item, (str, bytes)) and len(item) == 3:
            context, name, rate = item
        else:
            raise ParamsError(f"{_KEY}.{where}: expected {{context, class, rate}}, got {item!r}")
        if context not in CONTEXT_NAMES[1:]:
            raise ParamsError(f"{_KEY}.{where}.context: unknown context {context!r}; known: {CONTEXT_NAMES[1:]}")
        if name not in CLASS_NAMES[1:]:
            raise ParamsError(f"{_KEY}.{where}.class: unknown class {name!r}; known: {CLASS_NAMES[1:]}")
        rate = _float(0.0, 1.0)(f"{where}.rate", rate)
        if (context, name) in seen:
            raise ParamsError(f"{_KEY}.{where}: pair ({context}, {name}) listed twice")
        seen.add((context, name))
        pairs.append((str(context), str(name), rate))
    return tuple(pairs)


def _check_class_list(key: str, value: object) -> tuple[str, ...]:
    if isinstance(value, (str, bytes)) or not isinstance(value, Sequence):
        raise ParamsError(f"{_KEY}.{key}: expected a list of class names, got {value!r}")
    for name in value:
        if name not in CLASS_NAMES[1:]:
            raise ParamsError(f"{_KEY}.{key}: unknown class {name!r}; known: {CLASS_NAMES[1:]}")
    return tuple(str(name) for name in value)


_CHECKS: dict[str, Callable[[str, object], object]] = {
    "image_height": _int(32, 4096),
    "image_width": _int(32, 4096),
    "num_train": _int(1),
    "num_val": _int(0),
    "seed": _int(0),
    "min_objects": _int(1, len(CLASS_NAMES) - 1),
    "max_objects": _int(1, len(CLASS_NAMES) - 1),
    "ignore_border": _int(0, 16),
    "object_scale": _check_scale,
    "cooccurrence": _check_pairs,
    "context_base_rate": _float(0.0, 1.0),
    "context_blob_prob": _float(0.0, 1.0),
    "min_visible_fraction": _float(0.01, 1.0),
    "min_contrast": _float(0.0, 255.0),
    "saliency_missed_classes": _check_class_list,
    "saliency_missed_level": _float(0.0, 1.0),
    "saliency_blur_sigma": _float(0.0, 100.0),
    "saliency_false_blob_rate": _float(0.0, 100.0),
    "saliency_noise": _float(0.0, 1.0),
    "jpeg_quality": _int(1, 100),
}


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


_CLASS_STYLES: dict[str, _ClassStyle] = {
    "aeroplane": _ClassStyle(210, 15, (0.0, 0.12), (0.8, 1.0), "gradient", "shade", ("dark", "accent"), "center", 1.2, 30, "sky"),
    "boat": _ClassStyle(0, 12, (0.6, 0.9), (0.55, 0.9), "stripes", "light", ("dark", "light", "light"), "bottom", 1.0, 6, "water"),
    "bottle": _ClassStyle(125, 15, (0.5, 0.85), (0.3, 0.6), "glass", "light", ("accent", "light"), "bottom", 0.8, 10, "indoor"),
    "car": _ClassStyle(52, 8, (0.7, 0.95), (0.75, 0.95), "checker", "dark", ("glass", "dark", "silver"), "bottom", 1.0, 4, "road"),
    "cow": _ClassStyle(28, 8, (0.4, 0.7), (0.35, 0.6), "spots", "contrast", ("base", "shade", "light"), "bottom", 1.0, 4, "grass"),
    "person": _ClassStyle(295, 20, (0.45, 0.8), (0.45, 0.85), "plaid", "shade", ("skin", "dark"), "bottom", 0.9, 6, None),
    "train": _ClassStyle(180, 12, (0.5, 0.8), (0.35, 0.6), "noise", "shade", ("glass", "accent", "dark"), "bottom", 1.4, 0, "railroad"),
}  # fmt: skip


@dataclass(frozen=True)
class _ContextStyle:
    anchor_rel: tuple[float, float]  # band-relative height (0 top, 1 bottom) where objects stand
    blob: bool  # may also appear as an irregular blob inside the ground bands


_CONTEXT_STYLES: dict[str, _ContextStyle] = {
    "sky": _ContextStyle((0.15, 0.85), False),
    "water": _ContextStyle((0.2, 0.85), True),
    "grass": _ContextStyle((0.25, 1.0), True),
    "railroad": _ContextStyle((0.72, 0.8), False),  # the lower rail: trains stand on it
    "road": _ContextStyle((0.35, 0.95), False),
    "indoor": _ContextStyle((0.72, 1.0), False),  # the floor, below the wall
    "clutter": _ContextStyle((0.2, 1.0), True),
}


# ---------------------------------------------------------------------------------------------
# Small numeric helpers
# ---------------------------------------------------------------------------------------------
def _hsv(rng: np.random.Generator, hue: float, sat: tuple[float, float], val: tuple[float, float]) -> np.ndarray:
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


def _stripes(rng: np.random.Generator, grid: _Grid, period: float, angle: float, sharp: float = 4.0) -> np.ndarray:
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
def _choose_contexts(rng: np.random.Generator, class_ids: Sequence[int], config: SyntheticConfig) -> list[int]:
    """Context ids present in an image holding ``class_ids``.

    A context paired with a present class appears with the pair's rate (the largest, if several
    present classes pair with it), any other context with the base rate. So P(k | c) equals the
    configured rate exactly when c is the only class paired with k.
    """
    names = {CLASS_NAMES[c] for c in class_ids}
    present, paired_here = [], set()
    for k, context in enumerate(CONTEXT_NAMES[1:], start=1):
        rates = [r for ctx, cls, r in config.cooccurrence if ctx == context and cls in names]
        paired_here.update([k] if rates else [])
        rate = max(rates) if rates else config.context_base_rate
        if rng.random() < rate:
            present.append(k)
    needs_ground = any(_CLASS_STYLES[n].anchor == "bottom" for n in names)
    if not present or (needs_ground and present == [_SKY]):
        # Every pixel needs some stuff. Take it from contexts not paired with these classes,
        # so the configured P(context | class) stays exact.
        candidates = [k for k in range(2, len(CONTEXT_NAMES)) if k not in paired_here and k not in present]
        candidates = candidates or [k for k in range(2, len(CONTEXT_NAMES)) if k not in present]
        present.append(int(candidates[rng.integers(len(candidates))]))
    return sorted(present)


def _fill_band(ctx: np.ndarray, grid: _Grid, top: np.ndarray, bottom: np.ndarray, k: int) -> None:
    """Label rows top(x) <= y < bottom(x) as context k and record the band coordinates."""
    sel = (grid.yy >= top[None, :]) & (grid.yy < bottom[None, :])
    height = np.broadcast_to(np.maximum(bottom - top, 1.0)[None, :], ctx.shape)
    ctx[sel] = k
    grid.rel[sel] = ((grid.yy - top[None, :]) / height)[sel]
    grid.span[sel] = height[sel]


def _layout(rng: np.random.Generator, present: list[int], height: int, width: int) -> tuple[np.ndarray, _Grid]:
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
    sleepers = ((grid.xx + rng.uniform(0, period)) % period < 0.4 * period) & (grid.rel > rails[0] - 0.12) & (
        grid.rel < rails[1] + 0.1
    )
    gravel[sleepers] = _hsv(rng, 25, (0.4, 0.6), (0.15, 0.25))
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
    dashes = ((grid.xx + rng.uniform(0, period)) % period < 0.55 * period) & (np.abs((grid.rel - 0.5) * grid.span) < 1.0)
    asphalt[dashes] = _hsv(rng, rng.choice([0.0, 50.0]), (0.0, 0.8), (0.85, 1.0))
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


def _paint_background(rng: np.random.Generator, ctx: np.ndarray, grid: _Grid, present: list[int]) -> np.ndarray:
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


def _rect(x0: float, y0: float, x1: float, y1: float) -> np.ndarray:
    return np.array([[x0, y0], [x1, y0], [x1, y1], [x0, y1]], np.float32)


def _ellipse(cx: float, cy: float, rx: float, ry: float, n: int = 28) -> np.ndarray:
    t = np.linspace(0, 2 * np.pi, n, endpoint=False)
    return np.stack([cx + rx * np.cos(t), cy + ry * np.sin(t)], axis=1).astype(np.float32)


def _segment(p0: tuple[float, float], p1: tuple[float, float], width: float) -> np.ndarray:
    """A thick line (limb, mast, tail) as a quadrilateral."""
    d = np.subtract(p1, p0).astype(np.float32)
    n = np.array([-d[1], d[0]], np.float32) / (np.linalg.norm(d) + 1e-6) * width / 2
    return np.array([p0 + n, p1 + n, p1 - n, p0 - n], np.float32)


def _shape_boat(rng: np.random.Generator) -> Parts:
    hull_h, keel = rng.uniform(0.14, 0.22), rng.uniform(0.5, 0.8)
    bow = rng.uniform(0.0, 0.12)
    parts: Parts = [(0, np.array([[-0.5, -hull_h], [0.5 + bow, -hull_h - 0.4 * bow], [keel / 2, 0], [-keel / 2, 0]], np.float32))]
    deck = -hull_h
    if rng.random() < 0.7:  # sailing boat: mast, mainsail, maybe a jib
        mx, mh, mw = rng.uniform(-0.12, 0.08), rng.uniform(0.45, 0.75), 0.03
        parts.append((1, _rect(mx - mw / 2, deck - mh, mx + mw / 2, deck + 0.01)))
        sail_w = rng.uniform(0.25, 0.42)
        parts.append((2, np.array([[mx + mw / 2, deck - 0.95 * mh], [mx + mw / 2, deck - 0.05], [mx + sail_w, deck - 0.05]], np.float32)))
        if rng.random() < 0.6:
            jib = rng.uniform(0.15, 0.3)
            parts.append((2, np.array([[mx - mw / 2, deck - 0.85 * mh], [mx - mw / 2, deck - 0.05], [mx - jib, deck - 0.05]], np.float32)))
    else:  # motor boat: a cabin
        cx, cw, ch = rng.uniform(-0.25, 0.05), rng.uniform(0.25, 0.4), rng.uniform(0.1, 0.18)
        parts.append((3, _rect(cx, deck - ch, cx + cw, deck + 0.01)))
    return parts


def _shape_train(rng: np.random.Generator) -> Parts:
    body_h, wheel_r = rng.uniform(0.17, 0.25), rng.uniform(0.025, 0.04)
    y0, y1 = -2 * wheel_r - body_h, -wheel_r * 1.2
    nose = rng.uniform(0.05, 0.12)
    parts: Parts = [
        (0, _rect(-0.5, y0, 0.5, y1)),
        (0, np.array([[0.5, y0 + 0.1 * body_h], [0.5 + nose, y0 + 0.55 * body_h], [0.5 + nose, y1], [0.5, y1]], np.float32)),
    ]
    n_win = int(rng.integers(4, 10))
    win_w = 0.8 / n_win * rng.uniform(0.45, 0.7)
    for i in range(n_win):
        x = -0.45 + (i + 0.5) * 0.9 / n_win
        parts.append((1, _rect(x - win_w / 2, y0 + 0.18 * body_h, x + win_w / 2, y0 + 0.5 * body_h)))
    parts.append((2, _rect(-0.5, y1 - 0.25 * body_h, 0.5 + nose, y1 - 0.12 * body_h)))
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
        wing = [[root + chord / 2, 0], [root - chord / 2, 0], [root - sweep - tip / 2, s * span / 2], [root - sweep + tip / 2, s * span / 2]]
        parts.append((0, np.array(wing, np.float32)))
        tail = [[-0.36, 0], [-0.46, 0], [-0.5, s * span * 0.18], [-0.44, s * span * 0.18]]
        parts.append((2, np.array(tail, np.float32)))
        if rng.random() < 0.7:
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
    parts.append((0, _segment((-bw / 2 + 0.02, cy - 0.2 * bh), (-bw / 2 - 0.04, cy + 0.35 * bh), 0.025)))  # tail
    parts.append((0, _ellipse(0, cy, bw / 2, bh / 2)))
    hx, hy = bw / 2 + rng.uniform(0.05, 0.1), cy - bh * rng.uniform(0.2, 0.5)
    hr = rng.uniform(0.08, 0.11)
    parts.append((1, _segment((bw / 2 - 0.06, cy - 0.1 * bh), (hx, hy), 0.12)))  # neck
    parts.append((1, _ellipse(hx, hy, hr, 0.75 * hr)))
    for s in (-1, 1):
        parts.append((3, np.array([[hx + s * 0.3 * hr, hy - 0.6 * hr], [hx + s * 0.6 * hr, hy - 1.3 * hr], [hx + s * 0.05 * hr, hy - 0.7 * hr]], np.float32)))
    return parts


def _shape_car(rng: np.random.Generator) -> Parts:
    bh, wr = rng.uniform(0.2, 0.28), rng.uniform(0.08, 0.11)
    y1 = -0.8 * wr
    y0 = y1 - bh
    c = 0.05  # chamfered corners
    body = [[-0.5, y0 + c], [-0.5 + c, y0], [0.5 - c, y0], [0.5, y0 + c], [0.5, y1], [-0.5, y1]]
    top_w, bot_w, cab_h, off = rng.uniform(0.35, 0.5), rng.uniform(0.55, 0.7), rng.uniform(0.16, 0.22), rng.uniform(-0.1, 0.05)
    cabin = [[off - top_w / 2, y0 - cab_h], [off + top_w / 2, y0 - cab_h], [off + bot_w / 2, y0 + 0.01], [off - bot_w / 2, y0 + 0.01]]
    parts: Parts = [(0, np.array(body, np.float32)), (0, np.array(cabin, np.float32))]
    m, p = 0.025, 0.02  # window inset, half pillar width
    yt, yb = y0 - cab_h + m, y0 - m
    left = [[off - top_w / 2 + m, yt], [off - p, yt], [off - p, yb], [off - bot_w / 2 + 2 * m, yb]]
    right = [[off + p, yt], [off + top_w / 2 - m, yt], [off + bot_w / 2 - 2 * m, yb], [off + p, yb]]
    parts += [(1, np.array(left, np.float32)), (1, np.array(right, np.float32))]
    for x in (-1, 1):
        wx = x * rng.uniform(0.28, 0.34)
        parts.append((2, _ellipse(wx, -wr, wr, wr, 20)))
        parts.append((3, _ellipse(wx, -wr, 0.45 * wr, 0.45 * wr, 12)))
    return parts


def _shape_person(rng: np.random.Generator) -> Parts:
    hr = rng.uniform(0.07, 0.09)
    torso_h, torso_w = rng.uniform(0.3, 0.36), rng.uniform(0.18, 0.24)
    neck = -1.0 + 2 * hr
    hip = neck + 0.02 + torso_h
    spread = rng.uniform(0.0, 0.12)
    lw = rng.uniform(0.07, 0.09)
    parts: Parts = []
    for s in (-1, 1):  # legs first: the torso covers their tops
        parts.append((2, _segment((s * torso_w * 0.25, hip - 0.02), (s * (torso_w * 0.25 + spread), 0.0), lw)))
    top_w = torso_w * rng.uniform(1.0, 1.2)
    parts.append((0, np.array([[-top_w / 2, neck + 0.02], [top_w / 2, neck + 0.02], [torso_w / 2, hip], [-torso_w / 2, hip]], np.float32)))
    arm = rng.uniform(0.3, 0.38)
    for s in (-1, 1):
        angle = math.radians(rng.uniform(5, 60))
        shoulder = (s * top_w / 2, neck + 0.05)
        hand = (shoulder[0] + s * arm * math.sin(angle), shoulder[1] + arm * math.cos(angle) * rng.choice([1, -1], p=[0.8, 0.2]))
        parts.append((0, _segment(shoulder, hand, lw * 0.8)))
    parts.append((1, _ellipse(0, -1.0 + hr, hr, hr * 1.1, 20)))
    return parts


def _shape_bottle(rng: np.random.Generator) -> Parts:
    bw, body_h = rng.uniform(0.28, 0.38), rng.uniform(0.55, 0.65)
    shoulder = rng.uniform(0.1, 0.15)
    nw, cap = bw * rng.uniform(0.3, 0.4), rng.uniform(0.05, 0.08)
    y_body = -body_h
    y_neck = y_body - shoulder
    parts: Parts = [
        (0, _rect(-bw / 2, y_body, bw / 2, 0)),
        (0, np.array([[-bw / 2, y_body + 0.01], [bw / 2, y_body + 0.01], [nw / 2, y_neck], [-nw / 2, y_neck]], np.float32)),
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
