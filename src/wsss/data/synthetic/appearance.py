"""How a placed object looks: its class's colour and texture family on the body, flat colours on
its parts, then the contrast guard, which keeps every object visibly different from what
surrounds it (so its boundary is in the image, not only in the label)."""

from __future__ import annotations

import cv2
import numpy as np

from wsss.data.synthetic.colour import colour_rule, hsv, mix
from wsss.data.synthetic.placement import Placed
from wsss.data.synthetic.styles import CLASS_STYLES
from wsss.data.synthetic.textures import Grid, object_texture
from wsss.data.synthetic.vocabulary import CLASS_NAMES

_CROSS = cv2.getStructuringElement(cv2.MORPH_CROSS, (3, 3))
_LUMA = np.array([0.299, 0.587, 0.114], np.float32)


def render_object(rng: np.random.Generator, placed: Placed, grid: Grid) -> np.ndarray:
    """Colour layer (H x W x 3, valid on the object): textured body, flat-coloured parts."""
    style = CLASS_STYLES[CLASS_NAMES[placed.class_id]]
    base = hsv(rng, style.hue + rng.uniform(-style.hue_jitter, style.hue_jitter), style.sat, style.val)
    second = colour_rule(style.second, rng, base)
    layer = mix(base, second, object_texture(style.texture, rng, grid, placed.centre, placed.size))
    for part, rule in enumerate(style.parts, start=1):
        colour = colour_rule(rule, rng, base)
        layer[placed.parts == part + 1] = colour
    return layer


def ensure_contrast(layer: np.ndarray, mask: np.ndarray, image: np.ndarray, min_contrast: float) -> np.ndarray:
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
