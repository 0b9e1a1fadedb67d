"""Runs for the stages `dvc repro` did not run, so that every pipeline invocation leaves the figures
of every stage of its pipeline in MLflow.

DVC skips a stage whose deps and params match dvc.lock, and restores one from its run-cache
without running it; either way no stage process starts and no stage run is logged. After a
successful `dvc repro`, `wsss repro` gives each such stage a run under the invocation's parent,
tagged ``wsss.restored=true``, with the stage's params sections (from dvc.yaml), the git commit,
and the figures of its metrics files (wsss.tracking.metrics_files), headline figures on the parent too; a
restored `evaluate_segmentation` registers its network unless it is registered (wsss.tracking.registry).
Only stages `dvc status` finds up to date get one: their outputs are those of their current
inputs.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

from wsss.core.dvcfile import pipeline
from wsss.core.errors import WsssError
from wsss.core.params import Params
from wsss.tracking import metrics_files
from wsss.tracking import runs as tracking

REGISTERING_STAGE = "evaluate_segmentation"  # the stage that registers the model (wsss.tracking.registry)


def changed(project: Path, stages: list[str] | None = None, env: dict | None = None) -> set[str]:
    """The stages (of ``stages``, default every one) whose deps, params or outputs differ from
    dvc.lock (`dvc status`; a stage upstream of a changed one is not among them)."""
    out = subprocess.run(["dvc", "status", "--json", *(stages or [])], cwd=project, env=env, capture_output=True,
                         text=True)
    if out.returncode != 0:
        raise WsssError(f"dvc status failed (exit {out.returncode}): {out.stderr.strip()}")
    return set(json.loads(out.stdout or "{}"))


def up_to_date(project: Path, stages: list[str], env: dict | None = None) -> list[str]:
    """The given stages whose deps, params and outputs match dvc.lock (`dvc status`)."""
    if not stages:
        return []
    different = changed(project, stages, env)
    return [s for s in stages if s not in different]


def record_restored(parent_id: str, project: Path, params: Params, targets: list[str],
                    env: dict | None = None) -> list[str]:
    """Give every stage of the pipeline that has no run under the parent a restored run; returns
    their names."""
    experiment_id = tracking.configure(params.tracking.experiment, project)
    ran = {run.data.tags.get("wsss.stage") for run in tracking.stage_runs(parent_id)}
    dvc = pipeline(project)
    missing = [s for s in dvc.covering(targets, params) if s not in ran]
    restored = up_to_date(project, missing, env)
    for name in restored:
        stage = dvc.stage(name)
        with tracking.restored_stage_run(experiment_id, parent_id, name, params, list(stage.params), project) as run:
            for file in stage.metrics:
                if metrics_files.logged(file):
                    metrics_files.log(run, file, metrics_files.read(file, project), project)
            if name == REGISTERING_STAGE:  # a model restored from DVC's cache is registered too
                from wsss.tracking.registry import register_segmentation_model

                register_segmentation_model(run, params, project)
    return restored


def record_experiment_restored(parent_id: str, project: Path, params: Params, covered: list[str],
                               metrics: dict[str, dict]) -> list[str]:
    """The same for one DVC experiment (a replicate, an ablation row): each stage of ``covered``
    that writes a metrics file and has no run under ``parent_id`` came from the run-cache; it gets a
    restored run with the figures of ``metrics`` ({metrics file: its content in the experiment's
    git ref}). Returns their names."""
    experiment_id = tracking.configure(params.tracking.experiment, project)
    ran = {run.data.tags.get("wsss.stage") for run in tracking.stage_runs(parent_id)}
    dvc = pipeline(project)
    restored = []
    for name in covered:
        files = [f for f in dvc.stage(name).metrics if metrics_files.logged(f) and metrics.get(f) is not None]
        if name in ran or not files:
            continue
        with tracking.restored_stage_run(experiment_id, parent_id, name, params, list(dvc.stage(name).params),
                                         project) as run:
            for file in files:
                metrics_files.log(run, file, metrics[file], None)  # the workspace's files are not its
        restored.append(name)
    return restored


UNRECORDED_TAG = "wsss.unrecorded"


def fail_unrecorded(parent_id: str, project: Path, env: dict | None = None) -> list[str]:
    """After a failed `dvc repro`: a stage whose command finished but whose outputs DVC did not
    record in dvc.lock (its cache write failed, say on a full disk) is not done, whatever its
    process said: its FINISHED run becomes FAILED, tagged why. Returns those stages."""
    runs = {run.data.tags.get("wsss.stage"): run for run in tracking.stage_runs(parent_id)
            if run.info.status == "FINISHED" and run.data.tags.get(tracking.RESTORED_TAG) != "true"}
    if not runs:
        return []
    try:
        different = changed(project, list(runs), env)
    except WsssError:
        return []  # dvc itself cannot run: nothing more can be said of the stages
    import mlflow

    client = mlflow.MlflowClient()
    unrecorded = sorted(stage for stage in runs if stage in different)
    for stage in unrecorded:
        client.set_tag(runs[stage].info.run_id, UNRECORDED_TAG,
                       "the stage's command finished but dvc repro failed before dvc.lock recorded its outputs")
        client.set_terminated(runs[stage].info.run_id, "FAILED")
    return unrecorded
