"""Saliency sources: stored maps and OpenCV's unsupervised static saliency."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from wsss.core.errors import DataError, ParamsError
from wsss.data.saliency import FolderSaliency, OpenCVSaliency, make_saliency_source


def test_folder_source_scales_8_and_16_bit(tmp_path: Path):
    Image.fromarray(np.array([[0, 51], [255, 102]], np.uint8)).save(tmp_path / "a.png")
    Image.fromarray(np.array([[0, 65535]], np.uint16)).save(tmp_path / "b.png")
    source = FolderSaliency(tmp_path)
    saliency = source.load("a")
    assert saliency.dtype == np.float32
    np.testing.assert_allclose(saliency, [[0.0, 0.2], [1.0, 0.4]], atol=1e-7)
    np.testing.assert_allclose(source.load("b"), [[0.0, 1.0]], atol=1e-7)


def test_folder_source_missing_file_is_an_error(tmp_path: Path):
    with pytest.raises(DataError) as info:
        FolderSaliency(tmp_path).load("2007_000123")
    assert "2007_000123" in str(info.value) and str(tmp_path / "2007_000123.png") in str(info.value)
    (tmp_path / "bad.png").write_bytes(b"not a png")
    with pytest.raises(DataError, match=r"image bad: cannot read saliency map .*bad\.png"):
        FolderSaliency(tmp_path).load("bad")
    with pytest.raises(DataError, match="saliency folder not found"):
        FolderSaliency(tmp_path / "absent")


def square_image() -> np.ndarray:
    """A bright square on a textured dark background: the square is the salient object."""
    rng = np.random.default_rng(0)
    image = rng.integers(0, 30, (48, 64, 3), dtype=np.uint8)
    image[16:32, 24:40] = 230
    return image


@pytest.mark.parametrize("method", ["spectral_residual", "fine_grained"])
def test_opencv_source_range_and_shape(method):
    image = square_image()
    saliency = OpenCVSaliency(method).load("x", image)
    assert saliency.shape == (48, 64) and saliency.dtype == np.float32
    assert saliency.min() == 0.0 and saliency.max() == 1.0
    # The object is more salient than the background far from it.
    assert saliency[16:32, 24:40].mean() > saliency[:8, :8].mean()


def test_opencv_source_constant_image_gives_zeros_and_needs_image():
    saliency = OpenCVSaliency("fine_grained").load("flat", np.zeros((10, 14, 3), np.uint8))
    np.testing.assert_array_equal(saliency, np.zeros((10, 14), np.float32))
    with pytest.raises(ValueError, match="image"):
        OpenCVSaliency().load("x")
    with pytest.raises(ParamsError, match="'sobel'"):
        OpenCVSaliency("sobel")


def test_make_saliency_source(tmp_path: Path):
    (tmp_path / "sal").mkdir()
    assert make_saliency_source(None, tmp_path) is None
    assert make_saliency_source("none", tmp_path) is None
    assert make_saliency_source("opencv", tmp_path).method == "spectral_residual"
    assert make_saliency_source("opencv:fine_grained", tmp_path).method == "fine_grained"
    relative = make_saliency_source("sal", tmp_path)
    assert isinstance(relative, FolderSaliency) and relative.folder == tmp_path / "sal"
    assert make_saliency_source(str(tmp_path / "sal"), "elsewhere").folder == tmp_path / "sal"
    with pytest.raises(DataError, match=r"dataset\.saliency = 'PFAN'.*PFAN not found"):
        make_saliency_source("PFAN", tmp_path)
    with pytest.raises(ParamsError, match=r"dataset\.saliency = 'opencv:bing'"):
        make_saliency_source("opencv:bing", tmp_path)
    with pytest.raises(ParamsError, match=r"dataset\.saliency"):
        make_saliency_source("", tmp_path)
