"""PAMR against a direct per-neighbour loop, and its properties."""

import pytest
import torch
import torch.nn.functional as F

from wsss.refine.pamr import PAMR

DILATIONS = (1, 2, 4)


def loop_pamr(image, mask, num_iter, dilations):
    """Straight from the definition: pad, slice each neighbour, one at a time."""
    height, width = image.shape[-2:]
    mask = F.interpolate(mask, size=(height, width), mode="bilinear", align_corners=True)
    ring = [(dy, dx) for dy in (-1, 0, 1) for dx in (-1, 0, 1) if (dy, dx) != (0, 0)]

    def shifted(x, dy, dx, pad):
        padded = F.pad(x, (pad, pad, pad, pad), mode="replicate")
        return padded[..., pad + dy: pad + dy + height, pad + dx: pad + dx + width]

    window = torch.stack([image] + [shifted(image, dy, dx, 1) for dy, dx in ring], dim=2)
    sigma = window.std(dim=2)
    offsets = [(dy * d, dx * d) for d in dilations for dy, dx in ring]
    pad = max(dilations)
    kernels = [(-(image - shifted(image, dy, dx, pad)).abs() / (1e-8 + 0.1 * sigma)).mean(dim=1)
               for dy, dx in offsets]
    weights = torch.softmax(torch.stack(kernels, dim=1), dim=1)  # B x P x H x W
    for _ in range(num_iter):
        mask = sum(weights[:, k: k + 1] * shifted(mask, dy, dx, pad) for k, (dy, dx) in enumerate(offsets))
    return mask


def test_pamr_equals_the_per_neighbour_loop():
    generator = torch.Generator().manual_seed(0)
    image = torch.rand(2, 3, 20, 27, generator=generator)
    mask = torch.rand(2, 4, 7, 9, generator=generator)
    expected = loop_pamr(image, mask, 5, DILATIONS)
    torch.testing.assert_close(PAMR(5, DILATIONS)(image, mask), expected, atol=1e-5, rtol=1e-5)


def test_affine_change_of_intensity_changes_nothing():
    generator = torch.Generator().manual_seed(1)
    image = torch.rand(1, 3, 16, 18, generator=generator)
    mask = torch.rand(1, 3, 16, 18, generator=generator)
    pamr = PAMR(10)
    torch.testing.assert_close(pamr(2.5 * image - 0.3, mask), pamr(image, mask), atol=1e-5, rtol=1e-5)


def test_constants_and_sums_are_kept():
    image = torch.rand(1, 3, 12, 14)
    torch.testing.assert_close(PAMR(10)(image, torch.full((1, 2, 12, 14), 0.7)), torch.full((1, 2, 12, 14), 0.7))
    probs = torch.softmax(torch.randn(1, 3, 12, 14), dim=1)
    torch.testing.assert_close(PAMR(10)(image, probs).sum(dim=1), torch.ones(1, 12, 14))


def test_refined_mask_follows_a_colour_edge():
    image = torch.zeros(1, 3, 24, 24)
    image[..., 12:] = 1.0
    image += 0.02 * torch.rand(1, 3, 24, 24)
    truth = torch.zeros(24, 24, dtype=torch.bool)
    truth[:, 12:] = True
    mask = torch.zeros(1, 2, 24, 24)
    mask[0, 1, :, 9:] = 1.0  # foreground starts 3 px too early
    mask[0, 0] = 1.0 - mask[0, 1]
    mask = F.avg_pool2d(mask, 5, 1, 2, count_include_pad=False)  # and is blurred

    def iou(m):
        pred = m[0].argmax(dim=0).bool()
        return (pred & truth).sum() / (pred | truth).sum()

    assert iou(PAMR(10, (1, 2, 4))(image, mask)) > iou(mask) + 0.05


def test_zero_iterations_only_resize():
    mask = torch.rand(1, 2, 4, 5)
    out = PAMR(0)(torch.rand(1, 3, 8, 10), mask)
    torch.testing.assert_close(out, F.interpolate(mask, size=(8, 10), mode="bilinear", align_corners=True))


def test_bad_input_is_refused():
    with pytest.raises(ValueError, match="NaN"):
        PAMR()(torch.rand(1, 3, 8, 8), torch.full((1, 2, 8, 8), float("nan")))
    with pytest.raises(ValueError, match="batch"):
        PAMR()(torch.rand(2, 3, 8, 8), torch.rand(1, 2, 8, 8))
    with pytest.raises(ValueError, match="dilations"):
        PAMR(10, [])
