"""DeepLab segmentation networks on the project's backbones (docs/methods.md §8–§9).

- ``v2``: DeepLab-ASPP. Parallel 3x3 convolutions with dilations `rates` (6, 12, 18, 24) on the
  deepest feature, their class scores summed.
- ``v3``: DeepLabV3. torchvision's ``DeepLabHead``: ASPP with image pooling, batch norm and a
  projection, then a 3x3 conv and the classifier. Its default rates are (12, 24, 36).

The same network serves PtReCl's pseudo-mask recovery (trained on IRN's pseudo masks; its
backbone features give the prototypes) and the final segmentation stage. Logits come at the
backbone's output stride; `predict` resizes them to the image.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn as nn
import torch.nn.functional as F

from wsss.core.torchvision_compat import import_torchvision
from wsss.data.base import IGNORE_INDEX
from wsss.models.backbones import Backbone

HEADS = ("v2", "v3")
DEFAULT_RATES = {"v2": (6, 12, 18, 24), "v3": (12, 24, 36)}


class ASPPv2(nn.Module):
    """DeepLab V2's head: one dilated 3x3 classifier per rate, the scores summed."""

    def __init__(self, in_channels: int, num_classes: int, rates: Sequence[int]):
        super().__init__()
        self.branches = nn.ModuleList(
            nn.Conv2d(in_channels, num_classes, 3, padding=rate, dilation=rate) for rate in rates
        )
        for conv in self.branches:  # the reference initialises its classifiers with N(0, 0.01)
            nn.init.normal_(conv.weight, 0.0, 0.01)
            nn.init.zeros_(conv.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return sum(branch(x) for branch in self.branches)


def _head(kind: str, in_channels: int, num_classes: int, rates: Sequence[int]) -> nn.Module:
    if kind == "v2":
        return ASPPv2(in_channels, num_classes, rates)
    if kind == "v3":
        import_torchvision()
        from torchvision.models.segmentation.deeplabv3 import DeepLabHead

        return DeepLabHead(in_channels, num_classes, atrous_rates=tuple(rates))
    raise ValueError(f"DeepLab head must be one of {HEADS}, got {kind!r}")


class DeepLab(nn.Module):
    """Backbone + ASPP head; num_classes includes the background (channel 0)."""

    def __init__(self, backbone: Backbone, num_classes: int, head: str = "v2", rates: Sequence[int] | None = None):
        super().__init__()
        rates = tuple(DEFAULT_RATES[head] if rates is None else rates) if head in HEADS else ()
        if head in HEADS and (not rates or any(int(r) < 1 for r in rates)):
            raise ValueError(f"DeepLab ASPP rates must be positive integers, got {list(rates)}")
        self.backbone = backbone
        self.num_classes = num_classes
        self.head = _head(head, backbone.out_channels[-1], num_classes, rates)

    def features(self, images: torch.Tensor) -> torch.Tensor:
        """The deepest backbone feature (B x D x h x w): what PtReCl's prototypes are made of."""
        return self.backbone(images)[-1]

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """Class logits B x num_classes x h x w at the backbone's output stride."""
        return self.head(self.features(images))

    def parameter_groups(self) -> tuple[list[nn.Parameter], list[nn.Parameter]]:
        """(backbone, head) parameters: the head learns at a multiple of the backbone's rate."""
        return list(self.backbone.parameters()), list(self.head.parameters())


def condition_on_labels(logits: torch.Tensor, class_ids: torch.Tensor) -> torch.Tensor:
    """Label conditioning (PtReCl): C x H x W logits -> the same with every channel that is neither
    the background nor one of the image's labelled classes (1..C-1) set to −inf, so an argmax
    or softmax can only pick background or a labelled class."""
    keep = torch.zeros(logits.shape[0], dtype=torch.bool, device=logits.device)
    keep[0] = True
    keep[class_ids.long().to(logits.device)] = True
    return logits.masked_fill(~keep[:, None, None], float("-inf"))


@torch.no_grad()
def predict(model: DeepLab, image: torch.Tensor, scales: Sequence[float] = (1.0,), hflip: bool = False,
            class_ids: torch.Tensor | None = None) -> torch.Tensor:
    """Class probabilities (num_classes x H x W) of one normalised 3 x H x W image: softmax of the
    logits averaged over `scales` and (with `hflip`) the mirror, each resized to H x W; with
    `class_ids`, label-conditioned (non-labelled classes get probability 0)."""
    if not scales:
        raise ValueError("DeepLab prediction needs at least one scale")
    height, width = image.shape[-2:]
    total = 0.0
    for scale in scales:
        scaled = image[None] if scale == 1.0 else F.interpolate(
            image[None], scale_factor=scale, mode="bilinear", align_corners=False)
        batch = torch.cat([scaled, scaled.flip(-1)]) if hflip else scaled
        logits = model(batch)
        if hflip:
            logits = logits[:1] + logits[1:].flip(-1)
        total = total + F.interpolate(logits, size=(height, width), mode="bilinear", align_corners=False)[0]
    total = total / (len(scales) * (2 if hflip else 1))
    if class_ids is not None:
        total = condition_on_labels(total, class_ids)
    return total.softmax(dim=0)


def segmentation_loss(model: DeepLab, images: torch.Tensor, labels: torch.Tensor) -> dict[str, torch.Tensor]:
    """Pixel cross-entropy of the logits, resized to the labels (B x H x W, 255 ignored), as
    {"loss"}: training.train_loop's compute_losses."""
    logits = model(images)
    logits = F.interpolate(logits, size=labels.shape[-2:], mode="bilinear", align_corners=False)
    return {"loss": F.cross_entropy(logits, labels, ignore_index=IGNORE_INDEX)}
