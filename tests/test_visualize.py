"""Overlay galleries for MLflow: rows of images of any size and aspect ratio."""

import numpy as np
import pytest

from wsss.evaluation.visualize import colorize_mask, gallery, overlay_panels


def _image(height: int, width: int, value: int) -> np.ndarray:
    return np.full((height, width, 3), value, dtype=np.uint8)


def _panels(height: int, width: int) -> list[np.ndarray]:
    rng = np.random.default_rng(height * 1000 + width)
    image = rng.integers(0, 256, (height, width, 3), dtype=np.uint8)
    scores = rng.random((2, height, width)).astype(np.float32)
    mask = rng.integers(0, 3, (height, width)).astype(np.uint8)
    return overlay_panels(image, scores, mask, mask)


def test_same_size_rows_are_the_plain_side_by_side_picture():
    rows = [_panels(20, 30), _panels(20, 30)]
    spacer = np.full((20, 4, 3), 255, np.uint8)
    expected = np.concatenate([np.concatenate([p for panel in row for p in (panel, spacer)][:-1], axis=1)
                               for row in rows], axis=0)
    np.testing.assert_array_equal(gallery(rows), expected)


def test_portrait_and_landscape_rows_share_a_height_and_a_width():
    landscape, portrait, small = _panels(30, 50), _panels(60, 40), _panels(15, 12)
    picture = gallery([landscape, portrait, small], gap=4)
    # every panel scaled to the tallest (60), aspect kept: 100, 40 and 48 px wide, 4 panels each
    widths = {"landscape": 4 * 100 + 3 * 4, "portrait": 4 * 40 + 3 * 4, "small": 4 * 48 + 3 * 4}
    assert picture.shape == (3 * 60, max(widths.values()), 3) and picture.dtype == np.uint8
    for row, width in enumerate(widths.values()):
        band = picture[row * 60:(row + 1) * 60]
        assert (band[:, width:] == 255).all()  # padded with white on the right
        assert not (band[:, width - 1] == 255).all()  # the last panel reaches its width
    # a mask panel keeps exact palette colours when scaled (nearest neighbour)
    mask_panel = picture[0:60, 2 * (100 + 4):2 * (100 + 4) + 100]
    palette = {tuple(c) for c in colorize_mask(np.arange(3, dtype=np.uint8))}
    assert {tuple(c) for c in mask_panel.reshape(-1, 3)} <= palette


def test_rows_may_hold_different_panel_counts_and_sizes():
    rows = [[_image(10, 10, 0)], [_image(20, 10, 50), _image(5, 5, 100), _image(20, 30, 150)]]
    picture = gallery(rows, gap=2)
    assert picture.shape == (40, 10 + 2 + 20 + 2 + 30, 3)
    assert (picture[:20, :20] == 0).all() and (picture[:20, 20:] == 255).all()
    assert (picture[20:, :10] == 50).all() and (picture[20:, 12:32] == 100).all()


def test_an_empty_gallery_is_an_error():
    with pytest.raises(ValueError, match="at least one row"):
        gallery([])
    with pytest.raises(ValueError, match="at least one panel"):
        gallery([[_image(4, 4, 0)], []])
