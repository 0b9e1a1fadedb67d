import numpy as np
import pytest
from PIL import Image

from wsss.core import io
from wsss.core.errors import DataError


def test_palette_png_roundtrip_keeps_raw_indices(tmp_path):
    mask = np.array([[0, 1, 255], [20, 3, 0]], dtype=np.uint8)
    io.write_palette_png(tmp_path / "m.png", mask)
    with Image.open(tmp_path / "m.png") as image:
        assert image.mode == "P"
        assert image.getpalette()[3:6] == [128, 0, 0]  # VOC colour of class 1
    np.testing.assert_array_equal(io.read_label_png(tmp_path / "m.png"), mask)


def test_score_map_roundtrip_fp16(tmp_path):
    scores = np.random.default_rng(0).random((2, 5, 7)).astype(np.float32)
    io.save_score_map(tmp_path / "s.npz", scores, np.array([3, 7]))
    loaded, ids, background = io.load_score_map(tmp_path / "s.npz")
    assert loaded.shape == (2, 5, 7) and ids.tolist() == [3, 7] and background is None
    np.testing.assert_allclose(loaded, scores, atol=1e-3)
    with np.load(tmp_path / "s.npz") as data:
        assert data["scores"].dtype == np.float16


def test_score_map_keeps_a_background_map(tmp_path):
    scores = np.random.default_rng(0).random((1, 5, 7)).astype(np.float32)
    io.save_score_map(tmp_path / "s.npz", scores, np.array([2]), background=1.0 - scores[0])
    loaded = io.load_score_map(tmp_path / "s.npz")
    np.testing.assert_allclose(loaded.background, 1.0 - scores[0], atol=1e-3)
    with pytest.raises(ValueError, match="background map"):
        io.save_score_map(tmp_path / "t.npz", scores, np.array([2]), background=np.zeros((5, 6)))
    with pytest.raises(ValueError, match="NaN"):
        io.save_score_map(tmp_path / "t.npz", scores, np.array([2]), background=np.full((5, 7), np.nan))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["s.npz"]


def test_score_map_rejects_nan_and_mismatched_ids(tmp_path):
    with pytest.raises(ValueError, match="NaN"):
        io.save_score_map(tmp_path / "s.npz", np.full((1, 2, 2), np.nan), [1])
    with pytest.raises(ValueError, match="class ids"):
        io.save_score_map(tmp_path / "s.npz", np.zeros((2, 2, 2)), [1])
    assert list(tmp_path.iterdir()) == []


def test_atomic_path_leaves_nothing_on_failure(tmp_path):
    target = tmp_path / "out.json"
    target.write_text("old")
    with pytest.raises(RuntimeError):
        with io.atomic_path(target) as tmp:
            tmp.write_text("half")
            raise RuntimeError("interrupted")
    assert target.read_text() == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.json"]


def test_atomic_dir_replaces_only_on_success(tmp_path):
    target = tmp_path / "maps"
    with io.atomic_dir(target) as tmp:
        (tmp / "a").write_text("1")
    assert (target / "a").read_text() == "1"
    with pytest.raises(RuntimeError):
        with io.atomic_dir(target) as tmp:
            (tmp / "b").write_text("2")
            raise RuntimeError
    assert sorted(p.name for p in target.iterdir()) == ["a"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["maps"]


def test_unreadable_files_name_the_file(tmp_path):
    bad = tmp_path / "x.jpg"
    bad.write_bytes(b"not a jpeg")
    with pytest.raises(DataError, match="x.jpg"):
        io.read_rgb(bad)
    with pytest.raises(DataError, match="missing.png"):
        io.read_label_png(tmp_path / "missing.png")
    Image.new("RGB", (2, 2)).save(tmp_path / "rgb.png")
    with pytest.raises(DataError, match="palette"):
        io.read_label_png(tmp_path / "rgb.png")


def test_save_state_dict_is_byte_reproducible(tmp_path):
    """Same weights, same bytes, whatever the temporary file was called: DVC sees no change."""
    import hashlib

    import torch

    from wsss.core.io import save_state_dict

    state = torch.nn.Linear(3, 2).state_dict()
    digests = set()
    for name in ("a.pt", "b.pt"):
        save_state_dict(tmp_path / name, state)
        digests.add(hashlib.md5((tmp_path / name).read_bytes()).hexdigest())
    assert len(digests) == 1
    loaded = torch.load(tmp_path / "a.pt", weights_only=True)
    assert torch.equal(loaded["weight"], state["weight"])
    assert not list(tmp_path.glob(".*tmp*"))


def test_image_scores_are_checked_against_the_image(tmp_path):
    import numpy as np

    from wsss.core.errors import DataError
    from wsss.core.io import load_image_scores, save_score_map

    save_score_map(tmp_path / "img_7.npz", np.zeros((2, 8, 10), np.float32), np.array([1, 4]))
    scores, class_ids, _ = load_image_scores(tmp_path, "img_7", (8, 10))
    assert scores.shape == (2, 8, 10) and list(class_ids) == [1, 4]
    with pytest.raises(DataError, match=r"img_7.*\(8, 10\).*\(9, 10\)"):
        load_image_scores(tmp_path, "img_7", (9, 10))
    with np.load(tmp_path / "img_7.npz") as data:
        broken = {"scores": np.full((1, 8, 10), np.nan, np.float16), "class_ids": data["class_ids"][:1]}
    np.savez(tmp_path / "img_8.npz", **broken)
    with pytest.raises(DataError, match="img_8.*NaN"):
        load_image_scores(tmp_path, "img_8", (8, 10))
    with pytest.raises(DataError, match="img_9.npz: score map not found"):
        load_image_scores(tmp_path, "img_9", (8, 10))
