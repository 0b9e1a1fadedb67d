import numpy as np
import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from wsss.data.base import SegmentationDataset
from wsss.data.transforms import ClassificationDataset, SaliencyClassificationDataset
from wsss.errors import DataError
from wsss.models.backbones import IMAGENET_MEAN, IMAGENET_STD, build_backbone
from wsss.models.eps import (EPSClassifier, eps_losses, estimated_saliency, multiscale_eps,
                             saliency_overlap, select_maps)
from wsss.models.seed_methods import seed_losses
from wsss.training import make_sgd, to_device, train_seed_classifier


def _model(num_foreground=3):
    torch.manual_seed(0)
    backbone = build_backbone({"name": "tiny", "output_stride": 16, "pretrained": False, "checkpoint": None})
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
    probs, _, saliency = _scene()
    overlap = saliency_overlap(probs[:, :3], saliency)
    assert torch.allclose(overlap, torch.tensor([[1.0, 1 / 3, 0.0]]))


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
    params = {"seeds": {"method": "eps", "eps": {"strategy": "adaptive", "tau": 0.4, "lam": 0.5,
                                                  "predefined_background": []}}}
    result = train_seed_classifier(model, loader, 1, optimizer, torch.device("cpu"),
                                   seed_losses(params, ["background", "a", "b"]), freeze_bn=True,
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
    assert multiscale_eps(model, image, torch.tensor([], dtype=torch.long)).shape == (0, 40, 56)
