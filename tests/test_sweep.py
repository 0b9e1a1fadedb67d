"""End to end: `wsss sweep` (Optuna and Ray Tune) on the tiny pipeline, its DVC cache filled by
the session's run of it (conftest: tiny_run, copied as finished_project).

Trials must reuse the cached upstream stages (only PtReCl runs), nest under one sweep run in
MLflow, resume after a SIGKILL without losing or duplicating trials (Optuna), and two concurrent
trials must leave every shared cache object intact; the Ray engine runs the same sweep on a
local Ray bound to the loopback and retries and reports a failed trial, and through
`--address` of a Ray head with two logical GPUs gives each trial its GPU. The sweeps log to a
store of their own (MLFLOW_TRACKING_URI, the mlflow_db fixture), apart from the pipeline's
runs in the copy's store. Slow (a few minutes on 2 cores): marked `slow`.
"""

import hashlib
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import mlflow
import optuna
import pytest
import yaml

from tests.helpers.background import background_job
from tests.helpers.mlflow_runs import all_runs
from tests.helpers.project import Project, copy_project, make_project, project_env
from tests.helpers.project import run as _run
from tests.helpers.processes import processes_in
from tests.helpers.processes import processes_in
from tests.helpers.ray_head import LOGICAL_GPUS, ray_cluster, ray_head
from wsss.cli import main
from wsss.core import params as params_mod
from wsss.core.dvcfile import pipeline
from wsss.sweep.space import SweepError, load_spec
from wsss.sweep.workspace import TrialError, run_trial, state_dir

TRAINING = {"train_classifier", "train_irn", "train_recovery"}
PTRECL = {"ptrecl", "evaluate_ptrecl"}
OBJECTIVE = {"metric": "metrics/ptrecl.json:miou", "direction": "maximize"}


def _env(project: Path, uri: str) -> dict:
    return project_env(project, MLFLOW_TRACKING_URI=uri)


@pytest.fixture
def project(finished_project, mlflow_db, monkeypatch):
    """A copy of the finished tiny project; MLFLOW_TRACKING_URI names the sweeps' own store."""
    monkeypatch.setenv("MLFLOW_TRACKING_URI", mlflow_db)
    return finished_project.path


def _spec(project: Path, name: str, space: dict, budget: int, **extra) -> Path:
    path = project / "sweeps" / f"{name}.yaml"
    path.parent.mkdir(exist_ok=True)
    path.write_text(yaml.safe_dump({"objective": OBJECTIVE, "budget": budget, "space": space, **extra}, sort_keys=False))
    return path


def _study(project: Path, name: str):
    return optuna.load_study(study_name=name, storage=f"sqlite:///{state_dir(project, name) / 'optuna.db'}")


def _runs(uri: str):
    client = mlflow.MlflowClient(tracking_uri=uri)
    experiment = client.get_experiment_by_name("wsss")
    runs = client.search_runs([experiment.experiment_id], order_by=["attributes.start_time ASC"])
    sweeps = [r for r in runs if r.data.tags.get("wsss.kind") == "sweep"]
    trials = [r for r in runs if r.data.tags.get("wsss.kind") == "trial"]
    stages = [r for r in runs if r.data.tags.get("wsss.kind") == "stage"]
    return sweeps, trials, stages


def _trial_has_run(uri: str, number: int) -> bool:
    experiment = mlflow.MlflowClient(tracking_uri=uri).get_experiment_by_name("wsss")
    return experiment is not None and any(int(r.data.tags["wsss.trial"]) == number for r in _runs(uri)[1])


@pytest.mark.slow
def test_sweep_reruns_only_ptrecl_and_nests_every_trial_under_one_sweep_run(project, mlflow_db, capsys):
    spec = _spec(project, "top-m", {"ptrecl.reclassify.top_m": {"type": "int", "low": 2, "high": 6}}, 3,
                 report=["metrics/ptrecl_map.json:miou"])
    assert main(["--project", str(project), "sweep", str(spec), "--engine", "optuna"]) == 0
    printed = capsys.readouterr().out

    trials = _study(project, "top-m").trials
    assert [t.state.name for t in trials] == ["COMPLETE"] * 3
    for t in trials:
        assert set(t.user_attrs["stages_ran"]) <= PTRECL  # never a training stage
        assert 2 <= t.params["ptrecl.reclassify.top_m"] <= 6 and 0.0 <= t.value <= 1.0
    assert set(trials[0].user_attrs["stages_ran"]) == PTRECL  # a fresh top_m: PtReCl reruns ...
    upstream = pipeline(project).upstream(params_mod.load(project / "params.yaml"))
    assert TRAINING <= upstream["ptrecl"]  # ... on everything upstream, from the run-cache
    # evaluate_ptrecl also reads evaluate_refine's per-image counts (the masks it reclassifies)
    assert set(trials[0].user_attrs["stages_restored"]) == upstream["evaluate_ptrecl"] - PTRECL

    sweeps, trial_runs, stage_runs = _runs(mlflow_db)
    assert len(sweeps) == 1 and sweeps[0].info.status == "FINISHED"
    sweep = sweeps[0]
    assert sweep.data.tags["wsss.sweep"] == "top-m" and sweep.data.tags["wsss.engine"] == "optuna"
    assert sweep.data.params["space.ptrecl.reclassify.top_m.high"] == "6"
    assert "top-m.yaml" in {a.path for a in mlflow.MlflowClient(mlflow_db).list_artifacts(sweep.info.run_id)}
    assert len(trial_runs) == 3
    by_number = {int(r.data.tags["wsss.trial"]): r for r in trial_runs}
    for t in trials:
        run = by_number[t.number]
        assert run.data.tags["mlflow.parentRunId"] == sweep.info.run_id and run.info.status == "FINISHED"
        assert run.data.tags["wsss.state"] == "COMPLETE"
        assert run.data.params["ptrecl.reclassify.top_m"] == str(t.params["ptrecl.reclassify.top_m"])
        assert run.data.metrics["objective"] == pytest.approx(t.value)
        assert "intermediate" in run.data.metrics and run.data.tags["wsss.stages_ran"] == ",".join(t.user_attrs["stages_ran"])
    # the pipeline's stage runs nest under the trial that ran them; no training stage ran
    assert stage_runs and {r.info.run_name for r in stage_runs} <= PTRECL
    assert {r.data.tags["mlflow.parentRunId"] for r in stage_runs} <= {r.info.run_id for r in trial_runs}
    best = _study(project, "top-m").best_trial
    assert sweep.data.metrics["best_value"] == pytest.approx(best.value)
    best_file = state_dir(project, "top-m") / "best_params.yaml"
    assert yaml.safe_load(best_file.read_text()) == {"ptrecl": {"reclassify": {"top_m": best.params["ptrecl.reclassify.top_m"]}}}
    command = f"dvc exp run -S ptrecl.reclassify.top_m={best.params['ptrecl.reclassify.top_m']} evaluate_ptrecl"
    assert command in best_file.read_text() and command in printed and "| trial" in printed

    # A spec whose reported value comes before the objective's stage is pruned there: PtReCl never runs.
    pruning = load_spec(_spec(project, "prune", {"ptrecl.reclassify.top_m": {"type": "int", "low": 2, "high": 6}}, 1,
                              report=["metrics/seeds.json:miou"]), project)
    reported = []
    outcome = run_trial(pruning, project, {"ptrecl.reclassify.top_m": 3}, lambda i, v: reported.append((i, v)) or True)
    assert outcome.pruned and outcome.objective is None and len(reported) == 1 and reported[0][0] == 0
    assert outcome.stages == {s: "restored" for s in ("synthesize", "train_classifier", "seeds", "evaluate_seeds")}
    # A failing `dvc repro` names the trial's overrides and shows the end of its log.
    broken = load_spec(_spec(project, "broken", {"ptrecl.reclassify.top_m": {"type": "int", "low": 2, "high": 6}}, 1,
                             fixed={"dataset.root": "data/missing"}), project)
    with pytest.raises(TrialError) as error:
        run_trial(broken, project, {"ptrecl.reclassify.top_m": 3}, lambda i, v: False)
    assert error.value.overrides == {"ptrecl.reclassify.top_m": 3} and "'ptrecl.reclassify.top_m': 3" in str(error.value)
    assert "data/missing" in error.value.tail and error.value.tail in str(error.value) and error.value.log.exists()
    # ... and a sweep's name cannot be reused for another spec
    with pytest.raises(SweepError, match="different spec"):
        run_trial(load_spec(pruning.path, project, name="top-m"), project, {"ptrecl.reclassify.top_m": 3}, lambda i, v: False)


@pytest.mark.slow
def test_a_sweep_registers_its_best_trial_only_on_request(project, mlflow_db, capsys):
    spec = _spec(project, "best", {"ptrecl.reclassify.top_m": {"type": "int", "low": 2, "high": 6}}, 2)
    assert main(["--project", str(project), "sweep", str(spec), "--register"]) == 0
    assert "registered the best trial's network as models:/wsss-segmenter/1" in capsys.readouterr().out
    client = mlflow.MlflowClient(mlflow_db)
    [version] = client.search_model_versions("name = 'wsss-segmenter'")  # the trials registered none
    best = _study(project, "best").best_trial
    assert version.tags["wsss.sweep"] == "best" and version.tags["wsss.trial"] == str(best.number)
    assert version.tags["wsss.segment_masks"] == "ptrecl" and float(version.tags["wsss.val_miou"]) >= 0
    registering = client.get_run(version.run_id)
    assert registering.info.run_name == f"best trial {best.number} (best, registered)"
    assert registering.data.params["ptrecl.reclassify.top_m"] == str(best.params["ptrecl.reclassify.top_m"])
    sweeps, trials, stages = _runs(mlflow_db)
    assert {"train_segmentation", "evaluate_segmentation"} <= {r.info.run_name for r in stages}
    assert all("wsss.registered_model" not in r.data.tags for r in stages)


@pytest.mark.slow
def test_a_killed_sweep_resumes_from_its_stored_trials(project, mlflow_db):
    # A float key: every trial is new, so each one runs PtReCl and the kill lands inside a trial.
    spec = _spec(project, "resume", {"ptrecl.walk_bg_score": {"type": "float", "low": 0.5, "high": 0.9}}, 2)
    command = [sys.executable, "-m", "wsss.cli", "--project", str(project), "sweep", str(spec)]
    env = _env(project, mlflow_db)
    log = project.parent / "first.log"
    with open(log, "wb") as out:
        first = subprocess.Popen(command, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    deadline = time.monotonic() + 600
    try:
        while time.monotonic() < deadline:
            time.sleep(1.0)
            assert first.poll() is None, f"the sweep ended before it was killed:\n{log.read_text()[-5000:]}"
            if not list((state_dir(project, "resume") / "logs").glob("*.log")):
                continue  # no trial yet: the sweep may still be creating its study (two first opens race)
            trials = _study(project, "resume").trials
            running = [t.number for t in trials if t.state.name == "RUNNING" and t.params]
            if any(t.state.name == "COMPLETE" for t in trials) and running and _trial_has_run(mlflow_db, running[0]):
                break  # inside the second trial, once its MLflow run exists (a kill before it leaves none)
    finally:
        if first.poll() is None:
            first.kill()  # SIGKILL to the driver alone: its dvc and stage must stop by themselves
        first.wait()
    deadline = time.monotonic() + 60
    while _orphans(project):  # before the watchdog, the orphan trial ran on beside the resumed one
        assert time.monotonic() < deadline, [p.info["cmdline"] for p in _orphans(project)]
        time.sleep(0.5)
    if _group_alive(first.pid):  # anything else the sweep started (none expected): not the test's to leave
        os.killpg(first.pid, signal.SIGKILL)
    before = _study(project, "resume").trials
    done = [t for t in before if t.state.name == "COMPLETE"]
    killed = [t for t in before if t.state.name == "RUNNING"]
    assert len(done) == 1 and len(killed) == 1, [t.state.name for t in before]

    second = _run(command, project, env)
    assert "did not finish; queued again" in second.stdout
    after = _study(project, "resume").trials
    assert sum(t.state.name in ("COMPLETE", "PRUNED") for t in after) == 2  # exactly the budget
    assert (after[done[0].number].state.name, after[done[0].number].value) == ("COMPLETE", done[0].value)
    assert after[killed[0].number].state.name == "FAIL"
    retry = [t for t in after if t.user_attrs.get("wsss.retry_of") == killed[0].number]
    assert len(retry) == 1 and retry[0].state.name == "COMPLETE" and retry[0].params == killed[0].params

    sweeps, trial_runs, _ = _runs(mlflow_db)
    assert len(sweeps) == 1 and sweeps[0].info.status == "FINISHED"  # resumed, not duplicated
    assert all(r.data.tags["mlflow.parentRunId"] == sweeps[0].info.run_id for r in trial_runs)
    states = {int(r.data.tags["wsss.trial"]): (r.info.status, r.data.tags.get("wsss.state")) for r in trial_runs}
    assert states[killed[0].number] == ("FAILED", "FAIL") and states[retry[0].number] == ("FINISHED", "COMPLETE")


def _orphans(project: Path) -> list:
    """Processes of a sweep's trials (dvc, stages) still running in the project's folders."""
    return processes_in(project, "pipeline.", "dvc", below=True)


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
        return True
    except ProcessLookupError:
        return False


def _md5_mismatches(cache: Path) -> list[str]:
    bad = []
    for path in (cache / "files" / "md5").rglob("*"):
        if path.is_file() and hashlib.md5(path.read_bytes()).hexdigest() != path.parent.name + path.name.removesuffix(".dir"):
            bad.append(str(path))
    return bad


@pytest.mark.slow
def test_concurrent_trials_with_the_same_new_params_keep_the_cache_intact(project, mlflow_db):
    """`--jobs 2` on a one-value space: two trials compute the same new outputs at the same time
    and both write them to the shared cache."""
    from dvc.stage.cache import _get_cache_hash

    path = _spec(project, "twin", {"ptrecl.reclassify.top_m": {"type": "categorical", "choices": [7]}}, 2)
    assert main(["--project", str(project), "sweep", str(path), "--jobs", "2"]) == 0
    trials = _study(project, "twin").trials
    assert [t.state.name for t in trials] == ["COMPLETE", "COMPLETE"]
    _, trial_runs, _ = _runs(mlflow_db)
    assert sorted(r.data.tags["wsss.slot"] for r in trial_runs) == ["0", "1"]  # both held a slot at once

    cache = project / ".dvc" / "cache"
    assert _md5_mismatches(cache) == []
    for entry in (cache / "runs").rglob("*"):
        if entry.is_file():  # run-cache entries: named by the hash of their content
            assert _get_cache_hash(yaml.safe_load(entry.read_text())) == entry.name
    # what they wrote serves the next trial: nothing runs, the same value comes back
    third = run_trial(load_spec(path, project), project, {"ptrecl.reclassify.top_m": 7}, lambda i, v: False)
    assert not third.stages_with("ran") and third.objective in {t.value for t in trials}


@pytest.mark.slow
def test_ray_engine_runs_the_sweep_locally_and_reports_failed_trials(project, mlflow_db, capsys, monkeypatch):
    monkeypatch.setenv("RAY_AUTH_MODE", "disabled")
    import ray

    spec = _spec(project, "ray-top-m", {"ptrecl.reclassify.top_m": {"type": "int", "low": 2, "high": 6}}, 3,
                 report=["metrics/ptrecl_map.json:miou"])
    broken = _spec(project, "ray-broken", {"ptrecl.reclassify.top_m": {"type": "int", "low": 2, "high": 6}}, 1,
                   fixed={"dataset.root": "data/missing"})
    try:
        assert main(["--project", str(project), "sweep", str(spec), "--engine", "ray", "--ray-cpus", "2",
                     "--cpus-per-trial", "1", "--jobs", "1"]) == 0
        printed = capsys.readouterr().out
        # every attempt of a failing trial fails; the sweep says so and names the error
        assert main(["--project", str(project), "sweep", str(broken), "--engine", "ray", "--ray-cpus", "2",
                     "--max-failures", "1"]) == 2
        failed = capsys.readouterr()
    finally:
        ray.shutdown()
    assert "| trial" in printed and "best: trial" in printed
    assert printed.count("COMPLETE") + printed.count("PRUNED") == 3

    sweeps, trial_runs, stage_runs = _runs(mlflow_db)
    by_name = {r.data.tags["wsss.sweep"]: r for r in sweeps}
    good = by_name["ray-top-m"]
    assert good.data.tags["wsss.engine"] == "ray" and good.info.status == "FINISHED"
    good_trials = [r for r in trial_runs if r.data.tags["mlflow.parentRunId"] == good.info.run_id]
    assert len(good_trials) == 3 and {r.data.tags["wsss.state"] for r in good_trials} <= {"COMPLETE", "PRUNED"}
    complete = [r for r in good_trials if r.data.tags["wsss.state"] == "COMPLETE"]
    assert complete and all(0.0 <= r.data.metrics["objective"] <= 1.0 for r in complete)
    assert {r.data.tags["mlflow.parentRunId"] for r in stage_runs} <= {r.info.run_id for r in good_trials}
    assert {r.info.run_name for r in stage_runs} <= PTRECL  # no training stage in any trial
    best_file = state_dir(project, "ray-top-m") / "best_params.yaml"
    assert yaml.safe_load(best_file.read_text())["ptrecl"]["reclassify"]["top_m"] in range(2, 7)

    bad = by_name["ray-broken"]
    attempts = [r for r in trial_runs if r.data.tags["mlflow.parentRunId"] == bad.info.run_id]
    assert len(attempts) == 2  # the attempt and its one retry, each a FAIL run with its error
    assert all(r.data.tags["wsss.state"] == "FAIL" and "data/missing" in r.data.tags["wsss.error"] for r in attempts)
    assert "FAIL" in failed.err and "no trial finished" in failed.err and bad.info.status == "FAILED"


def test_a_trial_ray_stops_inside_its_report_is_pruned_not_failed(monkeypatch):
    """ASHA stops a trial inside `tune.report` (Ray's session ends the trial's thread with
    sys.exit(0)): the trial's MLflow run is closed PRUNED, as Tune counts it, not FAIL."""
    from types import SimpleNamespace

    from ray import tune

    from wsss.sweep import ray_engine
    from wsss.sweep.space import Dimension, Metric, SweepSpec
    from wsss.sweep.workspace import Placement

    closed = []
    monkeypatch.setattr(tune, "get_context", lambda: SimpleNamespace(get_trial_id=lambda: "t1"))
    monkeypatch.setattr(tune, "report", lambda metrics: sys.exit(0))
    monkeypatch.setattr(ray_engine, "trial_placement", lambda gpus: Placement(gpus=()))
    monkeypatch.setattr(ray_engine.sweep_tracking, "start_trial_run", lambda *args, **kwargs: "run-1")
    monkeypatch.setattr(ray_engine.sweep_tracking, "log_intermediate", lambda *args, **kwargs: None)
    monkeypatch.setattr(ray_engine.sweep_tracking, "finish_trial_run",
                        lambda project, run_id, state, sweep, outcome=None, error=None:
                        closed.append((run_id, state, error)))
    monkeypatch.setattr(ray_engine, "run_trial", lambda sweep, project, overrides, report, *args, **kwargs:
                        report(0, 0.5))
    spec = SweepSpec("s", Path("sweeps/s.yaml"), Metric("metrics/ptrecl.json", "miou", "evaluate_ptrecl"),
                     "maximize", 2, (Dimension("ptrecl.reclassify.top_m", "int", 2, 6),))
    trainable = ray_engine._trainable(spec, Path("."), "sweep-run", 0, None)
    with pytest.raises(SystemExit):
        trainable({"ptrecl.reclassify.top_m": 3})
    assert closed == [("run-1", "PRUNED", None)]
    monkeypatch.setattr(ray_engine, "run_trial", lambda *args, **kwargs: 1 / 0)  # a failure stays one
    with pytest.raises(ZeroDivisionError):
        trainable({"ptrecl.reclassify.top_m": 3})
    assert closed[-1][1:] == ("FAIL", "division by zero")
    import ray

    assert not ray.is_initialized()  # calling a trainable outside Tune starts no Ray (a later test would join it)


def _exp_show(project: Path, env: dict) -> list[dict]:
    """The experiments of the workspace's baseline: [{name, params, metrics}], newest first."""
    import json

    shown = json.loads(_run(["dvc", "exp", "show", "--json"], project, env).stdout)
    found = []
    for baseline in shown:
        for exp in baseline.get("experiments") or []:
            for revision in exp.get("revs") or []:
                data = revision.get("data") or {}
                found.append({
                    "name": revision.get("name") or exp.get("name"),
                    "params": (data.get("params") or {}).get("params.yaml", {}).get("data", {}),
                    "metrics": (data.get("metrics") or {}).get("metrics/ptrecl.json", {}).get("data", {}),
                })
    return found


@background_job(after=("tiny_run",))
def dvc_experiments(job) -> tuple[Project, subprocess.CompletedProcess, str]:
    """In a copy of the finished tiny project (its own MLflow store), in the background: `dvc exp
    run -S` of one change, then a grid of two queued and run by `dvc queue start -j 2`; returns
    the copy, the first run and the queue's last status."""
    project = copy_project(job.result("tiny_run").path, job.folder / "project", job.environ)
    cwd, env = project
    single = job.run(["dvc", "exp", "run", "-n", "m3", "-S", "ptrecl.reclassify.top_m=3", "evaluate_ptrecl"], cwd, env)
    job.run(["dvc", "exp", "run", "--queue", "-S", "ptrecl.reclassify.top_m=4,5", "evaluate_ptrecl"], cwd, env)
    job.run(["dvc", "queue", "start", "-j", "2"], cwd, env)
    deadline = time.monotonic() + 600
    while time.monotonic() < deadline:
        status = job.run(["dvc", "queue", "status"], cwd, env).stdout
        if not re.search(r"\b(Queued|Running)\b", status):
            break
        time.sleep(1)
    return project, single, status


@pytest.mark.slow
def test_dvc_exp_route_single_change_and_queued_grid(dvc_experiments):
    """The route without `wsss sweep`: `dvc exp run -S` for one change, `--queue` for a grid; both
    reuse the cached stages and log to the project's MLflow store."""
    project, single, status = dvc_experiments
    assert set(re.findall(r"Running stage '([^']+)'", single.stdout)) == PTRECL
    assert "Failed" not in status and status.count("Success") == 2, status
    experiments = _exp_show(project.path, project.env)
    by_m = {e["params"]["ptrecl"]["reclassify"]["top_m"]: e for e in experiments}
    assert {3, 4, 5} <= set(by_m) and all(0.0 <= by_m[m]["metrics"]["miou"] <= 1.0 for m in (3, 4, 5))
    # every experiment's stages logged to the project's store, under a parent named after it
    parents = all_runs(project.uri, "tags.`wsss.kind` = 'pipeline'")
    assert len({p.data.tags.get("wsss.dvc_experiment") for p in parents} - {"", None}) == 3


@pytest.mark.slow
def test_ray_sweep_on_a_cluster_gives_each_trial_its_gpu(project, mlflow_db):
    """`--address` of a head with 2 logical GPUs, `--gpus-per-trial 1`: each trial's `dvc repro`
    runs with its GPU visible and one process per stage, its MLflow run (in the driver's store,
    which the head's workers did not have) says which GPU, and the GPU changes no cache key:
    every stage is restored."""
    top_m = yaml.safe_load((project / "params.yaml").read_text())["ptrecl"]["reclassify"]["top_m"]
    spec = _spec(project, "ray-gpus", {"ptrecl.reclassify.top_m": {"type": "categorical", "choices": [top_m]}}, 2)
    with ray_head() as address:
        assert main(["--project", str(project), "sweep", str(spec), "--engine", "ray", "--address", address,
                     "--gpus-per-trial", "1", "--jobs", "2"]) == 0
    _, trial_runs, _ = _runs(mlflow_db)
    assert len(trial_runs) == 2
    state = state_dir(project, "ray-gpus")
    for run in trial_runs:
        tags = run.data.tags
        assert tags["wsss.state"] == "COMPLETE" and tags["wsss.stages_ran"] == ""
        assert tags["wsss.gpus"] in LOGICAL_GPUS and tags["wsss.devices"] == "1"
        [log] = state.glob(f"logs/ray-{tags['wsss.trial']}-slot{tags['wsss.slot']}.log")
        assert f"export CUDA_VISIBLE_DEVICES='{tags['wsss.gpus']}'" in log.read_text()
        slot_params = yaml.safe_load((state / "slots" / tags["wsss.slot"] / "params.yaml").read_text())
        assert slot_params["project"]["devices"] == 1


@pytest.mark.slow
def test_a_ray_sweep_on_three_nodes_survives_a_worker_node_killed_mid_trial(project, mlflow_db):
    """A head and two worker nodes (`ray.cluster_utils.Cluster`); one worker node is removed (its
    raylet and workers killed) while a trial runs a stage on it. Tune retries that trial on the
    other node (`--max-failures`), the sweep finishes with every trial COMPLETE, the lost attempt's
    MLflow run is closed with why, every attempt names its node, and nothing of the lost attempt
    keeps running (its stages watch the worker that started them)."""
    spec = _spec(project, "ray-nodes", {"ptrecl.walk_bg_score": {"type": "float", "low": 0.5, "high": 0.9}}, 2)
    killed: dict = {}

    def kill_a_node_mid_trial(cluster, nodes, done: threading.Event) -> None:
        client = mlflow.MlflowClient(tracking_uri=mlflow_db)
        by_id = {node.node_id: node for node in nodes}
        while not done.is_set():
            experiment = client.get_experiment_by_name("wsss")
            trials = [] if experiment is None else client.search_runs(
                [experiment.experiment_id], "tags.`wsss.kind` = 'trial' and attributes.status = 'RUNNING'")
            for trial in trials:
                stages = client.search_runs([experiment.experiment_id],
                                            f"tags.`mlflow.parentRunId` = '{trial.info.run_id}' and "
                                            "attributes.status = 'RUNNING'")
                if stages and trial.data.tags.get("wsss.node") in by_id:
                    killed.update(trial=trial.info.run_id, node=trial.data.tags["wsss.node"],
                                  stage=stages[0].info.run_name)
                    cluster.remove_node(by_id[killed["node"]])  # its raylet and workers, killed
                    return
            time.sleep(0.5)

    with ray_cluster(workers=2) as (cluster, nodes, address):
        done = threading.Event()
        killer = threading.Thread(target=kill_a_node_mid_trial, args=(cluster, nodes, done), daemon=True)
        killer.start()
        try:
            assert main(["--project", str(project), "sweep", str(spec), "--engine", "ray", "--address", address,
                         "--jobs", "2", "--max-failures", "2"]) == 0
        finally:
            done.set()
            killer.join()
        assert killed, "no trial was seen running a stage on a worker node"
        assert _orphans(project) == []
    sweeps, trial_runs, stage_runs = _runs(mlflow_db)
    assert sweeps[0].info.status == "FINISHED"
    attempts = {}
    for run in trial_runs:
        assert run.data.tags["wsss.node"] in {node.node_id for node in nodes}, run.data.tags
        attempts.setdefault(run.data.tags["wsss.trial"], []).append(run)
    assert len(attempts) == 2  # the budget: no trial lost, none run twice to completion
    lost = next(run for run in trial_runs if run.info.run_id == killed["trial"])
    retried = attempts[lost.data.tags["wsss.trial"]]
    assert lost.info.status in ("KILLED", "FAILED") and len(retried) == 2
    [retry] = [run for run in retried if run.info.run_id != lost.info.run_id]
    assert retry.data.tags["wsss.state"] == "COMPLETE" and retry.data.tags["wsss.node"] != killed["node"]
    assert all(runs[-1].data.tags["wsss.state"] == "COMPLETE" for runs in attempts.values())
    assert all(run.info.status != "RUNNING" for run in stage_runs)


@background_job(after=("replicate_study",))
def confirmed_sweep(job) -> tuple[Project, subprocess.CompletedProcess]:
    """In a copy of the tiny project after its replicate study (seed 1's classifier in its
    run-cache): a sweep whose trials are scored over 2 seeds, then its best trial confirmed
    against params.yaml over 2 seeds (`--confirm 2`); on the seeds' mIoU, so that a seed runs
    only the classifier's stages."""
    project = copy_project(job.result("replicate_study")[0].path, job.folder / "project", job.environ)
    spec = _spec(project.path, "seeded", {"seeds.infer.hflip": {"type": "categorical", "choices": [True, False]}}, 2,
                 seeds_per_trial=2, objective={"metric": "metrics/seeds.json:miou", "direction": "maximize"})
    return project, job.run(["wsss", "sweep", str(spec), "--confirm", "2"], project.path, project.env)


@pytest.mark.slow
def test_trials_scored_over_seeds_and_the_best_confirmed_paired_against_params_yaml(confirmed_sweep):
    (cwd, env), done = confirmed_sweep
    trials = _study(cwd, "seeded").trials
    assert [t.state.name for t in trials] == ["COMPLETE"] * 2
    logs = [path.read_text() for path in (state_dir(cwd, "seeded") / "logs").glob("*.log")]
    assert len(logs) == 2 and all("# project.seed = 0" in log and "# project.seed = 1" in log for log in logs)

    confirmation = json.loads((state_dir(cwd, "seeded") / "confirmation.json").read_text())
    assert len(confirmation["default"]) == len(confirmation["best"]) == 2 == confirmation["n"]
    differences = [b - d for d, b in zip(confirmation["default"], confirmation["best"])]
    assert confirmation["mean"] == pytest.approx(sum(differences) / 2)
    assert confirmation["better"] == (confirmation["ci_low"] > 0)
    assert "confirmation over 2 seeds: best - default metrics/seeds.json:miou" in done.stdout
    best_value = max(t.value for t in trials)  # a trial's value is its mean over the 2 seeds
    assert sum(confirmation["best"]) / 2 == pytest.approx(best_value, abs=1e-6)
    shown = _run(["dvc", "exp", "show", "--no-pager", "--json"], cwd, env).stdout
    assert all(name in shown for name in ("seeded-best-seed-0", "seeded-best-seed-1", "replicate-seed-1"))
    runs = all_runs(f"sqlite:///{cwd / 'mlflow.db'}")
    (group,) = [r for r in runs if r.data.tags.get("wsss.kind") == "confirmation"]
    assert group.info.status == "FINISHED" and group.data.metrics["difference_n"] == 2
    assert group.data.metrics["difference_mean"] == pytest.approx(confirmation["mean"])


def test_seeds_per_trial_is_checked_with_the_spec(tmp_path):
    from wsss.sweep.confirm import verdict

    project = make_project(tmp_path / "project").path
    space = {"ptrecl.reclassify.top_m": {"type": "int", "low": 2, "high": 6}}
    assert load_spec(_spec(project, "plain", space, 1), project).seeds_per_trial == 1
    seeded = load_spec(_spec(project, "seeded", space, 1, seeds_per_trial=3), project)
    assert seeded.seeds_per_trial == 3 and seeded.identity()["seeds_per_trial"] == 3
    with pytest.raises(SweepError, match="'seeds_per_trial' must be an integer >= 1"):
        load_spec(_spec(project, "zero", space, 1, seeds_per_trial=0), project)
    with pytest.raises(SweepError, match="'project.seed' is set by 'seeds_per_trial'"):
        load_spec(_spec(project, "both", space, 1, seeds_per_trial=2, fixed={"project.seed": 1}), project)
    maximize = load_spec(_spec(project, "max", space, 1), project)
    assert verdict(maximize, [0.40, 0.42, 0.44], [0.45, 0.48, 0.50])["better"]
    assert not verdict(maximize, [0.40, 0.42, 0.44], [0.41, 0.40, 0.45])["better"]
    assert not verdict(maximize, [0.45, 0.48, 0.50], [0.40, 0.42, 0.44])["better"]  # resolved, but worse
