"""Colours drawn from hue / saturation / value ranges, colours relative to an object's base
colour, and per-pixel blends of two colours: the vocabulary every painter speaks."""

from __future__ import annotations

import colorsys

import numpy as np


def hsv(rng: np.random.Generator, hue: float, sat: tuple[float, float], val: tuple[float, float]) -> np.ndarray:
    """An RGB colour (0..255 floats) of hue ``hue`` degrees, saturation and value drawn from their ranges."""
    h = (hue % 360.0) / 360.0
    rgb = colorsys.hsv_to_rgb(h, rng.uniform(*sat), rng.uniform(*val))
    return np.array(rgb, dtype=np.float32) * 255.0


def colour_rule(rule: str, rng: np.random.Generator, base: np.ndarray) -> np.ndarray:
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
    return hsv(rng, hue, sat, val)


def mix(c1: np.ndarray, c2: np.ndarray, t: np.ndarray) -> np.ndarray:
    """Per-pixel blend of two colours by weight field t (H x W) -> H x W x 3."""
    return c1 + (c2 - c1) * t[..., None]
