"""Object shapes: each class as a random multi-part outline, so that a classifier can rely on a
discriminative part (partial activation) and objects vary in form as well as in size.

A shape is a list of (part, polygon) in local units (x right, y down); any scale, since
placement normalises it to a largest dimension of 1. Part 0 carries the class texture, parts
1.. the colours of `ClassStyle.parts`.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np

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


SHAPES: dict[str, Callable[[np.random.Generator], Parts]] = {
    "aeroplane": _shape_aeroplane,
    "boat": _shape_boat,
    "bottle": _shape_bottle,
    "car": _shape_car,
    "cow": _shape_cow,
    "person": _shape_person,
    "train": _shape_train,
}
