"""PAMR (docs/methods.md §4) against a direct per-neighbour loop and a hand computation, and its properties."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from wsss.methods.pamr import PAMR, pamr

RING = [(dy, dx) for dy in (-1, 0, 1) for dx in (-1, 0, 1) if (dy, dx) != (0, 0)]


def loop_pamr(image, mask, num_iter, dilations, sigma="all_dilations"):
    """Straight from the definition, one neighbour at a time, in float64."""
    image, mask = image.double(), mask.double()
    height, width = image.shape[-2:]
    mask = F.interpolate(mask, size=(height, width), mode="bilinear", align_corners=True)

    def shifted(x, dy, dx):  # x at (y + dy, x + dx), replicate padding
        pad = max(abs(dy), abs(dx))
        padded = F.pad(x, (pad, pad, pad, pad), mode="replicate")
        return padded[..., pad + dy: pad + dy + height, pad + dx: pad + dx + width]

    window_dilations = dilations if sigma == "all_dilations" else (1,)
    window = torch.stack([shifted(image, dy * d, dx * d) for d in window_dilations
                          for dy in (-1, 0, 1) for dx in (-1, 0, 1)])  # 9·|D| x B x 3 x H x W
    sigma = window.std(dim=0)  # per colour channel, unbiased
    offsets = [(dy * d, dx * d) for d in dilations for dy, dx in RING]
    kernels = []
    for dy, dx in offsets:
        ratio = -(image - shifted(image, dy, dx)).abs() / (1e-8 + 0.1 * sigma)  # B x 3 x H x W
        kernels.append(ratio.mean(dim=1))
    weights = torch.softmax(torch.stack(kernels, dim=1), dim=1)  # B x P x H x W
    for _ in range(num_iter):
        refined = torch.zeros_like(mask)
        for k, (dy, dx) in enumerate(offsets):
            refined += weights[:, k: k + 1] * shifted(mask, dy, dx)
        mask = refined
    return mask


@pytest.mark.parametrize("sigma", ["all_dilations", "dilation1"])
@pytest.mark.parametrize("num_iter, dilations", [(10, (1, 2, 4, 8, 12, 24)), (3, (1, 3))])
def test_pamr_equals_the_per_neighbour_loop(num_iter, dilations, sigma):
    generator = torch.Generator().manual_seed(0)
    image = torch.rand(2, 3, 20, 27, generator=generator)
    mask = torch.rand(2, 4, 7, 9, generator=generator)
    expected = loop_pamr(image, mask, num_iter, dilations, sigma).float()
    with torch.sparse.check_sparse_tensor_invariants():  # the CSR matrix must be well formed
        out = PAMR(num_iter, dilations, sigma)(image, mask)
    assert out.shape == (2, 4, 20, 27)
    torch.testing.assert_close(out, expected, atol=1e-5, rtol=0)
    torch.testing.assert_close(pamr(image, mask, num_iter, dilations, sigma), out)


def hand_affinity(image, dilations, sigma_dilations):
    """PAMR's a_ij by plain loops over pixels, channels and window cells (numpy, float64)."""
    channels, height, width = image.shape

    def at(c, y, x):  # replicate padding: coordinates clamped to the image
        return image[c, min(max(y, 0), height - 1), min(max(x, 0), width - 1)]

    ring = [(dy, dx) for dy in (-1, 0, 1) for dx in (-1, 0, 1) if (dy, dx) != (0, 0)]
    weights = np.zeros((height * width, 8 * len(dilations)))
    for y in range(height):
        for x in range(width):
            sigma = []
            for c in range(channels):
                sample = [at(c, y + dy * d, x + dx * d) for d in sigma_dilations
                          for dy in (-1, 0, 1) for dx in (-1, 0, 1)]  # the centre once per dilation
                mean = sum(sample) / len(sample)
                sigma.append((sum((v - mean) ** 2 for v in sample) / (len(sample) - 1)) ** 0.5)
            logits = []
            for d in dilations:
                for dy, dx in ring:
                    logits.append(sum(-abs(image[c, y, x] - at(c, y + dy * d, x + dx * d)) / (1e-8 + 0.1 * sigma[c])
                                      for c in range(channels)) / channels)
            logits = np.array(logits)
            weights[y * width + x] = np.exp(logits - logits.max()) / np.exp(logits - logits.max()).sum()
    return weights


@pytest.mark.parametrize("sigma, sigma_dilations", [("all_dilations", (1, 2, 5)), ("dilation1", (1,))])
def test_affinity_equals_a_hand_computation_of_sigma_and_weights(sigma, sigma_dilations):
    """σ over the pooled 3x3 windows of every dilation (the reference's LocalStDev(dilations)) or
    over the dilation-1 window; the image is small enough for the dilations to hit the border."""
    image = np.random.default_rng(5).random((3, 5, 7))
    image[:, 1:3, 2:5] += 2.0  # a bright patch: σ varies from pixel to pixel
    expected = hand_affinity(image, (1, 2, 5), sigma_dilations)
    out = PAMR(1, (1, 2, 5), sigma).affinity(torch.from_numpy(image)[None])
    np.testing.assert_allclose(out[0].numpy(), expected, atol=1e-12, rtol=1e-9)


def test_the_sigma_modes_differ():
    generator = torch.Generator().manual_seed(6)
    image, mask = torch.rand(1, 3, 16, 18, generator=generator), torch.rand(1, 3, 8, 9, generator=generator)
    assert (PAMR(sigma="all_dilations")(image, mask) - PAMR(sigma="dilation1")(image, mask)).abs().max() > 1e-3


@pytest.mark.parametrize("sigma", ["all_dilations", "dilation1"])
def test_affine_change_of_intensity_changes_nothing(sigma):
    generator = torch.Generator().manual_seed(1)
    image = torch.rand(1, 3, 16, 18, generator=generator)
    mask = torch.rand(1, 3, 8, 9, generator=generator)
    refine = PAMR(sigma=sigma)
    torch.testing.assert_close(refine(2.5 * image - 0.3, mask), refine(image, mask), atol=1e-5, rtol=0)


def test_constants_and_sums_are_kept():
    image = torch.rand(2, 3, 12, 14, generator=torch.Generator().manual_seed(2))
    torch.testing.assert_close(PAMR()(image, torch.full((2, 2, 6, 7), 0.7)), torch.full((2, 2, 12, 14), 0.7))
    probs = torch.softmax(torch.randn(2, 3, 12, 14, generator=torch.Generator().manual_seed(3)), dim=1)
    torch.testing.assert_close(PAMR()(image, probs).sum(dim=1), torch.ones(2, 12, 14))


def test_refined_mask_follows_a_colour_edge():
    image = torch.zeros(1, 3, 24, 24)
    image[:, 0, :, 12:] = 1.0  # red right half
    image[:, 2, :, :12] = 1.0  # blue left half
    image += 0.02 * torch.rand(1, 3, 24, 24, generator=torch.Generator().manual_seed(4))
    truth = torch.zeros(24, 24, dtype=torch.bool)
    truth[:, 12:] = True
    mask = torch.zeros(1, 2, 24, 24)
    mask[0, 1, :, 8:] = 1.0  # foreground starts 4 px too early
    mask[0, 0] = 1.0 - mask[0, 1]
    mask = F.avg_pool2d(mask, 5, 1, 2, count_include_pad=False)  # and is blurred

    def iou(scores):
        pred = scores[0].argmax(dim=0).bool()
        return ((pred & truth).sum() / (pred | truth).sum()).item()

    before, after = iou(mask), iou(PAMR()(image, mask))
    assert after > before + 0.1, (before, after)


def test_zero_iterations_only_resize():
    mask = torch.rand(1, 2, 4, 5)
    out = PAMR(0)(torch.rand(1, 3, 8, 10), mask)
    torch.testing.assert_close(out, F.interpolate(mask, size=(8, 10), mode="bilinear", align_corners=True))


def test_bad_input_is_refused():
    image = torch.rand(2, 3, 8, 8)
    nan_mask = torch.rand(2, 2, 8, 8)
    nan_mask[1, 0, 3, 3] = float("nan")
    with pytest.raises(ValueError, match="NaN"):
        PAMR()(image, nan_mask)
    with pytest.raises(ValueError, match="batch"):
        PAMR()(image, torch.rand(1, 2, 8, 8))
    with pytest.raises(ValueError, match="B x 3 x H x W"):
        PAMR()(image[0], torch.rand(2, 8, 8))
    with pytest.raises(ValueError, match="B x C x h x w"):
        PAMR()(image, torch.rand(2, 8, 8))
    with pytest.raises(ValueError, match="num_iter"):
        PAMR(-1)
    with pytest.raises(ValueError, match="dilations"):
        PAMR(10, [])
    with pytest.raises(ValueError, match="dilations"):
        PAMR(10, [1, 0])
    with pytest.raises(ValueError, match="sigma must be one of all_dilations, dilation1"):
        PAMR(10, [1], "dilation2")
