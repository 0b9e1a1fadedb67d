"""SIPE and AE-SIPE (docs/methods.md §5–§6): one classifier, its losses and multi-scale inference.

SIPE, "Self-supervised Image-specific Prototype Exploration for WSSS" (Chen et al., CVPR 2022;
reference chenqi1126/SIPE, network/resnet50_SIPE.py), and AE-SIPE, "Affinity Enhanced
Image-specific Prototypes for WSSS" (Im, An & Lee; reference IJS1016/AE_SIPE,
network/resnet50_AE_SIPE.py). Every AE-SIPE change is a `SIPEConfig` switch; the defaults are SIPE.

Notation: B images, C foreground classes, channel 0 of every (C+1)-channel map is the background,
channel c (1..C) is foreground class c. Maps live on the grid of the backbone's level 3 ("the
IS-CAM grid", h x w, N = h·w positions).

Encoder
    hierarchical features: each backbone level l (1..4) goes through a bias-free 1x1 projection,
    is L2-normalised over channels and resized bilinearly to level 3's grid; the four are
    concatenated (D = sum of projection widths; ResNet: 128+128+256+256 = 768). As in both
    references the projections see *detached* backbone features (`detach_side_inputs`), so
    hierarchical features train the projections only; the backbone learns from the CAM.
    semantic features: level 4 (resized to the level-3 grid when the two grids differ).

CAM with background (the "general" map)
    M_c = ReLU(W_c · level4), divided by its per-image maximum (+1e-5); classes not in the image
    label are zeroed; M_0 = 1 − max_c M_c over the labelled classes (1 where none is labelled);
    resized bilinearly (align_corners=True) to the level-3 grid. Logits: global average of the
    raw W · level4 (before the ReLU), B x C. (The reference takes the background as 1 − max over
    *all* classes and zeroes non-labelled classes afterwards; the paper says labelled classes:
    docs/methods.md §5, `cam_background`.)

Structure analysis (seeds)
    For every position i, S_i = ReLU(cos(f_i, f_j)) over all positions j (F = semantic features,
    or hierarchical ones with `hierarchical_structure`; at inference with inference="reference",
    as in both references, always the hierarchical ones). Its soft IoU with each map M_k is, as in
    the reference ("product" formulation):
        IoU_k(i) = Σ_j S_i(j) M_k(j) / (Σ_j S_i(j) + Σ_j M_k(j) − Σ_j S_i(j) M_k(j))
    or, with seed_iou="minmax", Σ_j min(S_i(j), M_k(j)) / Σ_j max(S_i(j), M_k(j)). The background
    IoU is multiplied by `bg_iou_factor` (0.5 in the reference) and the seed is the argmax over
    background + labelled classes. At inference with `infer_argmax` "all", as both references
    infer, the argmax runs over every class, the unlabelled ones with their CAM unmasked, and a
    position seeded to an unlabelled class joins no prototype (docs/methods.md §5). The
    reference materialises the N x N correlation; here it is
    computed `seed_chunk` positions at a time (B x chunk x N floats at a time), under no_grad
    (the argmax has no gradient anyway).

Prototypes and IS-CAM (the "specific" map)
    p_k = mean of the hierarchical features of the positions seeded k (per image; a class with no
    seed has no prototype and an all-zero IS-CAM). IS-CAM_k = ReLU(cos(f, p_k)). (The reference
    averages seeds·f over all N positions; cosine similarity ignores that scale factor.)
    Gradients flow through f and p_k (not through the seeds), as in the reference.

Steps (`SIPEConfig.steps`): a comma-separated sequence of tokens, applied in order, starting
from state (seeds = structure-analysis seeds, map = none yet):
    "pr_is": prototypes from the current seeds, then the IS-CAM from them; the IS-CAM becomes
             the current map. A "pr_is" right after another first re-seeds from that IS-CAM
             (argmax over background + labelled classes of the raw map), so a repeated (Pr, IS)
             is a new round, as in the paper's Table 3, not a repeat of the same prototypes.
    "pamr":  PAMR-refine the current map (the latest raw IS-CAM, or the CAM with background if
             no "pr_is" ran yet), detached, guided by the image; then re-seed: seeds = argmax over
             background + labelled classes of the refined map (resized back to the IS-CAM grid).
The string must contain only these tokens and end with "pr_is" (the final IS-CAM must come from
the final seeds). Each string names the whole sequence, so the AE-SIPE paper's Table 3 rows read
(see `TABLE3_STEPS`):
    "pr_is"                     SIPE baseline, (Pr, IS)
    "pr_is,pr_is"               Baseline + (Pr, IS)
    "pr_is,pr_is,pamr,pr_is"    Baseline + (Pr, IS, PAMR, Pr, IS)
    "pr_is,pamr,pr_is,pr_is"    Baseline + (PAMR, Pr, IS, Pr, IS)
    "pr_is,pamr,pr_is"          Baseline + (PAMR, Pr, IS) = AE-SIPE (the reference's forward)
A string that starts with "pamr" (e.g. "pamr,pr_is") refines the CAM with background before any
prototype: valid, but not one of the paper's rows.

PAMR (`wsss.methods.pamr.PAMR`, `pamr_iters` = 10, `pamr_dilations` = 1,2,4,8,12,24, `pamr_sigma` =
"all_dilations", σ as the reference PAMR takes it): as in the AE-SIPE reference, the image
(ImageNet normalisation undone, `pamr_denormalize`) is resized (bilinear, align_corners=True) to
`pamr_scale` (1/4) of its size, PAMR upsamples the map to that
grid and refines it, and the result is resized (bilinear, align_corners=True) back to the IS-CAM
grid for the argmax. `pamr_scale=None` runs PAMR on the IS-CAM grid itself (image resized to it).

Normalisation (`is_cam_norm`): the final IS-CAM is divided by its per-map maximum (+1e-5, SIPE)
or min-max normalised, (x − min) / (max − min + 1e-5) (AE-SIPE), per image and class. The same
normalisation serves the GSC loss and inference.

Losses: L = L_cls + L_gsc; L_cls = multi-label soft margin on the logits; L_gsc = mean over
B x (C+1) x h x w of |CAM − normalised IS-CAM| (background and non-labelled classes included,
the latter being 0 on both sides).

Background rescaling (`bg_scale`, AE-SIPE 0.8, 1.0 = off) is an inference-time change (the
reference applies it when turning the saved IS-CAMs into labels): `multiscale_is_cam` multiplies
its normalised background channel by it; training and the re-seeding argmax are unaffected.

Multi-scale fusion (`scale_norm`): the raw IS-CAMs of the scales are summed, then normalised
("after_fusion", SIPE's reference); "per_scale" also normalises each scale's map before the sum,
as AE-SIPE's inference network does (docs/methods.md §6).
"""

from __future__ import annotations

from typing import Annotated, Any, Literal, Mapping, Sequence, get_args

import torch
import torch.nn as nn
import torch.nn.functional as F
from pydantic import Field

from wsss.core.params import (
    CamBackground,
    SeedsParams,
    SipeInference,
    SipeParams,
    parse_sipe_steps,
)
from wsss.data.transforms import IMAGENET_MEAN, IMAGENET_STD, rescale_image
from wsss.methods.pamr import PAMR
from wsss.models.backbones import Backbone

INFERENCE_MODES = get_args(SipeInference)
DEFAULT_PROJECTIONS = (128, 128, 256, 256)
TABLE3_STEPS = {
    "baseline": "pr_is",
    "baseline+pr_is": "pr_is,pr_is",
    "baseline+pr_is,pamr,pr_is": "pr_is,pr_is,pamr,pr_is",
    "baseline+pamr,pr_is,pr_is": "pr_is,pamr,pr_is,pr_is",
    "baseline+pamr,pr_is (AE)": "pr_is,pamr,pr_is",
}
_EPS = 1e-5
BACKGROUND_OVER = get_args(CamBackground)


def parse_steps(steps: str | Sequence[str]) -> tuple[str, ...]:
    """"pr_is,pamr,pr_is" (or a sequence of tokens) -> ("pr_is", "pamr", "pr_is"); ValueError if
    invalid (the grammar is params.yaml's: wsss.core.params.parse_sipe_steps)."""
    text = steps if isinstance(steps, str) else ",".join(str(t) for t in steps)
    try:
        return tuple(parse_sipe_steps(text).split(","))
    except ValueError as exc:
        raise ValueError(f"SIPE steps {exc}") from None


class SIPEConfig(SipeParams):
    """SIPE / AE-SIPE's switches: params.yaml's `seeds.sipe` / `seeds.ae_sipe` section (its keys,
    defaults and checks: wsss.core.params.SipeParams; the defaults are SIPE's, `ae_sipe()` the
    AE-SIPE paper's), plus switches of the references' code that params.yaml does not expose:

    seed_iou: "product" (reference) or "minmax"; pamr_scale: the grid PAMR works on, relative to
    the image (None: the feature grid); pamr_denormalize: PAMR sees the RGB image, not the
    normalised one; detach_side_inputs: the hierarchical projections see detached backbone
    features (both references).
    """

    seed_iou: Literal["product", "minmax"] = "product"
    pamr_scale: Annotated[float, Field(gt=0)] | None = 0.25
    pamr_denormalize: bool = True
    detach_side_inputs: bool = True

    @property
    def step_tokens(self) -> tuple[str, ...]:
        return parse_steps(self.steps)

    @classmethod
    def ae_sipe(cls, **overrides: Any) -> "SIPEConfig":
        """The AE-SIPE paper: PAMR-enhanced prototypes, hierarchical structure analysis, min-max
        IS-CAM normalisation, background ×0.8 (params.yaml's `seeds.ae_sipe` defaults)."""
        return cls(**(SeedsParams().ae_sipe.model_dump() | overrides))

    @classmethod
    def from_dict(cls, values: Mapping[str, Any]) -> "SIPEConfig":
        """From a mapping (e.g. a params.yaml section); unknown keys raise ValueError."""
        return cls.model_validate(dict(values))


# --------------------------------------------------------------------------- building blocks


def allowed_classes(labels: torch.Tensor) -> torch.Tensor:
    """B x C multi-hot image labels -> B x (C+1) bool: background (always) + labelled classes."""
    fg = labels > 0.5
    return torch.cat([torch.ones_like(fg[:, :1]), fg], dim=1)


def cam_with_background(raw_cam: torch.Tensor, labels: torch.Tensor, background_over: str = "labelled",
                        keep_unlabelled: bool = False) -> torch.Tensor:
    """B x C raw class maps -> B x (C+1): max-normalised ReLU maps of the labelled classes (others
    zero, or kept with `keep_unlabelled`) with the background first: 1 − max over the labelled
    classes (background_over="labelled") or over all classes before the label mask
    (background_over="all", both references)."""
    if background_over not in BACKGROUND_OVER:
        raise ValueError(f"SIPE cam_background must be one of {BACKGROUND_OVER}, got {background_over!r}")
    cam = F.relu(raw_cam)
    cam = cam / (cam.flatten(2).max(dim=2).values[..., None, None] + _EPS)
    labelled = cam * (labels > 0.5).to(cam.dtype)[..., None, None]
    over = labelled if background_over == "labelled" else cam
    if cam.shape[1]:
        background = 1.0 - over.max(dim=1, keepdim=True).values
    else:
        background = torch.ones_like(cam[:, :1].sum(1, keepdim=True))
    return torch.cat([background, cam if keep_unlabelled else labelled], dim=1)


def on_grid(maps: torch.Tensor, grid: torch.Size) -> torch.Tensor:
    """B x K x h' x w' maps resized to the IS-CAM grid (bilinear, align_corners=True, as the references)."""
    if maps.shape[-2:] == grid:
        return maps
    return F.interpolate(maps, size=grid, mode="bilinear", align_corners=True)


def allowed_argmax(maps: torch.Tensor, allowed: torch.Tensor) -> torch.Tensor:
    """B x K x h x w maps, B x K bool -> B x h x w index of the best allowed channel."""
    return maps.masked_fill(~allowed[..., None, None], float("-inf")).argmax(dim=1)


@torch.no_grad()
def structure_analysis(features: torch.Tensor, cam: torch.Tensor, allowed: torch.Tensor, *,
                       bg_iou_factor: float = 0.5, seed_iou: str = "product",
                       chunk_size: int | None = 1024) -> tuple[torch.Tensor, torch.Tensor]:
    """Seeds from the soft IoU of every position's similarity map with every CAM.

    features: B x D x h x w; cam: B x K x h x w (K = C+1, background first); allowed: B x K
    bool. Returns (seeds B x h x w int64, IoU B x K x h x w with the background factor applied,
    −inf where not allowed). Peak extra memory B x chunk x N (N = h·w); chunk_size None = N.
    """
    batch, _, height, width = features.shape
    n = height * width
    if cam.shape[-2:] != features.shape[-2:]:
        raise ValueError(f"structure analysis: features {tuple(features.shape)} and CAM {tuple(cam.shape)} "
                         "grids differ")
    flat = F.normalize(features.float().flatten(2), dim=1, eps=_EPS)  # B x D x N
    maps = cam.float().flatten(2)  # B x K x N
    map_sums = maps.sum(dim=2)  # B x K
    classes = allowed.any(dim=0).nonzero().flatten().tolist()  # channels any image may take
    chunk = n if chunk_size is None else max(1, int(chunk_size))
    iou = maps.new_zeros(batch, maps.shape[1], n)
    for start in range(0, n, chunk):
        stop = min(n, start + chunk)
        sim = F.relu(flat[:, :, start:stop].transpose(1, 2) @ flat)  # B x chunk x N
        sim_sums = sim.sum(dim=2, keepdim=True)  # B x chunk x 1
        if seed_iou == "product":
            inter = sim @ maps.transpose(1, 2)  # B x chunk x K
        elif seed_iou == "minmax":
            inter = maps.new_zeros(batch, stop - start, maps.shape[1])
            for k in classes:
                inter[:, :, k] = torch.minimum(sim, maps[:, k, None, :]).sum(dim=2)
        else:
            raise ValueError(f"seed_iou must be 'product' or 'minmax', got {seed_iou!r}")
        union = sim_sums + map_sums[:, None, :] - inter  # Σmax = ΣS + ΣM − Σmin for minmax
        iou[:, :, start:stop] = (inter / union.clamp_min(1e-8)).transpose(1, 2)
    iou[:, 0] *= bg_iou_factor
    iou = iou.masked_fill(~allowed[..., None], float("-inf"))
    seeds = iou.argmax(dim=1)
    return seeds.view(batch, height, width), iou.view(batch, -1, height, width)


def unchunked_structure_analysis(features: torch.Tensor, cam: torch.Tensor, allowed: torch.Tensor, *,
                                 bg_iou_factor: float = 0.5) -> tuple[torch.Tensor, torch.Tensor]:
    """The reference's formulation with the full B x N x N correlation (for tests; O(N²) memory)."""
    batch, _, height, width = features.shape
    flat = F.normalize(features.float().flatten(2), dim=1, eps=_EPS)
    correlation = F.relu(flat.transpose(1, 2) @ flat).unsqueeze(1)  # B x 1 x N x N
    maps = cam.float().flatten(2).unsqueeze(2)  # B x K x 1 x N
    inter = (correlation * maps).sum(-1)
    union = correlation.sum(-1) + maps.sum(-1) - inter
    iou = inter / union.clamp_min(1e-8)
    iou[:, 0] *= bg_iou_factor
    iou = iou.masked_fill(~allowed[..., None], float("-inf"))
    return iou.argmax(1).view(batch, height, width), iou.view(batch, -1, height, width)


def prototypes(features: torch.Tensor, seeds: torch.Tensor, num_maps: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-image class prototypes: the mean feature of each seed label.

    features B x D x h x w, seeds B x h x w in 0..num_maps-1. Returns (B x num_maps x D, present
    B x num_maps bool); absent labels get a zero vector and present False.
    """
    onehot = F.one_hot(seeds.flatten(1), num_maps).to(features.dtype)  # B x N x K
    counts = onehot.sum(dim=1)  # B x K
    sums = onehot.transpose(1, 2) @ features.flatten(2).transpose(1, 2)  # B x K x D
    return sums / counts.clamp_min(1)[..., None], counts > 0


def is_cam(features: torch.Tensor, protos: torch.Tensor, present: torch.Tensor) -> torch.Tensor:
    """IS-CAM_k = ReLU(cos(f, p_k)): B x D x h x w, B x K x D -> B x K x h x w (0 where absent)."""
    batch, _, height, width = features.shape
    flat = F.normalize(features.flatten(2), dim=1, eps=1e-8)
    cos = F.normalize(protos, dim=2, eps=1e-8) @ flat  # B x K x N
    maps = F.relu(cos) * present[..., None].to(cos.dtype)
    return maps.view(batch, -1, height, width)


def normalize_maps(maps: torch.Tensor, mode: str = "max") -> torch.Tensor:
    """Per-map (last two dims) max normalisation x/(max+1e-5) or min-max (x−min)/(max−min+1e-5)."""
    flat = maps.flatten(-2)
    peak = flat.max(dim=-1).values[..., None, None]
    if mode == "max":
        return maps / (peak + _EPS)
    if mode == "minmax":
        low = flat.min(dim=-1).values[..., None, None]
        return (maps - low) / (peak - low + _EPS)
    raise ValueError(f"is_cam_norm must be 'max' or 'minmax', got {mode!r}")


def gsc_loss(cam: torch.Tensor, normalised_is_cam: torch.Tensor) -> torch.Tensor:
    """General-specific consistency: mean |CAM − normalised IS-CAM| over all maps and positions."""
    return (cam - normalised_is_cam).abs().mean()


def rescale_background(maps: torch.Tensor, factor: float) -> torch.Tensor:
    """Multiply channel 0 (background) of ... x K x h x w maps by `factor`."""
    if factor == 1.0:
        return maps
    scale = maps.new_ones(maps.shape[-3], 1, 1)
    scale[0] = factor
    return maps * scale


def default_projection_channels(in_channels: Sequence[int]) -> tuple[int, ...]:
    """(128, 128, 256, 256) capped at half of each level's channels (ResNet keeps the reference's
    widths; a small backbone gets a projection that still compresses, e.g. tiny 32, 48, 64, 128)."""
    return tuple(min(d, max(1, c // 2)) for d, c in zip(DEFAULT_PROJECTIONS, in_channels))


# --------------------------------------------------------------------------- the model


class SIPEClassifier(nn.Module):
    """SIPE / AE-SIPE: a CAM classifier plus hierarchical projections; see the module docstring."""

    def __init__(self, backbone: Backbone, num_foreground: int, config: SIPEConfig | None = None,
                 projection_channels: Sequence[int] | None = None):
        super().__init__()
        if len(backbone.out_channels) != 4:
            raise ValueError(f"SIPE needs a backbone with 4 levels, got {len(backbone.out_channels)}")
        self.backbone = backbone
        self.num_foreground = num_foreground
        self.config = config if config is not None else SIPEConfig()
        widths = tuple(projection_channels) if projection_channels is not None else \
            default_projection_channels(backbone.out_channels)
        if len(widths) != 4 or any(int(w) < 1 for w in widths):
            raise ValueError(f"SIPE projection_channels must be 4 positive widths, got {widths}")
        self.projection_channels = tuple(int(w) for w in widths)
        self.classifier = nn.Conv2d(backbone.out_channels[-1], num_foreground, 1, bias=False)
        nn.init.xavier_uniform_(self.classifier.weight)
        self.side = nn.ModuleList(
            nn.Conv2d(c, w, 1, bias=False) for c, w in zip(backbone.out_channels, self.projection_channels)
        )
        self.pamr = PAMR(self.config.pamr_iters, self.config.pamr_dilations, self.config.pamr_sigma)  # no parameters

    @property
    def feature_dim(self) -> int:
        return sum(self.projection_channels)

    def hierarchical_features(self, levels: list[torch.Tensor]) -> torch.Tensor:
        """Projected, L2-normalised levels concatenated on level 3's grid: B x D x h x w."""
        size = levels[2].shape[-2:]
        parts = []
        for level, side in zip(levels, self.side):
            if self.config.detach_side_inputs:
                level = level.detach()
            x = side(level)
            x = x / (torch.norm(x, dim=1, keepdim=True) + _EPS)
            if x.shape[-2:] != size:
                x = F.interpolate(x, size=size, mode="bilinear", align_corners=False)
            parts.append(x)
        return torch.cat(parts, dim=1)

    def forward(self, images: torch.Tensor, labels: torch.Tensor) -> dict[str, torch.Tensor]:
        """images B x 3 x H x W (ImageNet-normalised), labels B x C multi-hot.

        Returns logits (B x C), cam (B x (C+1) x h x w, background first, on the IS-CAM grid),
        seeds (B x h x w structure-analysis seeds), final_seeds (the seeds of the final
        prototypes), prototypes (B x (C+1) x D) and prototype_mask (B x (C+1)), is_cam_raw (the
        final ReLU(cos) map) and is_cam (it normalised per `is_cam_norm`: what L_gsc compares to
        the CAM), seed_iou (B x (C+1) x h x w).
        """
        if labels.ndim != 2 or labels.shape != (images.shape[0], self.num_foreground):
            raise ValueError(f"SIPE labels must be B x {self.num_foreground} multi-hot, got {tuple(labels.shape)}")
        levels = self.backbone(images)
        hierarchical = self.hierarchical_features(levels)
        semantic = levels[-1]
        if self.config.hierarchical_structure:
            structure = hierarchical.detach()
        else:
            structure = semantic.detach()
            if structure.shape[-2:] != hierarchical.shape[-2:]:
                structure = F.interpolate(structure, size=hierarchical.shape[-2:], mode="bilinear",
                                          align_corners=False)
        return self.explore(images, labels, self.classifier(semantic), hierarchical, structure)

    def explore(self, images: torch.Tensor, labels: torch.Tensor, raw: torch.Tensor, hierarchical: torch.Tensor,
                structure: torch.Tensor, seed_over: str = "labelled") -> dict[str, torch.Tensor]:
        """Everything after the encoder: CAM with background, structure analysis on `structure`
        (B x D' x h x w on the hierarchical grid) over the classes `seed_over` says
        (`structure_seeds`), the steps, the final IS-CAM (see `forward`)."""
        cfg = self.config
        grid = hierarchical.shape[-2:]
        logits = raw.mean(dim=(2, 3))
        cam = on_grid(cam_with_background(raw, labels, cfg.cam_background), grid)
        allowed = allowed_classes(labels)
        seeds, seed_iou = self.structure_seeds(structure, raw, labels, cam, seed_over)

        current_seeds, current_map = seeds, None
        protos = present = None
        previous = None
        for token in cfg.step_tokens:
            if token == "pr_is":
                if previous == "pr_is":  # a new round: seeds from the IS-CAM just computed
                    current_seeds = allowed_argmax(current_map.detach(), allowed)
                protos, present = prototypes(hierarchical, current_seeds, self.num_foreground + 1)
                present = present & allowed  # an unlabelled class's seeds (seed_over "all") make no prototype
                current_map = is_cam(hierarchical, protos, present)
            else:  # "pamr"
                source = cam if current_map is None else current_map
                current_seeds = self._pamr_seeds(images, source.detach(), allowed)
            previous = token
        return {
            "logits": logits,
            "cam": cam,
            "seeds": seeds,
            "seed_iou": seed_iou,
            "final_seeds": current_seeds,
            "prototypes": protos,
            "prototype_mask": present,
            "is_cam_raw": current_map,
            "is_cam": normalize_maps(current_map, cfg.is_cam_norm),
        }

    def structure_seeds(self, structure: torch.Tensor, raw: torch.Tensor, labels: torch.Tensor, cam: torch.Tensor,
                        seed_over: str) -> tuple[torch.Tensor, torch.Tensor]:
        """`structure_analysis` of `cam` (on the grid) over background + labelled classes
        (seed_over "labelled"), or over every class with the unlabelled classes' CAMs unmasked
        (seed_over "all"), as both references infer: their CAM is not masked by the label
        (SIPE network/resnet50_SIPE.py:143-147, AE-SIPE network/resnet50_AE_SIPE.py:245-249) and
        the argmax runs over every class before the seeds are multiplied by it (SIPE :48, :51)."""
        cfg = self.config
        allowed = allowed_classes(labels)
        if seed_over == "all":
            cam = on_grid(cam_with_background(raw, labels, cfg.cam_background, keep_unlabelled=True), cam.shape[-2:])
            allowed = torch.ones_like(allowed)
        return structure_analysis(structure, cam.detach(), allowed, bg_iou_factor=cfg.bg_iou_factor,
                                  seed_iou=cfg.seed_iou, chunk_size=cfg.seed_chunk)

    @torch.no_grad()
    def infer(self, image: torch.Tensor, labels: torch.Tensor, hflip: bool = True) -> torch.Tensor:
        """The final raw IS-CAM of one image (1 x 3 x H x W) as both references infer it
        (their class ``CAM``): with `hflip` the image and its mirror run as a batch and their class
        maps and hierarchical features are summed (the mirror flipped back) before the structure
        analysis; the structure analysis always uses the hierarchical features (training uses
        level 4 unless `hierarchical_structure`), its seeds over the classes `infer_argmax` says.
        Returns 1 x (C+1) x h x w."""
        batch = torch.cat([image, image.flip(-1)]) if hflip else image
        levels = self.backbone(batch)
        hierarchical = self.hierarchical_features(levels)
        raw = self.classifier(levels[-1])
        if hflip:
            hierarchical = hierarchical[:1] + hierarchical[1:].flip(-1)
            raw = raw[:1] + raw[1:].flip(-1)
        return self.explore(image, labels, raw, hierarchical, hierarchical, self.config.infer_argmax)["is_cam_raw"]

    @torch.no_grad()
    def _pamr_seeds(self, images: torch.Tensor, maps: torch.Tensor, allowed: torch.Tensor) -> torch.Tensor:
        """Refine maps (B x K x h x w) with PAMR guided by the image; argmax over allowed classes."""
        cfg = self.config
        grid = maps.shape[-2:]
        image = images.float()
        if cfg.pamr_denormalize:
            mean = image.new_tensor(IMAGENET_MEAN).view(1, 3, 1, 1)
            std = image.new_tensor(IMAGENET_STD).view(1, 3, 1, 1)
            image = image * std + mean
        if cfg.pamr_scale is None:
            size = tuple(grid)
        else:
            size = tuple(max(1, round(s * cfg.pamr_scale)) for s in images.shape[-2:])
        image = F.interpolate(image, size=size, mode="bilinear", align_corners=True)
        channels = allowed.any(dim=0).nonzero().flatten()  # refine only channels some image may take
        refined = self.pamr(image, maps.float()[:, channels])
        if refined.shape[-2:] != grid:
            refined = F.interpolate(refined, size=grid, mode="bilinear", align_corners=True)
        return channels[allowed_argmax(refined, allowed[:, channels])]

    def parameter_groups(self) -> tuple[list[nn.Parameter], list[nn.Parameter]]:
        """(pretrained backbone parameters, new layers: classifier + projections)."""
        backbone = [p for p in self.backbone.parameters() if p.requires_grad]
        return backbone, list(self.classifier.parameters()) + list(self.side.parameters())


def sipe_losses(model: SIPEClassifier, images: torch.Tensor, labels: torch.Tensor,
                gsc_weight: float = 1.0) -> dict[str, torch.Tensor]:
    """L = L_cls + gsc_weight · L_gsc as {"loss", "cls", "gsc"}."""
    out = model(images, labels)
    cls = F.multilabel_soft_margin_loss(out["logits"], labels.to(out["logits"].dtype))
    gsc = gsc_loss(out["cam"], out["is_cam"])
    return {"loss": cls + gsc_weight * gsc, "cls": cls, "gsc": gsc}


class SIPELoss:
    """training.train_loop's compute_losses for SIPE: L_cls alone for the first `warmup_epochs`
    epochs, then L_cls + L_gsc.

    Why a warm-up: both references start from ImageNet weights, so the CAM localises from the first
    step and the IS-CAM that L_gsc pulls it towards is seeded on the object. A network trained from
    scratch starts with a CAM that localises nothing; a labelled class whose structure analysis
    seeds no position then has an all-zero IS-CAM, L_gsc drives that class's CAM to zero, and the
    class is never seeded again (on the synthetic data: aeroplane and bottle). 0 = the references.
    """

    def __init__(self, warmup_epochs: int = 0):
        self.warmup_epochs = warmup_epochs
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __call__(self, model: SIPEClassifier, images: torch.Tensor, labels: torch.Tensor) -> dict[str, torch.Tensor]:
        return sipe_losses(model, images, labels, 0.0 if self.epoch < self.warmup_epochs else 1.0)


@torch.no_grad()
def multiscale_is_cam(
    model: SIPEClassifier,
    image: torch.Tensor,
    class_ids: torch.Tensor,
    scales: Sequence[float],
    hflip: bool,
    image_resize: str = "bilinear",
) -> torch.Tensor:
    """Final (AE-)IS-CAMs of one image, fused over scales and flips.

    image: 3 x H x W normalised; class_ids: K foreground ids (1..C), the image label;
    image_resize: how each scale's image is made (`wsss.data.transforms.rescale_image`). Returns
    (K+1) x H x W on the image's device: background first, then the classes in class_ids order.
    At every scale the model runs with the image label, as `config.inference` says: "per_flip",
    the training forward on the image and its mirror as a batch of 2, the mirror's map flipped
    back and added; "reference", `SIPEClassifier.infer` (flip fused at feature level, structure
    analysis on hierarchical features). Each final raw IS-CAM (ReLU(cos) with the final
    prototypes; normalised first with `scale_norm` "per_scale") is resized bilinearly to H x W
    and summed; the sum is normalised per map as `is_cam_norm` says ("max": divided by its
    maximum + 1e-5; "minmax": min-max), so each map lies in [0, 1]; the background is then
    multiplied by `bg_scale`.
    """
    height, width = image.shape[-2:]
    ids = class_ids.long().flatten().to(image.device)
    labels = image.new_zeros(1, model.num_foreground)
    labels[0, ids - 1] = 1.0
    channels = torch.cat([ids.new_zeros(1), ids])
    total = image.new_zeros((len(channels), height, width))
    for scale in scales:
        size = (max(1, round(height * scale)), max(1, round(width * scale)))
        scaled = rescale_image(image, size, image_resize)[None]
        if model.config.inference == "reference":
            maps = model.infer(scaled, labels, hflip)[:, channels]
        else:
            batch = torch.cat([scaled, scaled.flip(-1)]) if hflip else scaled
            maps = model(batch, labels.expand(len(batch), -1))["is_cam_raw"][:, channels]
            if hflip:
                maps = maps[:1] + maps[1:].flip(-1)
        if model.config.scale_norm == "per_scale":  # AE-SIPE network/resnet50_AE_SIPE.py:268, before the sum
            maps = normalize_maps(maps, model.config.is_cam_norm)
        total += F.interpolate(maps.to(total.dtype), size=(height, width), mode="bilinear", align_corners=False)[0]
    total = normalize_maps(total, model.config.is_cam_norm)
    return rescale_background(total, model.config.bg_scale)
