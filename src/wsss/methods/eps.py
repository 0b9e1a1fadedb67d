"""EPS: Explicit Pseudo-pixel Supervision (Lee et al., CVPR 2021; reference: halbielee/EPS,
eps.py `get_eps_loss`; docs/methods.md §7).

A classifier with C + 1 output maps (C foreground classes, then background LAST) is trained
with the multi-label soft margin loss on the C class scores plus a saliency loss: the
localization maps (softmax over the C + 1 channels) must explain an off-the-shelf saliency map,
resized to the map grid by nearest-neighbour interpolation (F.interpolate's "nearest", pixel
floor(i · in / out), as the reference).

Map selection decides which labelled classes count as salient foreground (``strategy``):

- ``"adaptive"`` (the paper's method): binarise the class map and the saliency map at 0.5;
  a labelled class joins the foreground when O = |B_i ∩ B_s| / (|B_i| + 1e-4·h·w) > tau, else
  the background (the reference's denominator: an empty class map gives O = 0). This absorbs
  saliency models that systematically miss some classes (e.g. railroad for "train").
- ``"naive"``: every labelled class is foreground.
- ``"predefined"``: labelled classes whose id (1..C) is in ``background_classes`` go to the
  background, the others to the foreground.
- ``"none"``: no map selection. Our interpretation: class maps do not enter the estimate,
  which is 1 - M_{C+1} alone (whatever lambda). We realise it as M_fg = 1 - M_{C+1} (the sum
  of all C class maps) and M_bg = M_{C+1}, so the blend below reduces to 1 - M_{C+1}.

M_fg = sum_i y_i M_i [fg_i], M_bg = sum_i y_i M_i [not fg_i] + M_{C+1};
estimated saliency = lam M_fg + (1 - lam) (1 - M_bg); L_sal = mean (M_s - estimate)^2.
"""

from __future__ import annotations

from typing import Sequence

import torch
import torch.nn as nn
import torch.nn.functional as F

from wsss.methods.cam import multiscale_cam
from wsss.models.backbones import Backbone

STRATEGIES = ("adaptive", "naive", "predefined", "none")


class EPSClassifier(nn.Module):
    """Backbone -> bias-free 1x1 conv to C + 1 maps (background last) -> GAP of the C class maps."""

    def __init__(self, backbone: Backbone, num_foreground: int):
        super().__init__()
        self.backbone = backbone
        self.num_foreground = num_foreground
        self.classifier = nn.Conv2d(backbone.out_channels[-1], num_foreground + 1, 1, bias=False)
        nn.init.xavier_uniform_(self.classifier.weight)

    def class_maps(self, images: torch.Tensor) -> torch.Tensor:
        """Raw (pre-softmax) maps, B x (C + 1) x h x w at the backbone's output stride."""
        return self.classifier(self.backbone(images)[-1])

    def forward(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(class logits B x C, raw maps B x (C + 1) x h x w). The logits pool only the C class
        maps, so the classification loss sends no gradient to the background row."""
        maps = self.class_maps(images)
        return maps[:, : self.num_foreground].mean(dim=(2, 3)), maps

    def parameter_groups(self) -> tuple[list[nn.Parameter], list[nn.Parameter]]:
        """(pretrained backbone parameters, new layer parameters) for per-group learning rates."""
        backbone = [p for p in self.backbone.parameters() if p.requires_grad]
        return backbone, list(self.classifier.parameters())


def check_strategy(strategy: str) -> None:
    if strategy not in STRATEGIES:
        raise ValueError(f"EPS map selection strategy must be one of {', '.join(STRATEGIES)}; got {strategy!r}")


def saliency_overlap(class_probs: torch.Tensor, saliency: torch.Tensor) -> torch.Tensor:
    """O = |B_i ∩ B_s| / (|B_i| + 1e-4·h·w) per class, B x C (0 for an empty class map). Inputs
    are B x C x h x w localization maps and a B x h x w saliency map on the same grid."""
    class_bin = (class_probs.detach() > 0.5).float()
    sal_bin = (saliency.detach() > 0.5).float().unsqueeze(1)
    height, width = class_bin.shape[-2:]
    area = class_bin.flatten(2).sum(-1)
    inter = (class_bin * sal_bin).flatten(2).sum(-1)
    return inter / (area + 1e-4 * height * width)


def _foreground_mask(class_probs, saliency, strategy, tau, background_classes) -> torch.Tensor:
    """B x C booleans: which classes would join the foreground when labelled."""
    batch, num_classes = class_probs.shape[:2]
    if strategy == "adaptive":
        return saliency_overlap(class_probs, saliency) > tau
    is_fg = torch.ones(batch, num_classes, dtype=torch.bool, device=class_probs.device)
    if strategy == "predefined":
        ids = torch.as_tensor(list(background_classes), dtype=torch.long, device=class_probs.device)
        if ids.numel() and (ids.min() < 1 or ids.max() > num_classes):
            raise ValueError(f"background_classes must be foreground ids in 1..{num_classes}; got {ids.tolist()}")
        is_fg[:, ids - 1] = False
    return is_fg


def select_maps(probs: torch.Tensor, labels: torch.Tensor, saliency: torch.Tensor,
                strategy: str = "adaptive", tau: float = 0.4,
                background_classes: Sequence[int] = ()) -> tuple[torch.Tensor, torch.Tensor]:
    """(M_fg, M_bg), each B x h x w, from localization maps probs (B x (C + 1) x h x w, softmax,
    background last), multi-hot labels (B x C) and saliency (B x h x w on the same grid)."""
    check_strategy(strategy)
    background = probs[:, -1]
    if strategy == "none":
        return 1.0 - background, background
    class_probs = probs[:, :-1]
    is_fg = _foreground_mask(class_probs, saliency, strategy, tau, background_classes).to(probs.dtype)
    labels = labels.to(probs.dtype)
    fg = torch.einsum("bc,bchw->bhw", labels * is_fg, class_probs)
    bg = torch.einsum("bc,bchw->bhw", labels * (1.0 - is_fg), class_probs) + background
    return fg, bg


def estimated_saliency(fg: torch.Tensor, bg: torch.Tensor, lam: float = 0.5) -> torch.Tensor:
    """lam M_fg + (1 - lam) (1 - M_bg)."""
    return lam * fg + (1.0 - lam) * (1.0 - bg)


def saliency_on_grid(saliency: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """B x H x W (or B x 1 x H x W) saliency resized to the map grid, B x h x w, by nearest-neighbour
    interpolation as the reference: output pixel i takes input pixel floor(i · H / h), so the values
    stay those of the saliency map (a binary map stays binary)."""
    if saliency.dim() == 3:
        saliency = saliency.unsqueeze(1)
    return F.interpolate(saliency.float(), size=size, mode="nearest")[:, 0]


def eps_losses(model: EPSClassifier, images: torch.Tensor, labels: torch.Tensor, saliency: torch.Tensor,
               strategy: str = "adaptive", tau: float = 0.4, lam: float = 0.5,
               background_classes: Sequence[int] = ()) -> dict:
    """{"loss": cls + sal, "cls": multi-label soft margin on the C class scores, "sal": MSE between
    the saliency map and its estimate from the localization maps}."""
    check_strategy(strategy)
    logits, maps = model(images)
    cls = F.multilabel_soft_margin_loss(logits, labels)
    probs = F.softmax(maps, dim=1)
    target = saliency_on_grid(saliency, tuple(maps.shape[-2:]))
    fg, bg = select_maps(probs, labels, target, strategy, tau, background_classes)
    sal = (target - estimated_saliency(fg, bg, lam)).pow(2).mean()
    return {"loss": cls + sal, "cls": cls, "sal": sal}


class _Localization(nn.Module):
    """Presents the softmax localization maps as `class_maps`, so that the CAM inference
    (scales, flips, per-class max normalisation) applies unchanged."""

    def __init__(self, model: EPSClassifier):
        super().__init__()
        self.model = model

    def class_maps(self, images: torch.Tensor) -> torch.Tensor:
        return F.softmax(self.model.class_maps(images), dim=1)


@torch.no_grad()
def multiscale_eps(
    model: EPSClassifier,
    image: torch.Tensor,
    class_ids: torch.Tensor,
    scales: Sequence[float],
    hflip: bool,
    image_resize: str = "bilinear",
) -> torch.Tensor:
    """Localization maps of the labelled classes for one image, summed over scales and flips.

    image: 3 x H x W normalised; class_ids: K foreground ids (1..C). Returns K x H x W in
    [0, 1], each map divided by its own maximum (+1e-5), as `multiscale_cam` does, so the same
    constant background threshold applies downstream.
    """
    return multiscale_cam(_Localization(model), image, class_ids, scales, hflip, image_resize)
