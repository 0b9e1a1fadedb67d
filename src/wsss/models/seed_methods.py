"""The seeds stage's four methods behind one interface (params.yaml `seeds.method`).

cam (docs/methods.md §1), eps (§7), sipe (§5) and ae_sipe (§6) differ in their classifier, their
training loss, the training items (EPS also needs the saliency map) and their inference.
Everything that depends on the method is decided here, so the stage scripts stay the same.

Inference returns foreground maps (K x H x W in [0, 1] for the K labelled classes) and, for the
methods that predict one (SIPE, AE-SIPE), a background map (H x W); CAM and EPS leave the
background to a constant threshold, as their papers do.
"""

from __future__ import annotations

from typing import Sequence

import torch
import torch.nn as nn
import torch.nn.functional as F

from wsss.errors import ParamsError
from wsss.models.backbones import Backbone
from wsss.models.cam import CAMClassifier, multiscale_cam
from wsss.models.eps import EPSClassifier, eps_losses, multiscale_eps
from wsss.models.sipe import SIPEClassifier, SIPEConfig, SIPELoss, multiscale_is_cam


def sipe_config(params: dict) -> SIPEConfig:
    """The SIPEConfig of `seeds.sipe` or `seeds.ae_sipe`, whichever the method names."""
    method = params["seeds"]["method"]
    section = dict(params["seeds"][method])
    section.pop("gsc_warmup_epochs", None)  # a training schedule, not a model switch (SIPELoss)
    section["pamr_dilations"] = tuple(section["pamr_dilations"])
    return SIPEConfig.from_dict(section)


def needs_saliency(params: dict) -> bool:
    return params["seeds"]["method"] == "eps"


def build_seed_model(params: dict, backbone: Backbone, num_foreground: int) -> nn.Module:
    method = params["seeds"]["method"]
    if method == "cam":
        return CAMClassifier(backbone, num_foreground)
    if method == "eps":
        return EPSClassifier(backbone, num_foreground)
    return SIPEClassifier(backbone, num_foreground, sipe_config(params))


def predefined_background_ids(params: dict, class_names: Sequence[str]) -> list[int]:
    """`seeds.eps.predefined_background` class names -> foreground ids (1..C)."""
    ids = []
    for name in params["seeds"]["eps"]["predefined_background"]:
        if name not in class_names[1:]:
            raise ParamsError(f"params.yaml: 'seeds.eps.predefined_background' names {name!r}, which is not "
                              f"a class of this data set ({', '.join(class_names[1:])})")
        ids.append(list(class_names).index(name))
    return ids


def seed_losses(params: dict, class_names: Sequence[str]):
    """compute_losses(model, images, targets) -> {"loss", ...} for `training.train_loop`."""
    method = params["seeds"]["method"]
    if method == "cam":
        return lambda model, images, labels: {"loss": F.multilabel_soft_margin_loss(model(images), labels)}
    if method == "eps":
        cfg = params["seeds"]["eps"]
        background = predefined_background_ids(params, class_names)

        def eps(model, images, targets):
            labels, saliency = targets
            return eps_losses(model, images, labels, saliency, cfg["strategy"], cfg["tau"], cfg["lam"], background)
        return eps
    return SIPELoss(params["seeds"][method]["gsc_warmup_epochs"])


@torch.no_grad()
def infer_seed_maps(model: nn.Module, image: torch.Tensor, class_ids: torch.Tensor,
                    scales: Sequence[float], hflip: bool) -> tuple[torch.Tensor, torch.Tensor | None]:
    """(foreground maps K x H x W, background H x W or None) of one normalised 3 x H x W image."""
    if isinstance(model, SIPEClassifier):
        maps = multiscale_is_cam(model, image, class_ids, scales, hflip)
        return maps[1:], maps[0]
    if isinstance(model, EPSClassifier):
        return multiscale_eps(model, image, class_ids, scales, hflip), None
    return multiscale_cam(model, image, class_ids, scales, hflip), None
