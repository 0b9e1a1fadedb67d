"""Collapsed outputs (wsss.stages.collapse): all-zero and empty-class seed maps, empty boundary
maps and a loss of exactly 0 are found, named by image, tagged on the stage's real MLflow run and
warned about, or stop the stage with project.on_collapse: fail."""

import mlflow
import numpy as np
import pytest

from wsss.core.errors import CollapseError
from wsss.core.io import save_boundary_map, save_score_map
from wsss.stages import collapse
from wsss.tracking.runs import StageRun


def _seed_maps(folder, maps: dict) -> None:
    for image_id, scores in maps.items():
        save_score_map(folder / f"{image_id}.npz", np.asarray(scores, dtype=np.float32), np.arange(1, len(scores) + 1))


def test_seed_maps_that_collapsed_are_named(tmp_path):
    healthy = np.zeros((2, 4, 4))
    healthy[:, 1, 1] = 0.9
    empty_class = healthy.copy()
    empty_class[1] = 0
    _seed_maps(tmp_path, {"ok": healthy, "zero": np.zeros((2, 4, 4)), "one_empty": empty_class})
    assert collapse.score_map_findings(tmp_path, ["ok"]) == []
    assert collapse.score_map_findings(tmp_path, ["ok", "zero", "one_empty"]) == [
        "1 of 3 images have an all-zero map for every labelled class (zero)",
        "1 of 3 images have a labelled class whose map is all zero (one_empty)",
    ]


def test_empty_boundary_maps_are_named_and_at_most_five_ids_are_listed(tmp_path):
    for index in range(7):
        save_boundary_map(tmp_path / f"flat{index}.npz", np.full((4, 4), 0.01))
    edge = np.zeros((4, 4))
    edge[:, 2] = 0.8
    save_boundary_map(tmp_path / "edge.npz", edge)
    ids = ["edge"] + [f"flat{i}" for i in range(7)]
    assert collapse.boundary_findings(tmp_path, ["edge"]) == []
    assert collapse.boundary_findings(tmp_path, ids) == [
        "7 of 8 images have an empty boundary map (maximum below 0.05) (flat0, flat1, flat2, flat3, flat4, ...)"]


def test_a_loss_of_exactly_zero_is_a_finding():
    assert collapse.loss_findings({"final_epoch_loss": 0.0}) == ["the final epoch's mean loss is exactly 0"]
    assert collapse.loss_findings({"final_epoch_loss": 1e-9}) == []


def test_findings_are_tagged_and_warned_about_or_stop_the_stage(mlflow_db, capsys):
    client = mlflow.MlflowClient()
    experiment = client.create_experiment("collapse")
    run_id = client.create_run(experiment).info.run_id
    run = StageRun(client, run_id, parent_id="")
    collapse.report("irn_boundaries", run, [], "fail")  # nothing found: nothing happens
    assert "wsss.collapse" not in client.get_run(run_id).data.tags
    collapse.report("train_irn", run, ["the final epoch's mean loss is exactly 0"], "warn")
    assert "train_irn: WARNING: collapsed outputs: the final epoch's mean loss is exactly 0" in capsys.readouterr().err
    assert client.get_run(run_id).data.tags["wsss.collapse"] == "the final epoch's mean loss is exactly 0"
    with pytest.raises(CollapseError, match=r"seeds: collapsed outputs: 3 of 4 images .*project.on_collapse: fail"):
        collapse.report("seeds", run, ["3 of 4 images have an all-zero map for every labelled class (a, b, c)"], "fail")
