"""The synthetic VOC-layout generator: file layout, mask invariants, co-occurrence, saliency faults."""

from __future__ import annotations

import hashlib
import json
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from wsss.core.errors import DataError, ParamsError
from wsss.core.params import SyntheticParams, validate
from wsss.data.synthetic import (
    CLASS_NAMES,
    CONTEXT_NAMES,
    check_names,
    config_record,
    generate,
    ignore_band,
    render_sample,
)
from wsss.data.synthetic.stats import Stats

FOLDERS = {
    "JPEGImages": ".jpg",
    "SegmentationClass": ".png",
    "SegmentationClassAug": ".png",
    "SegmentationContext": ".png",
    "SaliencyMaps": ".png",
    "Annotations": ".xml",
}
TINY = {"image_height": 64, "image_width": 80, "num_train": 16, "num_val": 8, "seed": 3}


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    root = tmp_path_factory.mktemp("syn") / "VOCdevkit" / "VOC2012"
    config = SyntheticParams(**TINY)
    meta = generate(root, config)
    return root, config, meta


@pytest.fixture(scope="module")
def samples():
    """200 small images rendered in memory: enough to measure rates."""
    config = SyntheticParams(image_height=48, image_width=64, num_train=200, num_val=0, seed=11)
    return config, [render_sample(config, i) for i in range(200)]


def split_ids(root: Path, split: str) -> list[str]:
    return (root / "ImageSets" / "Segmentation" / f"{split}.txt").read_text().split()


def read_png(path: Path) -> tuple[np.ndarray, str]:
    with Image.open(path) as image:
        return np.array(image), image.mode


def xml_names(path: Path) -> list[str]:
    return [obj.findtext("name") for obj in ET.parse(path).getroot().iter("object")]


# -- layout ------------------------------------------------------------------------------------
def test_layout_and_split_files(tiny):
    root, config, _ = tiny
    train, val = split_ids(root, "train"), split_ids(root, "val")
    assert len(train) == config.num_train and len(val) == config.num_val
    assert not set(train) & set(val)
    assert split_ids(root, "train_aug") == train
    assert train[0] == "syn_000000"
    for image_id in train + val:
        for folder, suffix in FOLDERS.items():
            assert (root / folder / f"{image_id}{suffix}").is_file(), (folder, image_id)
    assert (root / "classes.txt").read_text().split() == CLASS_NAMES
    assert (root / "context_classes.txt").read_text().split() == CONTEXT_NAMES
    assert CLASS_NAMES[0] == "background" and len(CLASS_NAMES) - 1 >= 6
    assert CONTEXT_NAMES[0] == "object" and {"water", "railroad", "grass", "sky", "road"} <= set(
        CONTEXT_NAMES
    )


def test_per_image_invariants(tiny):
    root, config, _ = tiny
    num_classes, num_context = len(CLASS_NAMES) - 1, len(CONTEXT_NAMES) - 1
    for image_id in split_ids(root, "train") + split_ids(root, "val"):
        with Image.open(root / "JPEGImages" / f"{image_id}.jpg") as jpeg:
            assert jpeg.mode == "RGB" and jpeg.format == "JPEG"
            size = (jpeg.height, jpeg.width)
        assert size == (config.image_height, config.image_width)
        voc, voc_mode = read_png(root / "SegmentationClass" / f"{image_id}.png")
        aug, aug_mode = read_png(root / "SegmentationClassAug" / f"{image_id}.png")
        context, context_mode = read_png(root / "SegmentationContext" / f"{image_id}.png")
        saliency, saliency_mode = read_png(root / "SaliencyMaps" / f"{image_id}.png")
        assert (voc_mode, aug_mode, context_mode, saliency_mode) == ("P", "P", "P", "L")
        assert voc.shape == aug.shape == context.shape == saliency.shape == size
        assert saliency.dtype == np.uint8
        assert set(np.unique(voc)) <= set(range(num_classes + 1)) | {255}
        assert set(np.unique(aug)) <= set(range(num_classes + 1))
        assert set(np.unique(context)) <= set(range(num_context + 1))
        np.testing.assert_array_equal(context == 0, aug > 0)
        # SegmentationClass is the Aug mask plus the ignore band, and loses no class to it.
        np.testing.assert_array_equal(voc[voc != 255], aug[voc != 255])
        labels = set(np.unique(aug).tolist()) - {0}
        assert set(np.unique(voc).tolist()) - {0, 255} == labels
        assert config.min_objects <= len(labels) <= config.max_objects
        assert set(xml_names(root / "Annotations" / f"{image_id}.xml")) == {CLASS_NAMES[c] for c in labels}


def test_annotation_boxes_match_masks(tiny):
    root, config, _ = tiny
    for image_id in split_ids(root, "train")[:8]:
        aug, _ = read_png(root / "SegmentationClassAug" / f"{image_id}.png")
        tree = ET.parse(root / "Annotations" / f"{image_id}.xml").getroot()
        assert tree.findtext("filename") == f"{image_id}.jpg"
        assert int(tree.findtext("size/width")) == config.image_width
        assert int(tree.findtext("size/height")) == config.image_height
        assert tree.findtext("size/depth") == "3"
        for obj in tree.iter("object"):
            ys, xs = np.nonzero(aug == CLASS_NAMES.index(obj.findtext("name")))
            box = [int(obj.findtext(f"bndbox/{t}")) for t in ("xmin", "ymin", "xmax", "ymax")]
            assert box == [xs.min() + 1, ys.min() + 1, xs.max() + 1, ys.max() + 1]  # 1-based, one instance


def test_ignore_band_widths():
    mask = np.zeros((20, 20), np.uint8)
    mask[5:15, 5:15] = 2
    assert np.array_equal(ignore_band(mask, 0), mask)
    one = ignore_band(mask, 1)
    assert (one == 255).sum() == 36  # the square's own outermost ring
    assert (one[5:15, 5:15] == 255).sum() == 36 and one[6:14, 6:14].min() == 2
    two = ignore_band(mask, 2)
    assert (two[4:16, 4:16] == 255).sum() == 36 + 40  # plus the 4-connected ring outside
    assert (two[0, :] != 255).all()  # image borders are not boundaries


def test_exact_object_count_with_occlusion(tmp_path):
    config = SyntheticParams(
        image_height=48, image_width=64, num_train=12, num_val=1, min_objects=3, max_objects=3
    )
    for i in range(12):
        sample = render_sample(config, i)
        assert len(set(np.unique(sample.mask).tolist()) - {0}) == 3
        assert len(sample.objects) == 3


# -- what the data must exercise -------------------------------------------------------------------
def test_cooccurrence_rates_as_configured(samples):
    config, rendered = samples
    stats = Stats()
    for sample in rendered:
        stats.add(sample)
    summary = stats.summary(config)
    assert len(config.cooccurrence) == 6
    for pair in config.cooccurrence:
        entry = summary["classes"][pair.class_]
        assert entry["images"] >= 30
        assert abs(entry["paired_context_presence"][pair.context] - pair.rate) < 0.15, pair
    # Context is predictive, not a label: water also appears without boats.
    boat, water = CLASS_NAMES.index("boat"), CONTEXT_NAMES.index("water")
    without = [s for s in rendered if boat not in s.mask]
    share = np.mean([water in s.context for s in without])
    assert abs(share - config.context_base_rate) < 0.15
    assert share < summary["classes"]["boat"]["paired_context_presence"]["water"] - 0.2


def test_objects_sit_on_their_context(samples):
    """A boat with water in the image touches the water: the cue a CAM classifier learns."""
    _, rendered = samples
    boat, water = CLASS_NAMES.index("boat"), CONTEXT_NAMES.index("water")
    touching = []
    for s in rendered:
        if boat in s.mask and water in s.context:
            ring = np.zeros_like(s.mask, bool)
            ys, xs = np.nonzero(s.mask == boat)
            for dy, dx in ((1, 0), (-1, 0), (0, 1), (0, -1)):
                ring[np.clip(ys + dy, 0, s.mask.shape[0] - 1), np.clip(xs + dx, 0, s.mask.shape[1] - 1)] = (
                    True
                )
            touching.append(bool((s.context[ring] == water).any()))
    assert len(touching) > 20 and np.mean(touching) > 0.8


def test_saliency_misses_configured_classes(samples):
    config, rendered = samples
    missed = {CLASS_NAMES.index(n) for n in config.saliency_missed_classes}
    on_missed, on_others, on_background = [], [], []
    for s in rendered:
        sal = s.saliency.astype(np.float32) / 255
        core = ignore_band(s.mask, 4)  # away from blurred boundaries
        for c in set(np.unique(core).tolist()) - {0, 255}:
            (on_missed if c in missed else on_others).append(sal[core == c].mean())
        on_background.append(sal[core == 0].mean())
    assert np.mean(on_missed) < 0.25 and np.mean(on_others) > 0.6
    assert np.mean(on_background) < 0.15


def test_objects_differ_from_surroundings(samples):
    _, rendered = samples
    contrasts = []
    for s in rendered[:60]:
        image = s.image.astype(np.float32)
        for obj in s.objects:
            inside = s.mask == obj.class_id
            outer = np.zeros_like(inside)
            outer[1:] |= inside[:-1]
            outer[:-1] |= inside[1:]
            outer[:, 1:] |= inside[:, :-1]
            outer[:, :-1] |= inside[:, 1:]
            ring_out = outer & (s.mask == 0)
            ring_in = inside & ~np.roll(inside, 1, 0) | inside & ~np.roll(inside, -1, 0)
            if ring_out.sum() > 5 and ring_in.sum() > 5:
                contrasts.append(np.abs(image[ring_in].mean(0) - image[ring_out].mean(0)).mean())
    assert np.median(contrasts) > 25


# -- determinism, atomicity, config ---------------------------------------------------------------
def folder_bytes(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def test_deterministic_by_seed(tmp_path):
    small = {"image_height": 40, "image_width": 48, "num_train": 4, "num_val": 2}
    a = generate(tmp_path / "a" / "VOC2012", SyntheticParams(seed=5, **small))
    b = generate(tmp_path / "b" / "VOC2012", SyntheticParams(seed=5, **small))
    generate(tmp_path / "c" / "VOC2012", SyntheticParams(seed=6, **small))
    files_a, files_b = folder_bytes(tmp_path / "a" / "VOC2012"), folder_bytes(tmp_path / "b" / "VOC2012")
    assert files_a == files_b and a == b
    files_c = folder_bytes(tmp_path / "c" / "VOC2012")
    assert files_a.keys() == files_c.keys()
    assert files_a["JPEGImages/syn_000000.jpg"] != files_c["JPEGImages/syn_000000.jpg"]


def test_image_depends_only_on_seed_and_index():
    small = {"image_height": 40, "image_width": 48, "seed": 9}
    first = render_sample(SyntheticParams(num_train=3, **small), 2)
    again = render_sample(SyntheticParams(num_train=50, num_val=7, **small), 2)
    assert np.array_equal(first.image, again.image) and np.array_equal(first.saliency, again.saliency)


def test_replaces_old_root_atomically(tmp_path):
    root = tmp_path / "VOCdevkit" / "VOC2012"
    config = SyntheticParams(image_height=40, image_width=48, num_train=3, num_val=1)
    generate(root, config)
    (root / "stale.txt").write_text("left over")
    generate(root, config)
    assert not (root / "stale.txt").exists()
    assert sorted(p.name for p in root.parent.iterdir()) == ["VOC2012"]  # no temp folders left
    assert json.loads((root / "synthetic_meta.json").read_text())["splits"]["train"] == 3


def test_refuses_to_replace_a_foreign_folder(tmp_path):
    root = tmp_path / "precious"
    root.mkdir()
    (root / "thesis.tex").write_text("do not delete")
    with pytest.raises(DataError, match="refusing"):
        generate(root, SyntheticParams(image_height=40, image_width=48, num_train=1, num_val=0))
    assert (root / "thesis.tex").is_file()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["precious"]


def test_unknown_names_fail_before_anything_is_written(tmp_path):
    """generate() checks the class and context names the params model cannot know."""
    root = tmp_path / "VOC2012"
    config = SyntheticParams.model_validate(
        {"num_train": 1, "num_val": 0, "cooccurrence": [{"context": "lava", "class": "boat", "rate": 0.5}]}
    )
    with pytest.raises(ParamsError, match=r"data\.synthetic\.cooccurrence\[0\]\.context: unknown context 'lava'"):
        generate(root, config)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    "raw, key",
    [
        ({"no_such_knob": 1}, "data.synthetic.no_such_knob"),
        ({"num_train": 0}, "data.synthetic.num_train"),
        ({"num_train": 2.5}, "data.synthetic.num_train"),
        ({"seed": True}, "data.synthetic.seed"),
        ({"min_objects": 3, "max_objects": 2}, "'data.synthetic.min_objects' 3 exceeds 'data.synthetic.max_objects' 2"),
        ({"max_objects": 99}, "data.synthetic.max_objects"),
        ({"image_height": 8}, "data.synthetic.image_height"),
        ({"object_scale": [0.6, 0.2]}, "data.synthetic.object_scale"),
        ({"object_scale": 0.3}, "data.synthetic.object_scale"),
        ({"context_base_rate": 1.5}, "data.synthetic.context_base_rate"),
        (
            {"cooccurrence": [{"context": "water", "class": "boat", "rate": 1.2}]},
            "data.synthetic.cooccurrence[0].rate",
        ),
        ({"cooccurrence": [["water", "boat", 0.5]]}, "data.synthetic.cooccurrence[0]' should be a valid dictionary"),
        ({"cooccurrence": [{"context": "water", "class": "boat", "rate": 0.5}] * 2}, "(water, boat) listed twice"),
        (
            {"cooccurrence": [{"context": "water", "class": "submarine", "rate": 0.5}]},
            "data.synthetic.cooccurrence[0].class: unknown class 'submarine'",
        ),
        (
            {"cooccurrence": [{"context": "lava", "class": "boat", "rate": 0.5}]},
            "data.synthetic.cooccurrence[0].context: unknown context 'lava'",
        ),
        ({"saliency_missed_classes": ["unicorn"]}, "data.synthetic.saliency_missed_classes: unknown class 'unicorn'"),
        ({"saliency_blur_sigma": -1}, "data.synthetic.saliency_blur_sigma"),
        ({"image_sizes": []}, "data.synthetic.image_sizes"),
        ({"image_sizes": [[64, 80], [48]]}, "data.synthetic.image_sizes[1]"),
        ({"image_sizes": [[64, 16]]}, "data.synthetic.image_sizes[0]"),
        ({"image_sizes": "64x80"}, "data.synthetic.image_sizes"),
    ],
)
def test_bad_config_names_the_key(raw, key):
    """What params.yaml alone decides fails in the params model, the names in check_names; either
    way the error names the key."""
    with pytest.raises(ParamsError) as info:
        check_names(validate({"data": {"synthetic": raw}}).data.synthetic)
    assert key in str(info.value)


def test_good_config_passes_both_checks():
    raw = {"cooccurrence": [{"context": "water", "class": "boat", "rate": 0.5}], "saliency_missed_classes": ["cow"]}
    config = validate({"data": {"synthetic": raw}}).data.synthetic
    check_names(config)
    assert [(p.context, p.class_, p.rate) for p in config.cooccurrence] == [("water", "boat", 0.5)]
    check_names(SyntheticParams())  # the defaults name this set's classes and contexts


def test_config_record_round_trip():
    """The config synthetic_meta.json records reads back as the same params."""
    raw = {"cooccurrence": [{"context": "water", "class": "boat", "rate": 0.5},
                            {"context": "sky", "class": "aeroplane", "rate": 1.0}]}
    config = SyntheticParams.model_validate(raw)
    record = config_record(config)
    assert record["cooccurrence"] == raw["cooccurrence"]  # "class", not the field's name class_
    assert SyntheticParams.model_validate(record) == config
    assert SyntheticParams.model_validate({}) == SyntheticParams()
    assert SyntheticParams.model_validate({"cooccurrence": []}).cooccurrence == []
    sized = SyntheticParams.model_validate({"image_sizes": [[64, 80], [80, 48]]})
    assert config_record(sized)["image_sizes"] == [[64, 80], [80, 48]]
    assert SyntheticParams.model_validate(config_record(sized)) == sized
    # at its default the key is left out of the config written to synthetic_meta.json, so the
    # default set is byte-identical to the one made before the key existed
    assert "image_sizes" not in config_record(SyntheticParams())


def test_meta_records_config_and_stats(tiny):
    root, config, meta = tiny
    assert json.loads((root / "synthetic_meta.json").read_text()) == meta
    assert meta["generator"] == "wsss.data.synthetic"
    assert SyntheticParams.model_validate(meta["config"]) == config
    assert meta["class_names"] == CLASS_NAMES and meta["context_names"] == CONTEXT_NAMES
    assert meta["saliency_missed_classes"] == list(config.saliency_missed_classes)
    assert [(p["context"], p["class"], p["rate"]) for p in meta["cooccurrence"]] == [
        (p.context, p.class_, p.rate) for p in config.cooccurrence
    ]
    stats = meta["stats"]
    assert stats["all"]["images"] == config.num_train + config.num_val
    assert stats["train"]["images"] == config.num_train
    assert sum(stats["all"]["objects_per_image"].values()) == stats["all"]["images"]
    fractions = [c["pixel_fraction"] for c in stats["all"]["classes"].values()]
    assert sum(fractions) == pytest.approx(1.0, abs=1e-3)
    assert set(stats["all"]["classes"]["boat"]["paired_context_presence"]) == {"water"}


# -- the project's reader ------------------------------------------------------------------------
def test_voc_reader_loads_the_set(tiny):
    voc = pytest.importorskip("wsss.data.voc")
    from wsss.data.saliency import FolderSaliency

    root, config, _ = tiny
    dataset = voc.VOCDataset(root, "train", saliency=FolderSaliency(root / "SaliencyMaps"))
    assert dataset.class_names == CLASS_NAMES and len(dataset) == config.num_train
    dataset.validate()
    image_id = dataset.ids[0]
    mask = dataset.load_mask(image_id)
    aug, _ = read_png(root / "SegmentationClassAug" / f"{image_id}.png")
    assert np.array_equal(mask, aug)  # "auto" prefers the Aug masks
    assert dataset.labels(image_id).tolist() == sorted(set(np.unique(aug).tolist()) - {0})
    assert dataset.load_image(image_id).shape == (config.image_height, config.image_width, 3)
    context = dataset.load_context(image_id)
    assert context is not None and np.array_equal(context == 0, aug > 0)
    saliency = dataset.load_saliency(image_id)
    assert saliency.dtype == np.float32 and 0 <= saliency.min() <= saliency.max() <= 1
    strict = voc.VOCDataset(root, "val", mask_dir="SegmentationClass")
    assert 255 in np.unique(strict.load_mask(strict.ids[0]))


# -- images of mixed sizes -----------------------------------------------------------------------
SIZES = [[40, 64], [72, 48], [45, 61], [56, 56]]  # landscape, portrait, odd sides, square


def test_mixed_sizes_each_image_draws_one(tmp_path):
    root = tmp_path / "VOC2012"
    config = SyntheticParams(image_sizes=SIZES, num_train=20, num_val=4, seed=2)
    generate(root, config)
    seen = set()
    for image_id in split_ids(root, "train") + split_ids(root, "val"):
        with Image.open(root / "JPEGImages" / f"{image_id}.jpg") as jpeg:
            size = (jpeg.height, jpeg.width)
        assert list(size) in SIZES
        seen.add(size)
        for folder in ("SegmentationClass", "SegmentationClassAug", "SegmentationContext", "SaliencyMaps"):
            assert read_png(root / folder / f"{image_id}.png")[0].shape == size, (folder, image_id)
        tree = ET.parse(root / "Annotations" / f"{image_id}.xml").getroot()
        assert (int(tree.findtext("size/height")), int(tree.findtext("size/width"))) == size
        aug, _ = read_png(root / "SegmentationClassAug" / f"{image_id}.png")
        assert config.min_objects <= len(set(np.unique(aug).tolist()) - {0}) <= config.max_objects
    assert seen == {tuple(s) for s in SIZES}  # 24 draws from 4 sizes: every one, portrait and landscape
    meta = json.loads((root / "synthetic_meta.json").read_text())
    assert meta["config"]["image_sizes"] == SIZES


def test_mixed_sizes_keep_images_independent_of_order_and_count():
    config = SyntheticParams(image_sizes=SIZES, seed=4)
    first = render_sample(config, 5)
    again = render_sample(SyntheticParams(image_sizes=SIZES, seed=4, num_train=9, num_val=3), 5)
    assert np.array_equal(first.image, again.image) and np.array_equal(first.mask, again.mask)


def test_without_image_sizes_the_images_are_unchanged():
    """No size is drawn without image_sizes, so the random stream, and every file of the default
    set (its DVC hash in dvc.lock), stay what they were before the key existed. The digest was
    taken with the generator before image_sizes."""
    config = SyntheticParams(image_height=40, image_width=48, seed=0)
    digest = hashlib.md5()
    for index in range(3):
        sample = render_sample(config, index)
        for array in (sample.image, sample.mask_voc, sample.context, sample.saliency):
            digest.update(array.tobytes())
    assert digest.hexdigest() == "8dddfaec65a7296021f3e4cec030a839"
