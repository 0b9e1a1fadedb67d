"""CAM classifier (docs/methods.md §1) and multi-scale + flip CAM inference."""

from __future__ import annotations

from typing import Sequence

import torch
import torch.nn as nn
import torch.nn.functional as F

from wsss.data.transforms import rescale_image
from wsss.models.backbones import Backbone


class CAMClassifier(nn.Module):
    """Backbone -> global average pooling -> bias-free 1x1 conv to C foreground classes."""

    def __init__(self, backbone: Backbone, num_foreground: int):
        super().__init__()
        self.backbone = backbone
        self.classifier = nn.Conv2d(backbone.out_channels[-1], num_foreground, 1, bias=False)
        nn.init.xavier_uniform_(self.classifier.weight)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """Class logits, B x C (the 1x1 conv commutes with the average pooling)."""
        features = self.backbone(images)[-1]
        pooled = features.mean(dim=(2, 3), keepdim=True)
        return self.classifier(pooled).flatten(1)

    def class_maps(self, images: torch.Tensor) -> torch.Tensor:
        """ReLU(W_c . F): B x C x h x w at the backbone's output stride."""
        return F.relu(self.classifier(self.backbone(images)[-1]))

    def parameter_groups(self) -> tuple[list[nn.Parameter], list[nn.Parameter]]:
        """(pretrained backbone parameters, new layer parameters) for per-group learning rates."""
        backbone = [p for p in self.backbone.parameters() if p.requires_grad]
        return backbone, list(self.classifier.parameters())


@torch.no_grad()
def multiscale_cam(
    model: CAMClassifier,
    image: torch.Tensor,
    class_ids: torch.Tensor,
    scales: Sequence[float],
    hflip: bool,
    image_resize: str = "bilinear",
) -> torch.Tensor:
    """CAMs of the labelled classes for one image, summed over scales and flips.

    image: 3 x H x W normalised; class_ids: K foreground ids (1..C); image_resize: how each
    scale's image is made (`wsss.data.transforms.rescale_image`). Returns K x H x W in [0, 1],
    each map divided by its own maximum (+1e-5), on the image's device.
    """
    height, width = image.shape[-2:]
    channels = class_ids.long() - 1
    total = image.new_zeros((len(channels), height, width))
    if len(channels) == 0:
        return total
    for scale in scales:
        size = (max(1, round(height * scale)), max(1, round(width * scale)))
        scaled = rescale_image(image, size, image_resize)[None]
        batch = torch.cat([scaled, scaled.flip(-1)]) if hflip else scaled
        maps = model.class_maps(batch)[:, channels]
        if hflip:
            maps = maps[:1] + maps[1:].flip(-1)
        total += F.interpolate(maps, size=(height, width), mode="bilinear", align_corners=False)[0]
    peak = total.flatten(1).max(dim=1).values.view(-1, 1, 1)
    return total / (peak + 1e-5)
