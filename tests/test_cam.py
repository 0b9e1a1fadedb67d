import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from wsss.core.errors import ParamsError
from wsss.core.params import BackboneParams, SeedsParams
from wsss.methods.cam import CAMClassifier, multiscale_cam
from wsss.methods.seed_methods import seed_losses
from wsss.models.backbones import build_backbone
from wsss.train.loop import make_sgd, train_seed_classifier


def _backbone(name="tiny", stride=16, pretrained=False):
    return build_backbone(BackboneParams(name=name, output_stride=stride, pretrained=pretrained))


@pytest.mark.parametrize("name, stride", [("tiny", 16), ("tiny", 8), ("resnet50", 16), ("efficientnet_lite0", 16)])
def test_backbone_strides(name, stride):
    net = _backbone(name, stride).eval()
    with torch.no_grad():
        features = net(torch.zeros(1, 3, 64, 96))
    assert [f.shape[1] for f in features] == net.out_channels
    assert [(64 // s, 96 // s) for s in net.strides] == [tuple(f.shape[-2:]) for f in features]
    assert net.strides[-1] == stride


@pytest.mark.parametrize("dilate, receptive_field", [(False, 99), (True, 147)])
def test_tiny_dilation_sets_the_level4_receptive_field(dilate, receptive_field):
    # The input pixels that reach one level-4 position (gradient support) span the receptive field.
    torch.manual_seed(0)
    net = build_backbone(BackboneParams(name="tiny", output_stride=8, dilate=dilate, pretrained=False,
                          checkpoint=None)).eval()
    image = torch.randn(1, 3, 256, 256, requires_grad=True)
    level4 = net(image)[-1]
    level4[0, :, 16, 16].sum().backward()
    cols = (image.grad[0].abs().sum(dim=(0, 1)) > 0).nonzero().flatten()
    assert int(cols.max() - cols.min()) + 1 == receptive_field


@pytest.mark.parametrize("name, stride", [("tiny", 8), ("resnet50", 16), ("resnet50", 8), ("efficientnet_lite0", 16)])
def test_undilated_backbone_removes_the_same_strides_without_dilating(name, stride):
    """`seeds.backbone.dilate: false` (the references' ResNet-50): same strides and weights, no
    convolution dilated."""
    dilated, undilated = (build_backbone(BackboneParams(name=name, output_stride=stride, pretrained=False,
                                                        dilate=dilate)).eval() for dilate in (True, False))
    with torch.no_grad():
        shapes = [[f.shape for f in net(torch.zeros(1, 3, 64, 96))] for net in (dilated, undilated)]
    assert shapes[0] == shapes[1] and undilated.strides == dilated.strides
    assert {k: v.shape for k, v in undilated.state_dict().items()} == {k: v.shape for k, v in dilated.state_dict().items()}
    dilations = [{m.dilation for m in net.modules() if isinstance(m, nn.Conv2d)} for net in (dilated, undilated)]
    assert dilations[0] != {(1, 1)} and dilations[1] == {(1, 1)}


def test_efficientnet_lite0_loads_packaged_imagenet_weights():
    plain = _backbone("efficientnet_lite0", pretrained=False)
    pretrained = _backbone("efficientnet_lite0", pretrained=True)
    key = "net._conv_stem.weight"
    assert not torch.equal(plain.state_dict()[key], pretrained.state_dict()[key])


def test_local_checkpoint_loading_and_mismatch(tmp_path):
    source = _backbone()
    torch.save(source.state_dict(), tmp_path / "tiny.pt")
    loaded = build_backbone(BackboneParams(name="tiny", output_stride=16, pretrained=False,
                             checkpoint=str(tmp_path / "tiny.pt")))
    assert all(torch.equal(a, b) for a, b in zip(source.state_dict().values(), loaded.state_dict().values()))
    with pytest.raises(ParamsError, match="checkpoint"):
        build_backbone(BackboneParams(name="tiny", output_stride=16, pretrained=False,
                        checkpoint=str(tmp_path / "none.pt")))
    torch.save({"foo": torch.zeros(1)}, tmp_path / "bad.pt")
    with pytest.raises(ParamsError, match="does not fit"):
        build_backbone(BackboneParams(name="tiny", output_stride=16, pretrained=False,
                        checkpoint=str(tmp_path / "bad.pt")))


def test_logits_are_the_average_of_class_maps_before_relu():
    torch.manual_seed(0)
    model = CAMClassifier(_backbone(), 5).eval()
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        raw = model.classifier(model.backbone(x)[-1])
        assert torch.allclose(model(x), raw.mean(dim=(2, 3)), atol=1e-5)
        assert torch.equal(model.class_maps(x), F.relu(raw))


def test_multiscale_cam_normalised_per_class_and_flip_consistent():
    torch.manual_seed(0)
    model = CAMClassifier(_backbone(), 4).eval()
    model.classifier.weight.data *= 1e4  # activations large against the +1e-5 of the normalisation
    image = torch.randn(3, 40, 56)
    maps = multiscale_cam(model, image, torch.tensor([2, 4]), scales=(1.0, 0.5), hflip=True)
    assert maps.shape == (2, 40, 56)
    assert maps.min() >= 0
    assert torch.allclose(maps.flatten(1).max(1).values, torch.ones(2), atol=1e-3)
    mirrored = multiscale_cam(model, image.flip(-1), torch.tensor([2, 4]), scales=(1.0, 0.5), hflip=True)
    assert torch.allclose(maps, mirrored.flip(-1), atol=1e-4)
    assert multiscale_cam(model, image, torch.tensor([], dtype=torch.long), (1.0,), True).shape == (0, 40, 56)


def test_training_learns_a_separable_toy_problem():
    """Class 1 images are bright on the left, class 2 on the right: loss must fall clearly."""
    torch.manual_seed(0)
    images = torch.randn(32, 3, 32, 32) * 0.1
    labels = torch.zeros(32, 2)
    images[:16, :, :, :16] += 2.0
    labels[:16, 0] = 1
    images[16:, :, :, 16:] += 2.0
    labels[16:, 1] = 1
    loader = torch.utils.data.DataLoader(list(zip(images, labels)), batch_size=8, shuffle=True)
    model = CAMClassifier(_backbone(), 2)
    backbone, new = model.parameter_groups()
    optimizer = make_sgd([(backbone, 1.0), (new, 10.0)], lr=0.01, momentum=0.9, weight_decay=1e-4)
    losses = []
    result = train_seed_classifier(model, loader, 6, optimizer, torch.device("cpu"),
                                   seed_losses(SeedsParams(method="cam"), []), freeze_bn=False,
                                   on_step=lambda step, m: losses.append(m["loss"]))
    assert result["steps"] == 24 and len(losses) == 24
    assert result["final_epoch_loss"] < 0.5 * losses[0]
