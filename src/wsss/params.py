"""params.yaml: the single source of truth, validated against one schema.

Every key a stage reads is declared here with its default, type and range. Loading checks the
whole file up front, so a typo or an out-of-range value fails before any stage does work, with
an error naming the key (``seeds.train.lr``) and what was expected.
"""

from __future__ import annotations

import copy
import hashlib
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import yaml

from wsss.errors import ParamsError

PARAMS_FILE = "params.yaml"


@dataclass(frozen=True)
class Field:
    """One leaf of the schema."""

    default: Any
    kind: type | tuple[type, ...]
    low: float | None = None
    high: float | None = None
    choices: tuple | None = None
    nullable: bool = False
    item: type | tuple[type, ...] | None = None  # element type for list fields
    min_len: int = 0
    check: Callable[[str, Any], None] | None = None  # extra validation of the whole value


@dataclass(frozen=True)
class Free:
    """A sub-tree validated by its owner (e.g. the synthetic generator's config)."""

    validate: Callable[[dict], Any]
    default: dict


def _synthetic_validator(section: dict):
    from wsss.data.synthetic import SyntheticConfig

    return SyntheticConfig.from_dict(section)


def _positive_scales(key: str, scales: list) -> None:
    if any(s <= 0 for s in scales):
        raise ParamsError(f"params.yaml: '{key}' must hold positive scales, got {scales}")


def _range_pair(key: str, pair: list) -> None:
    if len(pair) != 2 or pair[0] > pair[1]:
        raise ParamsError(f"params.yaml: '{key}' must be [low, high] with low <= high, got {pair}")


NUM = (int, float)
# PAMR's σ sample (docs/methods.md §4): the 3x3 windows of every dilation pooled (the reference's
# LocalStDev(dilations)) or the dilation-1 window alone; wsss.refine.pamr.SIGMA_MODES
PAMR_SIGMA = ("all_dilations", "dilation1")

# Dense CRF (docs/methods.md §3), the reference's settings; gt_prob only for label unaries.
CRF_SCHEMA = {
    "iterations": Field(10, int, low=0, high=100),
    "gaussian_sxy": Field(3.0, NUM, low=1e-3),
    "gaussian_compat": Field(3.0, NUM, low=0.0),
    "bilateral_sxy": Field(50.0, NUM, low=1e-3),
    "bilateral_srgb": Field(5.0, NUM, low=1e-3),
    "bilateral_compat": Field(10.0, NUM, low=0.0),
    "gt_prob": Field(0.7, NUM, low=0.01, high=0.99),
}

def _sipe_schema(steps: str, hierarchical: bool, norm: str, bg_scale: float) -> dict:
    """SIPE / AE-SIPE switches (docs/methods.md §5–§6); the two sections differ only in defaults."""
    return {
        # prototype / PAMR sequence: "pr_is" (SIPE), "pr_is,pamr,pr_is" (AE-SIPE) or another
        # row of AE-SIPE's Table 3 (wsss.models.sipe.TABLE3_STEPS)
        "steps": Field(steps, str, check=lambda k, v: _check_sipe_steps(k, v)),
        "hierarchical_structure": Field(hierarchical, bool),
        "is_cam_norm": Field(norm, str, choices=("max", "minmax")),
        "bg_scale": Field(bg_scale, NUM, low=0.01, high=10.0),
        "bg_iou_factor": Field(0.5, NUM, low=0.01, high=10.0),
        "seed_chunk": Field(1024, int, low=1),
        "pamr_iters": Field(10, int, low=0, high=100),
        "pamr_dilations": Field([1, 2, 4, 8, 12, 24], list, item=int, min_len=1,
                                check=lambda k, v: _check_positive(k, v)),
        "pamr_sigma": Field("all_dilations", str, choices=PAMR_SIGMA),
        # per_flip: the training forward on each flip, IS-CAMs summed; reference: flips fused at
        # feature level, structure analysis on hierarchical features (both references' inference)
        "inference": Field("reference", str, choices=("per_flip", "reference")),
        # the CAM's background: 1 − max over the labelled classes (the paper; docs/methods.md §5)
        # or over all classes before the label mask (both references' code)
        "cam_background": Field("labelled", str, choices=("labelled", "all")),
        # epochs of L_cls alone before L_gsc joins (0 = the references, which start from ImageNet)
        "gsc_warmup_epochs": Field(0, int, low=0),
    }


def _deeplab_schema() -> dict:
    """A DeepLab and its training (docs/methods.md §8–§9): PtReCl's recovery network, the segmentation stage."""
    return {
        "head": Field("v2", str, choices=("v2", "v3")),
        # ASPP dilations; null: the head's paper rates (v2: 6, 12, 18, 24; v3: 12, 24, 36)
        "rates": Field(None, list, item=int, min_len=1, nullable=True, check=lambda k, v: _check_positive(k, v)),
        # classifier: start from the seeds classifier's backbone; pretrained: seeds.backbone's
        # ImageNet weights (the papers' ResNet)
        "backbone": Field("classifier", str, choices=("classifier", "pretrained")),
        "train": {
            "epochs": Field(10, int, low=1, high=1000),
            "batch_size": Field(16, int, low=1, high=4096),
            "lr": Field(0.01, NUM, low=0.0, high=10.0),
            "head_lr_mult": Field(10.0, NUM, low=0.0, high=1000.0),
            "momentum": Field(0.9, NUM, low=0.0, high=1.0),
            "weight_decay": Field(5e-4, NUM, low=0.0, high=1.0),
            "crop_size": Field(321, int, low=16, high=4096),
            "scale_range": Field([0.5, 1.5], list, item=NUM, min_len=2, check=_range_pair),
            "hflip": Field(True, bool),
        },
    }


def _check_sipe_steps(key: str, value: str) -> None:
    from wsss.models.sipe import parse_steps

    try:
        parse_steps(value)
    except ValueError as exc:
        raise ParamsError(f"params.yaml: '{key}': {exc}") from None


SEED_METHODS = ("cam", "eps", "sipe", "ae_sipe")

SCHEMA: dict = {
    "project": {
        "device": Field("auto", str, check=lambda k, v: _check_device(k, v)),
        # processes per stage, one per device (wsss.device.process_devices): an int, or auto
        "devices": Field(1, (int, str), check=lambda k, v: _check_devices(k, v)),
        # autocast dtype (wsss.precision): auto = bf16 on a CUDA device that has it, else fp32
        "precision": Field("auto", str, choices=("auto", "fp32", "bf16", "fp16")),
        "seed": Field(0, int, low=0),
        "num_workers": Field(0, int, low=0, high=64),
        # auto: bars when stderr is a terminal and CI is unset (wsss.progress); true / false
        "progress": Field("auto", (str, bool), check=lambda k, v: _check_progress(k, v)),
    },
    "data": {
        "synthetic": Free(_synthetic_validator, {}),
    },
    "dataset": {
        "name": Field("synthetic", str, choices=("synthetic", "voc", "coco")),
        "root": Field("data/synthetic/VOCdevkit/VOC2012", str),
        "train_split": Field("train", str),
        "eval_split": Field("train", str),
        "val_split": Field("val", str),
        "mask_dir": Field("auto", str),
        "saliency": Field("SaliencyMaps", str, nullable=True),
        "annotation_file": Field(None, str, nullable=True),
        "label_dir": Field(None, str, nullable=True),
        "max_images": Field(None, int, low=1, nullable=True),
    },
    "seeds": {
        "method": Field("cam", str, choices=SEED_METHODS),
        "eps": {  # docs/methods.md §7
            "strategy": Field("adaptive", str, choices=("adaptive", "naive", "predefined", "none")),
            "tau": Field(0.4, NUM, low=0.0, high=1.0),
            "lam": Field(0.5, NUM, low=0.0, high=1.0),
            # class names sent to the background by the "predefined" strategy
            "predefined_background": Field([], list, item=str),
        },
        "sipe": _sipe_schema("pr_is", False, "max", 1.0),
        "ae_sipe": _sipe_schema("pr_is,pamr,pr_is", True, "minmax", 0.8),
        "backbone": {
            "name": Field(
                "tiny", str, choices=("tiny", "resnet50", "resnet101", "efficientnet_lite0")
            ),
            "pretrained": Field(True, bool),
            "checkpoint": Field(None, str, nullable=True),
            "output_stride": Field(16, int, choices=(8, 16, 32)),
            # tiny only: dilated convolutions where the output stride removes a stride
            "dilate": Field(True, bool),
        },
        "train": {
            "epochs": Field(5, int, low=1, high=1000),
            "batch_size": Field(16, int, low=1, high=4096),
            "lr": Field(0.1, NUM, low=0.0, high=10.0),
            "new_layer_lr_mult": Field(10.0, NUM, low=0.0, high=1000.0),
            "momentum": Field(0.9, NUM, low=0.0, high=1.0),
            "weight_decay": Field(1e-4, NUM, low=0.0, high=1.0),
            "resize_long": Field([320, 640], list, item=int, min_len=2, check=_range_pair),
            "crop_size": Field(512, int, low=8, high=4096),
            "hflip": Field(True, bool),
            "freeze_bn": Field(True, bool),
        },
        "infer": {
            "scales": Field([1.0, 0.5, 1.5, 2.0], list, item=NUM, min_len=1, check=_positive_scales),
            "hflip": Field(True, bool),
        },
    },
    "evaluate": {
        "bg_thresholds": Field(
            [round(0.05 * i, 2) for i in range(1, 13)], list, item=NUM, min_len=1,
            check=lambda k, v: _check_unit_interval(k, v),
        ),
        "cam_bg_threshold": Field(0.15, NUM, low=0.0, high=1.0),
        "boundary_tolerance": Field(1, int, low=0, high=32),
        # also score the seeds after a dense CRF (refine.crf settings): the papers' "+CRF" column
        "seeds_crf": Field(False, bool),
    },
    "refine": {
        "method": Field("irn", str, choices=("irn", "crf", "pamr", "none")),
        # Constant background score of the seed maps: a number, or "auto" for the best
        # threshold of the seeds evaluation (metrics/seeds.json).
        "bg_threshold": Field("auto", (str, float, int), check=lambda k, v: _check_auto_or_unit(k, v)),
        "crf": CRF_SCHEMA,
        "pamr": {
            "num_iter": Field(10, int, low=0, high=100),
            "dilations": Field([1, 2, 4, 8, 12, 24], list, item=int, min_len=1,
                               check=lambda k, v: _check_positive(k, v)),
            "sigma": Field("all_dilations", str, choices=PAMR_SIGMA),
        },
        "irn": {
            # classifier: the trained CAM classifier's backbone, frozen (for backbones trained
            # from scratch); pretrained: ImageNet weights, frozen (the reference, ResNet-50).
            "backbone": Field("classifier", str, choices=("classifier", "pretrained")),
            # IRN sees images resized by this factor (training and inference): its stride-4
            # grid must resolve the objects; 1.0 for VOC-sized images.
            "image_scale": Field(1.0, NUM, low=0.25, high=8.0),
            "labels": {
                "fg_threshold": Field(0.30, NUM, low=0.0, high=1.0),
                "bg_threshold": Field(0.05, NUM, low=0.0, high=1.0),
                "crf": CRF_SCHEMA,
            },
            "train": {
                "epochs": Field(3, int, low=1, high=1000),
                "batch_size": Field(32, int, low=1, high=4096),
                "lr": Field(0.1, NUM, low=0.0, high=10.0),
                "momentum": Field(0.9, NUM, low=0.0, high=1.0),
                "weight_decay": Field(1e-4, NUM, low=0.0, high=1.0),
                "crop_size": Field(512, int, low=16, high=4096),
                "scale_range": Field([0.5, 1.5], list, item=NUM, min_len=2, check=_range_pair),
                "hflip": Field(True, bool),
                "radius": Field(10, int, low=2, high=32),
                # the displacement head (instance masks): the reference trains it; the boundary
                # map, all semantic masks use, comes out the same without it
                "displacement": Field(True, bool),
            },
            "walk": {
                "radius": Field(5, int, low=2, high=16),
                "beta": Field(10.0, NUM, low=0.0, high=100.0),
                "exp_times": Field(8, int, low=0, high=16),
                "bg_score": Field(0.25, NUM, low=0.0, high=1.0),
            },
        },
    },
    "ptrecl": {  # docs/methods.md §8: prototype reclassification of the refine stage's pseudo masks
        "recovery": _deeplab_schema(),  # the pseudo-mask recovery network, trained on those masks
        "prototypes": {
            "k": Field(20, int, low=1, high=1000),
            # whose labels split a class's pixels into foreground and background: the recovery
            # network's label-conditioned prediction (recovered) or the refine stage's masks (pseudo)
            "masks": Field("recovered", str, choices=("recovered", "pseudo")),
            "pixels_per_image": Field(64, int, low=1),  # per class and set, sampled per image
            "capacity": Field(20000, int, low=1),  # features kept per class and set (reservoir)
            "kmeans_iters": Field(30, int, low=1, high=1000),
        },
        "reclassify": {
            "top_m": Field(10, int, low=1),
            "formula": Field("fg_margin", str, choices=("fg_share", "fg_margin", "vote")),
            # the map alone: background below it; auto = the best of the evaluate.bg_thresholds sweep
            "bg_threshold": Field("auto", (str, float, int), check=lambda k, v: _check_auto_or_unit(k, v)),
        },
        # re-refinement: IRN's random walk on the reclassification map (refine.irn.walk, except
        # the background score, since the map's scale differs from the seeds')
        "walk_bg_score": Field(0.5, NUM, low=0.0, high=1.0),
    },
    "segment": dict(  # docs/methods.md §9: the final segmentation network, scored on the val split
        _deeplab_schema(),
        masks=Field("ptrecl", str, choices=("ptrecl", "refine")),  # which pseudo masks it learns from
        infer={
            "scales": Field([1.0], list, item=NUM, min_len=1, check=_positive_scales),
            "hflip": Field(False, bool),
            "crf": Field(False, bool),  # dense CRF (refine.crf settings) on the prediction
        },
    ),
    "tracking": {
        "experiment": Field("wsss", str),
        "num_overlays": Field(4, int, low=0, high=64),
        # MLflow registered model of the segmentation network (wsss.registry); null: not registered
        "registered_model": Field("wsss-segmenter", str, nullable=True, check=lambda k, v: _check_model_name(k, v)),
        # rows of the gallery (stage gallery, `wsss gallery`): the images of lowest and highest
        # per-image IoU of the final pseudo masks, and a sample seeded by project.seed
        "gallery": {
            "worst": Field(4, int, low=0, high=64),
            "best": Field(4, int, low=0, high=64),
            "sample": Field(4, int, low=0, high=64),
        },
    },
}


def _check_model_name(key: str, value: str) -> None:
    # a name that goes into models:/<name>/<version> URIs unquoted
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.-]*", value):
        raise ParamsError(f"params.yaml: '{key}' must be letters, digits, '_', '.' or '-' (it is part of "
                          f"models:/ URIs), got {value!r}")


def _check_device(key: str, value: str) -> None:
    if value in ("auto", "cpu", "cuda") or (value.startswith("cuda:") and value[5:].isdigit()):
        return
    raise ParamsError(f"params.yaml: '{key}' must be auto, cpu, cuda or cuda:N, got {value!r}")


def _check_devices(key: str, value) -> None:
    if value == "auto" or (isinstance(value, int) and not isinstance(value, bool) and 1 <= value <= 1024):
        return
    raise ParamsError(f"params.yaml: '{key}' must be auto or a number of processes from 1 to 1024, got {value!r}")


def _check_progress(key: str, value) -> None:
    if value not in ("auto", True, False):
        raise ParamsError(f"params.yaml: '{key}' must be auto, true or false, got {value!r}")


def _check_auto_or_unit(key: str, value) -> None:
    if value == "auto" or (not isinstance(value, (str, bool)) and 0.0 <= value <= 1.0):
        return
    raise ParamsError(f"params.yaml: '{key}' must be \"auto\" or a number in [0, 1], got {value!r}")


def _check_positive(key: str, values: list) -> None:
    if any(v <= 0 for v in values):
        raise ParamsError(f"params.yaml: '{key}' values must be positive, got {values}")


def _check_unit_interval(key: str, values: list) -> None:
    if any(not 0.0 <= v <= 1.0 for v in values):
        raise ParamsError(f"params.yaml: '{key}' values must lie in [0, 1], got {values}")


def _type_name(kind) -> str:
    kinds = kind if isinstance(kind, tuple) else (kind,)
    return " or ".join(k.__name__ for k in kinds)


def _is_kind(value, kind) -> bool:
    kinds = kind if isinstance(kind, tuple) else (kind,)
    if isinstance(value, bool) and bool not in kinds:
        return False  # YAML true/false is not a number
    if float in kinds and isinstance(value, int):
        return True
    return isinstance(value, kinds)


def _validate_field(key: str, field: Field, value):
    if value is None:
        if field.nullable:
            return None
        raise ParamsError(f"params.yaml: '{key}' must not be null (expected {_type_name(field.kind)})")
    if not _is_kind(value, field.kind):
        raise ParamsError(
            f"params.yaml: '{key}' must be {_type_name(field.kind)}, got {value!r} "
            f"({type(value).__name__})"
        )
    if field.choices is not None and value not in field.choices:
        raise ParamsError(f"params.yaml: '{key}' must be one of {list(field.choices)}, got {value!r}")
    if field.low is not None and value < field.low or field.high is not None and value > field.high:
        raise ParamsError(
            f"params.yaml: '{key}' = {value!r} is out of range [{field.low}, {field.high}]"
        )
    if isinstance(value, list):
        if len(value) < field.min_len:
            raise ParamsError(f"params.yaml: '{key}' needs at least {field.min_len} items, got {value}")
        if field.item is not None:
            for item in value:
                if not _is_kind(item, field.item):
                    raise ParamsError(
                        f"params.yaml: '{key}' items must be {_type_name(field.item)}, got {item!r}"
                    )
    if field.check is not None:
        field.check(key, value)
    return value


def _validate_tree(prefix: str, schema: dict, values) -> dict:
    if values is None:
        values = {}
    if not isinstance(values, dict):
        raise ParamsError(f"params.yaml: '{prefix}' must be a mapping, got {values!r}")
    unknown = sorted(set(values) - set(schema))
    if unknown:
        where = f"under '{prefix}'" if prefix else "at the top level"
        raise ParamsError(
            f"params.yaml: unknown key '{_join(prefix, unknown[0])}' "
            f"(known keys {where}: {', '.join(sorted(schema))})"
        )
    result = {}
    for name, spec in schema.items():
        key = _join(prefix, name)
        if isinstance(spec, dict):
            result[name] = _validate_tree(key, spec, values.get(name))
        elif isinstance(spec, Free):
            section = values.get(name, spec.default)
            if section is None:
                section = {}
            if not isinstance(section, dict):
                raise ParamsError(f"params.yaml: '{key}' must be a mapping, got {section!r}")
            spec.validate(section)
            result[name] = copy.deepcopy(section)
        else:
            result[name] = _validate_field(key, spec, values.get(name, copy.deepcopy(spec.default)))
    return result


def _join(prefix: str, name: str) -> str:
    return f"{prefix}.{name}" if prefix else name


def validate(raw: dict) -> dict:
    """Check ``raw`` against the schema; return a complete copy with defaults filled in."""
    return _validate_tree("", SCHEMA, raw)


def load(path: str | Path = PARAMS_FILE, overrides: dict | None = None) -> dict:
    """Read, override (``{"seeds.train.lr": 0.01}``) and validate params.yaml."""
    path = Path(path)
    try:
        raw = yaml.safe_load(path.read_text()) or {}
    except FileNotFoundError:
        raise ParamsError(f"{path}: params file not found") from None
    except yaml.YAMLError as exc:
        raise ParamsError(f"{path}: not valid YAML ({exc})") from None
    for key, value in (overrides or {}).items():
        set_key(raw, key, value)
    return validate(raw)


def get_key(params: dict, key: str):
    node = params
    for part in key.split("."):
        if not isinstance(node, dict) or part not in node:
            raise ParamsError(f"params.yaml: no key '{key}'")
        node = node[part]
    return node


def set_key(params: dict, key: str, value) -> None:
    parts = key.split(".")
    node = params
    for part in parts[:-1]:
        node = node.setdefault(part, {})
    node[parts[-1]] = value


def section_hash(params: dict, sections: list[str]) -> str:
    """A short content hash of the given params sections (for run tags and caches)."""
    chosen = {s: get_key(params, s) for s in sections}
    blob = json.dumps(chosen, sort_keys=True, default=str).encode()
    return hashlib.sha256(blob).hexdigest()[:16]


def flatten(tree: dict, prefix: str = "") -> dict:
    """{"a": {"b": 1}} -> {"a.b": 1} (lists kept as values), for logging to MLflow."""
    flat = {}
    for name, value in tree.items():
        key = _join(prefix, name)
        if isinstance(value, dict):
            flat.update(flatten(value, key))
        else:
            flat[key] = value
    return flat
