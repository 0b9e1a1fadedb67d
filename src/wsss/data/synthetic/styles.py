"""How each object class and each stuff looks and behaves, as data: a row a class.

Per-class colour and texture families give a classifier a discriminative part to latch on to
(partial activation); a class's home context is where it stands when no co-occurrence pair
names one. The painters, shapes and placement read these tables; they hold no numbers of their own
about what a class is.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ClassStyle:
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
_LOOKS = {  # hue, hue_jitter, sat, val, texture, second, parts
    "aeroplane": (210, 15, (0.0, 0.12), (0.8, 1.0),   "gradient", "shade",    ("dark", "accent")),
    "boat":      (0,   12, (0.6, 0.9),  (0.55, 0.9),  "stripes",  "light",    ("dark", "light", "light")),
    "bottle":    (125, 15, (0.5, 0.85), (0.3, 0.6),   "glass",    "light",    ("accent", "light")),
    "car":       (52,  8,  (0.7, 0.95), (0.75, 0.95), "checker",  "dark",     ("glass", "dark", "silver")),
    "cow":       (28,  8,  (0.4, 0.7),  (0.35, 0.6),  "spots",    "contrast", ("base", "shade", "light")),
    "person":    (295, 20, (0.45, 0.8), (0.45, 0.85), "plaid",    "shade",    ("skin", "dark")),
    "train":     (180, 12, (0.5, 0.8),  (0.35, 0.6),  "noise",    "shade",    ("glass", "accent", "dark")),
}
_POSES = {  # anchor, size, rotation, home
    "aeroplane": ("center", 1.2, 30, "sky"),
    "boat":      ("bottom", 1.0, 6,  "water"),
    "bottle":    ("bottom", 0.9, 10, "indoor"),
    "car":       ("bottom", 1.0, 4,  "road"),
    "cow":       ("bottom", 1.0, 4,  "grass"),
    "person":    ("bottom", 1.1, 6,  None),
    "train":     ("bottom", 1.6, 0,  "railroad"),
}
# fmt: on
CLASS_STYLES: dict[str, ClassStyle] = {name: ClassStyle(*looks, *_POSES[name]) for name, looks in _LOOKS.items()}


@dataclass(frozen=True)
class ContextStyle:
    anchor_rel: tuple[float, float]  # band-relative height (0 top, 1 bottom) where objects stand
    blob: bool  # may also appear as an irregular blob inside the ground bands
    walkable: bool  # objects without a home context may stand on it


CONTEXT_STYLES: dict[str, ContextStyle] = {
    "sky": ContextStyle((0.15, 0.85), blob=False, walkable=False),
    "water": ContextStyle((0.2, 0.85), blob=True, walkable=False),
    "grass": ContextStyle((0.25, 1.0), blob=True, walkable=True),
    "railroad": ContextStyle((0.72, 0.8), blob=False, walkable=True),  # the lower rail: trains stand on it
    "road": ContextStyle((0.35, 0.95), blob=False, walkable=True),
    "indoor": ContextStyle((0.72, 1.0), blob=False, walkable=True),  # the floor, below the wall
    "clutter": ContextStyle((0.2, 1.0), blob=True, walkable=True),
}
