"""The whole data set on disk: every image's files in the VOC 2012 layout, the split lists, the
class name files and synthetic_meta.json (the config and the measured statistics).

The set is built in a temporary folder and renamed onto ``root``, so a reader never sees half a
set, and an earlier synthetic set is all it will ever replace.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

from PIL import Image
from tqdm import tqdm

from wsss.core.errors import DataError
from wsss.core.io import atomic_dir, write_json, write_palette_png
from wsss.core.params import SyntheticParams
from wsss.data.synthetic.render import render_sample
from wsss.data.synthetic.sample import SyntheticSample
from wsss.data.synthetic.stats import Stats
from wsss.data.synthetic.vocabulary import (
    CLASS_NAMES,
    CONTEXT_NAMES,
    check_names,
    cooccurrence_triples,
)

_FOLDERS = (
    "JPEGImages",
    "SegmentationClass",
    "SegmentationClassAug",
    "SegmentationContext",
    "SaliencyMaps",
    "Annotations",
)


def generate(root: str | Path, config: SyntheticParams, progress: bool = False) -> dict:
    """Write the whole data set under ``root`` (the ``VOC2012`` folder) and return its meta dict.

    Built in a temporary folder beside ``root``, then renamed onto it (replacing an earlier
    synthetic set). The same config gives byte-identical files.
    """
    check_names(config)
    root = Path(root)
    _check_replaceable(root)
    splits = {
        "train": range(config.num_train),
        "val": range(config.num_train, config.num_train + config.num_val),
    }
    stats = {"all": Stats(), "train": Stats(), "val": Stats()}
    with atomic_dir(root) as tmp:
        for name in _FOLDERS:
            (tmp / name).mkdir()
        bar = tqdm(total=config.num_train + config.num_val, desc="synthetic data", disable=not progress)
        with bar:
            for split, indices in splits.items():
                for index in indices:
                    sample = render_sample(config, index)
                    _write_sample(tmp, _image_id(index), sample, config)
                    stats["all"].add(sample)
                    stats[split].add(sample)
                    bar.update()
        _write_lists(tmp, splits)
        meta = _meta(config, stats)
        write_json(tmp / "synthetic_meta.json", meta)
    return meta


def config_record(config: SyntheticParams) -> dict:
    """The config as synthetic_meta.json records it (image_sizes absent at its default: the
    default set's meta stays byte-identical to the one written before the key existed)."""
    out = config.model_dump(mode="json", by_alias=True)
    if config.image_sizes is None:
        del out["image_sizes"]
    return out


def _check_replaceable(root: Path) -> None:
    """Refuse to delete a folder that is not an earlier synthetic set (a mistyped root)."""
    if not root.exists():
        return
    if not root.is_dir():
        raise DataError(f"{root}: exists and is not a folder; refusing to replace it with the synthetic set")
    if any(root.iterdir()) and not (root / "synthetic_meta.json").is_file():
        raise DataError(
            f"{root}: a non-empty folder without synthetic_meta.json; refusing to replace it with the "
            "synthetic set (delete it yourself or choose another root)"
        )


def _image_id(index: int) -> str:
    return f"syn_{index:06d}"


def _write_sample(folder: Path, image_id: str, sample: SyntheticSample, config: SyntheticParams) -> None:
    Image.fromarray(sample.image, mode="RGB").save(
        folder / "JPEGImages" / f"{image_id}.jpg", format="JPEG", quality=config.jpeg_quality, subsampling=0
    )
    write_palette_png(folder / "SegmentationClass" / f"{image_id}.png", sample.mask_voc)
    write_palette_png(folder / "SegmentationClassAug" / f"{image_id}.png", sample.mask)
    write_palette_png(folder / "SegmentationContext" / f"{image_id}.png", sample.context)
    Image.fromarray(sample.saliency, mode="L").save(folder / "SaliencyMaps" / f"{image_id}.png", format="PNG")
    (folder / "Annotations" / f"{image_id}.xml").write_bytes(_annotation_xml(image_id, sample))


def _annotation_xml(image_id: str, sample: SyntheticSample) -> bytes:
    """VOC XML: the image's size and one <object> per visible instance (1-based inclusive box)."""
    h, w = sample.mask.shape
    root = ET.Element("annotation")
    ET.SubElement(root, "folder").text = "VOC2012"
    ET.SubElement(root, "filename").text = f"{image_id}.jpg"
    ET.SubElement(ET.SubElement(root, "source"), "database").text = "wsss synthetic"
    size = ET.SubElement(root, "size")
    for tag, value in (("width", w), ("height", h), ("depth", 3)):
        ET.SubElement(size, tag).text = str(value)
    ET.SubElement(root, "segmented").text = "1"
    for obj in sample.objects:
        node = ET.SubElement(root, "object")
        ET.SubElement(node, "name").text = obj.name
        ET.SubElement(node, "pose").text = "Unspecified"
        ET.SubElement(node, "truncated").text = str(int(obj.truncated))
        ET.SubElement(node, "difficult").text = "0"
        box = ET.SubElement(node, "bndbox")
        for tag, value in zip(("xmin", "ymin", "xmax", "ymax"), obj.bbox):
            ET.SubElement(box, tag).text = str(value)
    ET.indent(root)
    return ET.tostring(root, encoding="utf-8") + b"\n"


def _write_lists(folder: Path, splits: dict[str, range]) -> None:
    lists = folder / "ImageSets" / "Segmentation"
    lists.mkdir(parents=True)
    for split, indices in {**splits, "train_aug": splits["train"]}.items():
        (lists / f"{split}.txt").write_text("".join(f"{_image_id(i)}\n" for i in indices))
    (folder / "classes.txt").write_text("\n".join(CLASS_NAMES) + "\n")
    (folder / "context_classes.txt").write_text("\n".join(CONTEXT_NAMES) + "\n")


def _meta(config: SyntheticParams, stats: dict[str, Stats]) -> dict:
    overall = stats["all"].summary(config)
    pairs = [
        {
            "context": ctx,
            "class": cls,
            "rate": rate,
            "measured": overall["classes"][cls]["context_presence"][ctx],
        }
        for ctx, cls, rate in cooccurrence_triples(config)
    ]
    return {
        "generator": "wsss.data.synthetic",
        "config": config_record(config),
        "class_names": list(CLASS_NAMES),
        "context_names": list(CONTEXT_NAMES),
        "cooccurrence": pairs,
        "saliency_missed_classes": list(config.saliency_missed_classes),
        "splits": {"train": config.num_train, "val": config.num_val, "train_aug": config.num_train},
        "stats": {split: (overall if split == "all" else s.summary(config)) for split, s in stats.items()},
    }
