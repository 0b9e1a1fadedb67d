"""Stages DVC does not run still get their MLflow runs (wsss.tracking.restore), read from their outputs."""

import json
import re
import shutil

import mlflow
import pytest
import yaml

from tests.helpers.mlflow_runs import all_runs
from tests.helpers.project import GIT, ROOT, STAGES, project_env, run
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
    cmd: python -c "from wsss.tracking import metrics_files; import json; metrics_files.write('metrics/seeds.json', json.load(open('result.json')))"
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
    project = tmp_path / "project"  # beside, not inside, the MLflow database
    project.mkdir()
    paths = [entry for entry in yaml.safe_load((ROOT / "dvc.yaml").read_text())["vars"] if "paths" in entry]
    (project / "dvc.yaml").write_text(yaml.safe_dump({"vars": paths}) + PIPELINE)  # wsss reads the named paths
    (project / "params.yaml").write_text("seeds: {method: cam}\nevaluate: {boundary_tolerance: 2}\n")
    (project / "result.json").write_text(json.dumps(RESULT))
    env = project_env(ROOT, MLFLOW_TRACKING_URI=mlflow_db)  # this checkout's sources: the copy has none
    for cmd in (["git", "init", "-q"], ["dvc", "init", "-q"], ["dvc", "repro", "-q"], ["git", "add", "-A"],
                [*GIT, "commit", "-qm", "init"]):
        run(cmd, project, env)
    out = run(["wsss", "repro"], project, env)
    assert "recorded from their outputs" in out.stdout and "evaluate_seeds" in out.stdout
    client = mlflow.MlflowClient(tracking_uri=mlflow_db)
    experiment = client.get_experiment_by_name("wsss")
    runs = client.search_runs([experiment.experiment_id], filter_string="tags.`wsss.stage` = 'evaluate_seeds'")
    assert len(runs) == 1
    run_ = runs[0]
    assert run_.data.tags["wsss.restored"] == "true" and run_.data.tags["wsss.method"] == "cam"
    assert re.fullmatch(r"[0-9a-f]{40}", run_.data.tags["wsss.git_commit"])  # clean: DVC's files are not edits
    assert run_.data.params["seeds.method"] == "cam" and run_.info.status == "FINISHED"
    assert run_.data.metrics["miou"] == 0.5 and run_.data.metrics["per_class.background.precision"] == 0.8
    artifacts = {a.path for a in client.list_artifacts(run_.info.run_id)} | {
        a.path for a in client.list_artifacts(run_.info.run_id, "details")}
    assert {"seeds.json", "details/seeds.json"} <= artifacts
    parent = client.get_run(run_.data.tags["mlflow.parentRunId"])
    assert parent.data.metrics["seeds.cam.miou"] == 0.5 and parent.info.status == "FINISHED"
    assert _report_rows(run(["wsss", "report"], project, env).stdout)["cam"]["seeds mIoU"] != "-"


@pytest.mark.slow
def test_every_stage_has_a_run_when_dvc_restores_them_all(finished_project):
    """The finished tiny pipeline as a fresh clone with DVC's cache sees it: no outputs, no MLflow
    store. DVC restores every stage from its cache and runs none, each stage gets a restored run,
    and `wsss report` still shows every row."""
    cwd, env = finished_project
    shutil.rmtree(cwd / "artifacts")
    shutil.rmtree(cwd / "mlruns")
    (cwd / "mlflow.db").unlink()
    out = run(["wsss", "repro"], cwd, env)
    assert "recorded from their outputs" in out.stdout
    assert "Running stage" not in out.stdout
    runs = all_runs(finished_project.uri, "tags.`wsss.kind` = 'stage'")
    assert sorted(r.info.run_name for r in runs) == sorted(STAGES)
    assert all(r.data.tags.get("wsss.restored") == "true" for r in runs)
    rows = _report_rows(run(["wsss", "report"], cwd, env).stdout)
    assert {"cam", "cam+irn", "cam+irn+ptrecl"} <= set(rows)
    assert all(rows[m]["seeds mIoU"] != "-" for m in ("cam", "cam+irn", "cam+irn+ptrecl"))
    assert rows["cam+irn+ptrecl"]["segmentation val mIoU"] != "-"
    assert rows["cam+irn"]["pseudo-mask mIoU"] != "-"
