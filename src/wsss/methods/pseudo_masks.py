"""Seed score maps to pseudo masks: each refinement method as one pure function.

Every function takes one image (uint8 H x W x 3), its seed scores (K x H x W, the labelled
classes' maps in [0, 1]) and their class ids (K, in 1..C), and returns an H x W uint8 mask of
class ids (0 = background). An image with no labelled class gets an all-background mask.
`background` is a constant score (CAM, EPS) or the seed method's own H x W map (SIPE).
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from wsss.core.params import CrfParams
from wsss.data.transforms import to_tensor
from wsss.methods.crf import crf_from_probabilities, scores_to_probabilities
from wsss.methods.random_walk import random_walk

Background = float | np.ndarray


def with_background(scores: np.ndarray, background: Background) -> np.ndarray:
    """(K+1) x H x W: the background channel (constant or map) in front of the K scores."""
    if isinstance(background, np.ndarray):
        if background.shape != scores.shape[1:]:
            raise ValueError(f"background map {background.shape} differs from the scores' {scores.shape[1:]}")
        front = background.astype(np.float32)[None]
    else:
        front = np.full((1, *scores.shape[1:]), background, np.float32)
    return np.concatenate([front, scores.astype(np.float32)])


def threshold_mask(scores: np.ndarray, class_ids: np.ndarray, background: Background) -> np.ndarray:
    """The labelled class of highest score; background where no score beats the background."""
    if len(class_ids) == 0:
        return np.zeros(scores.shape[1:], dtype=np.uint8)
    stacked = with_background(scores, background)
    keys = np.concatenate([[0], class_ids])
    return keys[stacked.argmax(axis=0)].astype(np.uint8)


def seeds_mask(scores: np.ndarray, class_ids: np.ndarray, background: np.ndarray | None,
               threshold: float) -> np.ndarray:
    """The seeds as they are, as a label map: against the method's own background map where the
    seeds carry one (SIPE, AE-SIPE), else against the constant ``threshold``."""
    return threshold_mask(scores, class_ids, threshold if background is None else background)


def crf_mask(image: np.ndarray, scores: np.ndarray, class_ids: np.ndarray, background: Background,
             params: CrfParams) -> np.ndarray:
    """Dense CRF on the seeds with their background (docs/methods.md §3)."""
    if len(class_ids) == 0:
        return np.zeros(scores.shape[1:], dtype=np.uint8)
    marginals = crf_from_probabilities(image, scores_to_probabilities(scores, background), params)
    keys = np.concatenate([[0], class_ids])
    return keys[marginals.argmax(axis=0)].astype(np.uint8)


def pamr_mask(image: np.ndarray, scores: np.ndarray, class_ids: np.ndarray, background: Background,
              pamr: torch.nn.Module, device: torch.device) -> np.ndarray:
    """PAMR (docs/methods.md §4) on the seeds with their background channel, then argmax."""
    if len(class_ids) == 0:
        return np.zeros(scores.shape[1:], dtype=np.uint8)
    maps = with_background(scores, background)
    with torch.no_grad():
        refined = pamr(to_tensor(image)[None].to(device), torch.from_numpy(maps)[None].to(device))[0]
    keys = np.concatenate([[0], class_ids])
    return keys[refined.argmax(dim=0).cpu().numpy()].astype(np.uint8)


def irn_mask(boundary: torch.Tensor, scores: np.ndarray, class_ids: np.ndarray, radius: int, beta: float,
             exp_times: int, bg_score: float) -> np.ndarray:
    """IRN's semantic pseudo mask (docs/methods.md §2).

    boundary: the boundary map (h x w) on IRN's grid (stride 4 of the image IRN saw). The seeds
    are resized to that grid, walked, resized back to the image, divided by their overall
    maximum, and compared with a constant background score. If the walk leaves nothing above
    zero, the mask is background.
    """
    height, width = scores.shape[1:]
    if len(class_ids) == 0:
        return np.zeros((height, width), dtype=np.uint8)
    seeds = torch.from_numpy(scores).float().to(boundary.device)[None]
    strided = F.interpolate(seeds, size=boundary.shape, mode="bilinear", align_corners=False, antialias=True)[0]
    walked = random_walk(strided, boundary, radius, beta, exp_times)
    up = F.interpolate(walked[None], size=(height, width), mode="bilinear", align_corners=False)[0]
    peak = up.max()
    if not peak > 0:
        return np.zeros((height, width), dtype=np.uint8)
    up = torch.cat([torch.full_like(up[:1], bg_score), up / peak])
    keys = np.concatenate([[0], class_ids])
    return keys[up.argmax(dim=0).cpu().numpy()].astype(np.uint8)
