"""Open the data set named by the params.yaml ``dataset`` section.

    dataset:
      name: synthetic | voc | coco
      root: data/synthetic          # relative paths are relative to the working directory
      saliency: null                # null | none | opencv[:method] | folder (relative to root)
      mask_dir: auto                # voc/synthetic only
      annotation_file: null         # coco only (default <root>/annotations/instances_<split>.json)
      label_dir: null               # coco only (precomputed label PNGs)

Other keys in the section belong to other stages (e.g. the synthetic generator) and are ignored.
"""

from __future__ import annotations

from pathlib import Path

from wsss.data.base import SegmentationDataset
from wsss.errors import DataError, ParamsError

DATASETS = ("synthetic", "voc", "coco")


def open_dataset(cfg: dict, split: str) -> SegmentationDataset:
    """The ``split`` of the data set described by ``cfg`` (the ``dataset`` params section)."""
    from wsss.data.coco import COCODataset
    from wsss.data.saliency import make_saliency_source
    from wsss.data.voc import VOCDataset

    check_config(cfg)
    name = cfg["name"]
    root = _root(cfg)
    saliency = make_saliency_source(cfg.get("saliency"), root)
    if name == "coco":
        return COCODataset(
            root,
            split,
            annotation_file=cfg.get("annotation_file"),
            label_dir=cfg.get("label_dir"),
            saliency=saliency,
        )
    return VOCDataset(root, split, mask_dir=cfg.get("mask_dir", "auto"), saliency=saliency)


def check_config(cfg: dict) -> None:
    """The checks of the section that need no file: known name, keys that fit it, saliency spec."""
    from wsss.data.saliency import check_saliency_spec

    name = cfg.get("name")
    if name not in DATASETS:
        raise ParamsError(f"dataset.name = {name!r}: choose one of {list(DATASETS)}")
    if name == "coco" and cfg.get("mask_dir", "auto") not in ("auto", None):
        raise ParamsError("dataset.mask_dir applies to voc/synthetic; for coco use dataset.label_dir")
    for key in ("annotation_file", "label_dir"):
        if name != "coco" and cfg.get(key) is not None:
            raise ParamsError(
                f"dataset.{key} applies to coco only; set it to null for dataset.name = {name!r}"
            )
    check_saliency_spec(cfg.get("saliency"))


def _root(cfg: dict) -> Path:
    root = cfg.get("root")
    if not isinstance(root, str) or not root.strip():
        raise ParamsError(f"dataset.root = {root!r}: expected the data set folder as a string")
    path = Path(root)
    if not path.is_dir():
        raise DataError(f"dataset.root = {root!r}: folder {path.resolve()} not found")
    return path
