"""One image of the set, from (seed, index) alone: its contexts, layout, background, objects,
masks and saliency, in a fixed order of random draws, so the same config gives the same files.

Only the layout and placement are redrawn when a scene fails (an object would be hidden or exist
only as ignore band): redrawing the classes or contexts would bias the co-occurrence rates
towards scenes that are easy to place.
"""

from __future__ import annotations

import cv2
import numpy as np

from wsss.core.params import SyntheticParams
from wsss.data.base import IGNORE_INDEX
from wsss.data.synthetic.appearance import ensure_contrast, render_object
from wsss.data.synthetic.backgrounds import paint_background
from wsss.data.synthetic.placement import Placed, acceptable, place_object
from wsss.data.synthetic.saliency import simulate_saliency
from wsss.data.synthetic.sample import SyntheticObject, SyntheticSample
from wsss.data.synthetic.scenes import add_blob, choose_contexts, layout
from wsss.data.synthetic.vocabulary import CLASS_NAMES

_MAX_SCENE_ATTEMPTS = 50  # layout redraws per image before giving up (defaults never need 2)
_MAX_PLACE_ATTEMPTS = 25  # placements of one object before the layout is redrawn
_CROSS = cv2.getStructuringElement(cv2.MORPH_CROSS, (3, 3))


def render_sample(config: SyntheticParams, index: int) -> SyntheticSample:
    """Image ``index`` of the set. It depends only on (seed, index), not on generation order.

    The generator is seeded with ``SeedSequence(seed, spawn_key=(index,))``, i.e. child ``index``
    of ``SeedSequence(seed).spawn(n)``.
    """
    rng = np.random.default_rng(np.random.SeedSequence(config.seed, spawn_key=(index,)))
    size = _image_size(rng, config)
    n = int(rng.integers(config.min_objects, config.max_objects + 1))
    class_ids = [int(c) for c in rng.choice(np.arange(1, len(CLASS_NAMES)), size=n, replace=False)]
    present = choose_contexts(rng, class_ids, config)
    for _ in range(_MAX_SCENE_ATTEMPTS):
        sample = _try_scene(rng, size, class_ids, present, config)
        if sample is not None:
            return sample
    raise RuntimeError(
        f"synthetic image {index}: no valid scene in {_MAX_SCENE_ATTEMPTS} attempts; "
        f"objects may be too large for {size[0]}x{size[1]} images"
    )


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
    ctx, grid = layout(rng, present, h, w)
    if rng.random() < config.context_blob_prob:
        add_blob(rng, ctx, present, max(8, int(0.02 * h * w)))
    image = paint_background(rng, ctx, grid, present)

    inst = np.zeros((h, w), np.uint8)  # 0 background, i + 1 instance i (later ones occlude)
    objects: list[Placed] = []
    for class_id in class_ids:
        for _ in range(_MAX_PLACE_ATTEMPTS):
            placed = place_object(rng, class_id, ctx, grid, config)
            if acceptable(placed, inst, objects, ctx, present, config):
                break
        else:
            return None
        layer = ensure_contrast(render_object(rng, placed, grid), placed.mask, image, config.min_contrast)
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
        saliency=simulate_saliency(rng, inst, class_ids, config),
        objects=[_describe(obj, inst == i) for i, obj in enumerate(objects, start=1)],
    )


def _finish_image(rng: np.random.Generator, image: np.ndarray) -> np.ndarray:
    """Per-image exposure change and sensor noise, then 8 bits."""
    image = image * rng.uniform(0.85, 1.15) + rng.uniform(-12, 12)
    image = image + rng.normal(0.0, 2.5, image.shape).astype(np.float32)
    return np.round(np.clip(image, 0, 255)).astype(np.uint8)


def _describe(obj: Placed, visible: np.ndarray) -> SyntheticObject:
    ys, xs = np.nonzero(visible)
    bbox = (int(xs.min()) + 1, int(ys.min()) + 1, int(xs.max()) + 1, int(ys.max()) + 1)
    return SyntheticObject(obj.class_id, bbox, obj.truncated)
