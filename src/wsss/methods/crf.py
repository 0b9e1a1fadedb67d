"""Dense CRF (Krähenbühl & Koltun) helpers: IRN's relation labels (docs/methods.md §2) and CRF
refinement of seed maps (docs/methods.md §3).

The reference CRF: 10 mean-field iterations, a Gaussian (smoothness) kernel with sxy 3 and
compat 3, and a bilateral (appearance) kernel with sxy 50, srgb 5 and compat 10. Label unaries
put gt_prob (0.7) on the given label and spread the rest evenly over the other labels.

IRN relation labels: confident foreground where a CAM is >= 0.30, confident background where
every CAM is < 0.05, each cleaned with the dense CRF; the rest is ignored (255).

All functions are pure: numpy in, numpy out. pydensecrf wants C-contiguous float32 unaries and a
C-contiguous uint8 image, so every input is copied into that form first.
"""

from __future__ import annotations

import math
from typing import Sequence

import numpy as np
import pydensecrf.densecrf as dcrf
from pydensecrf.utils import unary_from_labels

from wsss.core.params import CrfParams

IGNORE = 255
PROB_EPS = 1e-8  # probabilities are clipped to this before -log


def _check_image(image: np.ndarray) -> np.ndarray:
    image = np.asarray(image)
    if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f"image must be a uint8 H x W x 3 array, got dtype {image.dtype} shape {image.shape}")
    if image.shape[0] == 0 or image.shape[1] == 0:
        raise ValueError(f"image must not be empty, got shape {image.shape}")
    return np.ascontiguousarray(image)


def _check_size(image: np.ndarray, spatial: tuple[int, ...], what: str, shape: tuple[int, ...]) -> None:
    if tuple(spatial) != image.shape[:2]:
        raise ValueError(f"{what} size does not match the image: {what} shape {tuple(shape)}, "
                         f"image shape {image.shape}")


def _check_maps(maps: np.ndarray, what: str) -> np.ndarray:
    maps = np.asarray(maps)
    if maps.ndim != 3:
        raise ValueError(f"{what} must be a K x H x W array, got shape {maps.shape}")
    if not np.issubdtype(maps.dtype, np.floating) and not np.issubdtype(maps.dtype, np.integer):
        raise ValueError(f"{what} must be numeric, got dtype {maps.dtype}")
    if np.isnan(maps).any():
        raise ValueError(f"{what} contain NaN")
    if not np.isfinite(maps).all():
        raise ValueError(f"{what} contain infinite values")
    return maps


def _dense_crf(image: np.ndarray, unary: np.ndarray, n_labels: int, params: CrfParams) -> np.ndarray:
    """Mean-field marginals (n_labels x H x W float32) for a n_labels x (H*W) unary energy."""
    height, width = image.shape[:2]
    crf = dcrf.DenseCRF2D(width, height, n_labels)
    crf.setUnaryEnergy(np.ascontiguousarray(unary, dtype=np.float32))
    crf.addPairwiseGaussian(sxy=float(params.gaussian_sxy), compat=float(params.gaussian_compat))
    crf.addPairwiseBilateral(sxy=float(params.bilateral_sxy), srgb=float(params.bilateral_srgb),
                             rgbim=image, compat=float(params.bilateral_compat))
    q = crf.inference(int(params.iterations))
    return np.array(q, dtype=np.float32).reshape(n_labels, height, width)


def crf_from_labels(image: np.ndarray, labels: np.ndarray, n_labels: int,
                    params: CrfParams = CrfParams()) -> np.ndarray:
    """Clean a hard label map with the dense CRF (IRN's crf_inference_label, docs/methods.md §2).

    Each pixel's unary puts gt_prob on its label (no label is "unsure"); returns the argmax of
    the marginals, an int64 H x W map in 0..n_labels-1. With n_labels == 1 the answer is all 0.
    """
    image = _check_image(image)
    labels = np.asarray(labels)
    if labels.ndim != 2:
        raise ValueError(f"labels must be an H x W array, got shape {labels.shape}")
    _check_size(image, labels.shape, "labels", labels.shape)
    if not np.issubdtype(labels.dtype, np.integer):
        raise ValueError(f"labels must be integers, got dtype {labels.dtype}")
    if isinstance(n_labels, bool) or not isinstance(n_labels, (int, np.integer)) or n_labels < 1:
        raise ValueError(f"n_labels must be an integer >= 1, got {n_labels!r}")
    if labels.size and (labels.min() < 0 or labels.max() >= n_labels):
        raise ValueError(f"labels out of range: values must be in 0..{n_labels - 1}, "
                         f"got {labels.min()}..{labels.max()}")
    if n_labels == 1:  # a single label: nothing to decide (and the unary would divide by zero)
        return np.zeros(labels.shape, dtype=np.int64)
    unary = unary_from_labels(np.ascontiguousarray(labels, dtype=np.int64), int(n_labels),
                              gt_prob=float(params.gt_prob), zero_unsure=False)
    return _dense_crf(image, unary, int(n_labels), params).argmax(axis=0).astype(np.int64)


def crf_from_probabilities(image: np.ndarray, probs: np.ndarray, params: CrfParams = CrfParams()) -> np.ndarray:
    """Dense CRF on per-pixel class probabilities (docs/methods.md §3).

    probs: K x H x W, summing to 1 at each pixel; the unary is -log(max(p, 1e-8)). Returns the
    CRF marginals Q (float32 K x H x W, summing to 1 per pixel) so callers can take the argmax
    or keep the refined scores. With zero iterations Q is the input (up to the clipping).
    """
    image = _check_image(image)
    probs = _check_maps(probs, "probabilities")
    if probs.shape[0] < 1:
        raise ValueError(f"probabilities need at least one class, got shape {probs.shape}")
    _check_size(image, probs.shape[1:], "probabilities", probs.shape)
    if (probs < 0).any():
        raise ValueError("probabilities must be >= 0")
    sums = probs.sum(axis=0, dtype=np.float64)
    if not np.allclose(sums, 1.0, atol=1e-3):
        raise ValueError(f"probabilities must sum to 1 at each pixel, got sums in "
                         f"[{sums.min():.4g}, {sums.max():.4g}]")
    n_labels = probs.shape[0]
    unary = -np.log(np.clip(probs.astype(np.float32), PROB_EPS, None)).reshape(n_labels, -1)
    return _dense_crf(image, unary, n_labels, params)


def scores_to_probabilities(scores: np.ndarray, bg_score) -> np.ndarray:
    """Foreground score maps (K x H x W in [0, 1]) to (K+1) x H x W probabilities.

    bg_score is the background channel put in front: a constant (the convention used when
    evaluating CAMs) or the method's own H x W background map (SIPE). Each pixel is divided by
    its sum, so the argmax is the same as comparing the scores with the background. A constant
    must be > 0, keeping every sum positive; where a map leaves a pixel all zero, it is background.
    """
    scores = _check_maps(scores, "scores")
    if (scores < 0).any():
        raise ValueError("scores must be >= 0")
    if isinstance(bg_score, np.ndarray):
        if bg_score.shape != scores.shape[1:] or not np.isfinite(bg_score).all() or (bg_score < 0).any():
            raise ValueError(f"a background map must be finite, >= 0 and {scores.shape[1:]}, "
                             f"got shape {bg_score.shape}")
        background = bg_score.astype(np.float32)[None]
    elif isinstance(bg_score, bool) or not isinstance(bg_score, (int, float, np.number)) \
            or not (math.isfinite(bg_score) and bg_score > 0):
        raise ValueError(f"bg_score must be a finite number > 0 or a background map, got {bg_score!r}")
    else:
        background = np.full((1, *scores.shape[1:]), bg_score, np.float32)
    stacked = np.concatenate([background, scores.astype(np.float32)])
    sums = stacked.sum(axis=0, keepdims=True)
    stacked[0][sums[0] == 0] = 1.0
    return stacked / np.maximum(sums, stacked[:1])


def relation_labels(image: np.ndarray, scores: np.ndarray, class_ids: Sequence[int],
                    fg_threshold: float = 0.30, bg_threshold: float = 0.05,
                    params: CrfParams = CrfParams()) -> np.ndarray:
    """IRN's inter-pixel relation labels (docs/methods.md §2; IRN step/cam_to_ir_label.py).

    Confident foreground: argmax over [fg_threshold, scores...] (ties go to background), cleaned
    with crf_from_labels; confident background: the same with bg_threshold. The result (uint8
    H x W) holds the class id where the foreground pass says foreground, 0 where both passes say
    background, and 255 (ignored) elsewhere. An image with no labelled class (K = 0) is all
    background (0): there is nothing for a pixel to belong to.
    """
    image = _check_image(image)
    scores = _check_maps(scores, "scores")
    _check_size(image, scores.shape[1:], "scores", scores.shape)
    ids = np.asarray(class_ids)
    if ids.ndim != 1 or len(ids) != scores.shape[0]:
        raise ValueError(f"class_ids must hold one id per score map: {ids.shape} ids for "
                         f"scores of shape {scores.shape}")
    if len(ids) and (not np.issubdtype(ids.dtype, np.integer) or ids.min() < 1 or ids.max() > 254):
        raise ValueError(f"class_ids must be integers in 1..254 (0 is background, 255 ignored), got {ids.tolist()}")
    for name, value in (("fg_threshold", fg_threshold), ("bg_threshold", bg_threshold)):
        if isinstance(value, bool) or not isinstance(value, (int, float, np.number)) or not (0 <= value <= 1):
            raise ValueError(f"{name} must be in [0, 1], got {value!r}")
    if not bg_threshold < fg_threshold:
        raise ValueError(f"bg_threshold must be below fg_threshold, got bg_threshold {bg_threshold} "
                         f"and fg_threshold {fg_threshold}")

    height, width = image.shape[:2]
    if len(ids) == 0:
        return np.zeros((height, width), dtype=np.uint8)
    keys = np.concatenate([[0], ids]).astype(np.int64)
    n_labels = len(keys)

    def confident(threshold: float) -> np.ndarray:
        padded = np.concatenate([np.full((1, height, width), threshold, np.float32), scores.astype(np.float32)])
        return keys[crf_from_labels(image, padded.argmax(axis=0), n_labels, params)]

    fg_conf = confident(fg_threshold)
    bg_conf = confident(bg_threshold)
    labels = fg_conf.copy()
    labels[fg_conf == 0] = IGNORE
    labels[(fg_conf == 0) & (bg_conf == 0)] = 0
    return labels.astype(np.uint8)
