"""Tests for wsss.evaluation.metrics: exact expectations on tiny hand-built arrays."""

import json

import numpy as np
import pytest

from wsss.evaluation.metrics import (
    BoundaryAccumulator,
    ConfusionAccumulator,
    CooccurrenceAccumulator,
    ThresholdSweep,
    all_background_prediction,
    boundary_counts,
    boundary_scores,
    confusion_matrix,
    format_table,
    label_edges,
    labelled_class_prediction,
    segmentation_scores,
)

X = 255  # ignore

GT = np.array([
    [0, 0, 1, 1],
    [0, X, 1, 1],
    [2, 2, 2, X],
], dtype=np.uint8)
PRED = np.array([
    [0, 2, 1, 1],
    [0, 0, 1, 2],
    [2, 2, 0, 1],
], dtype=np.uint8)
# counted pixels (gt != 255), written out by hand: rows = gt, cols = pred
EXPECTED = np.array([
    [2, 0, 1],
    [0, 3, 1],
    [1, 0, 2],
])


# ---------------------------------------------------------------- confusion matrix / scores

def test_confusion_matrix_hand_computed():
    conf = confusion_matrix(GT, PRED, 3)
    assert conf.dtype == np.int64
    np.testing.assert_array_equal(conf, EXPECTED)


def test_uint8_inputs_do_not_overflow():
    gt = np.full((2, 2), 20, dtype=np.uint8)
    pred = np.full((2, 2), 21, dtype=np.uint8)
    conf = confusion_matrix(gt, pred, 22)
    assert conf[20, 21] == 4 and conf.sum() == 4


def test_segmentation_scores_exact():
    s = segmentation_scores(EXPECTED, ["bg", "a", "b"])
    assert s["pixels"] == 10
    assert s["pixel_accuracy"] == pytest.approx(0.7)
    pc = s["per_class"]
    assert pc["bg"]["iou"] == pytest.approx(2 / 4)
    assert pc["a"]["iou"] == pytest.approx(3 / 4)
    assert pc["b"]["iou"] == pytest.approx(2 / 5)
    assert pc["a"]["precision"] == pytest.approx(1.0)
    assert pc["a"]["recall"] == pytest.approx(3 / 4)
    assert pc["b"]["precision"] == pytest.approx(2 / 4)
    assert pc["b"]["recall"] == pytest.approx(2 / 3)
    assert (pc["b"]["gt_pixels"], pc["b"]["pred_pixels"]) == (3, 4)
    assert s["miou"] == pytest.approx((0.5 + 0.75 + 0.4) / 3)


def test_absent_class_is_none_and_excluded_from_miou():
    conf = np.zeros((5, 5), dtype=np.int64)
    conf[:3, :3] = EXPECTED
    conf[0, 4] = 2  # class 4: predicted but never in gt -> IoU 0, counted
    s = segmentation_scores(conf, ["bg", "a", "b", "absent", "ghost"])
    absent = s["per_class"]["absent"]
    assert absent == {"iou": None, "precision": None, "recall": None, "gt_pixels": 0, "pred_pixels": 0}
    assert s["per_class"]["ghost"]["iou"] == 0.0
    assert s["per_class"]["ghost"]["recall"] is None
    assert s["num_classes_present"] == 4
    # bg IoU becomes 2 / (5 + 3 - 2)
    assert s["miou"] == pytest.approx((2 / 6 + 0.75 + 0.4 + 0.0) / 4)
    json.dumps(s, allow_nan=False)


def test_empty_confusion_gives_none():
    s = segmentation_scores(np.zeros((2, 2), dtype=np.int64), ["bg", "a"])
    assert s["miou"] is None and s["pixel_accuracy"] is None


def test_class_names_length_checked():
    with pytest.raises(ValueError, match="expected 3 names"):
        segmentation_scores(EXPECTED, ["bg", "a"])


@pytest.mark.parametrize("bad_pred_value", [3, 7])
def test_pred_out_of_range_raises_naming_value(bad_pred_value):
    pred = PRED.copy()
    pred[0, 0] = bad_pred_value
    with pytest.raises(ValueError, match=rf"pred .*\b{bad_pred_value}\b"):
        confusion_matrix(GT, pred, 3)


def test_pred_out_of_range_on_ignored_pixel_still_raises():
    pred = PRED.copy()
    pred[1, 1] = 255  # gt is ignored here, the prediction is still invalid
    with pytest.raises(ValueError, match="255"):
        confusion_matrix(GT, pred, 3)


def test_gt_out_of_range_raises_naming_values():
    gt = GT.astype(np.int64)
    gt[0, 0], gt[2, 0] = 3, -1
    with pytest.raises(ValueError, match=r"gt .*-1, 3"):
        confusion_matrix(gt, PRED, 3)


def test_shape_mismatch_names_both_shapes():
    with pytest.raises(ValueError, match=r"\(3, 4\).*\(4, 3\)"):
        confusion_matrix(GT, PRED.T, 3)


def test_float_labels_rejected():
    with pytest.raises(ValueError, match="integer"):
        confusion_matrix(GT.astype(float), PRED, 3)


def test_accumulator_sums_and_summarises():
    acc = ConfusionAccumulator(3)
    acc.update(GT, PRED)
    acc.update(GT, GT.clip(0, 2))  # ignored pixels of gt get some valid prediction
    np.testing.assert_array_equal(acc.matrix, EXPECTED + np.diag([3, 4, 3]))
    s = acc.summary(["bg", "a", "b"])
    assert s["pixel_accuracy"] == pytest.approx(17 / 20)
    json.dumps(s, allow_nan=False)


# ---------------------------------------------------------------- threshold sweep

def _reference_sweep(images, thresholds, n):
    """The straightforward loop: argmax over [t, scores...] per threshold."""
    out = []
    for t in thresholds:
        conf = np.zeros((n, n), dtype=np.int64)
        for gt, scores, ids in images:
            stacked = np.concatenate([np.full((1,) + gt.shape, t), scores], axis=0)
            labels = np.concatenate([[0], ids]).astype(np.int64)
            conf += confusion_matrix(gt, labels[stacked.argmax(axis=0)], n)
        out.append(conf)
    return np.stack(out)


def _random_images(rng, n_classes, count=6):
    images = []
    for i in range(count):
        h, w = rng.integers(5, 12, size=2)
        k = i % 4  # includes K = 0
        ids = np.sort(rng.choice(np.arange(1, n_classes), size=k, replace=False))
        # scores on a 0.05 grid so that ties with the thresholds and between classes happen
        scores = np.round(rng.random((k, h, w)) * 20) / 20
        gt = rng.integers(0, n_classes, size=(h, w))
        gt[rng.random((h, w)) < 0.1] = X
        images.append((gt, scores, ids))
    return images


def test_threshold_sweep_matches_reference_loop():
    rng = np.random.default_rng(0)
    n = 5
    thresholds = [0.0, 0.05, 0.1, 0.15, 0.2, 0.35, 0.5, 0.55, 1.0]
    images = _random_images(rng, n)
    sweep = ThresholdSweep(n, thresholds)
    for gt, scores, ids in images:
        sweep.update(gt, scores, ids)
    np.testing.assert_array_equal(sweep.matrices, _reference_sweep(images, thresholds, n))


def test_threshold_sweep_unsorted_thresholds_and_results():
    rng = np.random.default_rng(1)
    n = 4
    images = _random_images(rng, n, count=4)
    sweep = ThresholdSweep(n, [0.5, 0.1, 0.3])
    for gt, scores, ids in images:
        sweep.update(gt, scores, ids)
    names = ["bg", "a", "b", "c"]
    ref = _reference_sweep(images, [0.1, 0.3, 0.5], n)
    rows = sweep.results(names)
    assert [r["threshold"] for r in rows] == [0.1, 0.3, 0.5]
    for row, conf in zip(rows, ref):
        assert row["miou"] == pytest.approx(segmentation_scores(conf, names)["miou"])
    best = sweep.best(names)
    i = int(np.argmax([r["miou"] for r in rows]))
    assert best["threshold"] == rows[i]["threshold"] and best["miou"] == rows[i]["miou"]
    assert best["scores"]["miou"] == best["miou"]


def test_threshold_sweep_tie_goes_to_background():
    gt = np.array([[0, 1, 2]])
    scores = np.array([[[0.3, 0.3, 0.2]],   # class 1
                       [[0.1, 0.3, 0.4]]])  # class 2
    sweep = ThresholdSweep(3, [0.3])
    sweep.update(gt, scores, [1, 2])
    # pixel 0: max 0.3 == t -> bg; pixel 1: max 0.3 == t -> bg; pixel 2: 0.4 > t -> class 2
    np.testing.assert_array_equal(sweep.matrices[0], [[1, 0, 0], [1, 0, 0], [0, 0, 1]])


def test_threshold_sweep_no_foreground_is_all_background():
    gt = np.array([[0, 1], [X, 2]])
    sweep = ThresholdSweep(3, [0.0, 0.5])
    sweep.update(gt, np.zeros((0, 2, 2)), [])
    for m in sweep.matrices:
        np.testing.assert_array_equal(m, [[1, 0, 0], [1, 0, 0], [1, 0, 0]])


def test_threshold_sweep_input_errors():
    sweep = ThresholdSweep(3, [0.2])
    gt = np.zeros((2, 2), dtype=np.int64)
    with pytest.raises(ValueError, match="shape"):
        sweep.update(gt, np.zeros((1, 3, 2)), [1])
    with pytest.raises(ValueError, match="class_ids .*3"):
        sweep.update(gt, np.zeros((1, 2, 2)), [3])
    with pytest.raises(ValueError, match="background"):
        sweep.update(gt, np.zeros((1, 2, 2)), [0])
    with pytest.raises(ValueError, match="no pixels"):
        sweep.best(["bg", "a", "b"])


# ---------------------------------------------------------------- baselines

def test_all_background_prediction():
    p = all_background_prediction((3, 4))
    assert p.shape == (3, 4) and not p.any()
    np.testing.assert_array_equal(confusion_matrix(GT, p, 3), [[3, 0, 0], [4, 0, 0], [3, 0, 0]])


def test_labelled_class_prediction_uses_lowest_label():
    np.testing.assert_array_equal(labelled_class_prediction((2, 3), [7, 2, 5]), np.full((2, 3), 2))
    np.testing.assert_array_equal(labelled_class_prediction((2, 2), []), np.zeros((2, 2)))
    with pytest.raises(ValueError, match="foreground"):
        labelled_class_prediction((2, 2), [0, 3])


# ---------------------------------------------------------------- boundary F1

def _square(size=20, top=5, left=5, side=10):
    m = np.zeros((size, size), dtype=np.int64)
    m[top:top + side, left:left + side] = 1
    return m


def test_label_edges_both_sides_of_change():
    lab = np.array([[0, 0, 1],
                    [0, 0, 1],
                    [2, 2, 2]])
    np.testing.assert_array_equal(label_edges(lab), [[0, 1, 1],
                                                     [1, 1, 1],
                                                     [1, 1, 1]])
    # 1 | 2 | 3 would cancel in a summed Laplacian; the comparison never does
    assert label_edges(np.array([[1, 2, 3]])).all()


def test_boundary_perfect_square():
    gt = _square()
    r = boundary_scores(gt, gt.copy(), tolerance=1)
    assert r["recall"] == r["precision"] == r["f1"] == 1.0
    assert r["gt_edges"] == 76  # 36 on the square's inner rim + 40 just outside it (no corners)


def test_boundary_shifted_square():
    gt, pred = _square(), _square(left=8)
    shifted = boundary_scores(gt, pred, tolerance=1)
    # matched gt edges, counted by hand: top and bottom rims at columns 7..14 (2 x 2 x 8 = 32),
    # the right outer column at rows 5, 6, 13, 14 (4), the right inner column at rows 6, 13
    # (2) and the inner rim pixels (5, 6), (14, 6) next to the shifted left edge (2) -> 40;
    # the configuration is symmetric, so the predicted side matches 40 of its 76 as well
    assert (shifted["gt_edges"], shifted["gt_matched"]) == (76, 40)
    assert (shifted["pred_edges"], shifted["pred_matched"]) == (76, 40)
    assert shifted["f1"] == pytest.approx(40 / 76)
    assert shifted["recall"] < 1.0 and shifted["precision"] < 1.0
    assert boundary_scores(gt, pred, tolerance=3)["f1"] == 1.0


def test_boundary_exact_counts_tiny():
    gt = np.array([[0, 0, 1, 1],
                   [0, 0, 1, 1],
                   [0, 0, 1, 1],
                   [0, 0, 1, X]])
    pred = np.array([[0, 0, 0, 1]] * 4)
    # gt edges: column 1 (4), column 2 (4), (2, 3) next to the ignored pixel -> 9
    # pred edges: columns 2 and 3 (8), minus (3, 3) lying on ignored gt -> 7 scored
    c0 = boundary_counts(gt, pred, tolerance=0)
    assert c0 == {"gt_edges": 9, "gt_matched": 5, "pred_edges": 7, "pred_matched": 5}
    s0 = boundary_scores(gt, pred, tolerance=0)
    assert s0["recall"] == pytest.approx(5 / 9)
    assert s0["precision"] == pytest.approx(5 / 7)
    assert s0["f1"] == pytest.approx(0.625)
    c1 = boundary_counts(gt, pred, tolerance=1)
    assert c1 == {"gt_edges": 9, "gt_matched": 9, "pred_edges": 7, "pred_matched": 7}


def test_boundary_accumulator_sums_counts():
    gt = np.array([[0, 0, 1, 1]] * 4)
    pred = np.array([[0, 0, 0, 1]] * 4)
    acc = BoundaryAccumulator(tolerance=0)
    acc.update(gt, pred)                 # gt 8 / 4 matched, pred 8 / 4 matched
    acc.update(gt, np.zeros_like(gt))    # gt 8 / 0 matched, no pred edges
    r = acc.result()
    assert (r["gt_edges"], r["gt_matched"], r["pred_edges"], r["pred_matched"]) == (16, 4, 8, 4)
    assert r["recall"] == pytest.approx(0.25) and r["precision"] == pytest.approx(0.5)
    assert r["f1"] == pytest.approx(2 * 0.25 * 0.5 / 0.75)


def test_boundary_no_edges_is_none():
    r = BoundaryAccumulator().result()
    assert r["recall"] is None and r["precision"] is None and r["f1"] is None
    flat = np.zeros((3, 3), dtype=np.int64)
    assert boundary_scores(flat, flat)["f1"] is None


# ---------------------------------------------------------------- co-occurrence confusion

CLASSES = ["bg", "boat", "train", "cat"]
CONTEXTS = ["none", "water", "railroad"]


def _cooc():
    gt = np.array([[0, 0, 1, 1],
                   [0, 0, 1, 1],
                   [0, X, 2, 2]])
    context = np.array([[1, 1, 0, 0],
                        [1, 1, 0, 0],
                        [2, 2, 0, 0]])
    pred = np.array([[1, 0, 1, 1],
                     [1, 0, 1, 0],
                     [2, 2, 2, 2]])
    acc = CooccurrenceAccumulator(4, 3)
    acc.update(context, gt, pred)
    return acc


def test_cooccurrence_exact_ratios():
    acc = _cooc()
    # TP_boat = 3, TP_train = 2; FP_water,boat = 2; FP_railroad,train = 1 (the 255 pixel is skipped)
    rows = acc.result(CLASSES, CONTEXTS, pairs=[("water", "boat"), ("railroad", "train")])
    assert [(r["fp"], r["tp"]) for r in rows] == [(2, 3), (1, 2)]
    assert rows[0]["ratio"] == pytest.approx(2 / 3)
    assert rows[1]["ratio"] == pytest.approx(0.5)


def test_cooccurrence_all_pairs_and_zero_tp():
    rows = _cooc().result(CLASSES, CONTEXTS)
    table = {(r["context"], r["class"]): r["ratio"] for r in rows}
    assert len(rows) == 2 * 3  # contexts 1..2 x classes 1..3
    assert table[("water", "train")] == 0.0
    assert table[("railroad", "boat")] == 0.0
    assert table[("water", "cat")] is None  # TP_cat == 0
    json.dumps(rows, allow_nan=False)


def test_cooccurrence_true_class_pixel_is_not_fp():
    acc = CooccurrenceAccumulator(2, 2)
    context = np.array([[1, 1]])
    acc.update(context, np.array([[1, 0]]), np.array([[1, 1]]))
    r = acc.result(["bg", "boat"], ["none", "water"], pairs=[(1, 1)])[0]
    assert (r["fp"], r["tp"], r["ratio"]) == (1, 1, 1.0)


def test_cooccurrence_errors():
    acc = CooccurrenceAccumulator(2, 2)
    with pytest.raises(ValueError, match="context .*5"):
        acc.update(np.array([[5]]), np.array([[0]]), np.array([[0]]))
    with pytest.raises(ValueError, match="unknown class"):
        acc.result(["bg", "boat"], ["none", "water"], pairs=[("water", "dog")])


# ---------------------------------------------------------------- table

def test_format_table_exact():
    rows = [{"method": "cam", "miou": 0.481234, "n": 12, "best": None},
            {"method": "eps|crf", "miou": 0.7}]
    expected = (
        "| method   | miou   | n   | best |\n"
        "| -------- | ------ | --- | ---- |\n"
        "| cam      | 0.4812 | 12  | -    |\n"
        "| eps\\|crf | 0.7000 |     |      |"
    )
    assert format_table(rows, ["method", "miou", "n", "best"]) == expected
