"""PAMR: pixel-adaptive mask refinement (Araslanov & Roth, "Single-stage semantic segmentation
from image labels", CVPR 2020; reference: visinf/1-stage-wseg, models/mods/pamr.py; docs/methods.md §4).

Iterated, image-guided local averaging of a score map M (B x C x h x w, first resized bilinearly,
align_corners=True, to the image grid H x W). Pixel i looks at the 8 neighbours j of a 3x3 window
at every dilation d (48 for d in {1, 2, 4, 8, 12, 24}; replicate padding, i.e. clamped coordinates):

    k_ij = mean over colour channels of −|I_i − I_j| / (1e-8 + 0.1·σ_i),   a_ij = softmax_j(k_ij),
    M_i ← Σ_j a_ij · M_j    (num_iter times),

σ_i being the unbiased standard deviation of each colour channel over a local sample (`sigma`):
- "all_dilations" (default, the reference's LocalStDev(dilations)): the 3x3 windows of every
  dilation pooled, 9·|D| values, the centre I_i counted once per dilation;
- "dilation1": i's 3x3 window at dilation 1 alone (9 values; this project's earlier reading).
Dividing by σ makes the result independent of an affine change a·I + b (a > 0).

All dilations are one vectorised pass. A cached gather index (H·W x P, P = 8 per dilation) holds
the flat position of every neighbour of every pixel for all dilations at once: the differences
I_j − I_i take one gather of the image, and give σ too (the pooled windows are exactly these
neighbours plus |D| copies of the centre, whose difference is 0). The weights a_ij then form a
sparse, row-stochastic H·W x H·W matrix with the same pattern, so an iteration is one sparse-dense
product, i.e. the gather and the weighted sum fused in one kernel, instead of the reference's
padding and convolution per dilation (or a dense B x C x H·W x P gather per iteration, several
times slower: benchmarks/bench_pamr.py).

Memory: the affinities need one B x 3 x H·W x P buffer, once (7 MB for a quarter-resolution VOC
image, 94x125, with P = 48; 108 MB at 375x500); the matrix holds B·H·W·P weights and int32
column indices; an iteration needs only B x C x H·W. The index structures, cached for the last 4
image sizes and devices, take 16·H·W·P bytes each (9 MB at 94x125, 144 MB at 375x500).
Intended for inference: call it under torch.no_grad().
"""

from __future__ import annotations

import functools
import warnings
from typing import NamedTuple, Sequence, get_args

import torch
import torch.nn as nn
import torch.nn.functional as F

from wsss.core.params import PamrSigma

_RING = tuple((dy, dx) for dy in (-1, 0, 1) for dx in (-1, 0, 1) if (dy, dx) != (0, 0))
SIGMA_MODES = get_args(PamrSigma)  # the sample σ is taken over (module docstring)


def neighbour_index(height: int, width: int, offsets: Sequence[tuple[int, int]],
                    device: torch.device) -> torch.Tensor:
    """(H·W) x P int32: flat index of pixel (y + dy, x + dx) for every offset, clamped (= replicate padding)."""
    off = torch.tensor(offsets, device=device, dtype=torch.int32)
    ys = (torch.arange(height, device=device, dtype=torch.int32).view(-1, 1, 1) + off[:, 0]).clamp_(0, height - 1)
    xs = (torch.arange(width, device=device, dtype=torch.int32).view(1, -1, 1) + off[:, 1]).clamp_(0, width - 1)
    return (ys * width + xs).view(height * width, len(offsets))


class _Pattern(NamedTuple):
    index: torch.Tensor  # N x P int32, neighbour positions
    crow: torch.Tensor  # N + 1 int32, CSR row pointers of the averaging matrix
    col: torch.Tensor  # nnz int32, its column indices: sorted and distinct within each row
    slot: torch.Tensor  # N x P int64, the stored entry that neighbour p of pixel i adds its weight to


@functools.lru_cache(maxsize=4)
def _pattern(height: int, width: int, offsets: tuple[tuple[int, int], ...], device: torch.device) -> _Pattern:
    """Sparsity pattern of the averaging matrix, built once per image size.

    Clamping at the border sends several offsets to one pixel; a CSR matrix wants each row's
    columns sorted and distinct, so a pixel's neighbour positions are sorted and equal ones
    merged into one stored entry (`slot` says which).
    """
    index = neighbour_index(height, width, offsets, device)
    positions, order = index.sort(dim=1)
    first = torch.ones_like(index, dtype=torch.bool)  # first of a run of equal positions
    first[:, 1:] = positions[:, 1:] != positions[:, :-1]
    rank = first.cumsum(dim=1)  # 1-based rank of each distinct neighbour within its pixel's row
    crow = F.pad(rank[:, -1].cumsum(dim=0), (1, 0))
    entry = rank.sub_(1).add_(crow[:-1, None])  # stored entry of each sorted neighbour
    col = positions.new_empty(int(crow[-1])).scatter_(0, entry.flatten(), positions.flatten())  # CSR order
    slot = torch.empty_like(entry).scatter_(1, order, entry)
    return _Pattern(index, crow.to(torch.int32), col, slot)


def _gather(x: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
    """B x K x N, N x P -> B x K x N x P: every neighbour of every pixel in one index_select."""
    batch, channels, n = x.shape
    return x.reshape(batch * channels, n).index_select(1, index.flatten()).view(batch, channels, *index.shape)


class PAMR(nn.Module):
    """Pixel-adaptive mask refinement; see the module docstring for the formula."""

    def __init__(self, num_iter: int = 10, dilations: Sequence[int] = (1, 2, 4, 8, 12, 24),
                 sigma: str = "all_dilations"):
        super().__init__()
        if sigma not in SIGMA_MODES:
            raise ValueError(f"PAMR sigma must be one of {', '.join(SIGMA_MODES)}, got {sigma!r}")
        if not isinstance(num_iter, int) or num_iter < 0:
            raise ValueError(f"PAMR num_iter must be an integer >= 0, got {num_iter!r}")
        dilations = list(dilations)
        if not dilations or any(not isinstance(d, int) or d < 1 for d in dilations):
            raise ValueError(f"PAMR dilations must be a non-empty list of positive integers, got {dilations}")
        self.num_iter = num_iter
        self.dilations = tuple(dilations)
        self.sigma = sigma
        self.offsets = tuple((dy * d, dx * d) for d in dilations for dy, dx in _RING)

    def affinity(self, image: torch.Tensor) -> torch.Tensor:
        """B x 3 x H x W image -> B x (H·W) x P softmax weights a_ij, neighbours in `self.offsets` order."""
        height, width = image.shape[-2:]
        flat = image.flatten(2)
        centre = flat.unsqueeze(3)  # I_i, B x 3 x N x 1
        index = _pattern(height, width, self.offsets, image.device).index
        diff = _gather(flat, index).sub_(centre)  # I_j − I_i, B x 3 x N x P
        if self.sigma == "all_dilations":  # every dilation's window: the P neighbours and |D| centres
            sigma = _std_around_centre(diff, len(self.dilations))
        else:  # the dilation-1 window: its 8 neighbours and the centre
            ring = _gather(flat, neighbour_index(height, width, _RING, image.device)).sub_(centre)
            sigma = _std_around_centre(ring, 1)
        # −|I_i − I_j| / (1e-8 + 0.1·σ_i), averaged over channels; in place: one B x 3 x N x P buffer.
        kernel = diff.abs_().mul_(-1.0 / (image.shape[1] * (1e-8 + 0.1 * sigma)))
        return F.softmax(kernel.sum(dim=1), dim=2)

    def forward(self, image: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """image: B x 3 x H x W; mask: B x C x h x w scores. Returns the refined B x C x H x W."""
        _check_inputs(image, mask)
        dtype = torch.float64 if torch.float64 in (image.dtype, mask.dtype) else torch.float32
        image, mask = image.to(dtype), mask.to(dtype)
        batch, classes = mask.shape[:2]
        height, width = image.shape[-2:]
        mask = F.interpolate(mask, size=(height, width), mode="bilinear", align_corners=True)
        if self.num_iter == 0:
            return mask
        n = height * width
        matrix = self._averaging_matrix(image, _pattern(height, width, self.offsets, image.device))
        scores = mask.flatten(2).transpose(1, 2).reshape(batch * n, classes)  # (B·H·W) x C
        for _ in range(self.num_iter):
            scores = matrix @ scores  # all 8·len(dilations) neighbours, one product
        return scores.view(batch, n, classes).transpose(1, 2).reshape(batch, classes, height, width)

    def _averaging_matrix(self, image: torch.Tensor, pattern: _Pattern) -> torch.Tensor:
        """The (B·H·W) x (B·H·W) sparse CSR matrix of a_ij: block-diagonal, one block per image."""
        batch, n, nnz = image.shape[0], pattern.index.shape[0], len(pattern.col)
        weights = self.affinity(image).reshape(batch, -1)
        # Merge the weights of neighbours clamped onto the same pixel into their stored entry.
        values = weights.new_zeros(batch, nnz).scatter_add_(1, pattern.slot.flatten().expand(batch, -1), weights)
        crow, col = pattern.crow, pattern.col
        if batch > 1:
            itype = torch.int32 if batch * nnz < 2**31 else torch.int64  # int32 while it reaches
            shift = torch.arange(batch, device=image.device, dtype=itype).view(-1, 1)
            crow = torch.cat([(crow[:-1].to(itype) + shift * nnz).flatten(), crow[-1:].to(itype) * batch])
            col = (col.to(itype) + shift * n).flatten()
        with warnings.catch_warnings():  # "sparse CSR support is in beta": the product used is stable
            warnings.simplefilter("ignore", UserWarning)
            return torch.sparse_csr_tensor(crow, col, values.flatten(), (batch * n, batch * n))


def pamr(image: torch.Tensor, mask: torch.Tensor, num_iter: int = 10,
         dilations: Sequence[int] = (1, 2, 4, 8, 12, 24), sigma: str = "all_dilations") -> torch.Tensor:
    """Functional form of `PAMR(num_iter, dilations, sigma)(image, mask)`."""
    return PAMR(num_iter, dilations, sigma)(image, mask)


def _std_around_centre(diff: torch.Tensor, centres: int) -> torch.Tensor:
    """Unbiased std (as torch.std) of the sample {I_j} ∪ `centres` copies of I_i, from the
    differences I_j − I_i (B x 3 x N x K) -> B x 3 x N x 1.

    var = (Σd² − (Σd)²/n) / (n − 1), n = K + centres: two reductions, no second K-wide buffer.
    Shifted by the centre, a member of the sample, the subtraction loses at most log10(n / centres)
    (here ≈ 1) of float32's 7 digits, even when the centre is an outlier.
    """
    n = diff.shape[3] + centres
    total = diff.sum(dim=3, keepdim=True)
    squares = torch.linalg.vector_norm(diff, dim=3, keepdim=True).square_()
    return squares.sub_(total.square_().div_(n)).clamp_(min=0).div_(n - 1).sqrt_()


def _check_inputs(image: torch.Tensor, mask: torch.Tensor) -> None:
    if image.ndim != 4 or image.shape[1] != 3:
        raise ValueError(f"PAMR image must be B x 3 x H x W, got shape {tuple(image.shape)}")
    if mask.ndim != 4:
        raise ValueError(f"PAMR mask must be B x C x h x w, got shape {tuple(mask.shape)}")
    if image.shape[0] != mask.shape[0]:
        raise ValueError(f"PAMR image and mask batch sizes differ: {image.shape[0]} vs {mask.shape[0]}")
    if image.device != mask.device:
        raise ValueError(f"PAMR image and mask are on different devices: {image.device} vs {mask.device}")
    if image.numel() == 0 or mask.numel() == 0:
        raise ValueError(f"PAMR got an empty image or mask: {tuple(image.shape)}, {tuple(mask.shape)}")
    if not image.is_floating_point():
        raise ValueError(f"PAMR image must be a floating-point tensor, got {image.dtype}")
    if not torch.isfinite(mask).all():
        raise ValueError("PAMR mask contains NaN or Inf values")
    if not torch.isfinite(image).all():
        raise ValueError("PAMR image contains NaN or Inf values")
