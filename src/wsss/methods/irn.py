"""IRN (Ahn et al., CVPR 2019): class-boundary and displacement heads on a frozen backbone.

docs/methods.md §2. Both heads read every level of the backbone's features, each reduced by a 1x1
conv + GroupNorm + ReLU and resized to the finest level (stride 4):

- the boundary head outputs one logit per pixel; B = sigmoid(logit) is learnt only through
  affinities a_ij = 1 − max_{k on the path i→j} B_k of labelled pixel pairs;
- the displacement head outputs a 2-vector per pixel pointing to its instance's centre: for two
  pixels of one object D(i) − D(j) must equal their offset; for background pairs D(i) = D(j).
  Semantic pseudo masks need only B. D serves instance masks; ``displacement=False`` leaves its
  head out. The heads share no trainable parameter and the backbone is frozen, so B is trained
  exactly as with D (same weights, bit for bit) at a fraction of the cost.

The pair losses follow the reference: −log(a) for positive pairs (foreground and background
averaged separately, then halved), −log(1 − a) for negative pairs, L1 for displacements. The
pairs start at every pixel, or (`pair_sources` "reference_window") only in the window IRN's
PathIndex takes its sources from.
"""

from __future__ import annotations

from typing import get_args

import torch
import torch.nn as nn
import torch.nn.functional as F

from wsss.core.params import PairSources
from wsss.data.base import IGNORE_INDEX
from wsss.methods.random_walk import forward_offsets, pair_affinities
from wsss.models.backbones import Backbone

EPS = 1e-5
PAIR_SOURCES = get_args(PairSources)


def _reduce(in_channels: int, out_channels: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(in_channels, out_channels, 1, bias=False),
                         nn.GroupNorm(4, out_channels), nn.ReLU(inplace=True))


class IRN(nn.Module):
    def __init__(self, backbone: Backbone, edge_channels: int = 32, displacement_channels: int = 64,
                 displacement: bool = True):
        super().__init__()
        if backbone.strides[0] != 4:
            raise ValueError(f"IRN needs a backbone whose finest features are at stride 4, got {backbone.strides}")
        self.backbone = backbone
        for parameter in self.backbone.parameters():
            parameter.requires_grad_(False)
        levels = backbone.out_channels
        self.edge_levels = nn.ModuleList(_reduce(c, edge_channels) for c in levels)
        self.edge_out = nn.Conv2d(edge_channels * len(levels), 1, 1)
        self.has_displacement = displacement
        if not displacement:  # built after the boundary head: its initial weights do not depend on this
            return
        self.displacement_levels = nn.ModuleList(_reduce(c, displacement_channels) for c in levels)
        self.displacement_out = nn.Sequential(
            nn.Conv2d(displacement_channels * len(levels), displacement_channels, 3, padding=1, bias=False),
            nn.GroupNorm(4, displacement_channels), nn.ReLU(inplace=True),
            nn.Conv2d(displacement_channels, 2, 1),
        )

    def train(self, mode: bool = True):
        super().train(mode)
        self.backbone.eval()  # frozen: BN statistics stay as trained
        return self

    def heads(self):
        edge = [*self.edge_levels, self.edge_out]
        return [*edge, *self.displacement_levels, self.displacement_out] if self.has_displacement else edge

    @staticmethod
    def _fuse(features: list[torch.Tensor], reducers: nn.ModuleList) -> torch.Tensor:
        size = features[0].shape[-2:]
        return torch.cat([F.interpolate(reduce(f), size=size, mode="bilinear", align_corners=False)
                          if f.shape[-2:] != size else reduce(f)
                          for f, reduce in zip(features, reducers)], dim=1)

    def forward(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Boundary logits B x 1 x h x w and displacements B x 2 x h x w (None without the
        displacement head) at stride 4."""
        with torch.no_grad():
            features = [f.detach() for f in self.backbone(images)]
        edge = self.edge_out(self._fuse(features, self.edge_levels))
        if not self.has_displacement:
            return edge, None
        displacement = self.displacement_out(self._fuse(features, self.displacement_levels))
        return edge, displacement

    def load_state_dict(self, state: dict, strict: bool = True, assign: bool = False):
        """Also reads a checkpoint with a displacement head into a boundary-only IRN."""
        if not self.has_displacement:
            state = {k: v for k, v in state.items() if not k.startswith("displacement_")}
        return super().load_state_dict(state, strict=strict, assign=assign)

    @torch.no_grad()
    def boundary(self, image: torch.Tensor) -> torch.Tensor:
        """Boundary map (h x w, in [0, 1]) of one 3 x H x W image, averaged with its flip."""
        batch = torch.stack([image, image.flip(-1)])
        logits = self.edge_out(self._fuse(self.backbone(batch), self.edge_levels))  # no displacement head
        return torch.sigmoid(logits[0, 0] / 2 + logits[1, 0].flip(-1) / 2)


def source_window(height: int, width: int, radius: int, device: torch.device | None = None) -> torch.Tensor:
    """h x w bool: the pixels IRN's PathIndex takes as pair sources, rows < h − r and columns
    r … w − r − 1 with r = radius − 1 (irn misc/indexing.py:10, :62-63, :85). Every pair from
    them ends inside the map, so the reference needs no padding; the strips outside start none."""
    r = radius - 1
    window = torch.zeros(height, width, dtype=torch.bool, device=device)
    window[:max(height - r, 0), r:max(width - r, 0)] = True
    return window


def pair_labels(labels: torch.Tensor, radius: int, sources: str = "all") -> dict[str, torch.Tensor]:
    """Masks over (pixel i, forward offset o) pairs of a B x h x w relation label map.

    bg_pos: both background; fg_pos: same foreground class; neg: different classes. Pairs with
    an ignored (255) end or leaving the map are in none, and with sources "reference_window" so
    are pairs whose source i lies outside `source_window`. Each mask is B x P x h x w (float).
    """
    if sources not in PAIR_SOURCES:
        raise ValueError(f"IRN pair_sources must be one of {PAIR_SOURCES}, got {sources!r}")
    height, width = labels.shape[-2:]
    padded = F.pad(labels.long(), (radius, radius, radius, radius), value=IGNORE_INDEX)
    src = labels.long().unsqueeze(1)
    dst = torch.stack([padded[..., radius + dy: radius + dy + height, radius + dx: radius + dx + width]
                       for dy, dx in forward_offsets(radius)], dim=1)
    known = (src != IGNORE_INDEX) & (dst != IGNORE_INDEX)
    if sources == "reference_window":
        known = known & source_window(height, width, radius, labels.device)
    same = known & (src == dst)
    return {"bg_pos": (same & (src == 0)).float(), "fg_pos": (same & (src != 0)).float(),
            "neg": (known & (src != dst)).float()}


def _pair_displacement(displacement: torch.Tensor, radius: int) -> torch.Tensor:
    """D(i) − D(i + o) for every forward offset: B x 2 x P x h x w (0-padded outside)."""
    height, width = displacement.shape[-2:]
    padded = F.pad(displacement, (radius, radius, radius, radius))
    dst = torch.stack([padded[..., radius + dy: radius + dy + height, radius + dx: radius + dx + width]
                       for dy, dx in forward_offsets(radius)], dim=2)
    return displacement.unsqueeze(2) - dst


def _masked_mean(values: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    return (values * mask).sum() / (mask.sum() + EPS)


def irn_losses(edge_logits: torch.Tensor, displacement: torch.Tensor | None, labels: torch.Tensor,
               radius: int = 10, pair_sources: str = "all") -> dict[str, torch.Tensor]:
    """IRN's training losses from a stride-4 relation label map (B x h x w, 255 = ignore) over
    the pairs `pair_labels` gives (`refine.irn.train.pair_sources`); the affinity loss alone
    when there is no displacement field (None)."""
    if labels.shape[-2:] != edge_logits.shape[-2:]:
        raise ValueError(f"relation labels {tuple(labels.shape[-2:])} must match the boundary map "
                         f"{tuple(edge_logits.shape[-2:])}")
    pairs = pair_labels(labels, radius, pair_sources)
    affinity = pair_affinities(torch.sigmoid(edge_logits[:, 0]), radius, beta=1.0)
    positive = -torch.log(affinity + EPS)
    negative = -torch.log(1.0 + EPS - affinity)
    affinity_loss = (_masked_mean(positive, pairs["bg_pos"]) / 2 + _masked_mean(positive, pairs["fg_pos"]) / 2
                     + _masked_mean(negative, pairs["neg"])) / 2
    if displacement is None:
        return {"loss": affinity_loss, "affinity": affinity_loss}

    offsets = torch.tensor(forward_offsets(radius), dtype=displacement.dtype, device=displacement.device)
    target = offsets.T.reshape(1, 2, -1, 1, 1)  # D(i) − D(j) = j − i within one object
    difference = _pair_displacement(displacement, radius)
    fg_displacement = _masked_mean((difference - target).abs().mean(dim=1), pairs["fg_pos"])
    bg_displacement = _masked_mean(difference.abs().mean(dim=1), pairs["bg_pos"])
    displacement_loss = (fg_displacement + bg_displacement) / 2
    return {"loss": affinity_loss + displacement_loss, "affinity": affinity_loss,
            "displacement": displacement_loss, "fg_displacement": fg_displacement,
            "bg_displacement": bg_displacement}
