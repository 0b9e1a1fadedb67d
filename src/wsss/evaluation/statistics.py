"""How sure a figure is: confidence intervals over seeds and over images, and paired differences.

Two sources of noise, two intervals (docs/statistics.md says which is which and what they assume):

- **Over seeds** (``over_seeds``, ``paired_over_seeds``): a figure measured once per replicate
  (``project.seed`` = 0..n-1). Student's t interval of the mean, from scipy.stats.t; it assumes the
  replicates' figures are independent draws from a roughly normal distribution. A paired
  difference is the t interval of the per-seed differences (both configurations run with the same
  seeds), which removes what the two share. ``prediction_over_seeds`` is where one more
  replicate (a fresh run, on this machine or another) should fall.
- **Over images** (``image_bootstrap``, ``paired_image_bootstrap``): one run's mIoU recomputed on
  images resampled with replacement (scipy.stats.bootstrap, BCa): how much the figure depends on
  which images were drawn. mIoU is a ratio of pixel counts summed over images, not a mean of
  per-image figures, so the resampled unit is the image's per-class counts
  (``image_counts``). A paired difference resamples the same images for both masks.

The bootstrap is seeded (``BOOTSTRAP_SEED``): the same counts give the same interval, so metrics
files stay reproducible.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass
from typing import Sequence

import numpy as np

CONFIDENCE = 0.95
BOOTSTRAP_RESAMPLES = 2000
BOOTSTRAP_SEED = 0
BCA_MAX_IMAGES = 2000


@dataclass(frozen=True)
class Interval:
    """An estimate with its confidence interval. ``low``/``high`` are None when ``n`` cannot give
    one (a single seed)."""

    estimate: float
    low: float | None
    high: float | None
    n: int  # seeds, or images for an image bootstrap
    kind: str  # "seeds (t)", "paired seeds (t)", "images (bootstrap)", "paired images (bootstrap)"
    sd: float | None = None  # standard deviation of the replicates (seed intervals)

    @property
    def half_width(self) -> float | None:
        return None if self.low is None else (self.high - self.low) / 2

    @property
    def excludes_zero(self) -> bool:
        """The interval lies wholly above or below zero (a difference is resolved)."""
        return self.low is not None and (self.low > 0 or self.high < 0)

    def format(self, digits: int = 4) -> str:
        """``0.4179 ± 0.0123 (n=3)``; ``0.4179 (n=1)`` without an interval. The ± is the half-width
        of the interval (symmetric for t intervals; for a bootstrap the bounds are in ``as_dict``)."""
        if self.half_width is None:
            return f"{self.estimate:.{digits}f} (n={self.n})"
        return f"{self.estimate:.{digits}f} ± {self.half_width:.{digits}f} (n={self.n})"

    def as_dict(self) -> dict:
        return {"mean": self.estimate, "ci_low": self.low, "ci_high": self.high, "n": self.n,
                "sd": self.sd, "interval": self.kind, "confidence": CONFIDENCE}

    def as_metrics(self, name: str) -> dict[str, float]:
        """``<name>_mean``, ``_ci_low``, ``_ci_high``, ``_n`` (MLflow and DVC metrics: flat numbers)."""
        values = {f"{name}_mean": self.estimate, f"{name}_n": self.n}
        if self.low is not None:
            values |= {f"{name}_ci_low": self.low, f"{name}_ci_high": self.high}
        return values


def over_seeds(values: Sequence[float], confidence: float = CONFIDENCE) -> Interval:
    """Mean, standard deviation and t interval of one figure over replicates."""
    return _t_interval(values, confidence, "seeds (t)")


def prediction_over_seeds(values: Sequence[float], confidence: float = CONFIDENCE) -> Interval:
    """Where one new replicate's figure should fall: mean ± t · sd · sqrt(1 + 1/n), the t
    prediction interval (wider than the mean's interval, which shrinks with n)."""
    from scipy import stats

    mean = over_seeds(values, confidence)
    if mean.sd is None:
        return Interval(mean.estimate, None, None, mean.n, "prediction (t)")
    half = float(stats.t.ppf(0.5 + confidence / 2, df=mean.n - 1)) * mean.sd * math.sqrt(1 + 1 / mean.n)
    return Interval(mean.estimate, mean.estimate - half, mean.estimate + half, mean.n, "prediction (t)", mean.sd)


def paired_over_seeds(reference: Sequence[float], other: Sequence[float],
                      confidence: float = CONFIDENCE) -> Interval:
    """The difference ``other - reference`` measured on the same seeds, with the t interval of the
    per-seed differences."""
    if len(reference) != len(other):
        raise ValueError(f"a paired difference needs one value per seed on both sides, got {len(reference)} "
                         f"and {len(other)}")
    diffs = np.asarray(other, dtype=float) - np.asarray(reference, dtype=float)
    return _t_interval(diffs, confidence, "paired seeds (t)")


def _t_interval(values, confidence: float, kind: str) -> Interval:
    from scipy import stats

    x = np.asarray(values, dtype=float)
    if x.ndim != 1 or len(x) == 0 or not np.isfinite(x).all():
        raise ValueError(f"need one or more finite values, got {values!r}")
    mean = float(x.mean())
    if len(x) == 1:
        return Interval(mean, None, None, 1, kind)
    sd = float(x.std(ddof=1))
    half = float(stats.t.ppf(0.5 + confidence / 2, df=len(x) - 1)) * sd / math.sqrt(len(x))
    return Interval(mean, mean - half, mean + half, len(x), kind, sd)


# --- over images --------------------------------------------------------------------------------

def image_counts(confusion: np.ndarray) -> np.ndarray:
    """One image's per-class counts, shape (3, C): true positives, ground-truth pixels and
    predicted pixels (rows = gt, cols = prediction), the sums mIoU is computed from."""
    conf = np.asarray(confusion, dtype=np.int64)
    return np.stack([np.diag(conf), conf.sum(axis=1), conf.sum(axis=0)])


def miou_from_counts(counts: np.ndarray) -> float:
    """mIoU of images' counts (images, 3, C) summed over the images, as
    metrics.segmentation_scores computes it: the mean IoU over the classes present."""
    return float(_miou_of_totals(np.asarray(counts).sum(axis=0, dtype=np.float64)))


def _miou_of_totals(total: np.ndarray) -> np.ndarray:
    """mIoU of summed counts (..., 3, C)."""
    tp, gt, pred = total[..., 0, :], total[..., 1, :], total[..., 2, :]
    union = gt + pred - tp
    with np.errstate(invalid="ignore", divide="ignore"):
        iou = np.where(union > 0, tp / union, np.nan)
    return np.nanmean(iou, axis=-1)


def _resampled_miou(counts: np.ndarray):
    """The bootstrap statistic: mIoU of each resample of image indices (..., n), computed as
    (times each image is drawn) @ counts, so memory grows with resamples x images, not x classes."""
    flat = counts.reshape(len(counts), -1).astype(np.float64)

    def statistic(idx: np.ndarray) -> np.ndarray:
        idx = np.atleast_2d(idx)
        rows = np.arange(len(idx))[:, None] * len(counts)
        draws = np.bincount((rows + idx).ravel(), minlength=idx.shape[0] * len(counts)).reshape(len(idx), -1)
        return _miou_of_totals((draws @ flat).reshape(len(idx), *counts.shape[1:]))

    return statistic


def image_bootstrap(counts: np.ndarray, confidence: float = CONFIDENCE,
                    resamples: int = BOOTSTRAP_RESAMPLES) -> Interval:
    """mIoU of one set of masks with its interval over images resampled with replacement."""
    counts = _check_counts(counts)
    return _bootstrap(_resampled_miou(counts), len(counts), confidence, resamples, "images (bootstrap)")


def paired_image_bootstrap(reference: np.ndarray, other: np.ndarray, confidence: float = CONFIDENCE,
                           resamples: int = BOOTSTRAP_RESAMPLES) -> Interval:
    """mIoU(other) - mIoU(reference) on the same images, each resample drawing the same images for
    both."""
    reference, other = _check_counts(reference), _check_counts(other)
    if reference.shape != other.shape:
        raise ValueError(f"paired image counts differ in shape: {reference.shape} and {other.shape} (the same "
                         "images and classes are needed)")
    of_reference, of_other = _resampled_miou(reference), _resampled_miou(other)
    return _bootstrap(lambda idx: of_other(idx) - of_reference(idx), len(reference), confidence, resamples,
                      "paired images (bootstrap)")


def _check_counts(counts) -> np.ndarray:
    counts = np.asarray(counts)
    if counts.ndim != 3 or counts.shape[1] != 3 or len(counts) == 0:
        raise ValueError(f"image counts must have shape (images, 3, classes), got {counts.shape}")
    return counts


def _bootstrap(statistic, n: int, confidence: float, resamples: int, kind: str) -> Interval:
    """scipy.stats.bootstrap over image indices. BCa (bias-corrected) up to BCA_MAX_IMAGES; its
    jackknife costs images^2, so larger sets get the percentile interval, which at such n differs
    little."""
    from scipy import stats

    index = np.arange(n)
    estimate = float(statistic(index)[0])
    if n < 2:
        return Interval(estimate, None, None, n, kind)

    def vectorised(idx, axis=-1):  # scipy passes the resampled index arrays
        idx = np.moveaxis(idx, axis, -1)
        values = statistic(idx.reshape(-1, idx.shape[-1]))
        return values.reshape(idx.shape[:-1])

    with warnings.catch_warnings():  # a degenerate BCa (every resample equal) is handled below
        warnings.simplefilter("ignore")
        result = stats.bootstrap((index,), vectorised, vectorized=True, n_resamples=resamples, batch=200,
                                 confidence_level=confidence,
                                 method="BCa" if n <= BCA_MAX_IMAGES else "percentile",
                                 rng=np.random.default_rng(BOOTSTRAP_SEED))
    low, high = float(result.confidence_interval.low), float(result.confidence_interval.high)
    if not (math.isfinite(low) and math.isfinite(high)):  # BCa degenerates when every resample agrees
        low = high = estimate
    return Interval(estimate, low, high, n, kind)
