"""`wsss sweep SPEC --confirm N`: is the sweep's best trial better than params.yaml, or was it noise?

A sweep picks the best of many noisy trials, so its best value is biased upwards. Confirmation
re-runs the best trial's params and the project's own params for project.seed = 0..N-1, each as
DVC experiments (`<sweep>-best-seed-K` and `replicate-seed-K`, up to the objective's stage), and
reports the objective's difference paired by seed with its 95% t interval
(wsss.evaluation.statistics). The best params are called better only when that interval lies on
the better side of zero. The verdict is written to the sweep's state (confirmation.json) and
logged on the sweep's MLflow run.
"""

from __future__ import annotations

from pathlib import Path

import yaml

from wsss.core import params as params_mod
from wsss.core.io import write_json
from wsss.evaluation import statistics
from wsss.sweep import experiments
from wsss.sweep.best import BEST_FILE
from wsss.sweep.replicates import interval_of, run_seeds
from wsss.sweep.space import SweepError, SweepSpec
from wsss.sweep.workspace import state_dir

CONFIRMATION_FILE = "confirmation.json"


def best_overrides(spec: SweepSpec, project: Path) -> dict:
    """The best trial's params as flat params.yaml keys: the spec's fixed keys and the searched
    ones from the sweep's best params file."""
    path = state_dir(project, spec.name) / BEST_FILE
    if not path.exists():
        raise SweepError(f"{path}: no best trial to confirm (the sweep finished no trial)")
    return dict(spec.fixed) | params_mod.flatten(yaml.safe_load(path.read_text()) or {})


def objective_values(spec: SweepSpec, replicates) -> list[float]:
    stem = Path(spec.objective.file).stem
    values = [experiments.dig(r.metrics.get(stem, {}), spec.objective.key) for r in replicates]
    if any(not isinstance(v, (int, float)) for v in values):
        raise SweepError(f"sweep '{spec.name}': {spec.objective} missing in a confirmation run: {values}")
    return values


def verdict(spec: SweepSpec, default: list[float], best: list[float]) -> dict:
    """The paired difference best - default of the objective and whether it is resolved in the
    better direction."""
    difference = statistics.paired_over_seeds(default, best)
    better = difference.excludes_zero and (difference.estimate > 0) == (spec.direction == "maximize")
    return difference.as_dict() | {"objective": str(spec.objective), "direction": spec.direction,
                                   "default": default, "best": best, "better": better}


def describe(result: dict) -> str:
    ci = "no interval" if result["ci_low"] is None else f"95% CI {result['ci_low']:+.4f} to {result['ci_high']:+.4f}"
    word = "better than" if result["better"] else "not shown better than"
    return (f"confirmation over {result['n']} seeds: best - default {result['objective']} = {result['mean']:+.4f} "
            f"({ci}, paired by seed): the best trial's params are {word} params.yaml")


def confirm_best(spec: SweepSpec, project: Path, env: dict, count: int, log=print, jobs: int = 1) -> str:
    """Run the confirmation under one MLflow run (wsss.kind=confirmation, wsss.sweep=<name>), ``jobs``
    seeds at a time from DVC's queue when > 1; write, log and describe its verdict."""
    import mlflow

    if count < 2:
        raise SweepError(f"--confirm needs 2 or more seeds for an interval, got {count}")
    overrides = best_overrides(spec, project)
    params = params_mod.load(project / params_mod.PARAMS_FILE)
    group = experiments.start_group_run(project, params, "confirmation", f"confirm sweep {spec.name}")
    client = mlflow.MlflowClient()  # the project's store, which start_group_run configured
    client.set_tag(group, "wsss.sweep", spec.name)
    success = False
    try:
        targets = (spec.objective.stage,)
        default = run_seeds(project, env, count, group, {}, "replicate", targets, log, jobs)
        best = run_seeds(project, env, count, group, overrides, f"{spec.name}-best", targets, log, jobs)
        result = verdict(spec, objective_values(spec, default), objective_values(spec, best))
        path = state_dir(project, spec.name) / CONFIRMATION_FILE
        write_json(path, result)
        client.log_batch(group, metrics=experiments.mlflow_metrics(
            interval_of(result).as_metrics("difference") | {"better": float(result["better"])}))
        client.log_artifact(group, str(path))
        success = True
        return describe(result)
    finally:
        client.set_terminated(group, "FINISHED" if success else "FAILED")
