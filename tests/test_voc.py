"""VOCDataset on tiny trees written in the real VOC layout."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from wsss.core.errors import DataError, ParamsError
from wsss.core.io import write_palette_png
from wsss.core.params import DatasetParams, validate
from wsss.data import voc as voc_module
from wsss.data.registry import open_dataset
from wsss.data.saliency import FolderSaliency
from wsss.data.voc import VOC_CLASSES, VOCDataset

H, W = 12, 16
PERSON, CAR, DOG, CAT = 15, 7, 12, 8


def write_jpeg(root: Path, image_id: str, size=(H, W)) -> Path:
    path = root / "JPEGImages" / f"{image_id}.jpg"
    path.parent.mkdir(parents=True, exist_ok=True)
    pixels = np.random.default_rng(0).integers(0, 256, (*size, 3), dtype=np.uint8)
    Image.fromarray(pixels).save(path, format="JPEG")
    return path


def write_mask(root: Path, folder: str, image_id: str, mask: np.ndarray) -> Path:
    path = root / folder / f"{image_id}.png"
    write_palette_png(path, mask)
    return path


def write_xml(root: Path, image_id: str, objects: list[tuple[str, int]]) -> Path:
    body = "".join(
        f"<object><name>{name}</name><difficult>{difficult}</difficult></object>"
        for name, difficult in objects
    )
    path = root / "Annotations" / f"{image_id}.xml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(f"<annotation><filename>{image_id}.jpg</filename>{body}</annotation>")
    return path


def write_split(root: Path, split: str, ids: list[str]) -> Path:
    path = root / "ImageSets" / "Segmentation" / f"{split}.txt"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(f"{image_id}\n" for image_id in ids))
    return path


def person_mask() -> np.ndarray:
    """Person block with a 255 border, on background."""
    mask = np.zeros((H, W), np.uint8)
    mask[2:10, 3:12] = IGNORE
    mask[3:9, 4:11] = PERSON
    return mask


IGNORE = 255


@pytest.fixture
def root(tmp_path: Path) -> Path:
    root = tmp_path / "VOC2012"
    # a: SegmentationClass mask (person + 255 border); its XML says dog, the mask must win.
    write_jpeg(root, "a")
    write_mask(root, "SegmentationClass", "a", person_mask())
    write_xml(root, "a", [("dog", 0)])
    # b: both folders; SegmentationClassAug must win (cat), SegmentationClass says car.
    write_jpeg(root, "b")
    aug = np.zeros((H, W), np.uint8)
    aug[:4, :4] = CAT
    write_mask(root, "SegmentationClassAug", "b", aug)
    write_mask(root, "SegmentationClass", "b", np.full((H, W), CAR, np.uint8))
    # c: no mask; labels from the XML, difficult objects included, duplicates merged.
    write_jpeg(root, "c")
    write_xml(root, "c", [("person", 1), ("car", 0), ("car", 0)])
    write_split(root, "train", ["a", "b", "c"])
    return root


def test_mask_values_are_raw_indices_with_ignore_border(root):
    dataset = VOCDataset(root, "train")
    mask = dataset.load_mask("a")
    assert mask.dtype == np.uint8
    np.testing.assert_array_equal(mask, person_mask())
    assert dataset.load_mask("c") is None


def test_auto_mask_dir_prefers_aug(root):
    dataset = VOCDataset(root, "train")
    assert dataset.mask_path("b") == root / "SegmentationClassAug" / "b.png"
    assert set(np.unique(dataset.load_mask("b")).tolist()) == {0, CAT}


def test_labels_from_mask_else_xml(root):
    dataset = VOCDataset(root, "train")
    assert dataset.labels("a").tolist() == [PERSON]
    assert dataset.labels("b").tolist() == [CAT]
    assert dataset.labels("c").tolist() == [CAR, PERSON]
    assert dataset.labels("c").dtype == np.int64
    expected = np.zeros(20, np.float32)
    expected[[CAR - 1, PERSON - 1]] = 1
    np.testing.assert_array_equal(dataset.label_vector("c"), expected)


def test_explicit_mask_dir_and_no_masks(root):
    dataset = VOCDataset(root, "train", mask_dir="SegmentationClass")
    assert dataset.labels("b").tolist() == [CAR]
    assert dataset.load_mask("c") is None
    no_masks = VOCDataset(root, "train", mask_dir=None)
    assert no_masks.labels("a").tolist() == [DOG]
    assert no_masks.load_mask("a") is None
    with pytest.raises(DataError, match="Nowhere"):
        VOCDataset(root, "train", mask_dir="Nowhere")


def test_labels_cached_without_decoding_images(root, monkeypatch):
    def no_decode(path):
        raise AssertionError(f"labels() decoded {path}")

    monkeypatch.setattr(voc_module, "read_rgb", no_decode)
    reads = []
    real_read = voc_module.read_label_png
    monkeypatch.setattr(voc_module, "read_label_png", lambda path: reads.append(path) or real_read(path))
    dataset = VOCDataset(root, "train")
    first = [dataset.labels(image_id).tolist() for image_id in dataset.ids]
    second = [dataset.labels(image_id).tolist() for image_id in dataset.ids]
    assert first == second == [[PERSON], [CAT], [CAR, PERSON]]
    assert len(reads) == 2  # a and b once each; c has no mask


def test_class_names_default_and_classes_txt(root):
    assert VOCDataset(root, "train").class_names == list(VOC_CLASSES)
    assert VOCDataset(root, "train").num_classes == 21
    (root / "classes.txt").write_text("background\nsquare\ncircle\n")
    dataset = VOCDataset(root, "train", mask_dir=None)
    assert dataset.class_names == ["background", "square", "circle"]
    with pytest.raises(DataError, match=r"c\.xml.*'person'"):
        dataset.labels("c")  # "person" is no class of this set


def test_mask_value_outside_classes_rejected(root):
    (root / "classes.txt").write_text("background\nsquare\ncircle\n")
    dataset = VOCDataset(root, "train")
    with pytest.raises(DataError) as info:
        dataset.load_mask("a")  # holds 15
    message = str(info.value)
    assert str(root / "SegmentationClass" / "a.png") in message
    assert "image a" in message and "[15]" in message


def test_out_of_range_value_names_file_id_and_values(root):
    mask = person_mask()
    mask[0, 0], mask[0, 1] = 21, 200
    path = write_mask(root, "SegmentationClass", "a", mask)
    with pytest.raises(DataError) as info:
        VOCDataset(root, "train").labels("a")
    message = str(info.value)
    assert str(path) in message and "image a" in message and "[21, 200]" in message


def test_wrong_size_mask_names_both_files_and_sizes(root):
    path = write_mask(root, "SegmentationClass", "a", np.zeros((H + 1, W), np.uint8))
    with pytest.raises(DataError) as info:
        VOCDataset(root, "train").load_mask("a")
    message = str(info.value)
    assert "image a" in message and str(path) in message and str(root / "JPEGImages" / "a.jpg") in message
    assert f"{H + 1}x{W}" in message and f"{H}x{W}" in message


def test_corrupt_and_truncated_jpeg(root):
    (root / "JPEGImages" / "a.jpg").write_bytes(b"not a jpeg at all")
    good = (root / "JPEGImages" / "b.jpg").read_bytes()
    (root / "JPEGImages" / "b.jpg").write_bytes(good[: len(good) // 2])
    dataset = VOCDataset(root, "train")
    for image_id in ("a", "b"):
        with pytest.raises(DataError) as info:
            dataset.load_image(image_id)
        assert f"image {image_id}" in str(info.value)
        assert str(root / "JPEGImages" / f"{image_id}.jpg") in str(info.value)
    image = dataset.load_image("c")
    assert image.shape == (H, W, 3) and image.dtype == np.uint8


def test_no_mask_no_xml_and_unknown_xml_name(root):
    write_jpeg(root, "d")
    write_jpeg(root, "e")
    write_xml(root, "e", [("person", 0), ("unicorn", 0)])
    write_split(root, "more", ["d", "e"])
    dataset = VOCDataset(root, "more")
    with pytest.raises(DataError, match=r"image d: no mask.*d\.xml"):
        dataset.labels("d")
    with pytest.raises(DataError) as info:
        dataset.labels("e")
    assert str(root / "Annotations" / "e.xml") in str(info.value) and "'unicorn'" in str(info.value)


def test_split_file_errors(root):
    with pytest.raises(DataError) as info:
        VOCDataset(root, "trainval")
    message = str(info.value)
    assert str(root / "ImageSets" / "Segmentation" / "trainval.txt") in message and "['train']" in message
    write_split(root, "empty", [])
    with pytest.raises(DataError, match="split 'empty' is empty"):
        VOCDataset(root, "empty")
    write_split(root, "dup", ["a", "b", "a"])
    with pytest.raises(DataError, match=r"dup\.txt.*\['a'\]"):
        VOCDataset(root, "dup")


def test_split_lines_with_paths(root):
    path = root / "ImageSets" / "Segmentation" / "train_aug.txt"
    path.write_text(
        "/JPEGImages/a.jpg /SegmentationClassAug/a.png\n\n"
        "/JPEGImages/c.jpg /SegmentationClassAug/c.png\n"
    )
    assert VOCDataset(root, "train_aug").ids == ["a", "c"]


def test_validate_collects_every_problem(root):
    write_jpeg(root, "bad_size")
    write_mask(root, "SegmentationClass", "bad_size", np.zeros((H, W + 2), np.uint8))
    write_jpeg(root, "bad_value")
    write_mask(root, "SegmentationClass", "bad_value", np.full((H, W), 30, np.uint8))
    write_jpeg(root, "only_bg")
    write_mask(root, "SegmentationClass", "only_bg", np.zeros((H, W), np.uint8))
    (root / "JPEGImages" / "corrupt.jpg").write_bytes(b"\xff\xd8garbage")
    write_split(root, "mixed", ["a", "bad_size", "bad_value", "only_bg", "corrupt", "c"])
    dataset = VOCDataset(root, "mixed")
    with pytest.raises(DataError) as info:
        dataset.validate()
    message = str(info.value)
    assert "4 problem(s) in 6 images" in message
    for culprit in ("image bad_size", "image bad_value", "image only_bg: no foreground", "image corrupt"):
        assert culprit in message
    VOCDataset(root, "train").validate()  # the clean split passes


def test_validate_caps_listing(root, monkeypatch):
    monkeypatch.setattr(voc_module, "MAX_LISTED_PROBLEMS", 2)
    for image_id in ("x1", "x2", "x3", "x4"):
        (root / "JPEGImages" / f"{image_id}.jpg").write_bytes(b"broken")
    write_split(root, "broken", ["x1", "x2", "x3", "x4"])
    with pytest.raises(DataError) as info:
        VOCDataset(root, "broken").validate(decode_images=False)
    message = str(info.value)
    assert "image x1" in message and "image x2" in message and "image x3" not in message
    assert "... and 2 more" in message


def test_context_and_saliency(root):
    assert VOCDataset(root, "train").context_names is None
    (root / "context_classes.txt").write_text("object\nwater\nrailroad\n")
    context = np.zeros((H, W), np.uint8)
    context[6:, :] = 1
    write_mask(root, "SegmentationContext", "a", context)
    saliency_dir = root / "Saliency"
    saliency_dir.mkdir()
    Image.fromarray(np.full((H, W), 51, np.uint8)).save(saliency_dir / "a.png")
    Image.fromarray(np.zeros((H + 1, W), np.uint8)).save(saliency_dir / "b.png")
    dataset = VOCDataset(root, "train", saliency=FolderSaliency(saliency_dir))
    assert dataset.context_names == ["object", "water", "railroad"]
    np.testing.assert_array_equal(dataset.load_context("a"), context)
    assert dataset.load_context("b") is None
    np.testing.assert_allclose(dataset.load_saliency("a"), np.full((H, W), 0.2, np.float32))
    with pytest.raises(DataError, match=rf"image b: saliency map .*b\.png.*{H + 1}x{W}"):
        dataset.load_saliency("b")
    with pytest.raises(DataError, match=r"image c: saliency map .*c\.png not found"):
        dataset.load_saliency("c")
    assert VOCDataset(root, "train").load_saliency("a") is None


def test_registry_opens_voc_and_synthetic(root):
    (root / "Saliency").mkdir()
    for name in ("voc", "synthetic"):
        cfg = {
            "name": name,
            "root": str(root),
            "saliency": "Saliency",
            "mask_dir": "auto",
            "annotation_file": None,
            "label_dir": None,
        }
        dataset = open_dataset(DatasetParams(**cfg), "train")
        assert isinstance(dataset, VOCDataset) and dataset.ids == ["a", "b", "c"]
        assert isinstance(dataset.saliency, FolderSaliency) and dataset.saliency.folder == root / "Saliency"


def test_registry_errors(root, tmp_path):
    with pytest.raises(ParamsError, match=r"'dataset\.name' should be .*'voc'.*, got 'pascal'"):
        validate({"dataset": {"name": "pascal", "root": str(root)}})
    missing = tmp_path / "nowhere"
    with pytest.raises(DataError, match=r"dataset\.root") as info:
        open_dataset(DatasetParams(name="voc", root=str(missing)), "train")
    assert str(missing) in str(info.value)
    with pytest.raises(ParamsError, match=r"dataset\.label_dir"):
        validate({"dataset": {"name": "voc", "root": str(root), "label_dir": "labels"}})
