"""COCODataset on a tiny instances JSON written in the real COCO 2014 layout."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from pycocotools import mask as mask_utils

from wsss.core.errors import DataError, ParamsError
from wsss.core.io import write_palette_png
from wsss.core.params import DatasetParams, validate
from wsss.data.coco import COCODataset
from wsss.data.registry import open_dataset

SPLIT = "train2014"
A, B = "COCO_train2014_000000000009", "COCO_train2014_000000000025"
# Category ids skip numbers and are listed out of order; classes follow ascending id.
PERSON, CAR, DOG = 1, 2, 3  # category ids 1, 3, 18


def rect(x0, y0, x1, y1) -> list[float]:
    """Polygon of mask[y0:y1, x0:x1] (pycocotools rasterises integer corners this way)."""
    return [x0, y0, x1, y0, x1, y1, x0, y1]


def uncompressed_rle(binary: np.ndarray) -> dict:
    """COCO's list-of-runs RLE (column-major, starting with a run of zeros), as crowds use."""
    flat = binary.flatten(order="F").astype(np.uint8)
    counts, current, run = [], 0, 0
    for value in flat:
        if value != current:
            counts.append(run)
            current, run = value, 0
        run += 1
    counts.append(run)
    return {"counts": counts, "size": list(binary.shape)}


def compressed_rle(binary: np.ndarray) -> dict:
    rle = mask_utils.encode(np.asfortranarray(binary.astype(np.uint8)))
    return {"counts": rle["counts"].decode("ascii"), "size": list(rle["size"])}


def image_entry(image_id: int, height: int, width: int) -> dict:
    file_name = f"COCO_{SPLIT}_{image_id:012d}.jpg"
    return {"id": image_id, "file_name": file_name, "height": height, "width": width}


def write_jpeg(root: Path, entry: dict, size=None) -> None:
    path = root / SPLIT / entry["file_name"]
    path.parent.mkdir(parents=True, exist_ok=True)
    height, width = size or (entry["height"], entry["width"])
    Image.fromarray(np.full((height, width, 3), 128, np.uint8)).save(path, format="JPEG")


def crowd_region() -> np.ndarray:
    region = np.zeros((10, 12), bool)
    region[7:10, :] = True
    return region


def person_region_b() -> np.ndarray:
    region = np.zeros((8, 6), bool)
    region[1:4, 2:5] = True
    return region


def instances() -> dict:
    def ann(ann_id, image_id, category_id, segmentation, iscrowd=0):
        return {
            "id": ann_id,
            "image_id": image_id,
            "category_id": category_id,
            "segmentation": segmentation,
            "iscrowd": iscrowd,
            "area": 1.0,
            "bbox": [0, 0, 1, 1],
        }

    return {
        "images": [
            image_entry(9, 10, 12),
            image_entry(25, 8, 6),
            image_entry(30, 5, 5),  # no annotation
            image_entry(42, 5, 5),  # a crowd only
        ],
        "categories": [
            {"id": 18, "name": "dog"},
            {"id": 1, "name": "person"},
            {"id": 3, "name": "car"},
        ],
        "annotations": [
            ann(101, 9, 18, [rect(2, 2, 8, 6)]),  # dog, first
            ann(102, 9, 1, [rect(5, 4, 11, 9)]),  # person overlapping the dog
            ann(103, 9, 3, uncompressed_rle(crowd_region()), iscrowd=1),  # a crowd of cars
            ann(201, 25, 1, compressed_rle(person_region_b())),
            ann(202, 25, 3, [rect(0, 5, 1, 8), rect(1, 5, 2, 8)]),  # car in two polygons
            ann(401, 42, 18, uncompressed_rle(np.ones((5, 5), bool)), iscrowd=1),  # crowd only
        ],
    }


def write_instances(root: Path, data) -> Path:
    path = root / "annotations" / f"instances_{SPLIT}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(data if isinstance(data, str) else json.dumps(data))
    return path


@pytest.fixture
def root(tmp_path: Path) -> Path:
    root = tmp_path / "coco"
    data = instances()
    write_instances(root, data)
    for entry in data["images"]:
        write_jpeg(root, entry)
    return root


def test_categories_map_to_contiguous_ids(root):
    dataset = COCODataset(root, SPLIT)
    assert dataset.class_names == ["background", "person", "car", "dog"]
    assert dataset.num_classes == 4


def test_images_without_non_crowd_annotation_dropped(root):
    assert COCODataset(root, SPLIT).ids == [A, B]


def test_earlier_instance_wins_and_crowd_is_ignored(root):
    expected = np.zeros((10, 12), np.uint8)
    expected[7:10, :] = 255  # crowd, except where an instance painted
    expected[4:9, 5:11] = PERSON
    expected[2:6, 2:8] = DOG  # the earlier instance keeps the overlap [4:6, 5:8]
    mask = COCODataset(root, SPLIT).load_mask(A)
    assert mask.dtype == np.uint8
    np.testing.assert_array_equal(mask, expected)


def test_compressed_rle_and_multi_polygon(root):
    expected = np.zeros((8, 6), np.uint8)
    expected[person_region_b()] = PERSON
    expected[5:8, 0:2] = CAR
    np.testing.assert_array_equal(COCODataset(root, SPLIT).load_mask(B), expected)


def test_labels_from_annotations_without_rendering(root, monkeypatch):
    dataset = COCODataset(root, SPLIT)
    monkeypatch.setattr(dataset._coco, "annToMask", lambda ann: pytest.fail("labels() rendered a mask"))
    assert dataset.labels(A).tolist() == [PERSON, CAR, DOG]  # the crowd's class counts
    assert dataset.labels(B).tolist() == [PERSON, CAR]
    assert dataset.labels(A).dtype == np.int64
    with pytest.raises(DataError, match="COCO_train2014_000000000030: not in split"):
        dataset.labels("COCO_train2014_000000000030")


def test_bad_json_names_file(root):
    path = write_instances(root, "{not json")
    with pytest.raises(DataError, match=str(path)):
        COCODataset(root, SPLIT)
    with pytest.raises(DataError, match=r"instances_val2014\.json: file not found"):
        COCODataset(root, "val2014")


def test_malformed_entries_name_file_and_entry(root):
    data = instances()
    data["annotations"][1]["category_id"] = 99
    path = write_instances(root, data)
    with pytest.raises(DataError, match=rf"{path}: annotation 102 has unknown category id 99"):
        COCODataset(root, SPLIT)
    data = instances()
    del data["images"][1]["height"]
    write_instances(root, data)
    with pytest.raises(DataError, match=r"image #1 lacks \['height'\]"):
        COCODataset(root, SPLIT)


def test_missing_image_and_size_mismatch(root):
    (root / SPLIT / f"{A}.jpg").unlink()
    write_jpeg(root, image_entry(25, 8, 6), size=(9, 6))
    dataset = COCODataset(root, SPLIT)
    with pytest.raises(DataError) as info:
        dataset.load_image(A)
    assert f"image {A}" in str(info.value) and str(root / SPLIT / f"{A}.jpg") in str(info.value)
    with pytest.raises(DataError) as info:
        dataset.load_mask(B)
    message = str(info.value)
    assert f"image {B}" in message and "8x6" in message and "9x6" in message
    with pytest.raises(DataError) as info:
        dataset.validate()
    assert "2 problem(s) in 2 images" in str(info.value)


def test_label_dir_pngs_are_the_masks(root):
    label_dir = root / "labels"
    mask_a = np.zeros((10, 12), np.uint8)
    mask_a[0:3, 0:3] = CAR
    mask_a[3, :] = 255
    write_palette_png(label_dir / f"{A}.png", mask_a)
    write_palette_png(label_dir / f"{B}.png", np.full((8, 6), 4, np.uint8))  # 4 > C-1 = 3
    dataset = COCODataset(root, SPLIT, label_dir="labels")
    np.testing.assert_array_equal(dataset.load_mask(A), mask_a)
    assert dataset.labels(A).tolist() == [CAR]  # from the PNG, not the JSON
    with pytest.raises(DataError) as info:
        dataset.labels(B)
    assert str(label_dir / f"{B}.png") in str(info.value) and "[4]" in str(info.value)
    with pytest.raises(DataError, match="label_dir"):
        COCODataset(root, SPLIT, label_dir="missing")


def test_validate_passes_and_registry(root):
    COCODataset(root, SPLIT).validate()
    cfg = {
        "name": "coco",
        "root": str(root),
        "saliency": "opencv",
        "mask_dir": "auto",
        "annotation_file": None,
        "label_dir": None,
    }
    dataset = open_dataset(DatasetParams(**cfg), SPLIT)
    assert isinstance(dataset, COCODataset) and dataset.ids == [A, B]
    saliency = dataset.load_saliency(A)
    assert saliency.shape == (10, 12) and saliency.dtype == np.float32
    with pytest.raises(ParamsError, match="label_dir"):
        validate({"dataset": {**cfg, "mask_dir": "SegmentationClass"}})
