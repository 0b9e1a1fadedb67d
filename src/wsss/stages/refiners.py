"""Seed maps to pseudo masks by `refine.method`, over the pipeline's stored inputs: what the refine
stage writes, PtReCl's re-refinement walks and the gallery computes for the methods not chosen.

irn walks IRN's stored boundary map (stage irn_boundaries); crf, pamr and none compare the seeds
with their background: the method's own map when the seeds carry one, else a constant score.
"""

from __future__ import annotations

from typing import Callable

import numpy as np
import torch

from wsss.core.dvcfile import ArtifactPaths
from wsss.core.errors import DataError, ParamsError
from wsss.core.io import load_boundary_map, read_json
from wsss.core.params import RefineMethod, RefineParams, WalkParams
from wsss.methods import pseudo_masks
from wsss.methods.pamr import PAMR

# (image id, image, scores, class ids, background map or None) -> mask
Refiner = Callable[[str, np.ndarray, np.ndarray, np.ndarray, "np.ndarray | None"], np.ndarray]


def seeds_threshold(paths: ArtifactPaths) -> float:
    """The background threshold evaluate_seeds chose (the best of its sweep, metrics/seeds.json)."""
    try:
        return float(read_json(paths.seeds_metrics)["bg_threshold"])
    except Exception as exc:
        raise DataError(f"{paths.seeds_metrics} has no best background threshold ({exc}); run evaluate_seeds") from exc


def background_threshold(refine: RefineParams, paths: ArtifactPaths) -> float:
    """`refine.bg_threshold`, with auto read from evaluate_seeds' result."""
    if refine.bg_threshold != "auto":
        return float(refine.bg_threshold)
    try:
        return seeds_threshold(paths)
    except DataError as exc:
        raise ParamsError(f"params.yaml: 'refine.bg_threshold' is auto but {paths.seeds_metrics} has no best "
                          f"threshold ({exc.__cause__}); run evaluate_seeds or give a number") from exc


def irn_walker(walk: WalkParams, paths: ArtifactPaths, device: torch.device, bg_score: float):
    """(image id, scores, class ids) -> IRN's pseudo mask: the random walk of `walk` on the
    image's stored boundary map, against the constant background ``bg_score``."""
    def irn(image_id, scores, class_ids):
        boundary = torch.from_numpy(load_boundary_map(paths.irn_boundaries, image_id)).to(device)
        return pseudo_masks.irn_mask(boundary, scores, class_ids, walk.radius, walk.beta, walk.exp_times, bg_score)
    return irn


def refiner(refine: RefineParams, method: RefineMethod, paths: ArtifactPaths, device: torch.device) -> Refiner:
    """The `Refiner` of ``method`` with the settings of ``refine``."""
    if method == "irn":
        irn = irn_walker(refine.irn.walk, paths, device, refine.irn.walk.bg_score)
        return lambda image_id, _image, scores, class_ids, _background: irn(image_id, scores, class_ids)
    bg = background_threshold(refine, paths)
    if method == "crf":
        return lambda _id, image, scores, class_ids, own: pseudo_masks.crf_mask(
            image, scores, class_ids, bg if own is None else own, refine.crf)
    if method == "pamr":
        pamr = PAMR(refine.pamr.num_iter, refine.pamr.dilations, refine.pamr.sigma).to(device)
        return lambda _id, image, scores, class_ids, own: pseudo_masks.pamr_mask(
            image, scores, class_ids, bg if own is None else own, pamr, device)
    return lambda _id, _image, scores, class_ids, own: pseudo_masks.seeds_mask(scores, class_ids, own, bg)
