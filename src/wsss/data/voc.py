"""PASCAL VOC 2012 reader (also reads the synthetic set, which uses the same layout).

Layout under ``root`` (the ``VOC2012`` folder)::

    JPEGImages/<id>.jpg
    SegmentationClass/<id>.png, SegmentationClassAug/<id>.png   palette PNGs, 255 = ignore
    Annotations/<id>.xml                                          object names (image-level labels)
    ImageSets/Segmentation/<split>.txt                            one id per line
    classes.txt, context_classes.txt, SegmentationContext/<id>.png   optional (synthetic set)

The checking helpers at the bottom are shared with the COCO reader.
"""

from __future__ import annotations

import json
import os
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
from PIL import Image

from wsss.core.errors import DataError
from wsss.core.io import read_label_png, read_rgb
from wsss.data.base import IGNORE_INDEX, SegmentationDataset
from wsss.data.saliency import SaliencySource

VOC_CLASSES = (
    "background", "aeroplane", "bicycle", "bird", "boat", "bottle", "bus", "car", "cat", "chair",
    "cow", "diningtable", "dog", "horse", "motorbike", "person", "pottedplant", "sheep", "sofa",
    "train", "tvmonitor",
)  # fmt: skip

AUTO_MASK_DIRS = ("SegmentationClassAug", "SegmentationClass")  # first found wins, per id
SPLIT_DIR = Path("ImageSets") / "Segmentation"


class VOCDataset(SegmentationDataset):
    """One split of a VOC-layout data set.

    ``mask_dir``: "auto" (per id SegmentationClassAug, else SegmentationClass, else no mask),
    a folder name under ``root`` (ids without a file there have no mask), or None (no masks;
    labels come from the XML annotations).
    """

    def __init__(
        self,
        root: str | os.PathLike,
        split: str,
        mask_dir: str | None = "auto",
        class_names: list[str] | None = None,
        saliency: SaliencySource | None = None,
    ):
        self.root = Path(root)
        if not self.root.is_dir():
            raise DataError(f"{self.root}: data set root not found")
        self.split = split
        self.class_names = _load_class_names(self.root, class_names)
        self.context_names = _read_context_names(self.root / "context_classes.txt")
        self.cooccurrence_pairs = _read_cooccurrence_pairs(self.root / "synthetic_meta.json")
        self.mask_dir = mask_dir
        if mask_dir not in (None, "auto") and not (self.root / mask_dir).is_dir():
            raise DataError(f"{self.root / mask_dir}: mask folder not found (mask_dir={mask_dir!r})")
        self.saliency = saliency
        self.ids = read_split_file(self.root, split)
        self._class_index = {name: index for index, name in enumerate(self.class_names)}
        self._labels: dict[str, np.ndarray] = {}

    # -- paths ---------------------------------------------------------------------------
    def image_path(self, image_id: str) -> Path:
        return self.root / "JPEGImages" / f"{image_id}.jpg"

    def mask_path(self, image_id: str) -> Path | None:
        """The mask file this id uses, or None when it has none."""
        if self.mask_dir is None:
            return None
        folders = AUTO_MASK_DIRS if self.mask_dir == "auto" else (self.mask_dir,)
        for folder in folders:
            path = self.root / folder / f"{image_id}.png"
            if path.is_file():
                return path
        return None

    def annotation_path(self, image_id: str) -> Path:
        return self.root / "Annotations" / f"{image_id}.xml"

    # -- the SegmentationDataset interface -------------------------------------------------
    def load_image(self, image_id: str) -> np.ndarray:
        return read_image(self.image_path(image_id), image_id)

    def image_size(self, image_id: str) -> tuple[int, int]:
        """(H, W) from the image header, without decoding the pixels."""
        return read_image_size(self.image_path(image_id), image_id)

    def load_mask(self, image_id: str) -> np.ndarray | None:
        path = self.mask_path(image_id)
        if path is None:
            return None
        mask = read_label_png(path)
        values = check_mask(
            mask, self.image_size(image_id), self.num_classes, image_id, path, self.image_path(image_id)
        )
        # Labels fall out of the value check for free; cache them (labels() then reads nothing).
        self._labels[image_id] = labels_from_values(values)
        return mask

    def labels(self, image_id: str) -> np.ndarray:
        if image_id not in self._labels:
            if self.mask_path(image_id) is not None:
                self.load_mask(image_id)  # fills the cache
            else:
                self._labels[image_id] = self._labels_from_xml(image_id)
        return self._labels[image_id].copy()

    def load_context(self, image_id: str) -> np.ndarray | None:
        path = self.root / "SegmentationContext" / f"{image_id}.png"
        if not path.is_file():
            return None
        context = read_label_png(path)
        num_context = len(self.context_names) if self.context_names is not None else IGNORE_INDEX
        check_mask(context, self.image_size(image_id), num_context, image_id, path, self.image_path(image_id))
        return context

    def validate(self, decode_images: bool = True) -> None:
        """Check every id of the split; one DataError listing all problems found."""
        validate_dataset(self, f"{self.root} split {self.split!r}", decode_images)

    # -- helpers ---------------------------------------------------------------------------
    def _labels_from_xml(self, image_id: str) -> np.ndarray:
        path = self.annotation_path(image_id)
        if not path.is_file():
            raise DataError(
                f"image {image_id}: no mask (looked in {self._mask_dirs_text()}) and no annotation {path}; "
                "cannot derive its image-level labels"
            )
        ids = set()
        for name in read_xml_object_names(path):
            if name not in self._class_index or self._class_index[name] == 0:
                raise DataError(f"{path}: image {image_id}: unknown object name {name!r}")
            ids.add(self._class_index[name])  # difficult objects count: the class is present
        return np.array(sorted(ids), dtype=np.int64)

    def _mask_dirs_text(self) -> str:
        if self.mask_dir is None:
            return "nothing: mask_dir is None"
        folders = AUTO_MASK_DIRS if self.mask_dir == "auto" else (self.mask_dir,)
        return ", ".join(str(self.root / folder) for folder in folders)


# -- VOC files -------------------------------------------------------------------------------
def read_split_file(root: Path, split: str) -> list[str]:
    """Ids listed in ``ImageSets/Segmentation/<split>.txt`` (first token of each line)."""
    path = root / SPLIT_DIR / f"{split}.txt"
    if not path.is_file():
        available = sorted(p.stem for p in (root / SPLIT_DIR).glob("*.txt"))
        raise DataError(
            f"{path}: split file for split {split!r} not found; available splits: {available or 'none'}"
        )
    ids = [_id_from_line(line) for line in path.read_text().splitlines() if line.strip()]
    if not ids:
        raise DataError(f"{path}: split {split!r} is empty")
    seen, duplicates = set(), []
    for image_id in ids:
        if image_id in seen:
            duplicates.append(image_id)
        seen.add(image_id)
    if duplicates:
        raise DataError(f"{path}: split {split!r} lists ids more than once: {sorted(set(duplicates))[:10]}")
    return ids


def _id_from_line(line: str) -> str:
    # Some train_aug lists hold "/JPEGImages/<id>.jpg /SegmentationClassAug/<id>.png": keep the id.
    token = line.split()[0]
    return Path(token).stem if "/" in token or token.endswith(".jpg") else token


def _load_class_names(root: Path, class_names: list[str] | None) -> list[str]:
    if class_names is not None:
        names, source = [str(name) for name in class_names], "class_names argument"
    elif (root / "classes.txt").is_file():
        names, source = _read_names(root / "classes.txt"), str(root / "classes.txt")
    else:
        return list(VOC_CLASSES)
    if len(names) < 2 or names[0] != "background":
        raise DataError(f"{source}: needs 'background' first and at least one class, got {names[:3]}")
    if len(set(names)) != len(names) or len(names) > IGNORE_INDEX:
        raise DataError(f"{source}: class names must be unique and fewer than {IGNORE_INDEX}")
    return names


def _read_context_names(path: Path) -> list[str] | None:
    if not path.is_file():
        return None
    names = _read_names(path)
    if not names or names[0] != "object":
        raise DataError(f"{path}: the first context class must be 'object', got {names[:1]}")
    return names


def _read_cooccurrence_pairs(path: Path) -> list[tuple[str, str]] | None:
    """(context, class) pairs that co-occur by construction (the synthetic set records them)."""
    if not path.is_file():
        return None
    try:
        return [(pair["context"], pair["class"]) for pair in json.loads(path.read_text())["cooccurrence"]]
    except (ValueError, KeyError, TypeError) as exc:
        raise DataError(f"{path}: unreadable co-occurrence pairs ({exc})") from exc


def _read_names(path: Path) -> list[str]:
    return [line.strip() for line in path.read_text().splitlines() if line.strip()]


def read_xml_object_names(path: Path) -> list[str]:
    """The ``<object><name>`` entries of a VOC annotation file."""
    try:
        tree = ET.parse(path)
    except ET.ParseError as exc:
        raise DataError(f"{path}: not a valid annotation XML ({exc})") from None
    names = []
    for obj in tree.getroot().iter("object"):
        name = obj.findtext("name")
        if name is None or not name.strip():
            raise DataError(f"{path}: an <object> has no <name>")
        names.append(name.strip())
    return names


# -- checks shared with the COCO reader ---------------------------------------------------
def read_image(path: Path, image_id: str) -> np.ndarray:
    try:
        return read_rgb(path)
    except DataError as exc:
        raise DataError(f"image {image_id}: {exc}") from None


def read_image_size(path: Path, image_id: str) -> tuple[int, int]:
    """(H, W) from the header only: size checks must not decode whole images."""
    try:
        with Image.open(path) as image:
            width, height = image.size
    except FileNotFoundError:
        raise DataError(f"image {image_id}: {path}: image file not found") from None
    except Exception as exc:
        raise DataError(f"image {image_id}: {path}: cannot read image ({exc})") from None
    return height, width


def check_mask(
    mask: np.ndarray,
    image_size: tuple[int, int],
    num_classes: int,
    image_id: str,
    mask_path: Path,
    image_path: Path,
) -> np.ndarray:
    """Raise DataError unless ``mask`` has the image's size and values in 0..C-1 or 255.

    Returns the sorted distinct values (callers derive labels from them).
    """
    if mask.shape != tuple(image_size):
        raise DataError(
            f"image {image_id}: mask {mask_path} is {mask.shape[0]}x{mask.shape[1]} but image "
            f"{image_path} is {image_size[0]}x{image_size[1]} (HxW)"
        )
    values = np.unique(mask)
    bad = values[(values >= num_classes) & (values != IGNORE_INDEX)]
    if bad.size:
        raise DataError(
            f"{mask_path}: image {image_id}: mask values {bad.tolist()} outside 0..{num_classes - 1} "
            f"and {IGNORE_INDEX}"
        )
    return values


def labels_from_values(values: np.ndarray) -> np.ndarray:
    """Foreground class ids among a mask's distinct values (0 and 255 dropped)."""
    values = np.asarray(values, dtype=np.int64)
    return np.sort(values[(values != 0) & (values != IGNORE_INDEX)])


MAX_LISTED_PROBLEMS = 20


def validate_dataset(dataset: SegmentationDataset, title: str, decode_images: bool = True) -> None:
    """Check every id: image readable, mask size/values, labels non-empty, stored saliency.

    Collects all problems and raises one DataError, so a bad data set fails before a long
    stage starts. ``decode_images=False`` reads image headers only (much faster).
    """
    problems = []
    for image_id in dataset.ids:
        problems.extend(_problems_of(dataset, image_id, decode_images))
    if problems:
        listed = problems[:MAX_LISTED_PROBLEMS]
        more = len(problems) - len(listed)
        tail = [f"... and {more} more"] if more else []
        raise DataError(
            f"{title}: {len(problems)} problem(s) in {len(dataset.ids)} images:\n  "
            + "\n  ".join(listed + tail)
        )


def _problems_of(dataset, image_id: str, decode_images: bool) -> list[str]:
    try:
        if decode_images:
            dataset.load_image(image_id)
        else:
            dataset.image_size(image_id)
    except DataError as exc:
        return [str(exc)]  # nothing else can be checked against a broken image
    problems = []
    for check in (_check_labels, _check_saliency):
        try:
            check(dataset, image_id)
        except DataError as exc:
            problems.append(str(exc))
    return problems


def _check_labels(dataset, image_id: str) -> None:
    dataset.load_mask(image_id)  # validates size and values
    if dataset.labels(image_id).size == 0:
        source = dataset.mask_path(image_id) or "its annotations"
        raise DataError(f"image {image_id}: no foreground class (from {source})")


def _check_saliency(dataset, image_id: str) -> None:
    # Computed sources cannot be missing; only stored maps are worth a full pass.
    source = getattr(dataset, "saliency", None)
    if source is not None and not source.needs_image:
        dataset.load_saliency(image_id)
