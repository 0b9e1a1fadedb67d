"""DeepLab V2 / V3 heads, label conditioning, prediction and the segmentation loss."""

import io

import numpy as np
import pytest
import torch

from wsss.core.params import BackboneParams
from wsss.data.base import IGNORE_INDEX
from wsss.models.backbones import build_backbone
from wsss.models.deeplab import DeepLab, condition_on_labels, predict, segmentation_loss

TINY = BackboneParams(name="tiny", output_stride=8, pretrained=False)


@pytest.mark.parametrize("head, rates, branches", [("v2", None, 4), ("v2", [1, 2], 2), ("v3", None, None)])
def test_logits_come_at_the_output_stride_with_one_channel_per_class(head, rates, branches):
    torch.manual_seed(0)
    model = DeepLab(build_backbone(TINY), 5, head, rates).eval()
    with torch.no_grad():
        logits = model(torch.randn(2, 3, 64, 80))
    assert logits.shape == (2, 5, 8, 10)
    if branches is not None:
        assert len(model.head.branches) == branches
        assert [b.dilation[0] for b in model.head.branches] == (rates or [6, 12, 18, 24])
    backbone, new = model.parameter_groups()
    assert len(backbone) + len(new) == len(list(model.parameters()))
    buffer = io.BytesIO()
    torch.save(model.state_dict(), buffer)
    buffer.seek(0)
    again = DeepLab(build_backbone(TINY), 5, head, rates)
    again.load_state_dict(torch.load(buffer, weights_only=True))  # checkpoints are plain state dicts


def test_bad_head_or_rates_raise():
    with pytest.raises(ValueError, match="head must be one of"):
        DeepLab(build_backbone(TINY), 3, "v9")
    with pytest.raises(ValueError, match="rates must be positive"):
        DeepLab(build_backbone(TINY), 3, "v2", [0, 6])


def test_label_conditioning_keeps_only_background_and_labelled_classes():
    logits = torch.zeros(4, 2, 2)
    logits[2] = 5.0  # an unlabelled class would win everywhere
    logits[3, 0, 0] = 1.0
    conditioned = condition_on_labels(logits, torch.tensor([3]))
    assert torch.isinf(conditioned[1]).all() and torch.isinf(conditioned[2]).all()
    assert conditioned.argmax(0).tolist() == [[3, 0], [0, 0]]


def test_predict_averages_scales_and_flips_into_label_conditioned_probabilities():
    torch.manual_seed(0)
    model = DeepLab(build_backbone(TINY), 4, "v2", [1, 2]).eval()
    image = torch.randn(3, 48, 40)
    probs = predict(model, image, scales=(1.0, 0.5), hflip=True, class_ids=torch.tensor([2]))
    assert probs.shape == (4, 48, 40)
    assert torch.allclose(probs.sum(0), torch.ones(48, 40), atol=1e-5)
    assert probs[1].max() == 0 and probs[3].max() == 0
    # a symmetric image gives a mirror-symmetric prediction when flips are averaged
    symmetric = torch.cat([image[..., :20], image[..., :20].flip(-1)], dim=-1)
    fused = predict(model, symmetric, hflip=True)
    assert torch.allclose(fused, fused.flip(-1), atol=1e-5)
    with pytest.raises(ValueError, match="at least one scale"):
        predict(model, image, scales=())


def test_segmentation_loss_is_the_cross_entropy_of_the_labelled_pixels_only():
    torch.manual_seed(0)
    model = DeepLab(build_backbone(TINY), 3, "v2", [1]).eval()
    images = torch.randn(2, 3, 32, 32)
    labels = torch.randint(0, 3, (2, 32, 32))
    labels[:, :16] = IGNORE_INDEX
    with torch.no_grad():
        loss = segmentation_loss(model, images, labels)["loss"]
        logits = torch.nn.functional.interpolate(model(images), size=(32, 32), mode="bilinear", align_corners=False)
        log_probs = logits.log_softmax(dim=1).permute(0, 2, 3, 1)[labels != IGNORE_INDEX]  # N x 3
        expected = -log_probs.gather(1, labels[labels != IGNORE_INDEX][:, None]).mean()
    assert torch.isclose(loss, expected, atol=1e-6)
    with torch.no_grad():  # nothing labelled: no finite loss to learn from
        assert np.isnan(segmentation_loss(model, images, torch.full_like(labels, IGNORE_INDEX))["loss"].item())
