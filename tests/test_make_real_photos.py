"""scripts/make_real_photos.py: a CamVid-layout tree in, a VOC-layout set the VOC reader accepts out."""

import importlib.util
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from wsss.core.errors import DataError
from wsss.data.voc import VOCDataset

_SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "make_real_photos.py"
_spec = importlib.util.spec_from_file_location("make_real_photos", _SCRIPT)
make_real_photos = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(make_real_photos)

CAR, PEDESTRIAN, BICYCLIST, UNLABELLED, ROAD = 8, 9, 10, 11, 3


def _frame(car_in: str | None, person_pixels: int) -> np.ndarray:
    """A 360x480 SegNet mask: road, a car filling one quadrant's centre, a pedestrian in the top left."""
    mask = np.full((360, 480), ROAD, dtype=np.uint8)
    corners = {"tl": (0, 0), "tr": (0, 240), "bl": (180, 0), "br": (180, 240)}
    if car_in:
        y, x = corners[car_in]
        mask[y + 40 : y + 140, x + 60 : x + 180] = CAR
    mask[10 : 10 + person_pixels // 10, 10:20] = PEDESTRIAN
    mask[300:310, 300:310] = BICYCLIST
    mask[0:5, 400:480] = UNLABELLED
    return mask


def _camvid(root: Path, frames: dict[str, dict[str, np.ndarray]]) -> Path:
    rng = np.random.default_rng(0)
    for split, masks in frames.items():
        (root / "CamVid" / split).mkdir(parents=True)
        (root / "CamVid" / f"{split}annot").mkdir()
        for name, mask in masks.items():
            photo = rng.integers(0, 256, (360, 480, 3), dtype=np.uint8)
            Image.fromarray(photo).save(root / "CamVid" / split / f"{name}.png")
            Image.fromarray(mask).save(root / "CamVid" / f"{split}annot" / f"{name}.png")
    return root


def test_convert_maps_segnet_classes_to_voc_names_and_ignore():
    segnet = np.array([[0, 3, 8, 9, 10, 11]], dtype=np.uint8)
    assert make_real_photos.convert_mask(segnet).tolist() == [[0, 0, 1, 2, 255, 255]]


def test_sliver_below_min_pixels_becomes_ignore_and_no_label():
    mask = np.zeros((10, 10), dtype=np.uint8)
    mask[0, :5] = 2  # 5 pixels of person
    mask[5:, 5:] = 1  # 25 pixels of car
    out = make_real_photos.drop_slivers(mask, min_pixels=10)
    assert (out[0, :5] == 255).all() and (out[5:, 5:] == 1).all() and out.sum() > 0


def test_writes_a_voc_set_the_reader_accepts(tmp_path):
    source = _camvid(
        tmp_path / "src",
        {
            "train": {"f1": _frame("br", 200), "f2": _frame("tl", 50), "f3": _frame(None, 200)},
            "val": {"f4": _frame("bl", 200)},
        },
    )
    out = tmp_path / "real"
    make_real_photos.main(["--source", str(source), "--out", str(out), "--min-pixels", "100"])
    root = out / "VOCdevkit" / "VOC2012"
    train = VOCDataset(root, "train")
    assert train.class_names == ["background", "car", "person"]
    train.validate()
    for image_id in train.ids:
        assert train.load_image(image_id).shape == (180, 240, 3)
        assert len(train.labels(image_id)) > 0  # quadrants with no object are left out
    # f2's pedestrian (50 px) is a sliver: its top-left quadrant holds only the car
    assert train.labels("f2_tl").tolist() == [1]
    assert (train.load_mask("f2_tl") == 255).any()
    # cars are held to about half of the images: every quadrant without one, as many with one
    with_car = sum(1 in train.labels(i) for i in train.ids)
    assert with_car == len(train.ids) - with_car
    assert VOCDataset(root, "val").ids  # val frames give the val split
    assert not list(out.parent.glob("*.tmp"))  # written, then renamed


def test_refuses_to_overwrite_and_names_a_missing_mask(tmp_path):
    source = _camvid(tmp_path / "src", {"train": {"f1": _frame("br", 200)}, "val": {"f2": _frame("bl", 200)}})
    (source / "CamVid" / "valannot" / "f2.png").unlink()
    with pytest.raises(DataError, match="valannot/f2.png"):
        make_real_photos.main(["--source", str(source), "--out", str(tmp_path / "real")])
    (tmp_path / "real").mkdir()
    with pytest.raises(SystemExit, match="exists"):
        make_real_photos.main(["--source", str(source), "--out", str(tmp_path / "real")])
