import numpy as np
import torch

from wsss.data.base import IGNORE_INDEX
from wsss.data.transforms import ClassificationDataset, normalize, random_crop, resize_long_side


def test_random_crop_keeps_content_and_pads_with_mean_and_ignore():
    rng = np.random.default_rng(0)
    image = np.arange(3 * 6 * 10, dtype=np.float32).reshape(3, 6, 10) + 1
    mask = np.ones((6, 10), np.uint8)
    out, out_mask = random_crop(image, 8, rng, mask)
    assert out.shape == (3, 8, 8) and out_mask.shape == (8, 8)
    # 6 rows of content (2 rows padding) and 8 of the 10 columns.
    assert (out[0] != 0).sum() == 6 * 8
    assert (out_mask == 1).sum() == 6 * 8 and (out_mask == IGNORE_INDEX).sum() == 2 * 8
    rows = np.flatnonzero(out[0].any(axis=1))
    content = out[:, rows]
    start = int(content[0, 0, 0] - 1) % 10
    np.testing.assert_array_equal(content, image[:, :, start : start + 8])


def test_crop_larger_image_is_a_window_of_it():
    image = np.random.default_rng(1).random((3, 40, 50)).astype(np.float32)
    out, _ = random_crop(image, 16, np.random.default_rng(2))
    found = any(np.array_equal(out, image[:, y : y + 16, x : x + 16]) for y in range(25) for x in range(35))
    assert found


def test_resize_long_side_and_normalize():
    image = np.full((20, 40, 3), 255, np.uint8)
    resized, _ = resize_long_side(image, 80)
    assert resized.shape == (40, 80, 3)
    normalized = normalize(resized)
    assert normalized.shape == (3, 40, 80)
    assert np.allclose(normalized[0], (1 - 0.485) / 0.229, atol=1e-5)


class _Toy:
    ids = ["a", "b"]
    num_classes = 3

    def __len__(self):
        return 2

    def load_image(self, image_id):
        return np.full((30, 40, 3), 100 if image_id == "a" else 200, np.uint8)

    def label_vector(self, image_id):
        return np.array([1.0, 0.0] if image_id == "a" else [0.0, 1.0], np.float32)


def test_classification_dataset_items_are_repeatable_per_epoch():
    dataset = ClassificationDataset(_Toy(), (32, 48), 32, hflip=True, seed=3)
    image, label = dataset[1]
    assert image.shape == (3, 32, 32) and label.tolist() == [0.0, 1.0]
    again, _ = dataset[1]
    assert torch.equal(image, again)
    # the image fills the crop except where the short side needs padding
    assert (image[0] != 0).float().mean() > 0.6
