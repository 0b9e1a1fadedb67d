"""A tiny untrained segmentation network, images for it, and its registration in MLflow: what
the registry, predict and serving tests share."""

from __future__ import annotations

import numpy as np
import torch

from wsss.core import params as params_mod
from wsss.core.io import save_state_dict
from wsss.methods.segmenter import InferenceSettings, Segmenter
from wsss.tracking import registry
from wsss.tracking import runs as tracking

CLASSES = ["background", "cat", "dog"]
LINEAGE = {"wsss.method": "cam+irn+deeplabv2", "wsss.val_miou": "0.5000", "wsss.pseudo_masks_md5": "abc.dir"}


def tiny_segmenter(seed: int = 0) -> Segmenter:
    torch.manual_seed(seed)
    architecture = {"backbone": params_mod.validate({}).seeds.backbone.model_dump(), "head": "v2", "rates": None}
    return Segmenter.build(architecture, CLASSES, InferenceSettings(scales=(1.0, 0.5)))


def random_image(seed: int = 0, shape=(37, 45)) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (*shape, 3), dtype=np.uint8)


def register_tiny(folder, segmenter, name="seg", lineage=LINEAGE):
    """Register `segmenter` as a version of `name` in the current MLflow store; (version, new, run)."""
    weights = folder / f"weights-{id(segmenter)}.pt"
    save_state_dict(weights, segmenter.network.state_dict())
    params = params_mod.validate({})
    with tracking.stage_run("evaluate_segmentation", params, ["segment"], folder) as run:
        version, new = registry.register(run, name, segmenter, weights, random_image(9, (16, 16)), lineage)
    return version, new, run
