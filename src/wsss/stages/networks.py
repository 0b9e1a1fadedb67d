"""The backbones and DeepLabs as the stages build them: from params.yaml sections and from the
checkpoints earlier stages wrote (a broken checkpoint is an error naming its file and the stage
that remakes it). Shared by the stages that train a network and those that apply it."""

from __future__ import annotations

import torch

from wsss.core.dvcfile import ArtifactPaths, load_stage_checkpoint, load_stage_weights
from wsss.core.params import BackboneParams, BackboneSource, DeeplabParams
from wsss.models.backbones import Backbone, build_backbone, untrained
from wsss.models.deeplab import DeepLab


def starting_backbone(backbone: BackboneParams, source: BackboneSource, paths: ArtifactPaths) -> Backbone:
    """The backbone a network starts training from: the seeds classifier's (a from-scratch
    backbone has nothing else to start from) or ImageNet's (``source`` pretrained)."""
    if source == "pretrained":
        return build_backbone(backbone)
    net = build_backbone(untrained(backbone))
    state = load_stage_checkpoint(paths.classifier)
    net.load_state_dict({k[len("backbone."):]: v for k, v in state.items() if k.startswith("backbone.")})
    return net


def deeplab(backbone: BackboneParams, cfg: DeeplabParams, num_classes: int, paths: ArtifactPaths | None) -> DeepLab:
    """The DeepLab of a params section (head, rates, backbone source) on ``seeds.backbone``: to
    train (``paths`` given: its backbone starts as `starting_backbone` says) or to load weights
    into (``paths`` None)."""
    net = starting_backbone(backbone, cfg.backbone, paths) if paths is not None else build_backbone(untrained(backbone))
    return DeepLab(net, num_classes, cfg.head, cfg.rates)


def recovery_network(backbone: BackboneParams, recovery: DeeplabParams, paths: ArtifactPaths, num_classes: int,
                     device: torch.device) -> DeepLab:
    """PtReCl's trained recovery DeepLab (stage train_recovery), in eval mode on ``device``."""
    model = deeplab(backbone, recovery, num_classes, None)
    load_stage_weights(model, paths.recovery_weights)
    return model.to(device).eval()

