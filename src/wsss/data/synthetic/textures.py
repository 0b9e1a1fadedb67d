"""Textures: weight fields in [0, 1] over the pixel grid, used to blend two colours (`colour.mix`).

Objects carry their class's texture family (stripes, checker, spots, ...), scaled with the
object so it reads the same at any size; the background painters build their stuff from the
same fields. `Grid` lives here because every field is a function of it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np


@dataclass
class Grid:
    """Pixel coordinates plus each pixel's position within its stuff band."""

    yy: np.ndarray  # H x W float32 row index
    xx: np.ndarray  # H x W float32 column index
    rel: np.ndarray  # H x W, 0 at the top of the pixel's band, 1 at its bottom
    span: np.ndarray  # H x W, the band's height in px at that column

    @property
    def shape(self) -> tuple[int, int]:
        return self.yy.shape


def smooth_noise(
    rng: np.random.Generator, shape: tuple[int, int], sigma: float, sigma_y: float | None = None
) -> np.ndarray:
    """Blurred white noise mapped to [0, 1] (tanh of the standardised field); ``sigma_y``, when
    given, blurs the rows differently from the columns (streaks)."""
    field_ = rng.standard_normal(shape).astype(np.float32)
    if sigma > 0:
        field_ = cv2.GaussianBlur(field_, (0, 0), sigmaX=sigma, sigmaY=sigma if sigma_y is None else sigma_y)
    field_ = (field_ - field_.mean()) / (field_.std() + 1e-6)
    return 0.5 + 0.5 * np.tanh(field_)


def _rotated(grid: Grid, angle_deg: float) -> tuple[np.ndarray, np.ndarray]:
    a = math.radians(angle_deg)
    return grid.xx * math.cos(a) + grid.yy * math.sin(a), -grid.xx * math.sin(a) + grid.yy * math.cos(a)


def stripes(rng: np.random.Generator, grid: Grid, period: float, angle: float, sharp: float = 4.0) -> np.ndarray:
    u, _ = _rotated(grid, angle)
    t = 0.5 + 0.5 * np.sin(2 * np.pi * u / period + rng.uniform(0, 2 * np.pi))
    return np.clip((t - 0.5) * sharp + 0.5, 0.0, 1.0)


def checker(rng: np.random.Generator, grid: Grid, period: float, angle: float) -> np.ndarray:
    u, v = _rotated(grid, angle)
    cells = np.floor(u / period + rng.uniform(0, 1)) + np.floor(v / period + rng.uniform(0, 1))
    return (cells % 2).astype(np.float32)


def _gradient(rng: np.random.Generator, grid: Grid, centre: tuple[float, float], size: float) -> np.ndarray:
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


def object_texture(
    kind: str, rng: np.random.Generator, grid: Grid, centre: tuple[float, float], size: float
) -> np.ndarray:
    """Texture of an object's body; scales with the object so it reads the same at any size."""
    shape = grid.shape
    if kind == "stripes":  # mostly horizontal bands
        return stripes(rng, grid, max(3.0, size * rng.uniform(0.08, 0.18)), 90 + rng.uniform(-15, 15))
    if kind == "checker":
        return checker(rng, grid, max(2.5, size * rng.uniform(0.06, 0.12)), rng.uniform(-10, 10))
    if kind == "spots":
        noise = smooth_noise(rng, shape, max(1.0, size * rng.uniform(0.04, 0.08)))
        return (noise > rng.uniform(0.6, 0.72)).astype(np.float32)
    if kind == "plaid":
        period = max(3.0, size * rng.uniform(0.07, 0.14))
        angle = rng.uniform(0, 90)
        return 0.5 * (stripes(rng, grid, period, angle) + stripes(rng, grid, period, angle + 90))
    if kind == "noise":
        return smooth_noise(rng, shape, rng.uniform(0.6, 1.8))
    if kind == "gradient":
        return _gradient(rng, grid, centre, size)
    if kind == "glass":  # a highlight ramp with fine speckle
        return 0.7 * _gradient(rng, grid, centre, size) + 0.3 * smooth_noise(rng, shape, 0.7)
    raise ValueError(f"unknown texture {kind!r}")
