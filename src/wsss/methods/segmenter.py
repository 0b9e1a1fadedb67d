"""The trained segmentation network as one object: what `evaluate_segmentation`, `wsss predict`,
the MLflow model (`wsss.tracking.registry`) and the gallery all apply to an image, so their label maps are
the same to the last pixel.

A `Segmenter` is the DeepLab with everything needed to rebuild and apply it: the backbone, head
and ASPP rates, the class names, and the inference settings (`segment.infer`: scales, flip, dense
CRF with `refine.crf`'s parameters).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch

from wsss.core.params import (
    BackboneParams,
    CrfParams,
    SegmentInferParams,
    SegmentParams,
)

FORMAT_VERSION = 1  # of `config()`: what a logged model's segmenter.json holds


@dataclass(frozen=True)
class InferenceSettings:
    """`segment.infer` (scales, flip, CRF on or off) and the CRF's parameters (`refine.crf`)."""

    scales: tuple[float, ...] = (1.0,)
    hflip: bool = False
    crf: bool = False
    crf_params: dict = field(default_factory=dict)  # wsss.core.params.CrfParams' keys; {} = its defaults

    @classmethod
    def from_params(cls, infer: SegmentInferParams, crf: CrfParams) -> "InferenceSettings":
        return cls(tuple(float(s) for s in infer.scales), infer.hflip, infer.crf, crf.model_dump())

    def replace(self, scales=None, hflip=None, crf=None) -> "InferenceSettings":
        """These settings with the given ones changed (None keeps a setting)."""
        return InferenceSettings(tuple(float(s) for s in scales) if scales is not None else self.scales,
                                 self.hflip if hflip is None else bool(hflip),
                                 self.crf if crf is None else bool(crf), self.crf_params)


@dataclass
class Segmenter:
    """A DeepLab on a device, with its class names and inference settings."""

    network: torch.nn.Module
    class_names: list[str]
    architecture: dict  # {"backbone": seeds.backbone, "head", "rates"}: rebuilds the network
    settings: InferenceSettings = field(default_factory=InferenceSettings)
    device: torch.device = torch.device("cpu")

    @classmethod
    def build(cls, architecture: dict, class_names: list[str], settings: InferenceSettings,
              device: torch.device | str = "cpu") -> "Segmenter":
        """The network of `architecture`, untrained (load weights with `load_state_dict`)."""
        from wsss.models.backbones import build_backbone, untrained
        from wsss.models.deeplab import DeepLab

        backbone = build_backbone(untrained(BackboneParams(**architecture["backbone"])))
        network = DeepLab(backbone, len(class_names), architecture["head"], architecture["rates"])
        return cls(network.eval(), list(class_names), architecture, settings, torch.device("cpu")).to(device)

    @classmethod
    def from_project(cls, backbone: BackboneParams, segment: SegmentParams, crf: CrfParams, class_names: list[str],
                     weights: str | Path, device: torch.device | str = "cpu",
                     remedy: str = "re-run the stage that writes it") -> "Segmenter":
        """The segmentation stage's network as params.yaml describes it (`seeds.backbone`, `segment`,
        `refine.crf`), with its checkpoint (a broken checkpoint is an error naming the file and `remedy`)."""
        from wsss.core.io import load_weights

        architecture = {"backbone": backbone.model_dump(), "head": segment.head, "rates": segment.rates}
        segmenter = cls.build(architecture, class_names, InferenceSettings.from_params(segment.infer, crf))
        load_weights(segmenter.network, weights, remedy)
        return segmenter.to(device)

    def to(self, device: torch.device | str) -> "Segmenter":
        self.device = torch.device(device)
        self.network = self.network.to(self.device).eval()
        return self

    def config(self) -> dict:
        """What rebuilds this segmenter besides its weights (JSON-able)."""
        return {"format": FORMAT_VERSION, "architecture": self.architecture, "class_names": self.class_names,
                "settings": {**asdict(self.settings), "scales": list(self.settings.scales)}}

    @classmethod
    def from_config(cls, config: dict, device: torch.device | str = "cpu") -> "Segmenter":
        if config.get("format") != FORMAT_VERSION:
            raise ValueError(f"segmenter config format {config.get('format')!r}; this wsss reads {FORMAT_VERSION}")
        settings = dict(config["settings"], scales=tuple(config["settings"]["scales"]))
        return cls.build(config["architecture"], config["class_names"], InferenceSettings(**settings), device)

    def probabilities(self, image: np.ndarray, settings: InferenceSettings | None = None) -> np.ndarray:
        """Class probabilities (K x H x W float32) of one RGB uint8 image (H x W x 3), averaged over
        the scales and flip, after the dense CRF when it is on."""
        from wsss.data.transforms import to_tensor
        from wsss.methods.crf import crf_from_probabilities
        from wsss.models.deeplab import predict

        settings = settings or self.settings
        image = check_image(image)
        probs = predict(self.network, to_tensor(image).to(self.device), settings.scales, settings.hflip)
        probs = probs.cpu().numpy()
        if settings.crf:
            probs = crf_from_probabilities(image, probs, CrfParams(**settings.crf_params))
        return probs

    def segment(self, image: np.ndarray, settings: InferenceSettings | None = None) -> np.ndarray:
        """The label map (H x W uint8, class ids 0..K-1; never 255) of one RGB uint8 image."""
        return self.probabilities(image, settings).argmax(axis=0).astype(np.uint8)


def check_image(image) -> np.ndarray:
    """An RGB uint8 H x W x 3 array, or a ValueError saying what the input is instead."""
    image = np.asarray(image)
    if image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f"expected an RGB image of shape H x W x 3, got shape {image.shape}")
    if image.dtype != np.uint8:
        if image.size and (np.issubdtype(image.dtype, np.integer) or np.issubdtype(image.dtype, np.floating)) \
                and np.all(np.mod(image, 1) == 0) and image.min() >= 0 and image.max() <= 255:
            image = image.astype(np.uint8)  # JSON transports whole numbers as int64
        else:
            raise ValueError(f"expected uint8 pixel values 0..255, got dtype {image.dtype}")
    if image.shape[0] < 1 or image.shape[1] < 1:
        raise ValueError(f"expected a non-empty image, got shape {image.shape}")
    return np.ascontiguousarray(image)

