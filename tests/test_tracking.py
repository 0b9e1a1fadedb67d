"""The MLflow layer against a real sqlite tracking database."""

import os
import subprocess
import sys
import urllib.request

import mlflow
import numpy as np
import psutil
import pytest
import yaml

from wsss.core import params as params_mod
from wsss.tracking import runs as tracking

from tests.helpers.servers import free_port, running_server


def _runs(uri):
    client = mlflow.MlflowClient(tracking_uri=uri)
    experiment = client.get_experiment_by_name("wsss")
    return client, client.search_runs([experiment.experiment_id])


def test_stage_runs_nest_under_the_parent_from_the_environment(mlflow_db, tmp_path, monkeypatch):
    params = params_mod.validate({})
    experiment_id = tracking.configure("wsss", tmp_path)
    parent = tracking.start_parent_run(experiment_id, params, "test:1", tmp_path)
    monkeypatch.setenv(tracking.PARENT_ENV, parent)
    for stage in ("train_classifier", "seeds"):
        with tracking.stage_run(stage, params, ["seeds.train"], tmp_path) as run:
            run.log_metrics({"a": {"b": 0.5}, "name": "skipped", "nan": float("nan")}, step=3)
            run.log_image(np.zeros((8, 8, 3), np.uint8), "pic.png")
    client, runs = _runs(mlflow_db)
    children = [r for r in runs if r.data.tags.get("mlflow.parentRunId") == parent]
    assert sorted(r.info.run_name for r in children) == ["seeds", "train_classifier"]
    child = children[0]
    assert {k: v for k, v in child.data.metrics.items() if not k.startswith("system/")} == {"a.b": 0.5}
    # MLflow's system metrics, one point even for a stage shorter than its sampling interval
    assert {"system/cpu_utilization_percentage", "system/system_memory_usage_megabytes"} <= set(child.data.metrics)
    assert child.data.params["seeds.train.epochs"] == str(params.seeds.train.epochs)
    assert child.data.tags["wsss.params_hash"] == params_mod.section_hash(params, ["seeds.train"])
    assert child.info.status == "FINISHED"
    assert [a.path for a in client.list_artifacts(child.info.run_id)] == ["pic.png"]
    parent_run = client.get_run(parent)
    assert parent_run.info.status == "RUNNING"  # its driver closes it once every stage has run
    assert parent_run.data.params["seeds.method"] == "cam"


def test_failed_stage_marks_runs_failed(mlflow_db, tmp_path, monkeypatch):
    params = params_mod.validate({})
    parent = tracking.start_parent_run(tracking.configure("wsss", tmp_path), params, "test:2", tmp_path)
    monkeypatch.setenv(tracking.PARENT_ENV, parent)
    with pytest.raises(RuntimeError):
        with tracking.stage_run("seeds", params, ["seeds.infer"], tmp_path):
            raise RuntimeError("boom")
    client, runs = _runs(mlflow_db)
    stage = next(r for r in runs if r.info.run_name == "seeds")
    assert stage.info.status == "FAILED"
    assert client.get_run(parent).info.status == "FAILED"


def test_without_parent_each_manual_stage_gets_a_parent(mlflow_db, tmp_path):
    params = params_mod.validate({})
    with tracking.stage_run("seeds", params, ["seeds.infer"], tmp_path):
        pass
    _, runs = _runs(mlflow_db)
    stage = next(r for r in runs if r.info.run_name == "seeds")
    parent = next(r for r in runs if r.info.run_id == stage.data.tags["mlflow.parentRunId"])
    assert parent.data.tags["wsss.kind"] == "pipeline"


def test_finish_parent_deletes_empty_parent(mlflow_db, tmp_path):
    params = params_mod.validate({})
    parent = tracking.start_parent_run(tracking.configure("wsss", tmp_path), params, "test:3", tmp_path)
    assert tracking.finish_parent_run(parent, True) is False
    client = mlflow.MlflowClient(tracking_uri=mlflow_db)
    assert client.get_run(parent).info.lifecycle_stage == "deleted"


def test_default_uri_is_sqlite_in_the_project(tmp_path, monkeypatch):
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    assert tracking.tracking_uri(tmp_path) == f"sqlite:///{(tmp_path / 'mlflow.db').as_posix()}"


def test_queued_dvc_experiments_log_to_the_project_store(tmp_path, monkeypatch):
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    queued = tmp_path / ".dvc" / "tmp" / "exps" / "tmpab12" / "sub"
    assert tracking.tracking_root(queued) == tmp_path.resolve()
    assert tracking.tracking_uri(queued) == f"sqlite:///{(tmp_path / 'mlflow.db').as_posix()}"


def test_git_commit_is_dirty_only_for_edits_of_tracked_sources_or_params(tmp_path):
    import subprocess

    def git(*args):
        subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@t", *args], cwd=tmp_path, check=True,
                       capture_output=True)

    (tmp_path / "dvc.yaml").write_text("stages:\n  s:\n    cmd: x\n    metrics:\n      - metrics/a.json:\n"
                                       "          cache: false\n    outs:\n      - out/\n")
    for name, text in {"params.yaml": "a: 1\n", "src.py": "x = 1\n", "dvc.lock": "1\n", "metrics/a.json": "{}\n",
                       ".gitignore": "/b\n", "out/.gitignore": "/c\n"}.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text)
    git("init", "-q")
    git("add", "-A")
    git("commit", "-qm", "init")
    sha = tracking.git_commit(tmp_path)
    assert len(sha) == 40
    # what dvc repro writes (with autostage: staged) is not an edit
    for name in ("dvc.lock", "metrics/a.json", ".gitignore", "out/.gitignore"):
        (tmp_path / name).write_text("changed\n")
    git("add", "dvc.lock")
    (tmp_path / "untracked.py").write_text("")
    assert tracking.git_commit(tmp_path) == sha
    for edited in ("params.yaml", "src.py"):
        (tmp_path / edited).write_text("changed\n")
        assert tracking.git_commit(tmp_path) == sha + "-dirty"
        git("checkout", "--", edited)
    git("mv", "src.py", "renamed.py")
    assert tracking.git_commit(tmp_path) == sha + "-dirty"


def test_git_commit_outside_a_repository_is_unknown(tmp_path):
    assert tracking.git_commit(tmp_path) == "unknown"


def _snapshot(folder):
    import hashlib

    return {p.relative_to(folder).as_posix(): hashlib.md5(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def test_a_copied_project_reads_and_writes_only_inside_itself(tmp_path, monkeypatch):
    import shutil
    from pathlib import Path
    from urllib.parse import unquote, urlparse

    from wsss.evaluation.report import run_report

    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.delenv(tracking.PARENT_ENV, raising=False)
    params = params_mod.validate({})
    original, copy = tmp_path / "original", tmp_path / "copy"
    original.mkdir()
    monkeypatch.chdir(original)
    with tracking.stage_run("evaluate_seeds", params, ["evaluate"], original) as run:
        run.set_tag("wsss.method", "cam")
        run.log_metrics({"miou": 0.5})
        run.log_image(np.zeros((8, 8, 3), np.uint8), "before.png")
    shutil.copytree(original, copy)
    before = _snapshot(original)
    monkeypatch.chdir(copy)
    with tracking.stage_run("evaluate_seeds", params, ["evaluate"], copy) as run:
        run.set_tag("wsss.method", "cam")
        run.log_metrics({"miou": 0.6})
        run.log_image(np.zeros((8, 8, 3), np.uint8), "after.png")
    assert "| cam" in run_report("wsss", copy)
    assert _snapshot(original) == before  # nothing read-written back into the original
    client = mlflow.MlflowClient(tracking_uri=tracking.tracking_uri(copy))
    experiment = client.get_experiment_by_name("wsss")
    assert experiment.artifact_location == (copy / "mlruns").as_uri()
    assert experiment.tags["mlflow.experimentKind"] == "custom_model_development"
    runs = client.search_runs([experiment.experiment_id])
    assert len(runs) == 5  # two parents, two stages, one report
    for run in runs:
        assert Path(unquote(urlparse(run.info.artifact_uri).path)).is_relative_to(copy)
    files = {p.name for p in (copy / "mlruns").rglob("*.png")}
    assert {"before.png", "after.png", "report.png"} <= files


def test_a_store_named_by_mlflow_tracking_uri_is_left_as_it_is(tmp_path, mlflow_db):
    location = "file:///elsewhere/mlruns"
    client = mlflow.MlflowClient(tracking_uri=mlflow_db)
    experiment_id = client.create_experiment("wsss", artifact_location=location)
    assert tracking.configure("wsss", tmp_path) == experiment_id
    assert client.get_experiment(experiment_id).artifact_location == location


def test_step_metrics_are_buffered_yet_all_logged_even_when_the_stage_fails(mlflow_db, tmp_path, monkeypatch):
    params = params_mod.validate({})
    monkeypatch.setenv(tracking.PARENT_ENV, tracking.start_parent_run(
        tracking.configure("wsss", tmp_path), params, "test:steps", tmp_path))
    client = mlflow.MlflowClient(tracking_uri=mlflow_db)
    with pytest.raises(RuntimeError, match="stop"):
        with tracking.stage_run("train_irn", params, ["refine.irn.train"], tmp_path) as run:
            for step in range(1, tracking.BATCH // 2 + 3):  # two metrics a step: one batch sent, some pending
                run.log_step({"train.loss": 1.0 / step, "train.lr": 0.1}, step)
            assert len(client.get_metric_history(run.run_id, "train.loss")) == tracking.BATCH // 2
            raise RuntimeError("stop")
    history = client.get_metric_history(run.run_id, "train.loss")
    assert sorted(m.step for m in history) == list(range(1, tracking.BATCH // 2 + 3))
    assert client.get_run(run.run_id).info.status == "FAILED"


def test_step_metrics_reach_mlflow_within_flush_seconds_of_a_step(mlflow_db, tmp_path, monkeypatch):
    """A slow training (minutes a step on real photos) must not keep its losses back until
    BATCH metrics pile up (issue 27): a step FLUSH_SECONDS after the last send sends them."""
    params = params_mod.validate({})
    monkeypatch.setenv(tracking.PARENT_ENV, tracking.start_parent_run(
        tracking.configure("wsss", tmp_path), params, "test:steps", tmp_path))
    client = mlflow.MlflowClient(tracking_uri=mlflow_db)
    with tracking.stage_run("train_irn", params, ["refine.irn.train"], tmp_path) as run:
        run.log_step({"train.loss": 1.0}, 1)
        assert client.get_metric_history(run.run_id, "train.loss") == []  # buffered
        monkeypatch.setattr(tracking, "FLUSH_SECONDS", 0.0)  # as if 30 s had passed
        run.log_step({"train.loss": 0.5}, 2)
        assert [m.step for m in client.get_metric_history(run.run_id, "train.loss")] == [1, 2]


def test_a_queued_experiment_nests_under_its_replicate_run_only_while_the_driver_runs(mlflow_db, tmp_path,
                                                                                    monkeypatch):
    """DVC's queue passes a stage only DVC_EXP_NAME: the stage finds the replicate run of that name
    whose owner (the `wsss repro --replicates` driver) still runs, and none once that is gone."""
    from wsss.core.processes import owner_id

    params = params_mod.validate({})
    experiment_id = tracking.configure("wsss", tmp_path)
    replicate = tracking.start_parent_run(experiment_id, params, "test:3", tmp_path, name="replicate seed 0")
    client = mlflow.MlflowClient()
    for tag, value in {"wsss.kind": "replicate", "wsss.dvc_experiment": "replicate-seed-0"}.items():
        client.set_tag(replicate, tag, value)
    monkeypatch.setenv("DVC_EXP_NAME", "replicate-seed-0")
    assert tracking.queued_replicate_run(experiment_id) == replicate  # its owner is this process
    monkeypatch.setenv("DVC_EXP_NAME", "replicate-seed-1")
    assert tracking.queued_replicate_run(experiment_id) is None

    driver = subprocess.Popen(["sleep", "60"])  # a driver that then ends
    gone = owner_id(driver.pid)
    driver.kill()
    driver.wait()
    client.set_tag(replicate, tracking.OWNER_TAG, gone)
    monkeypatch.setenv("DVC_EXP_NAME", "replicate-seed-0")
    assert tracking.queued_replicate_run(experiment_id) is None


def test_a_restored_run_links_the_run_that_computed_its_outputs(mlflow_db, tmp_path):
    params = params_mod.validate({})
    experiment_id = tracking.configure("wsss", tmp_path)
    first = tracking.start_parent_run(experiment_id, params, "test:computed", tmp_path)
    with tracking.stage_run("seeds", params, ["seeds.infer"], tmp_path) as computed:
        pass
    later = tracking.start_parent_run(experiment_id, params, "test:restored", tmp_path)
    with tracking.restored_stage_run(experiment_id, later, "seeds", params, ["seeds.infer"], tmp_path) as restored:
        pass
    other = params_mod.validate({"seeds": {"infer": {"scales": [1.0]}}})
    with tracking.restored_stage_run(experiment_id, later, "seeds", other, ["seeds.infer"], tmp_path) as unknown:
        pass
    client = mlflow.MlflowClient()
    tags = client.get_run(restored.run_id).data.tags
    assert tags[tracking.COMPUTED_BY_TAG] == computed.run_id and first != later
    assert f"#/experiments/{experiment_id}/runs/{computed.run_id}" in tags["mlflow.note.content"]
    assert tracking.COMPUTED_BY_TAG not in client.get_run(unknown.run_id).data.tags  # other params: no such run


def test_every_run_names_the_version_of_its_data_set(mlflow_db, tmp_path):
    """The md5 DVC records for the data set: a stage's output (the synthetic set), a `dvc add`ed
    folder, or a dependency a stage recorded; on pipeline and stage runs alike."""
    from wsss.tracking.data_version import DATA_MD5_TAG, DATA_TAG, data_version

    lock = {"schema": "2.0", "stages": {
        "synthesize": {"cmd": "x", "outs": [{"path": "data/synthetic", "md5": "aaa.dir"}]},
        "train_classifier": {"cmd": "y", "deps": [{"path": "data/elsewhere/VOC2012", "md5": "ccc.dir"}]}}}
    (tmp_path / "dvc.lock").write_text(yaml.safe_dump(lock))
    (tmp_path / "data/VOC").mkdir(parents=True)
    (tmp_path / "data/VOC.dvc").write_text(yaml.safe_dump({"outs": [{"md5": "bbb.dir", "path": "VOC"}]}))
    assert data_version(tmp_path, "data/synthetic/VOCdevkit/VOC2012") == ("data/synthetic", "aaa.dir")
    assert data_version(tmp_path, "data/VOC/VOCdevkit/VOC2012") == ("data/VOC", "bbb.dir")
    assert data_version(tmp_path, "data/elsewhere/VOC2012") == ("data/elsewhere/VOC2012", "ccc.dir")
    assert data_version(tmp_path, "data/unknown") is None
    params = params_mod.validate({})
    experiment_id = tracking.configure("wsss", tmp_path)
    parent = tracking.start_parent_run(experiment_id, params, "test:data", tmp_path)
    with tracking.stage_run("seeds", params, ["seeds.infer"], tmp_path) as run:
        pass
    client = mlflow.MlflowClient()
    for run_id in (parent, run.run_id):
        tags = client.get_run(run_id).data.tags
        assert tags[DATA_MD5_TAG] == "aaa.dir" and tags[DATA_TAG] == "data/synthetic md5 aaa.dir"


def test_wsss_ui_serves_the_project_store_with_one_worker(mlflow_db, tmp_path):
    """The documented UI command, sized for a laptop: one worker and no job consumers (MLflow's
    defaults started 15 processes, 2.9 GB), the experiment's runs at the link it prints."""
    (tmp_path / "params.yaml").write_text("{}\n")
    port = free_port()
    command = [sys.executable, "-m", "wsss.cli", "--project", str(tmp_path), "ui", "--port", str(port)]
    env = dict(os.environ, MLFLOW_TRACKING_URI=mlflow_db)
    with running_server(command, port, tmp_path, env, tmp_path / "ui.log", ready="/health") as server:
        processes = [server] + psutil.Process(server.pid).children(recursive=True)
        assert len(processes) <= 3, [p.cmdline() for p in processes[1:]]
        experiments = urllib.request.urlopen(f"http://127.0.0.1:{port}/api/2.0/mlflow/experiments/get-by-name"
                                             "?experiment_name=wsss", timeout=30).read()
        assert b'"name": "wsss"' in experiments or b'"name":"wsss"' in experiments
    assert f"http://127.0.0.1:{port}/#/experiments/" in (tmp_path / "ui.log").read_text()
