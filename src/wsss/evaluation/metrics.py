"""Segmentation metrics: pure functions and accumulators on numpy arrays (no I/O, no logging).

Conventions shared by everything in this module
------------------------------------------------
* Label maps are integer arrays of shape (H, W). Class 0 is background; classes are
  ``0 .. num_classes - 1`` (``num_classes`` counts the background).
* Ground-truth pixels equal to ``ignore_index`` (255) are skipped. Nothing else is ever
  dropped silently: any other out-of-range value, in the ground truth or in the
  prediction, raises ``ValueError`` naming the offending values.
* Confusion matrices are ``int64``, rows = ground truth, columns = prediction.
* A ratio whose denominator is 0 (0/0, e.g. the IoU of a class absent from both ground truth
  and prediction) is reported as ``None`` rather than NaN, so results serialise to JSON.

Contents
--------
* :func:`confusion_matrix`, :class:`ConfusionAccumulator`, :func:`segmentation_scores`
  (mIoU, pixel accuracy, per-class IoU / precision / recall), :func:`image_iou` (one image's).
* :class:`ThresholdSweep`: background-threshold sweep over CAM score maps, all thresholds in
  one vectorised pass per image.
* :func:`all_background_prediction`, :func:`labelled_class_prediction`: trivial baselines.
* :func:`label_edges`, :func:`boundary_counts`, :func:`boundary_scores`,
  :class:`BoundaryAccumulator`: class-agnostic boundary recall / precision / F1 (docs/methods.md §7).
* :class:`CooccurrenceAccumulator`: co-occurrence confusion m_{k,c} = FP_{k,c} / TP_c
  (docs/methods.md §7).
* :func:`format_table`: a markdown table for the terminal.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from numbers import Integral, Real

import numpy as np
from scipy import ndimage

__all__ = [
    "IGNORE_INDEX",
    "confusion_matrix",
    "ConfusionAccumulator",
    "segmentation_scores",
    "image_iou",
    "ThresholdSweep",
    "all_background_prediction",
    "labelled_class_prediction",
    "label_edges",
    "boundary_counts",
    "boundary_scores",
    "BoundaryAccumulator",
    "CooccurrenceAccumulator",
    "format_table",
]

IGNORE_INDEX = 255
_MAX_LISTED = 10  # how many offending values an error message lists


# --------------------------------------------------------------------------------------------
# validation helpers
# --------------------------------------------------------------------------------------------

def _ratio(num: float, den: float) -> float | None:
    """num / den as a float, or None when den == 0 (0/0 is undefined, not NaN)."""
    return None if den == 0 else float(num) / float(den)


def _as_label_map(arr, name: str) -> np.ndarray:
    """Return ``arr`` as an int64 array; raise ValueError for non-integer dtypes."""
    a = np.asarray(arr)
    if a.dtype == bool:
        return a.astype(np.int64)
    if not np.issubdtype(a.dtype, np.integer):
        raise ValueError(f"{name} must be an integer label map, got dtype {a.dtype}")
    return a.astype(np.int64, copy=False)


def _check_same_shape(a: np.ndarray, b: np.ndarray, name_a: str, name_b: str) -> None:
    if a.shape != b.shape:
        raise ValueError(
            f"shape mismatch: {name_a} has shape {a.shape}, {name_b} has shape {b.shape}"
        )


def _check_range(values: np.ndarray, num_values: int, name: str) -> None:
    """Raise ValueError naming every value of ``values`` outside ``0 .. num_values - 1``."""
    if values.size == 0:
        return
    lo, hi = int(values.min()), int(values.max())
    if lo >= 0 and hi < num_values:
        return
    bad = np.unique(values[(values < 0) | (values >= num_values)])
    listed = ", ".join(str(int(v)) for v in bad[:_MAX_LISTED])
    more = f" (and {bad.size - _MAX_LISTED} more)" if bad.size > _MAX_LISTED else ""
    raise ValueError(
        f"{name} holds values outside 0..{num_values - 1}: {listed}{more}"
    )


def _check_num_classes(num_classes: int, name: str = "num_classes") -> int:
    if not isinstance(num_classes, Integral) or num_classes < 1:
        raise ValueError(f"{name} must be a positive integer, got {num_classes!r}")
    return int(num_classes)


def _check_names(names: Sequence[str], expected: int, what: str) -> list[str]:
    names = list(names)
    if len(names) != expected:
        raise ValueError(f"{what}: expected {expected} names, got {len(names)}")
    if len(set(names)) != len(names):
        raise ValueError(f"{what}: names are not unique: {names}")
    return names


def _valid_gt_pixels(gt: np.ndarray, num_classes: int, ignore_index: int | None) -> np.ndarray:
    """Boolean mask of non-ignored gt pixels; raise for any other out-of-range gt value."""
    keep = np.ones(gt.shape, dtype=bool) if ignore_index is None else gt != ignore_index
    _check_range(gt[keep], num_classes, "gt")
    return keep


# --------------------------------------------------------------------------------------------
# confusion matrix and scores
# --------------------------------------------------------------------------------------------

def confusion_matrix(gt, pred, num_classes: int,
                     ignore_index: int | None = IGNORE_INDEX) -> np.ndarray:
    """Confusion matrix (int64, ``num_classes x num_classes``), rows = gt, cols = prediction.

    Pixels where ``gt == ignore_index`` are skipped (pass ``ignore_index=None`` to skip
    nothing). Every other pixel is counted: a gt value outside ``0..num_classes-1`` (other than
    ``ignore_index``) or a prediction value outside ``0..num_classes-1`` raises ValueError
    naming the bad values; the prediction is checked on every pixel, ignored ones included.
    ``gt`` and ``pred`` must have the same shape (ValueError naming both shapes otherwise).
    """
    n = _check_num_classes(num_classes)
    gt = _as_label_map(gt, "gt")
    pred = _as_label_map(pred, "pred")
    _check_same_shape(gt, pred, "gt", "pred")
    _check_range(pred.ravel(), n, "pred")
    keep = _valid_gt_pixels(gt, n, ignore_index)
    codes = gt[keep] * n + pred[keep]
    return np.bincount(codes, minlength=n * n).reshape(n, n).astype(np.int64, copy=False)


def segmentation_scores(confusion, class_names: Sequence[str]) -> dict:
    """Scores from a confusion matrix (rows = gt, cols = prediction).

    Returns ``{"miou", "pixel_accuracy", "num_classes_present", "pixels", "per_class"}`` where
    ``per_class[name] = {"iou", "precision", "recall", "gt_pixels", "pred_pixels"}``.

    mIoU convention: the mean of the IoU over the classes *present*, i.e. with
    ``gt_pixels > 0 or pred_pixels > 0``. A class absent from both has IoU 0/0, reported as
    None and excluded from the mean. This equals the ``nanmean`` used by chainercv / the
    public WSSS evaluation code; on a data set where every class occurs in the ground truth
    (VOC train/val) it coincides with the VOC convention (mean over all classes).
    ``pixel_accuracy`` = correctly labelled pixels / counted pixels. Any 0/0 is None.
    """
    conf = np.asarray(confusion, dtype=np.int64)
    if conf.ndim != 2 or conf.shape[0] != conf.shape[1]:
        raise ValueError(f"confusion must be a square matrix, got shape {conf.shape}")
    names = _check_names(class_names, conf.shape[0], "class_names")
    tp = np.diag(conf)
    gt_pixels = conf.sum(axis=1)
    pred_pixels = conf.sum(axis=0)
    union = gt_pixels + pred_pixels - tp
    per_class = {}
    for i, name in enumerate(names):
        per_class[name] = {
            "iou": _ratio(tp[i], union[i]),
            "precision": _ratio(tp[i], pred_pixels[i]),
            "recall": _ratio(tp[i], gt_pixels[i]),
            "gt_pixels": int(gt_pixels[i]),
            "pred_pixels": int(pred_pixels[i]),
        }
    ious = [v["iou"] for v in per_class.values() if v["iou"] is not None]
    total = int(conf.sum())
    return {
        "miou": float(np.mean(ious)) if ious else None,
        "pixel_accuracy": _ratio(int(tp.sum()), total),
        "num_classes_present": len(ious),
        "pixels": total,
        "per_class": per_class,
    }


def image_iou(gt, pred, num_classes: int, ignore_index: int | None = IGNORE_INDEX) -> float | None:
    """One image's mean IoU: over the classes present in its ground truth or prediction (the
    :func:`segmentation_scores` convention), ``ignore_index`` pixels skipped; None when no pixel
    is counted. What ranks images from worst to best (the gallery)."""
    conf = confusion_matrix(gt, pred, num_classes, ignore_index)
    tp = np.diag(conf)
    union = conf.sum(axis=0) + conf.sum(axis=1) - tp
    present = union > 0
    return float(np.mean(tp[present] / union[present])) if present.any() else None


class ConfusionAccumulator:
    """Sums confusion matrices over images; see :func:`confusion_matrix` for conventions."""

    def __init__(self, num_classes: int, ignore_index: int | None = IGNORE_INDEX):
        self.num_classes = _check_num_classes(num_classes)
        self.ignore_index = ignore_index
        self.matrix = np.zeros((self.num_classes, self.num_classes), dtype=np.int64)

    def update(self, gt, pred) -> np.ndarray:
        """Add one image (or a batch of equal-shaped maps); returns that image's matrix."""
        conf = confusion_matrix(gt, pred, self.num_classes, self.ignore_index)
        self.matrix += conf
        return conf

    def merge(self, other: "ConfusionAccumulator") -> None:
        """Add another accumulator's counts (e.g. from a parallel worker)."""
        if other.num_classes != self.num_classes:
            raise ValueError(f"cannot merge {other.num_classes} classes into {self.num_classes}")
        self.matrix += other.matrix

    def summary(self, class_names: Sequence[str]) -> dict:
        """:func:`segmentation_scores` of the accumulated matrix."""
        return segmentation_scores(self.matrix, class_names)


# --------------------------------------------------------------------------------------------
# background-threshold sweep
# --------------------------------------------------------------------------------------------

def _foreground_max(scores, class_ids, shape: tuple,
                    num_classes: int) -> tuple[np.ndarray, np.ndarray]:
    """Per pixel the max foreground score and the class id reaching it (first id on ties).

    With no foreground class (K = 0, ``scores`` of any empty shape) the max score is -inf,
    so every pixel is background.
    """
    ids = np.asarray(class_ids, dtype=np.int64).reshape(-1)
    s = np.asarray(scores, dtype=np.float64)
    if ids.size == 0 and s.size == 0:
        return np.full(shape, -np.inf), np.zeros(shape, dtype=np.int64)
    if s.ndim != 3 or s.shape[0] != ids.size or s.shape[1:] != shape:
        raise ValueError(
            f"shape mismatch: scores has shape {s.shape}, expected ({ids.size}, *{shape}) "
            f"for {ids.size} class_ids and gt shape {shape}"
        )
    _check_range(ids, num_classes, "class_ids")
    if (ids == 0).any():
        raise ValueError("class_ids must be foreground ids (1..C); got the background id 0")
    if not np.isfinite(s).all():
        raise ValueError("scores holds NaN or infinite values")
    best = s.argmax(axis=0)
    return np.take_along_axis(s, best[None], axis=0)[0], ids[best]


class ThresholdSweep:
    """Confusion matrices of CAM pseudo masks for many background thresholds at once.

    For a threshold t a pixel's prediction is ``argmax([t, s_1, ..., s_K])`` over the constant
    background score t and the K foreground scores, mapped to ``[0, id_1, ..., id_K]``.
    Ties: background wins whenever ``t >= max_k s_k`` (a pixel is foreground only if its best
    class score is strictly above t); among foreground classes the first in ``class_ids``
    order wins. With K = 0 every pixel is background.

    All thresholds are handled in one vectorised pass per image: with thresholds sorted, a
    pixel is foreground for exactly the thresholds below its max score, so one bincount over
    (cutoff index, gt, class) plus cumulative sums gives every matrix (cost O(pixels + T N^2)).
    """

    def __init__(self, num_classes: int, thresholds: Iterable[float],
                 ignore_index: int | None = IGNORE_INDEX):
        self.num_classes = _check_num_classes(num_classes)
        ts = np.asarray(list(thresholds), dtype=np.float64)
        if ts.ndim != 1 or ts.size == 0 or not np.isfinite(ts).all():
            raise ValueError(f"thresholds must be a non-empty list of finite numbers, got {ts}")
        self.thresholds = np.unique(ts)  # sorted ascending, duplicates removed
        self.ignore_index = ignore_index
        n = self.num_classes
        self.matrices = np.zeros((self.thresholds.size, n, n), dtype=np.int64)

    def update(self, gt, scores, class_ids) -> None:
        """Add one image: gt (H x W), scores (K x H x W, foreground scores), class_ids (K,)."""
        n, nt = self.num_classes, self.thresholds.size
        gt = _as_label_map(gt, "gt")
        if gt.ndim != 2:
            raise ValueError(f"gt must be a 2-D label map, got shape {gt.shape}")
        keep = _valid_gt_pixels(gt, n, self.ignore_index)
        max_score, cls = _foreground_max(scores, class_ids, gt.shape, n)
        g, m, c = gt[keep], max_score[keep], cls[keep]
        # cutoff[i] = number of thresholds strictly below the pixel's max score
        cutoff = np.searchsorted(self.thresholds, m, side="left")
        fg = np.bincount((cutoff * n + g) * n + c, minlength=(nt + 1) * n * n).reshape(nt + 1, n, n)
        # thresholds index j < cutoff -> foreground class c; j >= cutoff -> background
        fg_from = np.cumsum(fg[::-1], axis=0)[::-1]  # fg_from[j] = sum over cutoff >= j
        bg_upto = np.cumsum(fg.sum(axis=2), axis=0)  # bg_upto[j][g] = #pixels with cutoff <= j
        self.matrices += fg_from[1:]
        self.matrices[:, :, 0] += bg_upto[:nt]

    def results(self, class_names: Sequence[str]) -> list[dict]:
        """``[{"threshold", "miou"}, ...]`` in ascending threshold order."""
        return [
            {"threshold": float(t), "miou": segmentation_scores(m, class_names)["miou"]}
            for t, m in zip(self.thresholds, self.matrices)
        ]

    def best(self, class_names: Sequence[str]) -> dict:
        """``{"threshold", "miou", "scores"}`` at the highest mIoU (lowest threshold on ties).

        ``scores`` is the full :func:`segmentation_scores` dict at that threshold. Raises
        ValueError when nothing has been accumulated.
        """
        rows = self.results(class_names)
        valid = [i for i, r in enumerate(rows) if r["miou"] is not None]
        if not valid:
            raise ValueError("ThresholdSweep.best: no pixels accumulated yet")
        i = max(valid, key=lambda j: (rows[j]["miou"], -j))
        return {**rows[i], "scores": segmentation_scores(self.matrices[i], class_names)}


# --------------------------------------------------------------------------------------------
# trivial baselines
# --------------------------------------------------------------------------------------------

def all_background_prediction(gt_shape: tuple) -> np.ndarray:
    """Every pixel background (class 0), int64, of shape ``gt_shape``."""
    return np.zeros(tuple(gt_shape), dtype=np.int64)


def labelled_class_prediction(shape: tuple, class_ids: Iterable[int]) -> np.ndarray:
    """Every pixel set to the image's labelled class, using no ground-truth pixel positions.

    With several labels, every pixel gets the lowest labelled class id (a deterministic
    choice); with no label the image is all background. ``class_ids`` are foreground ids
    (>= 1); 0 or negative ids raise ValueError.
    """
    ids = np.asarray(list(class_ids), dtype=np.int64)
    if (ids < 1).any():
        raise ValueError(f"class_ids must be foreground ids >= 1, got {ids.tolist()}")
    value = int(ids.min()) if ids.size else 0
    return np.full(tuple(shape), value, dtype=np.int64)


# --------------------------------------------------------------------------------------------
# boundary quality (docs/methods.md §7)
# --------------------------------------------------------------------------------------------

def label_edges(label_map) -> np.ndarray:
    """Class-agnostic edge map: a pixel is an edge where its label differs from a 4-neighbour.

    This is the support of a 4-neighbour Laplacian applied to the label indicator maps
    (computed by direct comparison, so labels can never cancel out). Both pixels of a
    differing pair are edges; the image border is not an edge.
    """
    lab = np.asarray(label_map)
    if lab.ndim != 2:
        raise ValueError(f"label map must be 2-D, got shape {lab.shape}")
    edge = np.zeros(lab.shape, dtype=bool)
    dv = lab[1:, :] != lab[:-1, :]
    dh = lab[:, 1:] != lab[:, :-1]
    edge[1:, :] |= dv
    edge[:-1, :] |= dv
    edge[:, 1:] |= dh
    edge[:, :-1] |= dh
    return edge


def _near(edges: np.ndarray, tolerance: float) -> np.ndarray:
    """Pixels within Euclidean distance ``tolerance`` of an edge pixel (a disk dilation)."""
    if not edges.any():
        return np.zeros(edges.shape, dtype=bool)
    return ndimage.distance_transform_edt(~edges) <= tolerance


def boundary_counts(gt, pred, tolerance: float = 1,
                    ignore_index: int | None = IGNORE_INDEX) -> dict:
    """Edge-pixel counts of one image: ``{gt_edges, gt_matched, pred_edges, pred_matched}``.

    Edges come from :func:`label_edges` on each map. Ground-truth convention for ignored
    pixels: ``ignore_index`` is treated as a region label when extracting gt edges, so the
    rim of an ignore region counts as boundary (in VOC the 255 band outlines the objects and
    is the only place the boundary is marked), but ignored pixels themselves are never gt
    edges; predicted edge pixels lying on ignored gt pixels are not scored (counted in
    neither ``pred_edges`` nor ``pred_matched``). With VOC's ~5 px bands a perfect mask draws
    its edge mid-band, so use a tolerance of about half the band width there.

    A gt edge pixel is matched when a predicted edge pixel lies within Euclidean distance
    ``tolerance`` (and vice versa); there is no one-to-one assignment.
    """
    if tolerance < 0:
        raise ValueError(f"tolerance must be >= 0, got {tolerance}")
    gt = _as_label_map(gt, "gt")
    pred = _as_label_map(pred, "pred")
    _check_same_shape(gt, pred, "gt", "pred")
    valid = np.ones(gt.shape, dtype=bool) if ignore_index is None else gt != ignore_index
    gt_edge = label_edges(gt) & valid
    pred_edge = label_edges(pred)
    pred_scored = pred_edge & valid
    return {
        "gt_edges": int(gt_edge.sum()),
        "gt_matched": int((gt_edge & _near(pred_edge, tolerance)).sum()),
        "pred_edges": int(pred_scored.sum()),
        "pred_matched": int((pred_scored & _near(gt_edge, tolerance)).sum()),
    }


def _boundary_result(counts: Mapping[str, int]) -> dict:
    """recall, precision, F1 from edge counts (None for 0/0; F1 = 0 when P = R = 0)."""
    recall = _ratio(counts["gt_matched"], counts["gt_edges"])
    precision = _ratio(counts["pred_matched"], counts["pred_edges"])
    if recall is None or precision is None:
        f1 = None
    else:
        f1 = 0.0 if recall + precision == 0 else 2 * recall * precision / (recall + precision)
    counts = {k: int(v) for k, v in counts.items()}
    return {"recall": recall, "precision": precision, "f1": f1, **counts}


def boundary_scores(gt, pred, tolerance: float = 1,
                    ignore_index: int | None = IGNORE_INDEX) -> dict:
    """One image's ``{recall, precision, f1}`` plus the counts of :func:`boundary_counts`."""
    return _boundary_result(boundary_counts(gt, pred, tolerance, ignore_index))


class BoundaryAccumulator:
    """Sums :func:`boundary_counts` over images; ``result()`` gives dataset-level R / P / F1."""

    _KEYS = ("gt_edges", "gt_matched", "pred_edges", "pred_matched")

    def __init__(self, tolerance: float = 1, ignore_index: int | None = IGNORE_INDEX):
        self.tolerance = tolerance
        self.ignore_index = ignore_index
        self.counts = dict.fromkeys(self._KEYS, 0)

    def update(self, gt, pred) -> dict:
        """Add one image; returns that image's counts."""
        c = boundary_counts(gt, pred, self.tolerance, self.ignore_index)
        for k in self._KEYS:
            self.counts[k] += c[k]
        return c

    def result(self) -> dict:
        """``{recall, precision, f1, gt_edges, gt_matched, pred_edges, pred_matched}``."""
        return _boundary_result(self.counts)


# --------------------------------------------------------------------------------------------
# co-occurrence confusion (docs/methods.md §7)
# --------------------------------------------------------------------------------------------

class CooccurrenceAccumulator:
    """Co-occurrence confusion m_{k,c} = FP_{k,c} / TP_c.

    ``context`` is a full-scene annotation with values ``0..num_context-1`` (0 = no context
    class; k >= 1 are background "stuff" classes such as water or railroad). Pixels with
    ``context == ignore_index`` or ``gt == ignore_index`` are skipped.

    * FP_{k,c}: pixels with ``context == k`` and ``pred == c`` whose ground truth is not c
      (a context pixel that is truly of class c is not a false positive).
    * TP_c: pixels with ``gt == c`` and ``pred == c``.
    """

    def __init__(self, num_classes: int, num_context: int, ignore_index: int | None = IGNORE_INDEX):
        self.num_classes = _check_num_classes(num_classes)
        self.num_context = _check_num_classes(num_context, "num_context")
        self.ignore_index = ignore_index
        self.fp = np.zeros((self.num_context, self.num_classes), dtype=np.int64)
        self.tp = np.zeros(self.num_classes, dtype=np.int64)

    def update(self, context, gt, pred) -> None:
        """Add one image (three maps of the same shape)."""
        n = self.num_classes
        context = _as_label_map(context, "context")
        gt = _as_label_map(gt, "gt")
        pred = _as_label_map(pred, "pred")
        _check_same_shape(gt, pred, "gt", "pred")
        _check_same_shape(gt, context, "gt", "context")
        _check_range(pred.ravel(), n, "pred")
        keep = _valid_gt_pixels(gt, n, self.ignore_index)
        if self.ignore_index is not None:
            keep &= context != self.ignore_index
        _check_range(context[keep], self.num_context, "context")
        k, g, p = context[keep], gt[keep], pred[keep]
        wrong = g != p
        fp = np.bincount(k[wrong] * n + p[wrong], minlength=self.num_context * n)
        self.fp += fp.reshape(self.num_context, n)
        self.tp += np.bincount(p[~wrong], minlength=n)

    def _resolve(self, key, names: list[str], what: str) -> int:
        if isinstance(key, Integral):
            if not 0 <= key < len(names):
                raise ValueError(f"{what} id {key} outside 0..{len(names) - 1}")
            return int(key)
        if key not in names:
            raise ValueError(f"unknown {what} {key!r}; known: {names}")
        return names.index(key)

    def result(self, class_names: Sequence[str], context_names: Sequence[str],
               pairs: Iterable[tuple] | None = None) -> list[dict]:
        """Rows ``{"context", "class", "fp", "tp", "ratio"}``; ratio = FP/TP, None if TP = 0.

        ``pairs``: (context, class) tuples given by name or id; None means every context
        class k >= 1 against every foreground class c >= 1, context-major order.
        """
        cls_names = _check_names(class_names, self.num_classes, "class_names")
        ctx_names = _check_names(context_names, self.num_context, "context_names")
        if pairs is None:
            idx = [(k, c) for k in range(1, self.num_context) for c in range(1, self.num_classes)]
        else:
            idx = [(self._resolve(k, ctx_names, "context class"),
                    self._resolve(c, cls_names, "class")) for k, c in pairs]
        return [
            {"context": ctx_names[k], "class": cls_names[c], "fp": int(self.fp[k, c]),
             "tp": int(self.tp[c]), "ratio": _ratio(self.fp[k, c], self.tp[c])}
            for k, c in idx
        ]


# --------------------------------------------------------------------------------------------
# terminal table
# --------------------------------------------------------------------------------------------

def format_cell(value) -> str:
    """Floats with 4 decimals, None / NaN as '-', everything else via str()."""
    if value is None:
        return "-"
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, Integral):
        return str(int(value))
    if isinstance(value, Real):
        return "-" if math.isnan(value) else f"{float(value):.4f}"
    return str(value).replace("|", "\\|").replace("\n", " ")


def format_table(rows: Sequence[Mapping], columns: Sequence[str]) -> str:
    """A markdown table of ``rows`` restricted to ``columns`` (missing keys print empty).

    Floats are printed with 4 decimals, integers as they are, None / NaN as '-'.
    """
    cols = list(columns)
    if not cols:
        raise ValueError("format_table needs at least one column")
    body = [[format_cell(r[c]) if c in r else "" for c in cols] for r in rows]
    header = [str(c).replace("|", "\\|") for c in cols]
    widths = [max([len(h), 3] + [len(line[i]) for line in body]) for i, h in enumerate(header)]

    def line(cells):
        return "| " + " | ".join(c.ljust(w) for c, w in zip(cells, widths)) + " |"

    out = [line(header), "| " + " | ".join("-" * w for w in widths) + " |"]
    out += [line(cells) for cells in body]
    return "\n".join(out)
