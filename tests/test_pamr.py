"""PAMR (METHODS.md §4) against a direct per-neighbour loop, and its properties."""

import pytest
import torch
import torch.nn.functional as F

from wsss.refine.pamr import PAMR, pamr

RING = [(dy, dx) for dy in (-1, 0, 1) for dx in (-1, 0, 1) if (dy, dx) != (0, 0)]


def loop_pamr(image, mask, num_iter, dilations):
    """Straight from the definition, one neighbour at a time, in float64."""
    image, mask = image.double(), mask.double()
    height, width = image.shape[-2:]
    mask = F.interpolate(mask, size=(height, width), mode="bilinear", align_corners=True)

    def shifted(x, dy, dx):  # x at (y + dy, x + dx), replicate padding
        pad = max(abs(dy), abs(dx))
        padded = F.pad(x, (pad, pad, pad, pad), mode="replicate")
        return padded[..., pad + dy: pad + dy + height, pad + dx: pad + dx + width]

    window = torch.stack([shifted(image, dy, dx) for dy in (-1, 0, 1) for dx in (-1, 0, 1)])  # 9 x B x 3 x H x W
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


@pytest.mark.parametrize("num_iter, dilations", [(10, (1, 2, 4, 8, 12, 24)), (3, (1, 3))])
def test_pamr_equals_the_per_neighbour_loop(num_iter, dilations):
    generator = torch.Generator().manual_seed(0)
    image = torch.rand(2, 3, 20, 27, generator=generator)
    mask = torch.rand(2, 4, 7, 9, generator=generator)
    expected = loop_pamr(image, mask, num_iter, dilations).float()
    with torch.sparse.check_sparse_tensor_invariants():  # the CSR matrix must be well formed
        out = PAMR(num_iter, dilations)(image, mask)
    assert out.shape == (2, 4, 20, 27)
    torch.testing.assert_close(out, expected, atol=1e-5, rtol=0)
    torch.testing.assert_close(pamr(image, mask, num_iter, dilations), out)


def test_affine_change_of_intensity_changes_nothing():
    generator = torch.Generator().manual_seed(1)
    image = torch.rand(1, 3, 16, 18, generator=generator)
    mask = torch.rand(1, 3, 8, 9, generator=generator)
    refine = PAMR()
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
