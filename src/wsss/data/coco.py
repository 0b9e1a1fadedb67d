"""MS COCO 2014 reader: instance annotations rendered to semantic masks.

Layout under ``root``::

    <split>/<file_name>                        e.g. train2014/COCO_train2014_000000000009.jpg
    annotations/instances_<split>.json         instance annotations (pycocotools)

Ids are the image file stems. The 80 categories map to 1..80 in ascending category-id order
(the ids themselves skip numbers); 0 is background. Images without a non-crowd annotation of
a category are dropped.

Masks are rendered in annotation order and an instance only paints pixels no earlier instance
took (so later instances never overwrite earlier ones). Crowd regions (``iscrowd=1``) are set to
255 (ignore) where no instance painted: they hold objects of their class that are not
delineated, so neither "background" nor a reliable class label. Image-level labels are the
categories of all the image's annotations, crowd included (the class is visible in the image).

With ``label_dir`` (COCO-Stuff-style PNGs holding 0..80 and 255 in the same class order) those
files are the masks and the labels come from them; the JSON still gives ids and class names.
"""

from __future__ import annotations

import contextlib
import io
import os
from pathlib import Path

import numpy as np

from wsss.core.errors import DataError
from wsss.core.io import read_json, read_label_png
from wsss.data.base import IGNORE_INDEX, SegmentationDataset
from wsss.data.saliency import SaliencySource
from wsss.data.voc import (
    check_mask,
    labels_from_values,
    read_image,
    read_image_size,
    validate_dataset,
)


class COCODataset(SegmentationDataset):
    def __init__(
        self,
        root: str | os.PathLike,
        split: str,
        annotation_file: str | os.PathLike | None = None,
        label_dir: str | os.PathLike | None = None,
        saliency: SaliencySource | None = None,
    ):
        self.root = Path(root)
        if not self.root.is_dir():
            raise DataError(f"{self.root}: data set root not found")
        self.split = split
        default_json = Path("annotations") / f"instances_{split}.json"
        self.annotation_file = self._resolve(annotation_file or default_json)
        self.label_dir = self._resolve(label_dir) if label_dir is not None else None
        if self.label_dir is not None and not self.label_dir.is_dir():
            raise DataError(f"{self.label_dir}: COCO label folder (label_dir) not found")
        self.saliency = saliency
        self._coco = _load_coco(self.annotation_file)
        category_ids = sorted(self._coco.cats)
        self._class_of_category = {cat_id: index + 1 for index, cat_id in enumerate(category_ids)}
        self.class_names = ["background"] + [self._coco.cats[c]["name"] for c in category_ids]
        self._records, json_labels = self._index_images()
        self.ids = list(self._records)
        # label_dir mode: labels come from each PNG when it is first read.
        self._labels = json_labels if self.label_dir is None else {}

    def _resolve(self, path: str | os.PathLike) -> Path:
        path = Path(path)
        return path if path.is_absolute() else self.root / path

    def _index_images(self) -> tuple[dict[str, dict], dict[str, np.ndarray]]:
        """Keep images with a non-crowd annotation; their labels from all annotations."""
        records, labels = {}, {}
        for image_id in sorted(self._coco.imgs):
            anns = self._coco.imgToAnns.get(image_id, [])
            if not any(not ann.get("iscrowd", 0) for ann in anns):
                continue
            record = self._coco.imgs[image_id]
            stem = Path(record["file_name"]).stem
            if stem in records:
                raise DataError(f"{self.annotation_file}: two images share the file stem {stem!r}")
            records[stem] = record
            classes = {self._class_of_category[ann["category_id"]] for ann in anns}
            labels[stem] = np.array(sorted(classes), dtype=np.int64)
        if not records:
            raise DataError(f"{self.annotation_file}: no image has a non-crowd annotation")
        return records, labels

    # -- paths ---------------------------------------------------------------------------
    def image_path(self, image_id: str) -> Path:
        return self.root / self.split / self._record(image_id)["file_name"]

    def mask_path(self, image_id: str) -> Path:
        """The label PNG (``label_dir`` mode) or the JSON the mask is rendered from."""
        if self.label_dir is not None:
            return self.label_dir / f"{image_id}.png"
        return self.annotation_file

    def _record(self, image_id: str) -> dict:
        try:
            return self._records[image_id]
        except KeyError:
            raise DataError(
                f"image {image_id}: not in split {self.split!r} ({self.annotation_file})"
            ) from None

    # -- the SegmentationDataset interface -------------------------------------------------
    def load_image(self, image_id: str) -> np.ndarray:
        return read_image(self.image_path(image_id), image_id)

    def image_size(self, image_id: str) -> tuple[int, int]:
        return read_image_size(self.image_path(image_id), image_id)

    def load_mask(self, image_id: str) -> np.ndarray:
        if self.label_dir is not None:
            mask = read_label_png(self.mask_path(image_id))
        else:
            mask = self._render(image_id)
        size = self.image_size(image_id)
        values = check_mask(
            mask, size, self.num_classes, image_id, self.mask_path(image_id), self.image_path(image_id)
        )
        if self.label_dir is not None:
            self._labels[image_id] = labels_from_values(values)
        return mask

    def labels(self, image_id: str) -> np.ndarray:
        self._record(image_id)  # an unknown id fails here, naming the split
        if image_id not in self._labels:
            self.load_mask(image_id)  # label_dir mode: fills the cache
        return self._labels[image_id].copy()

    def validate(self, decode_images: bool = True) -> None:
        """Check every id of the split; one DataError listing all problems found."""
        validate_dataset(self, f"{self.root} split {self.split!r}", decode_images)

    # -- rendering -------------------------------------------------------------------------
    def _render(self, image_id: str) -> np.ndarray:
        record = self._record(image_id)
        mask = np.zeros((record["height"], record["width"]), dtype=np.uint8)
        painted = np.zeros(mask.shape, dtype=bool)
        anns = self._coco.imgToAnns.get(record["id"], [])
        for ann in anns:
            if not ann.get("iscrowd", 0):
                region = self._ann_mask(ann, image_id) & ~painted  # earlier instances win
                mask[region] = self._class_of_category[ann["category_id"]]
                painted |= region
        for ann in anns:
            if ann.get("iscrowd", 0):
                mask[self._ann_mask(ann, image_id) & ~painted] = IGNORE_INDEX
        return mask

    def _ann_mask(self, ann: dict, image_id: str) -> np.ndarray:
        try:
            return self._coco.annToMask(ann).astype(bool)
        except Exception as exc:  # pycocotools raises bare TypeErrors/ValueErrors on bad segments
            raise DataError(
                f"{self.annotation_file}: image {image_id}: annotation {ann.get('id')} has an unreadable "
                f"segmentation ({exc})"
            ) from None


# -- the JSON --------------------------------------------------------------------------------
def _load_coco(path: Path):
    from pycocotools.coco import COCO

    data = read_json(path)  # DataError naming the file if missing or not JSON
    _check_instances(data, path)
    coco = COCO()
    coco.dataset = data
    with contextlib.redirect_stdout(io.StringIO()):  # createIndex prints progress
        coco.createIndex()
    return coco


def _check_instances(data, path: Path) -> None:
    """Fail with the file and entry named, not with a KeyError deep inside pycocotools."""
    if not isinstance(data, dict):
        raise DataError(f"{path}: expected a COCO instances object, got {type(data).__name__}")
    for key in ("images", "annotations", "categories"):
        if not isinstance(data.get(key), list):
            raise DataError(f"{path}: missing or invalid {key!r} list")
    _require_keys(data["images"], ("id", "file_name", "height", "width"), "image", path)
    _require_keys(data["categories"], ("id", "name"), "category", path)
    ann_keys = ("id", "image_id", "category_id", "segmentation")
    _require_keys(data["annotations"], ann_keys, "annotation", path)
    if not data["categories"]:
        raise DataError(f"{path}: no categories")
    image_ids = {image["id"] for image in data["images"]}
    category_ids = {category["id"] for category in data["categories"]}
    for ann in data["annotations"]:
        if ann["image_id"] not in image_ids:
            raise DataError(f"{path}: annotation {ann['id']} refers to unknown image id {ann['image_id']}")
        if ann["category_id"] not in category_ids:
            raise DataError(f"{path}: annotation {ann['id']} has unknown category id {ann['category_id']}")


def _require_keys(entries: list, keys: tuple[str, ...], what: str, path: Path) -> None:
    for index, entry in enumerate(entries):
        missing = [key for key in keys if not isinstance(entry, dict) or key not in entry]
        if missing:
            raise DataError(f"{path}: {what} #{index} lacks {missing}")
