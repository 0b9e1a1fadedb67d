"""Stages DVC does not run still get their MLflow runs (wsss.tracking.restore), read from their outputs."""

import json
import os
import re
import subprocess
from pathlib import Path

import mlflow
import pytest

from tests.test_pipeline_e2e import STAGES, _run, project  # noqa: F401  (the project fixture)
from wsss.tracking import metrics_files

RESULT = {"stage": "seeds", "method": "cam", "split": "train", "num_images": 2, "miou": 0.5,
          "per_class": {"background": {"iou": 0.7, "precision": 0.8}}, "boundary": {"f1": 0.25, "recall": 0.5},
          "bg_threshold": 0.3, "sweep": {"0.30": 0.5}, "baselines": {"all_background": {"miou": 0.1, "pixels": 4}}}


def _report_rows(text: str) -> dict:
    """`wsss report`'s markdown table -> {method: {column: cell}}."""
    lines = [line for line in text.splitlines() if line.startswith("|")]
    header = [c.strip() for c in lines[0].strip("|").split("|")]
    rows = [[c.strip() for c in line.strip("|").split("|")] for line in lines[2:]]
    return {row[0]: dict(zip(header, row)) for row in rows}


def test_headline_keeps_the_figures_readers_use_and_details_keep_everything(tmp_path):
    file = tmp_path / "metrics" / "seeds.json"
    metrics_files.write(file, RESULT)
    assert json.loads(file.read_text()) == {
        "stage": "seeds", "method": "cam", "split": "train", "num_images": 2, "miou": 0.5, "boundary": {"f1": 0.25},
        "bg_threshold": 0.3, "baselines": {"all_background": {"miou": 0.1}}}
    assert json.loads((tmp_path / "metrics" / "details" / "seeds.json").read_text()) == RESULT
    assert metrics_files.read("metrics/seeds.json", tmp_path) == RESULT


PIPELINE = """
stages:
  evaluate_seeds:
    cmd: python -c "from wsss import metrics_files; import json; metrics_files.write('metrics/seeds.json', json.load(open('result.json')))"
    deps: [result.json]
    params: [seeds.method, evaluate]
    metrics:
      - metrics/seeds.json: {cache: false}
    outs:
      - metrics/details/seeds.json: {cache: false}
"""


@pytest.mark.slow
def test_repro_records_a_stage_dvc_skipped_with_its_figures(tmp_path, mlflow_db):
    """A stage already up to date (committed metrics, as in a fresh clone) gets a restored run."""
    import sys

    root = Path(__file__).resolve().parents[1]
    tmp_path = tmp_path / "project"  # beside, not inside, the MLflow database
    tmp_path.mkdir()
    (tmp_path / "dvc.yaml").write_text(PIPELINE)
    (tmp_path / "params.yaml").write_text("seeds: {method: cam}\nevaluate: {boundary_tolerance: 2}\n")
    (tmp_path / "result.json").write_text(json.dumps(RESULT))
    env = dict(os.environ, PYTHONPATH=f"{root / 'src'}{os.pathsep}{root}",
               PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}")
    for cmd in (["git", "init", "-q"], ["dvc", "init", "-q"], ["dvc", "repro", "-q"], ["git", "add", "-A"],
                ["git", "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "init"]):
        subprocess.run(cmd, cwd=tmp_path, env=env, check=True, capture_output=True)
    out = _run(["wsss", "repro"], tmp_path, env)
    assert "recorded from their outputs" in out.stdout and "evaluate_seeds" in out.stdout
    client = mlflow.MlflowClient(tracking_uri=mlflow_db)
    experiment = client.get_experiment_by_name("wsss")
    runs = client.search_runs([experiment.experiment_id], filter_string="tags.`wsss.stage` = 'evaluate_seeds'")
    assert len(runs) == 1
    run = runs[0]
    assert run.data.tags["wsss.restored"] == "true" and run.data.tags["wsss.method"] == "cam"
    assert re.fullmatch(r"[0-9a-f]{40}", run.data.tags["wsss.git_commit"])  # clean: DVC's files are not edits
    assert run.data.params["seeds.method"] == "cam" and run.info.status == "FINISHED"
    assert run.data.metrics["miou"] == 0.5 and run.data.metrics["per_class.background.precision"] == 0.8
    artifacts = {a.path for a in client.list_artifacts(run.info.run_id)} | {
        a.path for a in client.list_artifacts(run.info.run_id, "details")}
    assert {"seeds.json", "details/seeds.json"} <= artifacts
    parent = client.get_run(run.data.tags["mlflow.parentRunId"])
    assert parent.data.metrics["seeds.cam.miou"] == 0.5 and parent.info.status == "FINISHED"
    assert _report_rows(_run(["wsss", "report"], tmp_path, env).stdout)["cam"]["seeds mIoU"] != "-"


@pytest.mark.slow
def test_every_stage_has_a_run_when_dvc_restores_them_all(project, tmp_path):  # noqa: F811
    """Run once, then delete the outputs and start a new MLflow store: DVC restores every stage
    from its cache and runs none, and `wsss report` still shows every row."""
    import shutil

    cwd, env = project
    _run(["wsss", "repro"], cwd, env)
    shutil.rmtree(cwd / "artifacts")
    uri = f"sqlite:///{tmp_path / 'second.db'}"
    env = dict(env, MLFLOW_TRACKING_URI=uri)
    out = _run(["wsss", "repro"], cwd, env)
    assert "recorded from their outputs" in out.stdout
    client = mlflow.MlflowClient(tracking_uri=uri)
    experiment = client.get_experiment_by_name("wsss")
    runs = client.search_runs([experiment.experiment_id], filter_string="tags.`wsss.kind` = 'stage'")
    assert sorted(r.info.run_name for r in runs) == sorted(STAGES)
    assert all(r.data.tags.get("wsss.restored") == "true" for r in runs)
    rows = _report_rows(_run(["wsss", "report"], cwd, env).stdout)
    assert {"cam", "cam+irn", "cam+irn+ptrecl"} <= set(rows)
    assert all(rows[m]["seeds mIoU"] != "-" for m in ("cam", "cam+irn", "cam+irn+ptrecl"))
    assert rows["cam+irn+ptrecl"]["segmentation val mIoU"] != "-"
    assert rows["cam+irn"]["pseudo-mask mIoU"] != "-"
