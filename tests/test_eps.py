import numpy as np
import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from wsss.core.errors import DataError
from wsss.core.params import BackboneParams, EpsParams, SeedsParams
from wsss.data.base import SegmentationDataset
from wsss.data.transforms import (
    IMAGENET_MEAN,
    IMAGENET_STD,
    ClassificationDataset,
    SaliencyClassificationDataset,
)
from wsss.methods.eps import (
    EPSClassifier,
    eps_losses,
    estimated_saliency,
    multiscale_eps,
    saliency_on_grid,
    saliency_overlap,
    select_maps,
)
from wsss.methods.seed_methods import seed_losses
from wsss.models.backbones import build_backbone
from wsss.train.loop import make_sgd, to_device, train_seed_classifier


def _model(num_foreground=3):
    torch.manual_seed(0)
    backbone = build_backbone(BackboneParams(name="tiny", output_stride=16, pretrained=False))
    return EPSClassifier(backbone, num_foreground)


def _scene():
    """4 x 4 grid, saliency = left half. Class 1 lies inside it (O = 1), class 2 mostly outside
    it (O = 1/3), class 3 is not labelled. Returns probs 1 x 4 x 4 x 4 (bg last), labels, saliency."""
    saliency = torch.zeros(1, 4, 4)
    saliency[:, :, :2] = 1
    probs = torch.zeros(1, 4, 4, 4)
    probs[0, 0, :2, :2] = 0.9
    probs[0, 1, 3, 1:] = 0.8
    probs[0, 2, 0, 3] = 0.7
    probs[0, 3] = 1 - probs[0, :3].sum(0)
    labels = torch.tensor([[1.0, 1.0, 0.0]])
    return probs, labels, saliency


def test_overlap_is_fraction_of_class_map_inside_saliency_and_zero_when_empty():
    """O = |B_i ∩ B_s| / (|B_i| + 1e-4·h·w), the reference's denominator (h·w = 16 here)."""
    probs, _, saliency = _scene()
    overlap = saliency_overlap(probs[:, :3], saliency)
    eps = 1e-4 * 16
    torch.testing.assert_close(overlap, torch.tensor([[4 / (4 + eps), 1 / (3 + eps), 0.0]]))


def test_empty_class_maps_give_zero_overlap_and_a_finite_loss():
    """No pixel of any class map above 0.5 (and an empty saliency map): overlap 0, never NaN,
    so every labelled class goes to the background under the adaptive strategy."""
    probs = torch.full((2, 4, 5, 6), 0.25)  # C = 3 classes and background, all equal
    for saliency in (torch.zeros(2, 5, 6), torch.ones(2, 5, 6)):
        overlap = saliency_overlap(probs[:, :3], saliency)
        assert torch.equal(overlap, torch.zeros(2, 3))
        labels = torch.tensor([[1.0, 0.0, 1.0], [0.0, 1.0, 0.0]])
        fg, bg = select_maps(probs, labels, saliency, "adaptive", tau=0.0)
        assert torch.equal(fg, torch.zeros(2, 5, 6))
        torch.testing.assert_close(bg, probs[:, 3] + torch.einsum("bc,bchw->bhw", labels, probs[:, :3]))

    class Flat(nn.Module):  # every map equal: softmax 1 / (C + 1) everywhere
        def forward(self, images):
            maps = torch.zeros(images.shape[0], 4, 2, 2, requires_grad=True)
            return maps[:, :3].mean(dim=(2, 3)), maps

    losses = eps_losses(Flat(), torch.zeros(2, 3, 32, 32), torch.tensor([[1.0, 0, 0], [0, 0, 1]]),
                        torch.rand(2, 32, 32))
    assert all(torch.isfinite(v) for v in losses.values())


def test_saliency_is_resized_to_the_map_grid_by_nearest_neighbour():
    """F.interpolate(mode="nearest") as the reference: output pixel i takes input floor(i · in / out)."""
    saliency = torch.arange(10 * 12, dtype=torch.float32).view(1, 10, 12) / 120
    rows, cols = [0, 2, 5, 7], [0, 4, 8]  # floor(i · 10 / 4), floor(j · 12 / 3)
    expected = saliency[:, rows][:, :, cols]
    torch.testing.assert_close(saliency_on_grid(saliency, (4, 3)), expected, rtol=0, atol=0)
    torch.testing.assert_close(saliency_on_grid(saliency[:, None], (4, 3)), expected, rtol=0, atol=0)
    torch.testing.assert_close(saliency_on_grid(saliency, (10, 12)), saliency, rtol=0, atol=0)
    binary = (saliency > 0.5).float()
    assert set(saliency_on_grid(binary, (3, 5)).unique().tolist()) <= {0.0, 1.0}  # no blended values


def test_saliency_loss_is_taken_against_the_nearest_resized_saliency():
    saliency = torch.rand(1, 16, 16, generator=torch.Generator().manual_seed(3))
    logits = torch.randn(1, 3, 4, 4, generator=torch.Generator().manual_seed(4))

    class Fixed(nn.Module):
        def forward(self, images):
            return logits[:, :2].mean(dim=(2, 3)), logits

    labels = torch.tensor([[1.0, 1.0]])
    losses = eps_losses(Fixed(), torch.zeros(1, 3, 16, 16), labels, saliency, "naive", lam=0.5)
    target = saliency[:, ::4, ::4]  # nearest: rows and columns 0, 4, 8, 12
    fg, bg = select_maps(F.softmax(logits, dim=1), labels, target, "naive")
    torch.testing.assert_close(losses["sal"], (target - estimated_saliency(fg, bg, 0.5)).pow(2).mean())


@pytest.mark.parametrize("lam", [0.0, 0.3, 0.5, 1.0])
def test_perfect_localisation_gives_zero_saliency_loss(lam):
    saliency = torch.zeros(1, 6, 6)
    saliency[:, 1:4, 2:5] = 1
    probs = torch.zeros(1, 3, 6, 6)
    probs[0, 1] = saliency[0]  # the labelled class 2 covers exactly the salient region
    probs[0, 2] = 1 - saliency[0]
    labels = torch.tensor([[0.0, 1.0]])
    for strategy in ("adaptive", "naive", "predefined", "none"):
        fg, bg = select_maps(probs, labels, saliency, strategy)
        assert torch.allclose(estimated_saliency(fg, bg, lam), saliency[0]), strategy


def test_perfect_localisation_through_eps_losses():
    saliency = torch.zeros(1, 8, 8)
    saliency[:, 2:6, 1:5] = 1

    class Stub(nn.Module):  # raw maps so peaked that the softmax is one-hot
        def forward(self, images):
            maps = torch.stack([saliency[0], torch.zeros(8, 8), 1 - saliency[0]])[None] * 60.0
            return maps[:, :2].mean(dim=(2, 3)), maps

    for lam in (0.5, 0.2):
        losses = eps_losses(Stub(), torch.zeros(1, 3, 8, 8), torch.tensor([[1.0, 0.0]]), saliency, lam=lam)
        assert losses["sal"].item() < 1e-10
        assert torch.allclose(losses["loss"], losses["cls"] + losses["sal"])


def test_adaptive_sends_low_overlap_class_to_background():
    probs, labels, saliency = _scene()
    fg, bg = select_maps(probs, labels, saliency, "adaptive", tau=0.4)
    assert torch.allclose(fg, probs[:, 0])
    assert torch.allclose(bg, probs[:, 1] + probs[:, 3])
    fg, bg = select_maps(probs, labels, saliency, "adaptive", tau=0.3)  # O = 1/3 now exceeds tau
    assert torch.allclose(fg, probs[:, 0] + probs[:, 1])
    assert torch.allclose(bg, probs[:, 3])


def test_predefined_sends_listed_classes_to_background():
    probs, labels, saliency = _scene()
    fg, bg = select_maps(probs, labels, saliency, "predefined", background_classes=[1, 3])
    assert torch.allclose(fg, probs[:, 1])  # class 3 listed but not labelled: ignored
    assert torch.allclose(bg, probs[:, 0] + probs[:, 3])
    with pytest.raises(ValueError, match="1..3"):
        select_maps(probs, labels, saliency, "predefined", background_classes=[4])


def test_naive_sends_every_labelled_class_to_foreground():
    probs, labels, saliency = _scene()
    fg, bg = select_maps(probs, labels, saliency, "naive")
    assert torch.allclose(fg, probs[:, 0] + probs[:, 1])
    assert torch.allclose(bg, probs[:, 3])


def test_none_uses_only_the_background_map():
    probs, labels, saliency = _scene()
    other = probs.clone()
    other[:, :3] = other[:, :3].flip(-1)  # move the class maps, keep the background map
    for lam in (0.0, 0.5, 0.9):
        expected = 1 - probs[:, 3]
        for p in (probs, other):
            fg, bg = select_maps(p, labels, saliency, "none")
            assert torch.allclose(estimated_saliency(fg, bg, lam), expected)


def test_invalid_strategy_raises_naming_the_choices():
    probs, labels, saliency = _scene()
    with pytest.raises(ValueError, match="adaptive, naive, predefined, none"):
        select_maps(probs, labels, saliency, "oracle")
    with pytest.raises(ValueError, match="adaptive"):
        eps_losses(_model(), torch.zeros(1, 3, 32, 32), torch.ones(1, 3), torch.ones(1, 32, 32), "oracle")


def test_classification_loss_never_reaches_the_background_row():
    model = _model(3)
    images = torch.randn(2, 3, 32, 32)
    labels = torch.tensor([[1.0, 0.0, 1.0], [0.0, 1.0, 0.0]])
    saliency = torch.rand(2, 32, 32)  # at image size: resized to the 2 x 2 map grid
    logits, maps = model(images)
    assert maps.shape == (2, 4, 2, 2) and torch.allclose(logits, maps[:, :3].mean(dim=(2, 3)))
    losses = eps_losses(model, images, labels, saliency, "naive")
    losses["cls"].backward(retain_graph=True)
    grad = model.classifier.weight.grad
    assert grad[3].abs().sum() == 0 and grad[:3].abs().sum() > 0
    model.zero_grad(set_to_none=True)
    losses["sal"].backward()
    assert model.classifier.weight.grad[3].abs().sum() > 0


class _InMemory(SegmentationDataset):
    """Random images whose saliency is the red channel; "nosal" has no saliency map."""

    class_names = ["background", "a", "b"]

    def __init__(self, ids=("x", "y")):
        self.ids = list(ids)

    def load_image(self, image_id):
        return np.random.default_rng(len(image_id) + ord(image_id[0])).integers(0, 256, (30, 40, 3), dtype=np.uint8)

    def load_mask(self, image_id):
        return None

    def labels(self, image_id):
        return np.array([2])

    def load_saliency(self, image_id):
        if image_id == "nosal":
            return None
        return self.load_image(image_id)[..., 0].astype(np.float32) / 255.0


def test_saliency_dataset_crops_image_and_saliency_identically():
    source = _InMemory()
    dataset = SaliencyClassificationDataset(source, (32, 40), 32, hflip=True, seed=1)
    plain = ClassificationDataset(source, (32, 40), 32, hflip=True, seed=1)
    for epoch in range(3):
        dataset.set_epoch(epoch)
        plain.set_epoch(epoch)
        for index in range(2):
            image, (labels, saliency) = dataset[index]
            assert image.shape == (3, 32, 32) and saliency.shape == (32, 32)
            assert labels.tolist() == [0.0, 1.0]
            assert torch.equal(image, plain[index][0])  # same augmentation as without saliency
            padded = (image == 0).all(0)
            red = (image[0] * IMAGENET_STD[0] + IMAGENET_MEAN[0]).clamp(0, 1)
            assert torch.all(saliency[padded] == 0)
            assert torch.allclose(saliency[~padded], red[~padded], atol=2.5 / 255)
            assert padded.any()  # images at most 30 pixels high are padded to 32


def test_saliency_dataset_names_the_image_without_saliency():
    dataset = SaliencyClassificationDataset(_InMemory(["x", "nosal"]), (32, 32), 32, hflip=False)
    with pytest.raises(DataError, match="nosal"):
        dataset[1]


def test_train_eps_reports_all_losses_with_tuple_targets():
    model = _model(2)
    items = [(torch.randn(3, 32, 32), (torch.tensor([1.0, 0.0]), torch.rand(32, 32))) for _ in range(4)]
    loader = torch.utils.data.DataLoader(items, batch_size=2)
    backbone, new = model.parameter_groups()
    optimizer = make_sgd([(backbone, 1.0), (new, 10.0)], lr=0.01, momentum=0.9, weight_decay=1e-4)
    logged = []
    seeds = SeedsParams(method="eps", eps=EpsParams(strategy="adaptive", tau=0.4, lam=0.5))
    result = train_seed_classifier(model, loader, 1, optimizer, torch.device("cpu"),
                                   seed_losses(seeds, ["background", "a", "b"]), freeze_bn=True,
                                   on_step=lambda step, m: logged.append(m))
    assert result["steps"] == 2 and {"loss", "cls", "sal"} <= set(logged[0])
    moved = to_device((torch.zeros(1), torch.ones(1)), torch.device("cpu"))
    assert isinstance(moved, tuple) and len(moved) == 2


def test_multiscale_eps_contract():
    model = _model(3).eval()
    image = torch.randn(3, 40, 56)
    maps = multiscale_eps(model, image, torch.tensor([1, 3]), scales=(1.0, 0.5), hflip=True)
    assert maps.shape == (2, 40, 56)
    assert maps.min() >= 0 and maps.max() <= 1
    # one scale, no flip: softmax over C + 1, labelled channels, upsampled, max-normalised
    single = multiscale_eps(model, image, torch.tensor([2]), scales=(1.0,), hflip=False)
    with torch.no_grad():
        probs = F.softmax(model.class_maps(image[None]), dim=1)[:, 1:2]
    expected = F.interpolate(probs, size=(40, 56), mode="bilinear", align_corners=False)[0]
    assert torch.allclose(single, expected / (expected.max() + 1e-5), atol=1e-5)
    assert multiscale_eps(model, image, torch.tensor([], dtype=torch.long), (1.0,), True).shape == (0, 40, 56)
