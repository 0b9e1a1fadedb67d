"""Dense CRF helpers (wsss.methods.crf) with the real pydensecrf on small synthetic images."""

import numpy as np
import pytest
from scipy import ndimage

from wsss.methods.crf import (
    CrfParams,
    crf_from_labels,
    crf_from_probabilities,
    relation_labels,
    scores_to_probabilities,
)

H, W = 48, 48


def _iou(a: np.ndarray, b: np.ndarray) -> float:
    return float((a & b).sum() / (a | b).sum())


def _square_image():
    square = np.zeros((H, W), bool)
    square[14:34, 12:32] = True
    image = np.full((H, W, 3), 20, np.uint8)
    image[square] = 230
    return image, square


def _random_probs(k: int, seed: int = 0) -> np.ndarray:
    p = np.random.default_rng(seed).random((k, H, W)) + 0.05
    return p / p.sum(axis=0)


# --- CrfParams ---------------------------------------------------------------------------------

def test_params_defaults_and_from_dict():
    assert CrfParams() == CrfParams(iterations=10, gaussian_sxy=3.0, gaussian_compat=3.0, bilateral_sxy=50.0,
                                    bilateral_srgb=5.0, bilateral_compat=10.0, gt_prob=0.7)
    cfg = {"iterations": 5, "gaussian_sxy": 3, "gaussian_compat": 3, "bilateral_sxy": 50,
           "bilateral_srgb": 5, "bilateral_compat": 10, "gt_prob": 0.7}
    assert CrfParams(**cfg).iterations == 5
    with pytest.raises(ValueError, match="unknown"):
        CrfParams(**{**cfg, "unknown": 1})


@pytest.mark.parametrize("kwargs, match", [
    ({"iterations": -1}, "iterations"),
    ({"iterations": 2.5}, "iterations"),
    ({"gaussian_sxy": 0}, "gaussian_sxy"),
    ({"bilateral_srgb": -1.0}, "bilateral_srgb"),
    ({"bilateral_compat": -1.0}, "bilateral_compat"),
    ({"gt_prob": 1.0}, "gt_prob"),
    ({"gt_prob": 0.0}, "gt_prob"),
])
def test_params_validation(kwargs, match):
    with pytest.raises(ValueError, match=match):
        CrfParams(**kwargs)


# --- crf_from_labels ---------------------------------------------------------------------------

def test_crf_from_labels_snaps_to_colour_edge():
    image, square = _square_image()
    labels = np.roll(square, (3, 3), axis=(0, 1)).astype(np.int64)  # the blob, misaligned by 3 px
    out = crf_from_labels(image, labels, 2, CrfParams())
    assert out.shape == (H, W)
    assert set(np.unique(out)) <= {0, 1}
    before, after = _iou(labels == 1, square), _iou(out == 1, square)
    assert after > before + 0.2
    assert after > 0.9


def test_crf_from_labels_single_label_is_all_zero():
    image, _ = _square_image()
    out = crf_from_labels(image, np.zeros((H, W), np.int64), 1)
    assert out.shape == (H, W) and not out.any()


def test_crf_from_labels_accepts_non_contiguous_inputs():
    image, square = _square_image()
    labels = square.astype(np.int32)
    flipped = crf_from_labels(image[:, ::-1], labels[:, ::-1], 2)  # negative-stride views
    copied = crf_from_labels(np.ascontiguousarray(image[:, ::-1]), np.ascontiguousarray(labels[:, ::-1]), 2)
    assert np.array_equal(flipped, copied)
    assert np.array_equal(flipped[:, ::-1], crf_from_labels(image, labels, 2))


# --- crf_from_probabilities --------------------------------------------------------------------

def test_crf_from_probabilities_marginals():
    image, _ = _square_image()
    probs = _random_probs(3)
    q = crf_from_probabilities(image, probs, CrfParams())
    assert q.shape == (3, H, W) and q.dtype == np.float32
    assert np.allclose(q.sum(axis=0), 1.0, atol=1e-4)
    assert (q >= 0).all()


def test_crf_from_probabilities_zero_iterations_is_the_input():
    # pydensecrf's inference(0) returns softmax(-unary), i.e. the input probabilities.
    image, _ = _square_image()
    probs = _random_probs(4, seed=1)
    q = crf_from_probabilities(image, probs, CrfParams(iterations=0))
    assert np.allclose(q, probs, atol=1e-4)


def test_crf_from_probabilities_cleans_noisy_square():
    image, square = _square_image()
    rng = np.random.default_rng(2)
    fg = np.where(square, 0.7, 0.3) + rng.uniform(-0.25, 0.25, (H, W))  # noisy, ~20% pixels flipped
    probs = np.stack([1 - fg, fg])
    noisy = probs.argmax(axis=0) == 1
    refined = crf_from_probabilities(image, probs).argmax(axis=0) == 1
    assert _iou(refined, square) > _iou(noisy, square)
    assert _iou(refined, square) > 0.95


def test_crf_from_probabilities_handles_zeros():
    image, square = _square_image()
    probs = np.stack([~square, square]).astype(np.float64)  # exact 0 / 1: clipped before -log
    q = crf_from_probabilities(image, probs)
    assert np.isfinite(q).all()
    assert np.array_equal(q.argmax(axis=0) == 1, square)


# --- scores_to_probabilities -------------------------------------------------------------------

def test_scores_to_probabilities():
    rng = np.random.default_rng(3)
    scores = rng.random((2, H, W)).astype(np.float32)
    scores[:, :10] = rng.uniform(0, 0.19, (2, 10, W))  # every score below the background score
    scores[:, 10:12] = 0.0  # all-zero pixels: background only
    probs = scores_to_probabilities(scores, 0.2)
    assert probs.shape == (3, H, W)
    assert np.allclose(probs.sum(axis=0), 1.0, atol=1e-6)
    assert (probs[:, :10].argmax(axis=0) == 0).all()
    assert np.allclose(probs[0, 10:12], 1.0)
    # the argmax is the constant-background thresholding of the scores
    expected = np.concatenate([np.full((1, H, W), 0.2, np.float32), scores]).argmax(axis=0)
    assert np.array_equal(probs.argmax(axis=0), expected)


def test_scores_to_probabilities_no_classes():
    probs = scores_to_probabilities(np.zeros((0, H, W), np.float32), 0.15)
    assert probs.shape == (1, H, W) and np.allclose(probs, 1.0)


# --- relation_labels ---------------------------------------------------------------------------

def _two_blob_case(ring_colour=(110, 100, 90), ring_width=4):
    """Two objects (classes 3, 7): strong CAM (0.9) on their cores, weak (0.15) on a ring around,
    near 0 elsewhere. Cores, rings and background each have their own colour."""
    h, w = 64, 64
    a = np.zeros((h, w), bool)
    a[12:26, 10:26] = True
    b = np.zeros((h, w), bool)
    b[38:54, 36:54] = True
    ring_a = ndimage.binary_dilation(a, iterations=ring_width) & ~a
    ring_b = ndimage.binary_dilation(b, iterations=ring_width) & ~b
    image = np.full((h, w, 3), 30, np.uint8)
    image[ring_a | ring_b] = ring_colour
    image[a] = (220, 40, 40)
    image[b] = (40, 40, 220)
    scores = np.full((2, h, w), 0.01)
    scores[0][ring_a], scores[0][a] = 0.15, 0.9
    scores[1][ring_b], scores[1][b] = 0.15, 0.9
    far = ~ndimage.binary_dilation(a | b, iterations=ring_width + 3)
    return image, scores, a, b, ring_a | ring_b, far


def test_relation_labels_two_classes():
    image, scores, a, b, ring, far = _two_blob_case()
    labels = relation_labels(image, scores, [3, 7], 0.30, 0.05, CrfParams())
    assert labels.shape == image.shape[:2] and labels.dtype == np.uint8
    assert set(np.unique(labels)) <= {0, 3, 7, 255}
    assert (labels[a] == 3).mean() > 0.95
    assert (labels[b] == 7).mean() > 0.95
    assert (labels[far] == 0).mean() > 0.95
    assert (labels[ring] == 255).mean() > 0.8


def test_relation_labels_crf_turns_background_coloured_ring_to_background():
    # The same scores, but the ring looks like the background: the CRF of the background pass
    # pulls it to background, so it is confident background (0) instead of ignored (255).
    image, scores, a, b, ring, far = _two_blob_case(ring_colour=(30, 30, 30))
    labels = relation_labels(image, scores, np.array([3, 7]), 0.30, 0.05)
    assert (labels[ring] == 0).mean() > 0.8
    assert (labels[a] == 3).mean() > 0.95 and (labels[b] == 7).mean() > 0.95


def test_relation_labels_without_crf_smoothing_matches_thresholds():
    # With zero iterations the CRF returns the unaries: plain IRN thresholding.
    image, scores, a, b, ring, far = _two_blob_case()
    labels = relation_labels(image, scores, [3, 7], 0.30, 0.05, CrfParams(iterations=0))
    fg = np.concatenate([np.full((1, *scores.shape[1:]), 0.30), scores]).argmax(axis=0)
    bg = np.concatenate([np.full((1, *scores.shape[1:]), 0.05), scores]).argmax(axis=0)
    keys = np.array([0, 3, 7])
    expected = np.where(fg > 0, keys[fg], np.where(bg > 0, 255, 0))
    assert np.array_equal(labels, expected)


def test_relation_labels_no_classes_is_background():
    image, _, _, _, _, _ = _two_blob_case()
    labels = relation_labels(image, np.zeros((0, 64, 64), np.float32), [], 0.30, 0.05)
    assert labels.shape == (64, 64) and labels.dtype == np.uint8 and not labels.any()


# --- validation --------------------------------------------------------------------------------

def test_validation_image():
    _, square = _square_image()
    labels = square.astype(np.int64)
    with pytest.raises(ValueError, match="uint8 H x W x 3"):
        crf_from_labels(np.zeros((H, W, 3), np.float32), labels, 2)
    with pytest.raises(ValueError, match="uint8 H x W x 3"):
        crf_from_labels(np.zeros((H, W), np.uint8), labels, 2)
    with pytest.raises(ValueError, match="uint8 H x W x 3"):
        crf_from_probabilities(np.zeros((H, W, 4), np.uint8), _random_probs(2))


def test_validation_size_mismatch_names_both_shapes():
    image, square = _square_image()
    with pytest.raises(ValueError, match=r"labels shape \(40, 48\).*image shape \(48, 48, 3\)"):
        crf_from_labels(image, square[:40].astype(np.int64), 2)
    with pytest.raises(ValueError, match=r"probabilities shape \(2, 48, 40\).*image shape \(48, 48, 3\)"):
        crf_from_probabilities(image, _random_probs(2)[:, :, :40])
    with pytest.raises(ValueError, match=r"scores shape \(1, 30, 30\).*image shape \(48, 48, 3\)"):
        relation_labels(image, np.zeros((1, 30, 30)), [1])


def test_validation_labels():
    image, square = _square_image()
    with pytest.raises(ValueError, match=r"labels out of range.*0\.\.1"):
        crf_from_labels(image, square.astype(np.int64) * 2, 2)
    with pytest.raises(ValueError, match="labels out of range"):
        crf_from_labels(image, square.astype(np.int64) - 1, 2)
    with pytest.raises(ValueError, match="labels must be integers"):
        crf_from_labels(image, square.astype(np.float32), 2)
    with pytest.raises(ValueError, match="n_labels"):
        crf_from_labels(image, square.astype(np.int64), 0)


def test_validation_nan_scores():
    image, _ = _square_image()
    scores = np.full((1, H, W), 0.5)
    scores[0, 3, 4] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        relation_labels(image, scores, [1])
    with pytest.raises(ValueError, match="NaN"):
        scores_to_probabilities(scores, 0.2)
    probs = _random_probs(2)
    probs[1, 0, 0] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        crf_from_probabilities(image, probs)


def test_validation_probabilities():
    image, _ = _square_image()
    with pytest.raises(ValueError, match="sum to 1"):
        crf_from_probabilities(image, _random_probs(2) * 0.5)
    with pytest.raises(ValueError, match=">= 0"):
        crf_from_probabilities(image, np.stack([np.full((H, W), 1.5), np.full((H, W), -0.5)]))
    with pytest.raises(ValueError, match="K x H x W"):
        crf_from_probabilities(image, np.ones((H, W)))


def test_validation_bg_score():
    scores = np.zeros((1, H, W))
    for bad in (0.0, -0.1, float("nan")):
        with pytest.raises(ValueError, match="bg_score"):
            scores_to_probabilities(scores, bad)
    with pytest.raises(ValueError, match="scores must be >= 0"):
        scores_to_probabilities(-np.ones((1, H, W)), 0.2)


@pytest.mark.parametrize("fg, bg, match", [
    (1.2, 0.05, "fg_threshold must be in"),
    (0.3, -0.1, "bg_threshold must be in"),
    (0.3, 0.3, "bg_threshold must be below fg_threshold"),
    (0.05, 0.30, "bg_threshold must be below fg_threshold"),
])
def test_validation_thresholds(fg, bg, match):
    image, _ = _square_image()
    with pytest.raises(ValueError, match=match):
        relation_labels(image, np.zeros((1, H, W)), [1], fg, bg)


def test_validation_class_ids():
    image, _ = _square_image()
    with pytest.raises(ValueError, match="one id per score map"):
        relation_labels(image, np.zeros((2, H, W)), [1])
    with pytest.raises(ValueError, match="class_ids must be integers in 1..254"):
        relation_labels(image, np.zeros((1, H, W)), [0])
    with pytest.raises(ValueError, match="class_ids must be integers in 1..254"):
        relation_labels(image, np.zeros((1, H, W)), [255])
