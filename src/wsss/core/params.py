"""params.yaml as one typed model tree: every knob's name, default, range, unit and one-line doc.

`load()` reads params.yaml once, before any compute, and returns a frozen `Params`; a stage's
function receives the sections it reads (`params.seeds`, `params.refine.irn.walk`, ...), never
the file or a dict. A typo or an out-of-range value fails with the key path, what was expected
and, for an unknown key, the nearest known one. `wsss params schema` writes the same tree as a
JSON Schema (params.schema.json), which params.yaml names for editor completion and hover docs.

Checks that need more than the file (the data set on disk, a CUDA device, ImageNet weights) are
the stages' own (wsss.stages.preflight); everything that params.yaml alone decides is here.
"""

from __future__ import annotations

import difflib
import hashlib
import json
import re
from pathlib import Path
from typing import Annotated, Any, Literal, Union

import yaml
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from wsss.core.errors import ParamsError

PARAMS_FILE = "params.yaml"
SCHEMA_FILE = "params.schema.json"


class Section(BaseModel):
    """A params.yaml section: unknown keys are errors, YAML types are taken as they are (no
    "1" -> 1), and a loaded section is read-only."""

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True, validate_default=True)

    def get(self, key: str) -> Any:
        """The value (or sub-section) at a dotted key below this section, e.g. "irn.walk.radius"."""
        node: Any = self
        for part in key.split("."):
            if not isinstance(node, Section) or part not in type(node).model_fields:
                raise ParamsError(f"params.yaml: no key '{key}'")
            node = getattr(node, part)
        return node


def knob(default: Any, doc: str, *, unit: str | None = None, **constraints: Any) -> Any:
    """A field with its default, one-line doc and unit (in the JSON Schema, as `unit`)."""
    extra = {"unit": unit} if unit else None
    return Field(default, description=doc, json_schema_extra=extra, **constraints)


def _list(default: list, doc: str, *, unit: str | None = None) -> Any:
    extra = {"unit": unit} if unit else None
    return Field(default_factory=lambda: list(default), description=doc, json_schema_extra=extra)


UnitFloat = Annotated[float, Field(ge=0.0, le=1.0)]
PositiveInt = Annotated[int, Field(ge=1)]
PositiveFloat = Annotated[float, Field(gt=0.0)]
AutoOrUnit = Union[Literal["auto"], UnitFloat]

# Choices that the methods check against too: one list each.
SEED_METHODS = ("cam", "eps", "sipe", "ae_sipe")
SeedMethod = Literal["cam", "eps", "sipe", "ae_sipe"]
RefineMethod = Literal["irn", "crf", "pamr", "none"]
PamrSigma = Literal["all_dilations", "dilation1"]  # docs/methods.md §4
SipeInference = Literal["per_flip", "reference"]  # docs/methods.md §5
CamBackground = Literal["labelled", "all"]
# The reference value of each of these is the second (docs/fidelity.md, "Differences found").
ImageResize = Literal["bilinear", "pil_bicubic"]  # docs/methods.md §1
SipeInferArgmax = Literal["labelled", "all"]  # docs/methods.md §5
SipeScaleNorm = Literal["after_fusion", "per_scale"]  # docs/methods.md §6
PairSources = Literal["all", "reference_window"]  # docs/methods.md §2
PtreclFormula = Literal["fg_share", "fg_margin", "vote"]  # docs/methods.md §8
BackboneName = Literal["tiny", "resnet50", "resnet101", "efficientnet_lite0"]
BackboneSource = Literal["classifier", "pretrained"]
SIPE_STEP_TOKENS = ("pr_is", "pamr")


def _range_pair(value: list) -> list:
    if len(value) != 2 or value[0] > value[1]:
        raise ValueError(f"must be [low, high] with low <= high, got {value}")
    return value


def parse_sipe_steps(value: str) -> str:
    """SIPE's prototype / PAMR sequence, "pr_is,pamr,pr_is": tokens pr_is / pamr ending in pr_is."""
    tokens = [t.strip() for t in value.split(",")]
    if tokens == [""]:
        raise ValueError("must be a non-empty comma-separated list of 'pr_is' / 'pamr', e.g. 'pr_is'")
    bad = [t for t in tokens if t not in SIPE_STEP_TOKENS]
    if bad:
        raise ValueError(f"{value!r} has unknown token(s) {bad}; allowed: 'pr_is', 'pamr' (e.g. 'pr_is' for SIPE, "
                         "'pr_is,pamr,pr_is' for AE-SIPE)")
    if tokens[-1] != "pr_is":
        raise ValueError(f"{value!r} must end with 'pr_is': the final IS-CAM comes from the prototypes of the "
                         "final seeds")
    return ",".join(tokens)


def _device(value: str) -> str:
    if not re.fullmatch(r"auto|cpu|cuda(:\d+)?", value):
        raise ValueError(f"must be auto, cpu, cuda or cuda:N, got {value!r}")
    return value


def _model_name(value: str | None) -> str | None:
    # a name that goes into models:/<name>/<version> URIs unquoted
    if value is not None and not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.-]*", value):
        raise ValueError(f"must be letters, digits, '_', '.' or '-' (it is part of models:/ URIs), got {value!r}")
    return value


RangePair = Annotated[list[float], Field(min_length=2, max_length=2), AfterValidator(_range_pair)]
IntRangePair = Annotated[list[int], Field(min_length=2, max_length=2), AfterValidator(_range_pair)]
Scales = Annotated[list[PositiveFloat], Field(min_length=1)]
Dilations = Annotated[list[PositiveInt], Field(min_length=1)]
SipeSteps = Annotated[str, AfterValidator(parse_sipe_steps)]


# ---------------------------------------------------------------------------------------- project


class ProjectParams(Section):
    device: Annotated[str, AfterValidator(_device)] = knob(
        "auto", "where stages run: auto (CUDA when present) | cpu | cuda | cuda:N")
    devices: Union[Literal["auto"], Annotated[int, Field(ge=1, le=1024)]] = knob(
        1, "processes per stage, one per device (DDP training, sharded per-image stages); auto = every visible GPU")
    precision: Literal["auto", "fp32", "bf16", "fp16"] = knob(
        "auto", "autocast dtype: auto = bf16 on a CUDA device that has it, else fp32")
    seed: int = knob(0, "seed of weight init, data order, augmentation and K-means init (a training "
                        "section's own seed, where set, replaces it for that network)", ge=0)
    num_workers: int = knob(0, "DataLoader worker processes", ge=0, le=64)
    progress: Union[Literal["auto"], bool] = knob(
        "auto", "progress bars: auto (stderr is a terminal and CI unset; else a line every 30 s) | true | "
                "false (none)")
    on_collapse: Literal["warn", "fail"] = knob(
        "warn", "collapsed outputs (all-zero seed maps, a loss of exactly 0, empty boundary maps): "
                "warn, or fail the stage")

    def seed_of(self, own: int | None) -> int:
        """A network's training seed: its training section's own ``seed``, else ``seed``."""
        return self.seed if own is None else own


# ------------------------------------------------------------------------------------------- data


class CooccurrencePair(Section):
    context: str = knob(..., "a context (stuff) class of the synthetic set, e.g. water")
    class_: str = Field(..., alias="class", description="an object class of the synthetic set, e.g. boat")
    rate: UnitFloat = knob(..., "P(context present | class present)")

    model_config = ConfigDict(populate_by_name=True)


DEFAULT_COOCCURRENCE = [("water", "boat", 0.9), ("railroad", "train", 0.9), ("sky", "aeroplane", 0.9),
                        ("grass", "cow", 0.85), ("road", "car", 0.8), ("indoor", "bottle", 0.8)]


class SyntheticParams(Section):
    """The embedded synthetic data set's generator (stage synthesize, wsss.data.synthetic)."""

    image_height: int = knob(128, "image height when image_sizes is null", unit="px", ge=32, le=4096)
    image_width: int = knob(160, "image width when image_sizes is null", unit="px", ge=32, le=4096)
    image_sizes: list[Annotated[list[Annotated[int, Field(ge=32, le=4096)]], Field(min_length=2, max_length=2)]] \
        | None = knob(None, "[[height, width], ...]: each image draws one (mixed sizes, as VOC / COCO); null: "
                            "image_height x image_width", unit="px", min_length=1)
    num_train: int = knob(400, "training images", ge=1)
    num_val: int = knob(100, "validation images", ge=0)
    seed: int = knob(0, "the generator's seed", ge=0)
    min_objects: int = knob(1, "fewest distinct object classes per image", ge=1, le=7)
    max_objects: int = knob(3, "most distinct object classes per image", ge=1, le=7)
    ignore_border: int = knob(1, "width of the 255 band along boundaries in SegmentationClass", unit="px",
                              ge=0, le=16)
    object_scale: Annotated[list[Annotated[float, Field(ge=1e-3, le=1.0)]], Field(min_length=2, max_length=2),
                            AfterValidator(_range_pair)] = _list(
        [0.35, 0.9], "[low, high] largest object dimension as a fraction of the shorter image side")
    cooccurrence: list[CooccurrencePair] = Field(
        default_factory=lambda: [CooccurrencePair(context=k, class_=c, rate=r) for k, c, r in DEFAULT_COOCCURRENCE],
        description="(context, class, rate): P(context present | class present) = rate")
    context_base_rate: UnitFloat = knob(0.4, "P(context present) when no class paired with it is")
    context_blob_prob: UnitFloat = knob(0.4, "chance of an extra irregular stuff blob in the ground")
    min_visible_fraction: float = knob(0.35, "of an instance's area left after occlusion and cropping",
                                       ge=0.01, le=1.0)
    min_contrast: float = knob(40.0, "mean |RGB| difference across an object's boundary", unit="0..255",
                               ge=0.0, le=255.0)
    saliency_missed_classes: list[str] = _list(["person"], "classes the saliency misses (what EPS handles)")
    saliency_missed_level: UnitFloat = knob(0.12, "missed classes get saliency in [0, this]")
    saliency_blur_sigma: float = knob(2.0, "blur of the saliency map", unit="px", ge=0.0, le=100.0)
    saliency_false_blob_rate: float = knob(0.6, "mean number of false background blobs per image",
                                           ge=0.0, le=100.0)
    saliency_noise: UnitFloat = knob(0.03, "std of the saliency map's additive noise")
    jpeg_quality: int = knob(95, "JPEG quality of the images", ge=1, le=100)

    @field_validator("cooccurrence")
    @classmethod
    def _pairs_once(cls, pairs: list) -> list:
        seen = set()
        for pair in pairs:
            if (pair.context, pair.class_) in seen:
                raise ValueError(f"pair ({pair.context}, {pair.class_}) listed twice")
            seen.add((pair.context, pair.class_))
        return pairs

    @model_validator(mode="after")
    def _objects(self) -> SyntheticParams:
        if self.min_objects > self.max_objects:
            raise ValueError(f"'data.synthetic.min_objects' {self.min_objects} exceeds 'data.synthetic.max_objects' "
                             f"{self.max_objects}")
        return self


class DataParams(Section):
    synthetic: SyntheticParams = Field(default_factory=SyntheticParams,
                                       description="the embedded synthetic data set (VOC layout)")


class DatasetParams(Section):
    name: Literal["synthetic", "voc", "coco"] = knob("synthetic", "the data set's layout")
    root: str = knob("data/synthetic/VOCdevkit/VOC2012", "its folder (relative: to the project)", min_length=1)
    train_split: str = knob("train", "split the networks train on (VOC: train_aug; COCO: train2014)")
    eval_split: str = knob("train", "split the pseudo masks are scored on (the WSSS protocol: training images)")
    val_split: str = knob("val", "split the segmentation network is scored on")
    mask_dir: str = knob("auto", "VOC: the masks' folder; auto = SegmentationClassAug when present")
    saliency: str | None = knob("SaliencyMaps", "saliency maps: a folder under root, an absolute folder, "
                                                "opencv[:method], or null")
    annotation_file: str | None = knob(None, "COCO: instances JSON (default annotations/instances_<split>.json)")
    label_dir: str | None = knob(None, "COCO: precomputed label PNGs instead of rendering the JSON")
    max_images: int | None = knob(None, "use only the first N images of each split (quick trials)", ge=1)

    @model_validator(mode="after")
    def _layout_keys(self) -> DatasetParams:
        if self.name == "coco" and self.mask_dir != "auto":
            raise ValueError("'dataset.mask_dir' applies to voc / synthetic; for coco use 'dataset.label_dir'")
        for key in ("annotation_file", "label_dir"):
            if self.name != "coco" and getattr(self, key) is not None:
                raise ValueError(f"'dataset.{key}' applies to coco only; set it to null for dataset.name "
                                 f"{self.name!r}")
        return self


# ------------------------------------------------------------------------------------------ seeds


class BackboneParams(Section):
    name: BackboneName = knob("tiny", "the feature extractor every network shares")
    pretrained: bool = knob(True, "ImageNet weights (torchvision's API; lite0: packaged weights)")
    checkpoint: str | None = knob(None, "a local state_dict file instead of downloaded weights")
    output_stride: Literal[8, 16, 32] = knob(16, "input size / feature-map size")
    dilate: bool = knob(True, "dilated convolutions where the output stride removes a stride (false: the stride "
                              "removed alone, as the references' ResNet-50)")


def _own_seed() -> Any:
    return knob(None, "this network's own seed of weight init, data order and augmentation (null: "
                      "project.seed): vary it alone to measure the noise this network adds", ge=0)


class ClassifierTrainParams(Section):
    epochs: int = knob(5, "passes over the training split", ge=1, le=1000)
    batch_size: int = knob(16, "global batch (over all processes)", ge=1, le=4096)
    lr: float = knob(0.1, "base learning rate (poly decay; 0 trains nothing)", gt=0.0, le=10.0)
    new_layer_lr_mult: float = knob(10.0, "learning-rate factor of the layers not in the backbone", ge=0.0, le=1000.0)
    momentum: float = knob(0.9, "SGD momentum", ge=0.0, le=1.0)
    weight_decay: float = knob(1e-4, "SGD weight decay", ge=0.0, le=1.0)
    resize_long: IntRangePair = _list([320, 640], "[low, high] random resize of the long side", unit="px")
    crop_size: int = knob(512, "square training crop", unit="px", ge=8, le=4096)
    hflip: bool = knob(True, "random horizontal flips")
    freeze_bn: bool = knob(True, "keep BN statistics and affine parameters fixed (pretrained backbones)")
    seed: int | None = _own_seed()


class SeedInferParams(Section):
    scales: Scales = _list([1.0, 0.5, 1.5, 2.0], "image scales whose maps are averaged")
    hflip: bool = knob(True, "also average the mirrored image's maps")
    image_resize: ImageResize = knob(
        "bilinear", "each scale's image: the normalised tensor bilinearly | the uint8 image PIL-bicubic (references)")


class EpsParams(Section):
    """seeds.method eps (docs/methods.md §7): saliency as pseudo-pixel supervision."""

    strategy: Literal["adaptive", "naive", "predefined", "none"] = knob(
        "adaptive", "map selection: adaptive (overlap > tau) | naive | predefined | none")
    tau: UnitFloat = knob(0.4, "overlap above which a labelled class counts as salient foreground")
    lam: UnitFloat = knob(0.5, "weight of the foreground maps in the saliency estimate")
    predefined_background: list[str] = _list([], "strategy predefined: class names sent to the background")


class SipeParams(Section):
    """seeds.method sipe / ae_sipe (docs/methods.md §5-§6); the two sections differ in defaults."""

    steps: SipeSteps = knob("pr_is", "prototype / PAMR sequence: pr_is (SIPE), pr_is,pamr,pr_is (AE-SIPE) or a "
                               "Table 3 order")
    hierarchical_structure: bool = knob(False, "structure analysis on the hierarchical features (else level 4)")
    is_cam_norm: Literal["max", "minmax"] = knob("max", "IS-CAM normalisation")
    bg_scale: float = knob(1.0, "background rescaling at inference", ge=0.01, le=10.0)
    bg_iou_factor: float = knob(0.5, "factor on the structure analysis' background IoU", ge=0.01, le=10.0)
    seed_chunk: int = knob(1024, "positions per chunk of the structure analysis (bounded memory)", ge=1)
    pamr_iters: int = knob(10, "PAMR iterations of the affinity enhancement", ge=0, le=100)
    pamr_dilations: Dilations = _list([1, 2, 4, 8, 12, 24], "PAMR's dilations")
    pamr_sigma: PamrSigma = knob("all_dilations", "PAMR's σ over every dilation's window | dilation 1's")
    inference: SipeInference = knob(
        "reference", "reference: flips fused at feature level (both references) | per_flip: IS-CAMs summed")
    cam_background: CamBackground = knob(
        "labelled", "CAM background: 1 − max over the labelled classes (paper) | over every class (code)")
    gsc_warmup_epochs: int = knob(0, "epochs of L_cls alone before L_gsc joins (references: 0)", ge=0)
    infer_argmax: SipeInferArgmax = knob(
        "labelled", "inference seeds: argmax over background + labelled classes | every class (references)")
    scale_norm: SipeScaleNorm = knob(
        "after_fusion", "multi-scale: normalise the summed IS-CAMs | also each scale's (AE-SIPE reference)")


class SeedsParams(Section):
    method: SeedMethod = knob("cam", "the classifier behind the seeds: cam | eps | sipe | ae_sipe")
    backbone: BackboneParams = Field(default_factory=BackboneParams, description="the shared backbone")
    train: ClassifierTrainParams = Field(default_factory=ClassifierTrainParams, description="classifier training")
    infer: SeedInferParams = Field(default_factory=SeedInferParams, description="seed inference")
    eps: EpsParams = Field(default_factory=EpsParams, description="EPS (docs/methods.md §7)")
    sipe: SipeParams = Field(default_factory=SipeParams, description="SIPE (docs/methods.md §5)")
    ae_sipe: SipeParams = Field(
        default_factory=lambda: SipeParams(steps="pr_is,pamr,pr_is", hierarchical_structure=True,
                                           is_cam_norm="minmax", bg_scale=0.8),
        description="AE-SIPE (docs/methods.md §6)")

    @property
    def sipe_section(self) -> SipeParams:
        """The section of the SIPE variant `method` names (sipe or ae_sipe)."""
        return self.ae_sipe if self.method == "ae_sipe" else self.sipe


# --------------------------------------------------------------------------------------- evaluate


class EvaluateParams(Section):
    bg_thresholds: Annotated[list[UnitFloat], Field(min_length=1)] = _list(
        [round(0.05 * i, 2) for i in range(1, 13)], "constant background scores swept over the seed maps")
    cam_bg_threshold: UnitFloat = knob(0.15, "the reference's evaluation threshold, reported beside the best")
    boundary_tolerance: int = knob(1, "boundary F1's match distance", unit="px", ge=0, le=32)
    seeds_crf: bool = knob(False, "also score the seeds after a dense CRF (the papers' +CRF column)")


# ----------------------------------------------------------------------------------------- refine


class CrfParams(Section):
    """Dense CRF (docs/methods.md §3); the defaults are the reference's."""

    iterations: int = knob(10, "mean-field iterations", ge=0, le=100)
    gaussian_sxy: float = knob(3.0, "smoothness kernel's spatial std", unit="px", ge=1e-3)
    gaussian_compat: float = knob(3.0, "smoothness kernel's weight", ge=0.0)
    bilateral_sxy: float = knob(50.0, "appearance kernel's spatial std", unit="px", ge=1e-3)
    bilateral_srgb: float = knob(5.0, "appearance kernel's colour std", unit="0..255", ge=1e-3)
    bilateral_compat: float = knob(10.0, "appearance kernel's weight", ge=0.0)
    gt_prob: float = knob(0.7, "confidence of a given label (label unaries only)", ge=0.01, le=0.99)


class PamrParams(Section):
    """PAMR (docs/methods.md §4)."""

    num_iter: int = knob(10, "iterations (0 would change nothing: refine.method none is that)", ge=1, le=100)
    dilations: Dilations = _list([1, 2, 4, 8, 12, 24], "neighbourhood dilations")
    sigma: PamrSigma = knob("all_dilations", "σ over every dilation's 3x3 window (reference) | dilation 1's")


class IrnLabelParams(Section):
    fg_threshold: UnitFloat = knob(0.30, "seed score at or above which a pixel is confident foreground")
    bg_threshold: UnitFloat = knob(0.05, "every seed below it: confident background")
    crf: CrfParams = Field(default_factory=CrfParams, description="the CRF that cleans both label sets")


class IrnTrainParams(Section):
    epochs: int = knob(3, "passes over the training split", ge=1, le=1000)
    batch_size: int = knob(32, "global batch", ge=1, le=4096)
    lr: float = knob(0.1, "base learning rate (poly decay; 0 trains nothing)", gt=0.0, le=10.0)
    momentum: float = knob(0.9, "SGD momentum", ge=0.0, le=1.0)
    weight_decay: float = knob(1e-4, "SGD weight decay", ge=0.0, le=1.0)
    crop_size: int = knob(512, "square training crop", unit="px", ge=16, le=4096)
    scale_range: RangePair = _list([0.5, 1.5], "[low, high] random rescaling")
    hflip: bool = knob(True, "random horizontal flips")
    radius: int = knob(10, "pixel pairs within this radius, on the stride-4 grid", unit="cells", ge=2, le=32)
    displacement: bool = knob(True, "also train the displacement head (instance masks only)")
    pair_sources: PairSources = knob(
        "all", "pairs from every pixel | from IRN's window only: rows < h-r, r <= cols < w-r, r = radius-1 (reference)")
    seed: int | None = _own_seed()


class WalkParams(Section):
    radius: int = knob(5, "transition neighbourhood on the stride-4 grid", unit="cells", ge=2, le=16)
    beta: float = knob(10.0, "affinity exponent", ge=0.0, le=100.0)
    exp_times: int = knob(8, "2^exp_times walk steps", ge=0, le=16)
    bg_score: UnitFloat = knob(0.25, "background score, relative to the walked maps' maximum")


class IrnParams(Section):
    """IRN (docs/methods.md §2)."""

    backbone: BackboneSource = knob("classifier", "frozen backbone: the CAM classifier's | ImageNet's")
    image_scale: float = knob(1.0, "IRN sees images resized by this factor (training and inference)",
                              ge=0.25, le=8.0)
    labels: IrnLabelParams = Field(default_factory=IrnLabelParams, description="inter-pixel relation labels")
    train: IrnTrainParams = Field(default_factory=IrnTrainParams, description="boundary head training")
    walk: WalkParams = Field(default_factory=WalkParams, description="the random walk")


class RefineParams(Section):
    method: RefineMethod = knob("irn", "seeds to pseudo masks: irn | crf | pamr | none")
    bg_threshold: AutoOrUnit = knob("auto", "seeds' background score for crf / pamr / none; auto = evaluate_seeds' "
                                            "best")
    crf: CrfParams = Field(default_factory=CrfParams, description="dense CRF as a method of its own")
    pamr: PamrParams = Field(default_factory=PamrParams, description="PAMR as a method of its own")
    irn: IrnParams = Field(default_factory=IrnParams, description="IRN")


# ---------------------------------------------------------------------------------- DeepLab, ptrecl


class DeeplabTrainParams(Section):
    epochs: int = knob(10, "passes over the training split", ge=1, le=1000)
    batch_size: int = knob(16, "global batch", ge=1, le=4096)
    lr: float = knob(0.01, "base learning rate (poly decay; 0 trains nothing)", gt=0.0, le=10.0)
    head_lr_mult: float = knob(10.0, "learning-rate factor of the head (0 would leave it untrained)", gt=0.0, le=1000.0)
    momentum: float = knob(0.9, "SGD momentum", ge=0.0, le=1.0)
    weight_decay: float = knob(5e-4, "SGD weight decay", ge=0.0, le=1.0)
    crop_size: int = knob(321, "square training crop", unit="px", ge=16, le=4096)
    scale_range: RangePair = _list([0.5, 1.5], "[low, high] random rescaling")
    hflip: bool = knob(True, "random horizontal flips")
    seed: int | None = _own_seed()


class DeeplabParams(Section):
    """A DeepLab and its training (docs/methods.md §8-§9)."""

    head: Literal["v2", "v3"] = knob("v2", "v2: ASPP of summed dilated classifiers | v3: torchvision's head")
    rates: Dilations | None = knob(None, "ASPP dilations; null: the head's paper rates")
    backbone: BackboneSource = knob("classifier", "start from the seeds classifier's backbone | ImageNet's")
    train: DeeplabTrainParams = Field(default_factory=DeeplabTrainParams, description="its training")


class PrototypeParams(Section):
    k: int = knob(20, "K foreground and K background prototypes per class", ge=1, le=1000)
    masks: Literal["recovered", "pseudo"] = knob(
        "recovered", "fg/bg split by the recovery net's label-conditioned prediction | the refine masks")
    pixels_per_image: int = knob(64, "features sampled per image, class and set", ge=1)
    capacity: int = knob(20000, "features kept per class and set (reservoir)", ge=1)
    kmeans_iters: int = knob(30, "spherical K-means iterations", ge=1, le=1000)


class ReclassifyParams(Section):
    top_m: int = knob(10, "similarities of the top m prototypes per pixel", ge=1)
    formula: PtreclFormula = knob("fg_margin", "fg_margin | fg_share | vote (docs/methods.md §8)")
    bg_threshold: AutoOrUnit = knob("auto", "the map alone: background below it; auto = the sweep's best")


class PtreclParams(Section):
    """PtReCl (docs/methods.md §8): prototype reclassification of the refine stage's masks."""

    recovery: DeeplabParams = Field(default_factory=DeeplabParams, description="the pseudo-mask recovery network")
    prototypes: PrototypeParams = Field(default_factory=PrototypeParams, description="the prototypes")
    reclassify: ReclassifyParams = Field(default_factory=ReclassifyParams, description="the reclassification")
    walk_bg_score: UnitFloat = knob(0.5, "re-refinement: the walk's background score on the reclassification map")


class SegmentInferParams(Section):
    scales: Scales = _list([1.0], "multi-scale inference")
    hflip: bool = knob(False, "also average the mirrored image's scores")
    crf: bool = knob(False, "dense CRF (refine.crf) on the prediction")


class SegmentParams(DeeplabParams):
    """The final segmentation network (docs/methods.md §9), scored on the val split."""

    masks: Literal["ptrecl", "refine"] = knob("ptrecl", "which pseudo masks it learns from")
    infer: SegmentInferParams = Field(default_factory=SegmentInferParams, description="its inference")


# --------------------------------------------------------------------------------------- tracking


class GalleryParams(Section):
    worst: int = knob(4, "images of lowest per-image IoU of the final pseudo masks", ge=0, le=64)
    best: int = knob(4, "images of highest per-image IoU", ge=0, le=64)
    sample: int = knob(4, "images drawn with project.seed from those with a ground truth", ge=0, le=64)


class TrackingParams(Section):
    experiment: str = knob("wsss", "MLflow experiment")
    num_overlays: int = knob(4, "overlay pictures logged per stage", ge=0, le=64)
    registered_model: Annotated[str | None, AfterValidator(_model_name)] = knob(
        "wsss-segmenter", "Model Registry name of the segmentation network; null: not registered")
    gallery: GalleryParams = Field(default_factory=GalleryParams, description="rows of the gallery page")


# ------------------------------------------------------------------------------------------- root


class Params(Section):
    """The whole of params.yaml."""

    project: ProjectParams = Field(default_factory=ProjectParams, description="how stages run")
    data: DataParams = Field(default_factory=DataParams, description="generated data sets")
    dataset: DatasetParams = Field(default_factory=DatasetParams, description="the data set the stages read")
    seeds: SeedsParams = Field(default_factory=SeedsParams, description="seed maps (docs/methods.md §1, §5-§7)")
    evaluate: EvaluateParams = Field(default_factory=EvaluateParams, description="evaluation")
    refine: RefineParams = Field(default_factory=RefineParams, description="pseudo masks (docs/methods.md §2-§4)")
    ptrecl: PtreclParams = Field(default_factory=PtreclParams, description="PtReCl (docs/methods.md §8)")
    segment: SegmentParams = Field(default_factory=SegmentParams, description="segmentation (docs/methods.md §9)")
    tracking: TrackingParams = Field(default_factory=TrackingParams, description="MLflow")

    @model_validator(mode="after")
    def _eps_needs_saliency(self) -> Params:
        if self.seeds.method == "eps" and self.dataset.saliency in (None, "none"):
            raise ValueError("'seeds.method' = eps trains on saliency maps, but 'dataset.saliency' is null "
                             "(name a folder of maps or opencv[:method])")
        return self

    @model_validator(mode="after")
    def _imagenet_needs_weights(self) -> Params:
        for key in ("refine.irn.backbone", "ptrecl.recovery.backbone", "segment.backbone"):
            if self.get(key) == "pretrained" and self.seeds.backbone.name == "tiny":
                raise ValueError(f"'{key}' = pretrained needs a pretrained backbone; the tiny one "
                                 "('seeds.backbone.name') has no ImageNet weights (use classifier)")
        return self

    def dump(self, key: str | None = None) -> Any:
        """Plain JSON values of the whole tree, or of the section / value at a dotted key."""
        value = self if key is None else self.get(key)
        return value.model_dump(mode="json", by_alias=True) if isinstance(value, BaseModel) else value


# ------------------------------------------------------------------------------- loading, errors


def validate(raw: dict) -> Params:
    """Check a params.yaml mapping against the model; ParamsError names the key on failure."""
    if not isinstance(raw, dict):
        raise ParamsError(f"params.yaml: expected a mapping of sections, got {type(raw).__name__}")
    try:
        return Params.model_validate(raw)
    except ValidationError as exc:
        raise ParamsError(_describe(exc)) from None


def load(path: str | Path = PARAMS_FILE, overrides: dict | None = None) -> Params:
    """Read params.yaml, apply ``overrides`` ({"seeds.train.lr": 0.01}) and validate."""
    return validate(read_raw(path, overrides))


def read_raw(path: str | Path = PARAMS_FILE, overrides: dict | None = None) -> dict:
    """params.yaml as YAML gives it, with ``overrides`` set (not validated)."""
    path = Path(path)
    try:
        raw = yaml.safe_load(path.read_text()) or {}
    except FileNotFoundError:
        raise ParamsError(f"{path}: params file not found") from None
    except yaml.YAMLError as exc:
        raise ParamsError(f"{path}: not valid YAML ({exc})") from None
    for key, value in (overrides or {}).items():
        set_key(raw, key, value)
    return raw


def set_key(raw: dict, key: str, value: Any) -> None:
    """Set a dotted key in a raw params mapping, creating sections on the way."""
    *parents, leaf = key.split(".")
    node = raw
    for part in parents:
        node = node.setdefault(part, {})
    node[leaf] = value


def is_value_key(key: str) -> bool:
    """Whether a dotted key names one value of the model (not a section, not unknown)."""
    model: type[BaseModel] = Params
    parts = key.split(".")
    for i, part in enumerate(parts):
        field = model.model_fields.get(part)
        if field is None:
            return False
        section = _section_type(field.annotation)
        if i == len(parts) - 1:
            return section is None
        if section is None:
            return False
        model = section
    return False


def section_keys(key: str = "") -> list[str]:
    """The known keys directly under a dotted section ("" = the top level)."""
    model: type[BaseModel] | None = Params
    for part in filter(None, key.split(".")):
        field = model.model_fields.get(part) if model else None
        model = _section_type(field.annotation) if field else None
    return sorted(_field_names(model)) if model else []


def section_hash(params: Params, sections: list[str]) -> str:
    """A short content hash of the given params sections (for run tags and caches)."""
    chosen = {s: params.dump(s) for s in sections}
    blob = json.dumps(chosen, sort_keys=True, default=str).encode()
    return hashlib.sha256(blob).hexdigest()[:16]


def flatten(tree: dict, prefix: str = "") -> dict:
    """{"a": {"b": 1}} -> {"a.b": 1} (lists kept as values), for logging to MLflow."""
    flat = {}
    for name, value in tree.items():
        key = f"{prefix}.{name}" if prefix else name
        if isinstance(value, dict):
            flat.update(flatten(value, key))
        else:
            flat[key] = value
    return flat


def json_schema() -> dict:
    """The JSON Schema of params.yaml (every key's type, default, range, unit and doc)."""
    schema = Params.model_json_schema(by_alias=True)
    schema["title"] = "wsss params.yaml"
    return schema


def _section_type(annotation: Any) -> type[BaseModel] | None:
    return annotation if isinstance(annotation, type) and issubclass(annotation, BaseModel) else None


def _field_names(model: type[BaseModel]) -> list[str]:
    return [field.alias or name for name, field in model.model_fields.items()]


def _describe(exc: ValidationError) -> str:
    """One line per failing key: 'params.yaml: 'seeds.train.lr' ...'; unions' branches merged."""
    by_key: dict[str, list[dict]] = {}
    for error in exc.errors():
        path = [str(p) for p in error["loc"] if not _is_branch_tag(p)]
        by_key.setdefault(_dotted(path), []).append(error)
    lines = []
    for key, errors in by_key.items():
        first = errors[0]
        where = f"'{key}'" if key else "the top level"
        if first["type"] == "extra_forbidden":
            lines.append(f"params.yaml: unknown key '{key}'{_suggestion(key)}")
        elif first["type"] == "missing":
            lines.append(f"params.yaml: '{key}' is required")
        elif first["type"] == "value_error":  # our own checks: the message says what it got
            message = first["msg"].removeprefix("Value error, ")
            # a section's check names its keys itself; a value's check needs the key in front
            lines.append(f"params.yaml: {message}" if isinstance(first.get("input"), dict) or not key
                         else f"params.yaml: {where}: {message}")
        else:
            wanted = list(dict.fromkeys(_wanted(e) for e in errors))
            if len(wanted) > 1 and all(w.startswith("should be ") for w in wanted):
                wanted = [wanted[0]] + [w.removeprefix("should be ") for w in wanted[1:]]
            lines.append(f"params.yaml: {where} {' or '.join(wanted)}, got {first.get('input')!r}")
    return "\n".join(lines)


def _is_branch_tag(part: Any) -> bool:
    # pydantic names a union's branches in loc ("literal['auto']", "constrained-float", "list[int]", "bool")
    return isinstance(part, str) and bool(re.search(r"[\[\]'-]|^(int|float|bool|str|none)$", part))


def _dotted(parts: list[str]) -> str:
    out = ""
    for part in parts:
        out += f"[{part}]" if part.isdigit() else (f".{part}" if out else part)
    return out


def _wanted(error: dict) -> str:
    message = error["msg"]
    if message.startswith("Input should be "):
        return "should be " + message[len("Input should be "):]
    return message[0].lower() + message[1:]


def _suggestion(key: str) -> str:
    """" (did you mean 'seeds.train.lr'?)" for an unknown key near a known one, else the known keys."""
    parent, _, leaf = key.rpartition(".")
    parent = re.sub(r"\[\d+\]", "", parent)
    known = section_keys(parent)
    close = difflib.get_close_matches(leaf, known, n=1, cutoff=0.6)
    if close:
        return f" (did you mean '{parent + '.' if parent else ''}{close[0]}'?)"
    where = f"under '{parent}'" if parent else "at the top level"
    return f" (known keys {where}: {', '.join(known)})"
