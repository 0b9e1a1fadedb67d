"""Runs for the stages `dvc repro` did not run, so that every pipeline invocation leaves the figures
of every stage of its pipeline in MLflow.

DVC skips a stage whose deps and params match dvc.lock, and restores one from its run-cache
without running it; either way no stage process starts and no stage run is logged. After a
successful `dvc repro`, `wsss repro` gives each such stage a run under the invocation's parent,
tagged ``wsss.restored=true``, with the stage's params sections (from dvc.yaml), the git commit,
and the figures of its metrics files (wsss.metrics_files), headline figures on the parent too; a
restored `evaluate_segmentation` registers its network unless it is registered (wsss.registry).
Only stages `dvc status` finds up to date get one: their outputs are those of their current
inputs.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import yaml

from wsss import metrics_files, tracking
from wsss.errors import WsssError

REGISTERING_STAGE = "evaluate_segmentation"  # the stage that registers the model (wsss.registry)


def pipeline_stages(project: Path, params: dict, targets: list[str]) -> list[str]:
    """The stages of dvc.yaml a `dvc repro <targets>` covers (the targets and everything upstream;
    every stage without targets, or with targets that are not stage names), in dvc.yaml order."""
    from wsss.sweep.space import pipeline_graph

    stages = list(_stages(project))
    if not targets or any(t not in stages for t in targets):
        return stages
    _, upstream = pipeline_graph(project, params)
    wanted = set(targets).union(*(upstream[t] for t in targets))
    return [s for s in stages if s in wanted]


def _stages(project: Path) -> dict:
    file = project / "dvc.yaml"
    try:
        return (yaml.safe_load(file.read_text()) or {}).get("stages") or {}
    except (OSError, yaml.YAMLError) as exc:
        raise WsssError(f"{file}: cannot read the pipeline ({exc})") from None


def up_to_date(project: Path, stages: list[str], env: dict | None = None) -> list[str]:
    """The given stages whose deps, params and outputs match dvc.lock (`dvc status`)."""
    if not stages:
        return []
    out = subprocess.run(["dvc", "status", "--json", *stages], cwd=project, env=env, capture_output=True, text=True)
    if out.returncode != 0:
        raise WsssError(f"dvc status failed (exit {out.returncode}): {out.stderr.strip()}")
    changed = json.loads(out.stdout or "{}")
    return [s for s in stages if s not in changed]


def record_restored(parent_id: str, project: Path, params: dict, targets: list[str],
                    env: dict | None = None) -> list[str]:
    """Give every stage of the pipeline that has no run under the parent a restored run; returns
    their names."""
    experiment_id = tracking.configure(params["tracking"]["experiment"], project)
    ran = {run.data.tags.get("wsss.stage") for run in tracking.stage_runs(parent_id)}
    missing = [s for s in pipeline_stages(project, params, targets) if s not in ran]
    stages = _stages(project)
    restored = up_to_date(project, missing, env)
    for name in restored:
        stage = stages[name]
        sections = [p for p in stage.get("params") or [] if isinstance(p, str)]
        with tracking.restored_stage_run(experiment_id, parent_id, name, params, sections, project) as run:
            for entry in stage.get("metrics") or []:
                file = next(iter(entry)) if isinstance(entry, dict) else str(entry)
                if file in metrics_files.MLFLOW:
                    metrics_files.log(run, file, metrics_files.read(file, project), project)
            if name == REGISTERING_STAGE:  # a model restored from DVC's cache is registered too
                from wsss.registry import register_segmentation_model

                register_segmentation_model(run, params, project)
    return restored
