"""IRN's random walk (docs/methods.md §2), as a sparse problem.

Pixels i, j closer than ``radius`` (squared distance < radius², as IRN's path index) get the
affinity a_ij = (1 − max_{k on the path i→j} B_k)^β, where B is the class-boundary map and the
path is every pixel within distance 1 of the segment i→j (both ends included); a_ii = 1. The
transition matrix T = A / colsum(A), and the walk propagates the maps x·(1 − B) by
T^(2^exp_times): IRN computes that with a dense (hw)² matrix squared exp_times times.

Only pairs within the radius are non-zero, so here T is a CSR matrix with at most
(2·|offsets| + 1) entries per row and the walk is 2^exp_times sparse products: memory grows with
hw·r², never (hw)², and the result is the same (tests/test_random_walk.py checks it against the
dense form). Because A is symmetric, x·T is computed as D⁻¹A applied to xᵀ (D = the row sums).
"""

from __future__ import annotations

import functools
import warnings

import torch
import torch.nn.functional as F


@functools.lru_cache(maxsize=16)
def forward_offsets(radius: int) -> tuple[tuple[int, int], ...]:
    """The half of the neighbourhood IRN searches: (0, dx > 0) and (dy > 0, any dx), dy²+dx² < r²."""
    if radius < 2:
        raise ValueError(f"random walk radius must be >= 2, got {radius}")
    offsets = [(0, dx) for dx in range(1, radius)]
    offsets += [(dy, dx) for dy in range(1, radius) for dx in range(-radius + 1, radius)
                if dy * dy + dx * dx < radius * radius]
    return tuple(offsets)


@functools.lru_cache(maxsize=256)
def path_pixels(dy: int, dx: int) -> tuple[tuple[int, int], ...]:
    """Pixels of the path from (0, 0) to (dy, dx): those of the bounding box within distance 1
    of the line through both ends (IRN's definition; both ends included)."""
    length_sq = dy * dy + dx * dx
    return tuple(
        (y, x)
        for y in range(min(0, dy), max(0, dy) + 1)
        for x in range(min(0, dx), max(0, dx) + 1)
        if (dy * x - dx * y) ** 2 / length_sq < 1
    )


def _shifted(padded: torch.Tensor, dy: int, dx: int, pad: int, height: int, width: int) -> torch.Tensor:
    """padded[..., y + dy, x + dx] for every (y, x) of the unpadded grid."""
    return padded[..., pad + dy: pad + dy + height, pad + dx: pad + dx + width]


def pair_affinities(boundary: torch.Tensor, radius: int = 5, beta: float = 10.0) -> torch.Tensor:
    """(1 − max B on the path i → i + o)^β for each forward offset o.

    boundary: ... x H x W; returns ... x P x H x W (P = len(forward_offsets(radius))), 0 where
    i + o leaves the image. Differentiable in B: IRN learns B through it.
    """
    height, width = boundary.shape[-2:]
    pad = radius
    # Outside the image the boundary is 1, so pairs leaving the image get affinity 0.
    padded = F.pad(boundary, (pad, pad, pad, pad), value=1.0)
    affinities = []
    for dy, dx in forward_offsets(radius):
        on_path = torch.stack([_shifted(padded, py, px, pad, height, width) for py, px in path_pixels(dy, dx)])
        affinity = (1.0 - on_path.amax(dim=0)).clamp_min(0.0)
        affinities.append(affinity if beta == 1.0 else affinity**beta)
    return torch.stack(affinities, dim=-3)


def transition_matrix(boundary: torch.Tensor, radius: int = 5, beta: float = 10.0) -> torch.Tensor:
    """D⁻¹A as an N x N CSR matrix (N = H·W, row-major pixels): row j holds a(j, i) / Σ_i a(j, i)."""
    height, width = boundary.shape
    device = boundary.device
    forward = forward_offsets(radius)
    half = pair_affinities(boundary, radius, beta)  # a(i, i + o)
    pad = radius
    padded = F.pad(half, (pad, pad, pad, pad))
    # a(i, i - o) = a(i - o, i): the forward affinity stored at the other end of the pair.
    backward = torch.stack([_shifted(padded[k], -dy, -dx, pad, height, width) for k, (dy, dx) in enumerate(forward)])
    offsets = [(0, 0), *forward, *[(-dy, -dx) for dy, dx in forward]]
    values = torch.cat([torch.ones_like(boundary)[None], half, backward])  # P x H x W
    # Row-major neighbours in increasing column order, as CSR wants.
    order = sorted(range(len(offsets)), key=lambda k: offsets[k][0] * width + offsets[k][1])
    offsets = [offsets[k] for k in order]
    values = values[order].flatten(1).T  # N x P
    ys = torch.arange(height, device=device).repeat_interleave(width)
    xs = torch.arange(width, device=device).repeat(height)
    dy = torch.tensor([o[0] for o in offsets], device=device)
    dx = torch.tensor([o[1] for o in offsets], device=device)
    ny, nx = ys[:, None] + dy, xs[:, None] + dx
    inside = (ny >= 0) & (ny < height) & (nx >= 0) & (nx < width)
    values = values / values.sum(dim=1, keepdim=True)  # outside pairs are 0 already
    index_dtype = torch.int32 if height * width < 2**31 else torch.int64
    counts = inside.sum(dim=1)
    crow = torch.zeros(height * width + 1, dtype=index_dtype, device=device)
    crow[1:] = counts.cumsum(0)
    columns = (ny * width + nx)[inside].to(index_dtype)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Sparse CSR tensor support is in beta")
        return torch.sparse_csr_tensor(crow, columns, values[inside], (height * width, height * width),
                                       check_invariants=False)


def random_walk(maps: torch.Tensor, boundary: torch.Tensor, radius: int = 5, beta: float = 10.0,
                exp_times: int = 8) -> torch.Tensor:
    """Propagate maps (C x H x W) along the affinities of a boundary map (H x W, values in [0, 1]).

    Returns x·T^(2^exp_times) with x = maps·(1 − B), as C x H x W, on the inputs' device.
    """
    if maps.ndim != 3 or boundary.ndim != 2 or maps.shape[1:] != boundary.shape:
        raise ValueError(f"random walk: maps {tuple(maps.shape)} must be C x H x W over a boundary map "
                         f"of the same H x W, got boundary {tuple(boundary.shape)}")
    if not (torch.isfinite(maps).all() and torch.isfinite(boundary).all()):
        raise ValueError("random walk: maps or boundary map contain NaN or infinite values")
    if exp_times < 0:
        raise ValueError(f"random walk: exp_times must be >= 0, got {exp_times}")
    channels, height, width = maps.shape
    boundary = boundary.float().clamp(0.0, 1.0)
    transition = transition_matrix(boundary, radius, beta)
    state = (maps.float() * (1.0 - boundary)).reshape(channels, -1).T.contiguous()  # N x C
    for _ in range(2**exp_times):
        state = transition @ state
    return state.T.reshape(channels, height, width)
