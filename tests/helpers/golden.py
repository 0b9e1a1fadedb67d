"""Inputs and weights shared by scripts/make_golden.py and tests/test_golden.py.

Both sides rebuild the same network weights from a seed (a ResNet-50 is too large to store), so
every generator here is deterministic: seeded torch / numpy generators, tensors filled in sorted
name order. Weights are named as torchvision names them (the references' ResNet-50 uses the same
names); `ours_from_torchvision` maps them onto `wsss.models.backbones.ResNetBackbone`.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import torch

GOLDEN_DIR = Path(__file__).resolve().parents[1] / "golden"
RESNET_SEED = 2024


def load_golden(name: str) -> dict[str, np.ndarray]:
    """The arrays of tests/golden/<name>.npz."""
    with np.load(GOLDEN_DIR / f"{name}.npz") as data:
        return {key: data[key] for key in data.files}


def synthetic_image(height: int, width: int, seed: int) -> np.ndarray:
    """uint8 H x W x 3: a colour gradient, a few flat ellipses and mild noise (edges for CRF/PAMR)."""
    rng = np.random.RandomState(seed)
    ys, xs = np.mgrid[0:height, 0:width].astype(np.float32)
    image = np.stack([xs / width, ys / height, 1 - xs / width], axis=-1) * 120 + 40
    for _ in range(3):
        cy, cx = rng.uniform(0.2, 0.8) * height, rng.uniform(0.2, 0.8) * width
        ry, rx = rng.uniform(0.15, 0.3) * height, rng.uniform(0.15, 0.3) * width
        inside = ((ys - cy) / ry) ** 2 + ((xs - cx) / rx) ** 2 < 1
        image[inside] = rng.uniform(0, 255, size=3)
    image += rng.normal(0, 6, size=image.shape)
    return np.clip(image, 0, 255).astype(np.uint8)


def blob_maps(count: int, height: int, width: int, seed: int) -> np.ndarray:
    """float32 count x H x W in [0, 1]: one Gaussian blob per map, peak 1 (CAM-like scores)."""
    rng = np.random.RandomState(seed)
    ys, xs = np.mgrid[0:height, 0:width].astype(np.float32)
    maps = []
    for _ in range(count):
        cy, cx = rng.uniform(0.2, 0.8) * height, rng.uniform(0.2, 0.8) * width
        sy, sx = rng.uniform(0.1, 0.25) * height, rng.uniform(0.1, 0.25) * width
        maps.append(np.exp(-((ys - cy) / sy) ** 2 / 2 - ((xs - cx) / sx) ** 2 / 2))
    return np.stack(maps).astype(np.float32)


def seeded_normal(shape: tuple[int, ...], seed: int, std: float = 1.0) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    return torch.randn(shape, generator=generator) * std


def _fill(name: str, tensor: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """A deterministic value for one ResNet tensor: He-normal convs, BatchNorm near identity."""
    shape = tensor.shape
    if name.endswith("num_batches_tracked"):
        return torch.zeros_like(tensor)
    if tensor.dim() == 4:
        fan_out = shape[0] * shape[2] * shape[3]
        return torch.randn(shape, generator=generator) * math.sqrt(2.0 / fan_out)
    uniform = torch.rand(shape, generator=generator)
    if name.endswith("running_var"):
        return 0.5 + uniform
    if name.endswith("weight"):  # BatchNorm scale: small, so the residual sums stay moderate
        return 0.2 + 0.4 * uniform
    return (uniform - 0.5) * 0.2  # BatchNorm bias and running mean


def resnet50_state(seed: int = RESNET_SEED) -> dict[str, torch.Tensor]:
    """A ResNet-50 state dict (torchvision names, no fc) filled deterministically from `seed`."""
    from wsss.core.torchvision_compat import import_torchvision

    template = import_torchvision().models.resnet50().state_dict()
    generator = torch.Generator().manual_seed(seed)
    return {name: _fill(name, template[name], generator)
            for name in sorted(template) if not name.startswith("fc.")}


def ours_from_torchvision(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """torchvision ResNet names -> ResNetBackbone names (its stem is Sequential(conv1, bn1, ...))."""
    renamed = {}
    for name, value in state.items():
        if name.startswith("conv1."):
            name = "stem.0." + name.removeprefix("conv1.")
        elif name.startswith("bn1."):
            name = "stem.1." + name.removeprefix("bn1.")
        renamed[name] = value
    return renamed


def sipe_head_weights(num_foreground: int, seed: int) -> dict[str, torch.Tensor]:
    """SIPE's new layers, in the references' names: side1..side4 projections and the classifier."""
    shapes = {"side1.weight": (128, 256, 1, 1), "side2.weight": (128, 512, 1, 1),
              "side3.weight": (256, 1024, 1, 1), "side4.weight": (256, 2048, 1, 1),
              "classifier.weight": (num_foreground, 2048, 1, 1)}
    return {name: seeded_normal(shape, seed + i, std=math.sqrt(1.0 / shape[1]))
            for i, (name, shape) in enumerate(sorted(shapes.items()))}


def sipe_heads_as_ours(heads: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The references' side1..4 names -> SIPEClassifier's side.0..3."""
    return {(f"side.{int(name[4]) - 1}.weight" if name.startswith("side") else name): value
            for name, value in heads.items()}


# SIPE's structure analysis groups positions by cosine similarity. A random ResNet's ReLU features
# share one large positive component, so every position looks alike and every seed goes to one
# class. The golden SIPE cases therefore calibrate the weights on the test image (the script
# measures the statistics with the reference network and stores them; the test reuses them):
# layer 4's last BatchNorm centres its branch, and each side projection drops its level's mean
# direction. Both sides then run the same, now discriminative, weights.
LAST_BN = "layer4.2.bn3"
LAST_BN_SCALE = 3.0


def calibrated_resnet_state(state: dict[str, torch.Tensor], bn_mean: np.ndarray, bn_var: np.ndarray
                            ) -> dict[str, torch.Tensor]:
    """The state with layer 4's last BatchNorm normalising its measured statistics (torchvision names)."""
    state = dict(state)
    state[f"{LAST_BN}.running_mean"] = torch.as_tensor(bn_mean, dtype=torch.float32)
    state[f"{LAST_BN}.running_var"] = torch.as_tensor(bn_var, dtype=torch.float32)
    state[f"{LAST_BN}.weight"] = torch.full_like(state[f"{LAST_BN}.weight"], LAST_BN_SCALE)
    state[f"{LAST_BN}.bias"] = torch.zeros_like(state[f"{LAST_BN}.bias"])
    return state


def centred_side_weights(heads: dict[str, torch.Tensor], centres: list[np.ndarray]) -> dict[str, torch.Tensor]:
    """side1..side4 weights W − (W·c) cᵀ for each level's unit mean direction c (references' names)."""
    heads = dict(heads)
    for level, centre in enumerate(centres, start=1):
        weight = heads[f"side{level}.weight"][:, :, 0, 0]
        c = torch.as_tensor(centre, dtype=torch.float32)
        heads[f"side{level}.weight"] = (weight - (weight @ c)[:, None] * c[None])[..., None, None]
    return heads
