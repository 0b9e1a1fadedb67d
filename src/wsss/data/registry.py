"""Open a split of the data set the params.yaml ``dataset`` section names (synthetic, voc, coco).

Relative paths (``root``, a saliency folder) are relative to the working directory: the project.
"""

from __future__ import annotations

from pathlib import Path

from wsss.core.errors import DataError
from wsss.core.params import DatasetParams
from wsss.data.base import SegmentationDataset


def open_dataset(cfg: DatasetParams, split: str) -> SegmentationDataset:
    """The ``split`` of the data set ``cfg`` describes, every image of it."""
    from wsss.data.coco import COCODataset
    from wsss.data.saliency import make_saliency_source
    from wsss.data.voc import VOCDataset

    root = Path(cfg.root)
    if not root.is_dir():
        raise DataError(f"dataset.root = {cfg.root!r}: folder {root.resolve()} not found")
    saliency = make_saliency_source(cfg.saliency, root)
    if cfg.name == "coco":
        return COCODataset(root, split, annotation_file=cfg.annotation_file, label_dir=cfg.label_dir,
                           saliency=saliency)
    return VOCDataset(root, split, mask_dir=cfg.mask_dir, saliency=saliency)


def open_split(cfg: DatasetParams, split: str, with_saliency: bool = False) -> SegmentationDataset:
    """One split as the stages use it: saliency only where asked (a data set without saliency maps
    still runs the stages that need none), and only the first ``dataset.max_images`` images.
    Every check (``dataset.validate`` and the readers') sees only the images used; a cut split
    says so, since its other images go unchecked."""
    dataset = open_dataset(cfg if with_saliency else cfg.model_copy(update={"saliency": None}), split)
    limit = cfg.max_images
    if limit is not None and limit < len(dataset.ids):
        print(f"dataset: split {split!r}: using the first {limit} of {len(dataset.ids)} images "
              f"(dataset.max_images); the other {len(dataset.ids) - limit} are neither used nor checked")
        dataset.ids = dataset.ids[:limit]
    return dataset
