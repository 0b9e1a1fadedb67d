import torch

from wsss.core.torchvision_compat import import_torchvision


def test_torchvision_imports_and_runs_on_this_torch():
    tv = import_torchvision()
    net = tv.models.resnet18(weights=None).eval()
    with torch.no_grad():
        assert net(torch.zeros(1, 3, 32, 32)).shape == (1, 1000)
    from torchvision.transforms import v2

    flipped = v2.RandomHorizontalFlip(p=1.0)(torch.arange(6.0).view(1, 2, 3))
    assert flipped[0, 0].tolist() == [2.0, 1.0, 0.0]
    boxes = torch.tensor([[0.0, 0.0, 2.0, 2.0], [1.0, 1.0, 3.0, 3.0]])
    assert torch.allclose(tv.ops.box_iou(boxes, boxes)[0, 1], torch.tensor(1 / 7))


def test_second_import_is_a_noop():
    assert import_torchvision() is import_torchvision()
