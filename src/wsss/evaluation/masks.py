"""Scoring pseudo masks against ground truth: the figures every evaluate stage reports.

mIoU with per-class IoU / precision / recall and its image-bootstrap interval (how much the
figure depends on which images were drawn, wsss.evaluation.statistics), class-agnostic boundary
F1, and co-occurrence confusion m_{k,c} (docs/methods.md §7) when the data set has full-scene
context masks, with the pairs that co-occur by construction summarised on their own; with the
image ids, the trivial baselines on the same images (wsss.evaluation.guards flags a figure below them).
"""

from __future__ import annotations

import warnings

import numpy as np

from wsss.evaluation import metrics as M
from wsss.evaluation import statistics


BASELINES = ("all_background", "labelled_class")  # the trivial predictions each evaluation scores beside


class MaskEvaluation:
    def __init__(self, dataset, boundary_tolerance: int):
        self.labels = dataset.labels  # image id -> its labelled class ids: the labelled-class baseline
        self.class_names = dataset.class_names
        self.context_names = getattr(dataset, "context_names", None)
        self.pairs = getattr(dataset, "cooccurrence_pairs", None)
        self.confusion = M.ConfusionAccumulator(dataset.num_classes)
        self.boundary = M.BoundaryAccumulator(tolerance=boundary_tolerance)
        self.cooccurrence = (M.CooccurrenceAccumulator(dataset.num_classes, len(self.context_names))
                             if self.context_names else None)
        self.image_counts: list[np.ndarray] = []  # per image (3, C): the bootstrap's unit
        self.image_ids: list[str] = []  # when given: the per-image counts go into the result, to pair
        # On the same images: every pixel background; every pixel the image's (lowest) labelled class.
        self.baselines = {name: M.ConfusionAccumulator(dataset.num_classes) for name in BASELINES}

    @property
    def images(self) -> int:
        return len(self.image_counts)

    def update(self, gt: np.ndarray, pred: np.ndarray, context: np.ndarray | None = None,
               image_id: str | None = None) -> None:
        self.image_counts.append(statistics.image_counts(self.confusion.update(gt, pred)).astype(np.int32))
        if image_id is not None:
            self.image_ids.append(image_id)
            self.baselines["all_background"].update(gt, M.all_background_prediction(gt.shape))
            self.baselines["labelled_class"].update(gt, M.labelled_class_prediction(gt.shape, self.labels(image_id)))
        self.boundary.update(gt, pred)
        if self.cooccurrence is not None and context is not None:
            self.cooccurrence.update(context, gt, pred)

    def miou_interval(self) -> dict | None:
        """The mIoU's interval over the images (a single run's uncertainty)."""
        if not self.image_counts:
            return None
        interval = statistics.image_bootstrap(np.stack(self.image_counts))
        return {"low": interval.low, "high": interval.high, "n_images": interval.n, "interval": interval.kind,
                "confidence": statistics.CONFIDENCE}

    def result(self) -> dict:
        scores = self.confusion.summary(self.class_names)
        result = {
            "num_images": self.images,
            "miou": scores["miou"],
            "miou_ci": self.miou_interval(),
            "pixel_accuracy": scores["pixel_accuracy"],
            "per_class": scores["per_class"],
            "boundary": self.boundary.result(),
        }
        if self.image_ids and len(self.image_ids) == self.images:
            result["per_image"] = {"ids": self.image_ids, "counts": np.stack(self.image_counts).tolist()}
            result["baselines"] = {name: M.segmentation_scores(accumulator.matrix, self.class_names)
                                   for name, accumulator in self.baselines.items()}
        if self.cooccurrence is not None:
            every = self.cooccurrence.result(self.class_names, self.context_names)
            result["cooccurrence"] = {"all": every}
            if self.pairs:
                rows = self.cooccurrence.result(self.class_names, self.context_names, self.pairs)
                ratios = [row["ratio"] for row in rows if row["ratio"] is not None]
                result["cooccurrence"]["pairs"] = {f"{row['context']}/{row['class']}": row["ratio"] for row in rows}
                result["cooccurrence"]["pairs_mean"] = float(np.mean(ratios)) if ratios else None
        return result


def difference_over_images(reference: dict, other: dict) -> dict | None:
    """``other``'s mIoU minus ``reference``'s on the same images (two results with per-image
    counts, e.g. pseudo masks against the seeds they refine), with its paired bootstrap interval
    over the images. None when the reference has no per-image counts, and, with a warning naming
    the images, when the two were scored on different ones (a stage run outside DVC's order): the
    comparison is left out, never computed on part of the images."""
    if "per_image" not in reference or "per_image" not in other:
        return None
    ids, other_ids = reference["per_image"]["ids"], other["per_image"]["ids"]
    if ids != other_ids:
        differing = sorted(set(ids) ^ set(other_ids))[:5]
        warnings.warn(f"{other['stage']} is not compared with {reference['stage']}: they were scored on different "
                      f"images (e.g. {differing or 'the same ids in another order'}); re-run "
                      f"{reference['stage']}'s evaluation", stacklevel=2)
        return None
    interval = statistics.paired_image_bootstrap(np.asarray(reference["per_image"]["counts"]),
                                                 np.asarray(other["per_image"]["counts"]))
    return {"reference": reference["stage"], "difference": interval.estimate, "ci_low": interval.low,
            "ci_high": interval.high, "n_images": interval.n, "resolved": interval.excludes_zero}


def read_mask(folder: str, image_id: str, gt: np.ndarray, what: str = "pseudo mask") -> np.ndarray:
    """A stage's label map of ``image_id``; an error naming the file when its size is not the
    ground truth's."""
    from wsss.core.errors import DataError
    from wsss.core.io import read_label_png

    path = f"{folder}/{image_id}.png"
    mask = read_label_png(path)
    if mask.shape != gt.shape:
        raise DataError(f"{path}: {what} {mask.shape} differs from the ground truth of image {image_id} {gt.shape}")
    return mask


def with_ground_truth(dataset, progress, desc: str):
    """(image id, ground truth) of every image that has a mask (VOC train_aug images without an SBD
    mask have none), in id order, with a progress bar as ``progress`` (project.progress) says."""
    from wsss.core.progress import progress_bar

    for image_id in progress_bar(progress, dataset.ids, desc=desc, unit="image"):
        gt = dataset.load_mask(image_id)
        if gt is not None:
            yield image_id, gt
