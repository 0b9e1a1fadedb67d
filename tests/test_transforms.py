import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image

from wsss.core.errors import DataError
from wsss.core.io import write_palette_png
from wsss.data.base import IGNORE_INDEX
from wsss.data.transforms import (
    ClassificationDataset,
    LabelMapDataset,
    RelationLabelDataset,
    normalize,
    random_crop,
    rescale_image,
    resize_long_side,
    small_images_warning,
    to_tensor,
    to_uint8,
)


def test_rescale_image_bilinear_on_the_tensor_or_pil_bicubic_on_the_uint8_image():
    """`seeds.infer.image_resize`: pil_bicubic is PIL's resize of the image the tensor came from."""
    image = np.random.default_rng(0).integers(0, 256, (20, 30, 3), dtype=np.uint8)
    tensor = to_tensor(image)
    assert np.array_equal(to_uint8(tensor), image)
    for size in ((10, 15), (31, 44)):
        pil = np.asarray(Image.fromarray(image).resize(size[::-1], Image.Resampling.BICUBIC))
        assert torch.equal(rescale_image(tensor, size, "pil_bicubic"), to_tensor(pil))
        bilinear = F.interpolate(tensor[None], size=size, mode="bilinear", align_corners=False)[0]
        assert torch.equal(rescale_image(tensor, size), bilinear)
    assert rescale_image(tensor, (20, 30), "pil_bicubic") is tensor
    with pytest.raises(ValueError, match="image_resize"):
        rescale_image(tensor, (10, 15), "bicubic")


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


def test_label_map_dataset_moves_labels_with_the_image_and_pads_with_ignore(tmp_path):
    labels = np.zeros((30, 40), np.uint8)
    labels[:, 20:] = 2  # right half class 2
    for image_id in _Toy.ids:
        write_palette_png(tmp_path / f"{image_id}.png", labels)
    dataset = LabelMapDataset(_Toy(), str(tmp_path), 48, (1.0, 1.0), hflip=True, seed=0)
    seen_flip = False
    for epoch in range(6):
        dataset.set_epoch(epoch)
        image, label = dataset[0]
        assert image.shape == (3, 48, 48) and label.shape == (48, 48) and label.dtype == torch.int64
        padded = image.abs().sum(0) == 0  # the crop is larger than the image: padding is the mean
        assert torch.all(label[padded] == IGNORE_INDEX) and not torch.any(label[~padded] == IGNORE_INDEX)
        rows = label[(~padded).any(1)][:, (~padded).any(0)]  # the image's window
        assert set(rows.unique().tolist()) == {0, 2}
        seen_flip |= bool(rows[0, 0] == 2)  # class 2 on the left: the image was mirrored
    assert seen_flip
    strided = RelationLabelDataset(_Toy(), str(tmp_path), 48, (1.0, 1.0), hflip=False)
    assert strided[0][1].shape == (12, 12)
    with pytest.raises(ValueError, match="multiple of 4"):
        RelationLabelDataset(_Toy(), str(tmp_path), 50, (1.0, 1.0), hflip=False)
    write_palette_png(tmp_path / "b.png", labels[:20])
    with pytest.raises(DataError, match="b.png"):
        dataset[1]


class _MixedSizes:
    """Portrait, landscape, square and smaller-than-the-crop images, as in real data sets."""

    sizes = {"portrait": (100, 40), "landscape": (30, 90), "small": (20, 20), "square": (64, 64)}
    ids = list(sizes)
    num_classes = 3

    def __len__(self):
        return len(self.ids)

    def load_image(self, image_id):
        return np.full((*self.sizes[image_id], 3), 120, np.uint8)

    def label_vector(self, image_id):
        return np.array([1.0, 0.0], np.float32)


def test_images_of_mixed_sizes_batch_into_one_crop_size(tmp_path):
    for image_id, size in _MixedSizes.sizes.items():
        write_palette_png(tmp_path / f"{image_id}.png", np.ones(size, np.uint8))
    for items, label_side in ((ClassificationDataset(_MixedSizes(), (24, 72), 32, hflip=True), None),
                              (LabelMapDataset(_MixedSizes(), str(tmp_path), 32, (0.5, 1.5), hflip=True), 32),
                              (RelationLabelDataset(_MixedSizes(), str(tmp_path), 32, (0.5, 1.5), hflip=True), 8)):
        images, targets = next(iter(torch.utils.data.DataLoader(items, batch_size=4)))
        assert images.shape == (4, 3, 32, 32)
        if isinstance(items, LabelMapDataset):
            assert targets.shape == (4, label_side, label_side)
            # each crop is image (label 1) where it has content and ignore where it is padding
            assert set(targets.unique().tolist()) <= {1, IGNORE_INDEX}
    small = LabelMapDataset(_MixedSizes(), str(tmp_path), 32, (1.0, 1.0), hflip=False)[2][1]
    assert (small == 1).sum() == 20 * 20  # the whole 20 x 20 image inside the 32 x 32 crop


def test_training_images_under_a_quarter_of_the_crop_are_named():
    class WithSizes(_MixedSizes):
        def image_size(self, image_id):
            return self.sizes[image_id]

    # crop 96: a quarter is 24 px; "small" (20x20) is under it, "landscape" (30x90) is not.
    warning = small_images_warning(WithSizes(), 96, "segment.train.crop_size")
    assert warning.startswith("warning: 1 of 4 training images have a side under 24 px")
    assert "segment.train.crop_size (96)" in warning and "small (20x20)" in warning and "landscape" not in warning
    assert small_images_warning(WithSizes(), 64, "segment.train.crop_size") is None
    many = small_images_warning(WithSizes(), 1000, "seeds.train.crop_size", shown=2)
    assert "4 of 4" in many and many.endswith("and 2 more")
