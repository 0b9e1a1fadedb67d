"""Joint image (+ mask) transforms and the torch Dataset used to train classifiers."""

from __future__ import annotations

from typing import get_args

import cv2
import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from torch.utils.data import Dataset

from wsss.core.errors import DataError
from wsss.core.params import ImageResize
from wsss.data.base import IGNORE_INDEX, SegmentationDataset

# the normalisation of every backbone's input (torchvision's ImageNet weights)
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
_MEAN = np.array(IMAGENET_MEAN, dtype=np.float32) * 255.0
_STD = np.array(IMAGENET_STD, dtype=np.float32) * 255.0


def normalize(image: np.ndarray) -> np.ndarray:
    """uint8 H x W x 3 -> float32 3 x H x W, ImageNet mean/std."""
    return ((image.astype(np.float32) - _MEAN) / _STD).transpose(2, 0, 1).copy()


def to_tensor(image: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(normalize(image))


IMAGE_RESIZE_MODES = get_args(ImageResize)


def to_uint8(image: torch.Tensor) -> np.ndarray:
    """The uint8 H x W x 3 image that `to_tensor` made a 3 x H x W tensor of (rounding undoes
    the float error exactly)."""
    pixels = image.detach().float().cpu().numpy().transpose(1, 2, 0) * _STD + _MEAN
    return np.clip(np.rint(pixels), 0, 255).astype(np.uint8)


def rescale_image(image: torch.Tensor, size: tuple[int, int], mode: str = "bilinear") -> torch.Tensor:
    """A normalised 3 x H x W image resized to ``size`` for multi-scale inference
    (`seeds.infer.image_resize`, docs/methods.md §1): "bilinear" resizes the tensor
    (align_corners=False); "pil_bicubic" resizes the uint8 image with PIL's bicubic filter, then
    normalises, as the references' multi-scale data sets do (SIPE data/data_voc.py:162 with
    tool/imutils.py:17; IRN voc12/dataloader.py, VOC12ClassificationDatasetMSF). PIL works on the
    CPU; the result is on the image's device."""
    if mode not in IMAGE_RESIZE_MODES:
        raise ValueError(f"image_resize must be one of {IMAGE_RESIZE_MODES}, got {mode!r}")
    if tuple(size) == tuple(image.shape[-2:]):
        return image  # as the references' scale 1 (and bilinear's identity)
    if mode == "bilinear":
        return F.interpolate(image[None], size=size, mode="bilinear", align_corners=False)[0]
    resized = Image.fromarray(to_uint8(image)).resize(size[::-1], Image.Resampling.BICUBIC)
    return to_tensor(np.asarray(resized)).to(image.device, image.dtype)


def resize_long_side(image: np.ndarray, long_side: int, mask: np.ndarray | None = None):
    height, width = image.shape[:2]
    scale = long_side / max(height, width)
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    image = cv2.resize(image, size, interpolation=cv2.INTER_LINEAR)
    if mask is not None:
        mask = cv2.resize(mask, size, interpolation=cv2.INTER_NEAREST)
    return image, mask


def random_crop(image: np.ndarray, crop: int, rng: np.random.Generator, mask: np.ndarray | None = None):
    """Crop a C x H x W array (or pad: image with 0 = the mean after normalisation, mask with
    ignore) to C x crop x crop at a random position."""
    channels, height, width = image.shape
    out = np.zeros((channels, crop, crop), dtype=image.dtype)
    out_mask = None if mask is None else np.full((crop, crop), IGNORE_INDEX, dtype=mask.dtype)
    src_y = rng.integers(0, max(height - crop, 0) + 1)
    src_x = rng.integers(0, max(width - crop, 0) + 1)
    dst_y = rng.integers(0, max(crop - height, 0) + 1)
    dst_x = rng.integers(0, max(crop - width, 0) + 1)
    h, w = min(crop, height), min(crop, width)
    out[:, dst_y : dst_y + h, dst_x : dst_x + w] = image[:, src_y : src_y + h, src_x : src_x + w]
    if mask is not None:
        out_mask[dst_y : dst_y + h, dst_x : dst_x + w] = mask[src_y : src_y + h, src_x : src_x + w]
    return out, out_mask


SMALL_IMAGE_FRACTION = 4  # an image whose shorter side is under crop / 4 trains on a crop that is mostly padding


def small_images_warning(dataset: SegmentationDataset, crop_size: int, key: str, shown: int = 5) -> str | None:
    """A warning naming the training images whose shorter side is under ``crop_size`` / 4 (a
    thumbnail or a 1x1 image: each of its crops is mostly padding, or one pixel blown up), or None.
    Reads only the images' headers."""
    limit = crop_size / SMALL_IMAGE_FRACTION
    small = [(image_id, dataset.image_size(image_id)) for image_id in dataset.ids]
    small = [(image_id, size) for image_id, size in small if min(size) < limit]
    if not small:
        return None
    listed = ", ".join(f"{image_id} ({h}x{w})" for image_id, (h, w) in small[:shown])
    more = f" and {len(small) - shown} more" if len(small) > shown else ""
    return (f"warning: {len(small)} of {len(dataset.ids)} training images have a side under {limit:g} px, a quarter "
            f"of {key} ({crop_size}); they are trained on all the same: {listed}{more}")


class AugmentedDataset(Dataset):
    """A split's images with augmentation seeded by (seed, epoch, index): each epoch differs,
    yet runs are repeatable."""

    def __init__(self, dataset: SegmentationDataset, seed: int = 0):
        self.dataset = dataset
        self.seed = seed
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return len(self.dataset)

    def rng(self, index: int) -> np.random.Generator:
        return np.random.default_rng((self.seed, self.epoch, index))


class ClassificationDataset(AugmentedDataset):
    """Images with their multi-hot labels, augmented as in the reference CAM training."""

    def __init__(self, dataset: SegmentationDataset, resize_long: tuple[int, int], crop_size: int,
                 hflip: bool, seed: int = 0):
        super().__init__(dataset, seed)
        self.resize_long = resize_long
        self.crop_size = crop_size
        self.hflip = hflip

    def augment(self, image: np.ndarray, rng: np.random.Generator, saliency: np.ndarray | None = None):
        """Random long-side resize, flip and crop of a uint8 H x W x 3 image -> normalised 3 x crop x crop.
        A saliency map (float H x W) gets the same geometry, bilinear, padded with 0 (not salient);
        returns (image, saliency or None)."""
        image, _ = resize_long_side(image, int(rng.integers(self.resize_long[0], self.resize_long[1] + 1)))
        if saliency is not None:
            saliency = cv2.resize(saliency, image.shape[1::-1], interpolation=cv2.INTER_LINEAR)
        if self.hflip and rng.random() < 0.5:
            image = image[:, ::-1]
            saliency = None if saliency is None else saliency[:, ::-1]
        stacked = normalize(image)
        if saliency is not None:  # one crop over the stack: identical window, zero padding for both
            stacked = np.concatenate([stacked, saliency[None].astype(np.float32)])
        stacked, _ = random_crop(stacked, self.crop_size, rng)
        return stacked[:3], (None if saliency is None else stacked[3])

    def __getitem__(self, index: int):
        image_id = self.dataset.ids[index]
        image, _ = self.augment(self.dataset.load_image(image_id), self.rng(index))
        return torch.from_numpy(image), torch.from_numpy(self.dataset.label_vector(image_id))


class SaliencyClassificationDataset(ClassificationDataset):
    """ClassificationDataset items plus the saliency map under the same augmentation (EPS training):
    (image 3 x crop x crop, (labels C, saliency crop x crop in [0, 1]))."""

    def __getitem__(self, index: int):
        image_id = self.dataset.ids[index]
        image = self.dataset.load_image(image_id)
        saliency = self.dataset.load_saliency(image_id)
        if saliency is None:
            raise DataError(f"image {image_id}: the data set has no saliency map for it, which EPS "
                            "training needs (set the data set's saliency source)")
        if saliency.shape != image.shape[:2]:
            raise DataError(f"image {image_id}: saliency map {saliency.shape} differs from image {image.shape[:2]}")
        image, saliency = self.augment(image, self.rng(index), saliency)
        labels = torch.from_numpy(self.dataset.label_vector(image_id))
        return torch.from_numpy(image), (labels, torch.from_numpy(saliency))


class LabelMapDataset(AugmentedDataset):
    """Images with per-pixel label maps read from a folder of palette PNGs (`<id>.png`), augmented
    as the reference IRN and DeepLab trainings do: random rescale, flip, crop (the image padded
    with the mean, the labels with 255 = ignore). `label_stride` > 1 then takes the labels to that
    grid (nearest). Items: (image 3 x crop x crop, labels int64 crop/stride x crop/stride)."""

    def __init__(self, dataset: SegmentationDataset, label_dir: str, crop_size: int,
                 scale_range: tuple[float, float], hflip: bool, seed: int = 0, label_stride: int = 1):
        from pathlib import Path

        if crop_size % label_stride:
            raise ValueError(f"crop size {crop_size} must be a multiple of the label stride {label_stride}")
        super().__init__(dataset, seed)
        self.label_dir = Path(label_dir)
        self.crop_size = crop_size
        self.scale_range = scale_range
        self.hflip = hflip
        self.label_stride = label_stride

    def __getitem__(self, index: int):
        from wsss.core.io import read_label_png

        image_id = self.dataset.ids[index]
        rng = self.rng(index)
        image = self.dataset.load_image(image_id)
        path = self.label_dir / f"{image_id}.png"
        label = read_label_png(path)
        if label.shape != image.shape[:2]:
            raise DataError(f"{path}: label map {label.shape} differs from image {image_id} {image.shape[:2]}")
        scale = rng.uniform(*self.scale_range)
        size = (max(1, round(image.shape[1] * scale)), max(1, round(image.shape[0] * scale)))
        image = cv2.resize(image, size, interpolation=cv2.INTER_LINEAR)
        label = cv2.resize(label, size, interpolation=cv2.INTER_NEAREST)
        if self.hflip and rng.random() < 0.5:
            image, label = image[:, ::-1], label[:, ::-1]
        image, label = random_crop(normalize(image), self.crop_size, rng, np.ascontiguousarray(label))
        if self.label_stride > 1:
            strided = self.crop_size // self.label_stride
            label = cv2.resize(label, (strided, strided), interpolation=cv2.INTER_NEAREST)
        return torch.from_numpy(image), torch.from_numpy(label.astype(np.int64))


class RelationLabelDataset(LabelMapDataset):
    """IRN's training items: relation labels (palette PNGs) on the stride-4 grid."""

    def __init__(self, dataset: SegmentationDataset, label_dir: str, crop_size: int,
                 scale_range: tuple[float, float], hflip: bool, seed: int = 0):
        if crop_size % 4:
            raise ValueError(f"IRN crop size must be a multiple of 4, got {crop_size}")
        super().__init__(dataset, label_dir, crop_size, scale_range, hflip, seed, label_stride=4)
