"""Intervals over seeds and over images (wsss.evaluation.statistics) against scipy on known inputs,
and the replicate study's summary (wsss.sweep.replicates)."""

import numpy as np
import pytest
from scipy import stats

from wsss.evaluation import statistics as S
from wsss.evaluation.masks import MaskEvaluation
from wsss.evaluation.metrics import confusion_matrix, segmentation_scores
from wsss.sweep.replicates import Replicate, flat_metrics, markdown, summarise

# CAM seeds and CAM+IRN mIoU over project.seed 0, 1, 2 (AVX2), as measured in issue 25
CAM = [0.3957, 0.4239, 0.4814]
IRN = [0.4331, 0.4560, 0.5427]


def test_over_seeds_is_scipys_t_interval():
    interval = S.over_seeds(CAM)
    low, high = stats.t.interval(0.95, df=2, loc=np.mean(CAM), scale=stats.sem(CAM))
    assert interval.estimate == pytest.approx(np.mean(CAM))
    assert (interval.low, interval.high) == pytest.approx((low, high))
    assert interval.sd == pytest.approx(np.std(CAM, ddof=1))
    assert interval.n == 3 and interval.format() == f"{np.mean(CAM):.4f} ± {(high - low) / 2:.4f} (n=3)"
    assert (round(100 * low, 1), round(100 * high, 1)) == (32.5, 54.2)  # the figures


def test_paired_difference_is_the_t_interval_of_the_per_seed_differences():
    paired = S.paired_over_seeds(CAM, IRN)
    diffs = np.subtract(IRN, CAM)
    low, high = stats.t.interval(0.95, df=2, loc=diffs.mean(), scale=stats.sem(diffs))
    assert (paired.estimate, paired.low, paired.high) == pytest.approx((diffs.mean(), low, high))
    assert paired.excludes_zero  # +4.4, 95% CI +0.5 to +8.2
    assert S.over_seeds(IRN).low < S.over_seeds(CAM).high  # side by side, the two intervals overlap
    unpaired_width = S.over_seeds(IRN).half_width + S.over_seeds(CAM).half_width
    assert paired.half_width < unpaired_width / 4  # what pairing buys


def test_the_prediction_interval_is_where_one_more_replicate_falls():
    predicted = S.prediction_over_seeds(CAM)
    half = stats.t.ppf(0.975, df=2) * np.std(CAM, ddof=1) * np.sqrt(1 + 1 / 3)
    assert (predicted.low, predicted.high) == pytest.approx((np.mean(CAM) - half, np.mean(CAM) + half))
    assert predicted.half_width > S.over_seeds(CAM).half_width
    assert S.prediction_over_seeds([0.4]).low is None


def test_one_seed_has_no_interval_and_bad_input_is_refused():
    single = S.over_seeds([0.42])
    assert single.low is None and single.half_width is None and not single.excludes_zero
    assert single.format() == "0.4200 (n=1)"
    assert S.over_seeds([0.42]).as_metrics("seeds.miou") == {"seeds.miou_mean": 0.42, "seeds.miou_n": 1}
    with pytest.raises(ValueError, match="one value per seed"):
        S.paired_over_seeds([0.1, 0.2], [0.3])
    with pytest.raises(ValueError, match="finite"):
        S.over_seeds([0.1, float("nan")])


def _images(seed: int, count: int = 24, noise: float = 0.3, classes: int = 4):
    """Ground truth and a prediction wrong on about ``noise`` of the pixels, per image."""
    rng = np.random.default_rng(seed)
    gts = [rng.integers(0, classes, (16, 16)) for _ in range(count)]
    preds = [np.where(rng.random(g.shape) < noise, rng.integers(0, classes, g.shape), g) for g in gts]
    return gts, preds


def _counts(gts, preds, classes: int = 5):
    return np.stack([S.image_counts(confusion_matrix(g, p, classes)) for g, p in zip(gts, preds)])


def test_miou_from_image_counts_is_the_metrics_mIoU():
    gts, preds = _images(0)
    total = sum(confusion_matrix(g, p, 5) for g, p in zip(gts, preds))
    assert S.miou_from_counts(_counts(gts, preds)) == pytest.approx(segmentation_scores(total, list("abcde"))["miou"])


def test_image_bootstrap_is_scipys_bootstrap_of_the_mIoU():
    gts, preds = _images(1)
    counts = _counts(gts, preds)
    ours = S.image_bootstrap(counts, resamples=500)

    def miou_of_images(index):  # plain: one resample at a time, the counts of the drawn images summed
        return S.miou_from_counts(counts[np.asarray(index, dtype=int)])

    theirs = stats.bootstrap((np.arange(len(counts)),), miou_of_images, vectorized=False, n_resamples=500,
                             method="BCa", rng=np.random.default_rng(S.BOOTSTRAP_SEED)).confidence_interval
    assert (ours.low, ours.high) == pytest.approx((theirs.low, theirs.high), abs=2e-3)
    assert ours.low < ours.estimate < ours.high and ours.n == len(counts)
    assert S.image_bootstrap(counts, resamples=500) == ours  # seeded: the same counts, the same interval


def test_paired_image_bootstrap_resolves_a_consistent_gain_and_not_a_tie():
    gts, noisy = _images(2, noise=0.4)
    _, cleaner = _images(2, noise=0.3)  # the same images (same rng draws), fewer wrong pixels
    reference, better = _counts(gts, noisy), _counts(gts, cleaner)
    gain = S.paired_image_bootstrap(reference, better, resamples=500)
    assert gain.estimate == pytest.approx(S.miou_from_counts(better) - S.miou_from_counts(reference))
    assert gain.excludes_zero and gain.low > 0
    tie = S.paired_image_bootstrap(reference, reference, resamples=500)
    assert (tie.estimate, tie.low, tie.high) == (0.0, 0.0, 0.0) and not tie.excludes_zero
    with pytest.raises(ValueError, match="same images"):
        S.paired_image_bootstrap(reference, reference[:-1])


class FiveClasses:
    """What MaskEvaluation reads of a data set: every image labelled with class 1."""

    class_names = list("abcde")
    num_classes = 5

    def labels(self, image_id):
        return np.array([1])


def test_mask_evaluation_reports_the_image_bootstrap_interval():
    gts, preds = _images(3)
    evaluation = MaskEvaluation(FiveClasses(), boundary_tolerance=1)
    for gt, pred in zip(gts, preds):
        evaluation.update(gt, pred)
    result = evaluation.result()
    ci = result["miou_ci"]
    assert result["num_images"] == len(gts) == ci["n_images"]
    assert ci["low"] < result["miou"] < ci["high"] and ci["interval"] == "images (bootstrap)"
    expected = S.image_bootstrap(_counts(gts, preds))
    assert (ci["low"], ci["high"]) == pytest.approx((expected.low, expected.high))


def test_a_refinement_is_compared_with_its_input_on_the_same_images():
    from wsss.evaluation.masks import difference_over_images
    from wsss.evaluation.results import versus_input

    gts, noisy = _images(2, noise=0.4)
    _, cleaner = _images(2, noise=0.3)
    results = {}
    for stage, preds in (("seeds", noisy), ("refine", cleaner)):
        evaluation = MaskEvaluation(FiveClasses(), boundary_tolerance=1)
        for index, (gt, pred) in enumerate(zip(gts, preds)):
            evaluation.update(gt, pred, image_id=f"img{index}")
        results[stage] = {"stage": stage, **evaluation.result()}
    vs = difference_over_images(results["seeds"], results["refine"])
    expected = S.paired_image_bootstrap(_counts(gts, noisy), _counts(gts, cleaner))
    assert vs["reference"] == "seeds" and vs["n_images"] == len(gts) and vs["resolved"]
    assert (vs["difference"], vs["ci_low"], vs["ci_high"]) == pytest.approx((expected.estimate, expected.low,
                                                                            expected.high))
    assert versus_input({"vs_input": vs}) == (f"{vs['difference']:+.4f} vs seeds ({vs['ci_low']:+.4f} to "
                                              f"{vs['ci_high']:+.4f}) *")
    shifted = dict(results["refine"], per_image=dict(results["refine"]["per_image"], ids=["x", *[
        f"img{i}" for i in range(1, len(gts))]]))
    with pytest.warns(UserWarning, match="refine is not compared with seeds: they were scored on different images"):
        assert difference_over_images(results["seeds"], shifted) is None
    no_ids = MaskEvaluation(FiveClasses(), boundary_tolerance=1)
    no_ids.update(gts[0], noisy[0])
    assert "per_image" not in no_ids.result()
    assert difference_over_images({"stage": "seeds", **no_ids.result()}, results["refine"]) is None


def _replicate(seed: int, cam: float, irn: float) -> Replicate:
    return Replicate(seed, f"replicate-seed-{seed}", {
        "seeds": {"method": "cam", "miou": cam, "boundary": {"f1": 0.5 + seed / 100}},
        "refine": {"method": "cam+irn", "miou": irn, "boundary": {"f1": 0.6}},
    })


def test_the_replicate_summary_pairs_the_chain_by_seed():
    study = summarise([_replicate(seed, cam, irn) for seed, (cam, irn) in enumerate(zip(CAM, IRN))])
    cam = study["figures"]["seeds"]["miou"]
    assert (cam["mean"], cam["ci_low"], cam["ci_high"]) == pytest.approx(
        (S.over_seeds(CAM).estimate, S.over_seeds(CAM).low, S.over_seeds(CAM).high))
    assert study["figures"]["refine"]["boundary.f1"]["sd"] == 0.0
    difference = study["differences"]["refine-seeds"]
    assert difference["resolved"] and difference["reference"] == "cam" and difference["other"] == "cam+irn"
    assert difference["mean"] == pytest.approx(S.paired_over_seeds(CAM, IRN).estimate)
    flat = flat_metrics(study)
    assert flat["seeds.miou_n"] == 3 and flat["difference.refine-seeds.miou_ci_low"] == pytest.approx(difference["ci_low"])
    text = markdown(study)
    assert "± " in text and "(n=3)" in text and "cam+irn − cam" in text and "| yes" in text
