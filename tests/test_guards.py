"""Guard rails (wsss.evaluation.guards): every evaluation scores the trivial baselines on its own
images, and a figure below them or a refinement below its input is flagged in the result, the
log, the metrics file, the MLflow run and the results table."""

import numpy as np
import pytest

from wsss.evaluation import guards
from wsss.evaluation import metrics as M
from wsss.evaluation.masks import MaskEvaluation
from wsss.evaluation.results import flag_marks


class TwoObjects:
    """Two 4x4 images, background 0 with a 2x2 object of class 1 (image a) or 2 (image b)."""

    class_names = ["background", "cat", "dog"]
    num_classes = 3

    def labels(self, image_id):
        return np.array([1 if image_id == "a" else 2])

    def mask(self, image_id):
        gt = np.zeros((4, 4), dtype=np.int64)
        gt[1:3, 1:3] = self.labels(image_id)[0]
        return gt


def _evaluate(predict) -> dict:
    data = TwoObjects()
    evaluation = MaskEvaluation(data, boundary_tolerance=1)
    for image_id in ("a", "b"):
        gt = data.mask(image_id)
        evaluation.update(gt, predict(gt), image_id=image_id)
    return {"stage": "seeds", "method": "cam", **evaluation.result()}


def test_an_evaluation_scores_the_trivial_baselines_on_its_images():
    result = _evaluate(lambda gt: gt)
    data = TwoObjects()
    expected = {}
    for name, predict in (("all_background", lambda gt, i: M.all_background_prediction(gt.shape)),
                          ("labelled_class", lambda gt, i: M.labelled_class_prediction(gt.shape, data.labels(i)))):
        confusion = M.ConfusionAccumulator(3)
        for image_id in ("a", "b"):
            confusion.update(data.mask(image_id), predict(data.mask(image_id), image_id))
        expected[name] = M.segmentation_scores(confusion.matrix, data.class_names)["miou"]
    assert {name: values["miou"] for name, values in result["baselines"].items()} == pytest.approx(expected)


def test_masks_below_a_trivial_baseline_are_flagged_by_name(capsys):
    perfect = guards.flag(_evaluate(lambda gt: gt), "evaluate_seeds")
    assert perfect["flags"] == {} and capsys.readouterr().err == ""
    everything_dog = guards.flag(_evaluate(lambda gt: np.full_like(gt, 2)), "evaluate_seeds")
    why = everything_dog["flags"][guards.BELOW_BASELINE]
    best = max(values["miou"] for values in everything_dog["baselines"].values())
    assert f"below the trivial baseline 'all background' ({best:.4f})" in why
    assert f"evaluate_seeds: WARNING: seeds cam: {why}" in capsys.readouterr().err
    assert flag_marks(everything_dog) == "BELOW BASELINE"


def test_a_refinement_below_its_input_is_flagged_and_says_whether_it_is_noise():
    worse = {"stage": "refine", "method": "cam+irn", "miou": 0.5,
             "vs_input": {"reference": "seeds", "difference": -0.02, "ci_low": -0.03, "ci_high": -0.01,
                          "resolved": True}}
    flags = guards.quality_flags(worse)
    assert flags[guards.LOWERS_INPUT] == ("mIoU -0.0200 against its input (seeds) on the same images, its 95% "
                                          "interval excludes zero")
    noisy = dict(worse, vs_input=dict(worse["vs_input"], ci_high=0.01, resolved=False))
    assert "within the images' noise" in guards.quality_flags(noisy)[guards.LOWERS_INPUT]
    better = dict(worse, vs_input=dict(worse["vs_input"], difference=0.02))
    assert guards.quality_flags(better) == {}
    assert flag_marks({"flags": flags}) == "LOWERS ITS INPUT"
