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

from wsss.core.errors import ParamsError
from wsss.core.params import EpsParams, SeedsParams, SipeParams
from wsss.methods.cam import CAMClassifier, multiscale_cam
from wsss.methods.eps import EPSClassifier, eps_losses, multiscale_eps
from wsss.methods.sipe import SIPEClassifier, SIPEConfig, SIPELoss, multiscale_is_cam
from wsss.models.backbones import Backbone


def sipe_config(section: SipeParams) -> SIPEConfig:
    """The SIPEConfig of a `seeds.sipe` / `seeds.ae_sipe` section (the references' other switches
    at their defaults)."""
    return SIPEConfig.from_dict(section.model_dump())


def needs_saliency(seeds: SeedsParams) -> bool:
    return seeds.method == "eps"


def build_seed_model(seeds: SeedsParams, backbone: Backbone, num_foreground: int) -> nn.Module:
    if seeds.method == "cam":
        return CAMClassifier(backbone, num_foreground)
    if seeds.method == "eps":
        return EPSClassifier(backbone, num_foreground)
    return SIPEClassifier(backbone, num_foreground, sipe_config(seeds.sipe_section))


def predefined_background_ids(eps: EpsParams, class_names: Sequence[str]) -> list[int]:
    """`seeds.eps.predefined_background` class names -> foreground ids (1..C)."""
    ids = []
    for name in eps.predefined_background:
        if name not in class_names[1:]:
            raise ParamsError(f"params.yaml: 'seeds.eps.predefined_background' names {name!r}, which is not "
                              f"a class of this data set ({', '.join(class_names[1:])})")
        ids.append(list(class_names).index(name))
    return ids


def seed_losses(seeds: SeedsParams, class_names: Sequence[str]):
    """compute_losses(model, images, targets) -> {"loss", ...} for `wsss.train.loop.train_loop`."""
    if seeds.method == "cam":
        return lambda model, images, labels: {"loss": F.multilabel_soft_margin_loss(model(images), labels)}
    if seeds.method == "eps":
        cfg = seeds.eps
        background = predefined_background_ids(cfg, class_names)

        def eps(model, images, targets):
            labels, saliency = targets
            return eps_losses(model, images, labels, saliency, cfg.strategy, cfg.tau, cfg.lam, background)
        return eps
    return SIPELoss(seeds.sipe_section.gsc_warmup_epochs)


@torch.no_grad()
def infer_seed_maps(model: nn.Module, image: torch.Tensor, class_ids: torch.Tensor, scales: Sequence[float],
                    hflip: bool, image_resize: str = "bilinear") -> tuple[torch.Tensor, torch.Tensor | None]:
    """(foreground maps K x H x W, background H x W or None) of one normalised 3 x H x W image
    (`seeds.infer`: scales, flip and how each scale's image is resized)."""
    if isinstance(model, SIPEClassifier):
        maps = multiscale_is_cam(model, image, class_ids, scales, hflip, image_resize)
        return maps[1:], maps[0]
    if isinstance(model, EPSClassifier):
        return multiscale_eps(model, image, class_ids, scales, hflip, image_resize), None
    return multiscale_cam(model, image, class_ids, scales, hflip, image_resize), None
