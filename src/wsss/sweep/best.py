"""The best trial of a sweep, whatever engine ran it: a params.yaml fragment headed by the
`dvc exp run -S ...` command that reproduces it (`.wsss/sweeps/<name>/best_params.yaml`), also
logged to the sweep's MLflow run."""

from __future__ import annotations

import shlex
from pathlib import Path

import yaml

from wsss import params as params_mod
from wsss.io import atomic_path
from wsss.sweep import tracking as sweep_tracking
from wsss.sweep.space import SweepSpec

BEST_FILE = "best_params.yaml"


def _dvc_value(value) -> str:
    """A value in `dvc exp run -S` (Hydra) syntax: strings quoted, so a comma is not a sweep."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return "'" + value.replace("'", "\\'") + "'"
    return "null" if value is None else str(value)


def dvc_exp_command(sweep: SweepSpec, params: dict) -> str:
    """The `dvc exp run` command line that reproduces a trial (up to the objective's stage)."""
    sets = " ".join(f"-S {shlex.quote(f'{k}={_dvc_value(v)}')}" for k, v in (sweep.fixed | params).items())
    return f"dvc exp run {sets} {sweep.objective.stage}"


def best_params_text(sweep: SweepSpec, number: int, value: float, params: dict) -> str:
    """A params.yaml fragment with the best trial's values (and the spec's fixed ones), headed
    by the `dvc exp run` command that reproduces it."""
    tree: dict = {}
    for key, item in (sweep.fixed | dict(params)).items():
        params_mod.set_key(tree, key, item)
    header = (
        f"# sweep {sweep.name}: best trial {number}, {sweep.objective} = {value:.6g} "
        f"({sweep.direction})\n"
        f"# as a DVC experiment:\n#   {dvc_exp_command(sweep, dict(params))}\n"
        "# or merge these keys into params.yaml:\n"
    )
    return header + yaml.safe_dump(tree, sort_keys=False)


def write_best(sweep: SweepSpec, project: Path, state: Path, sweep_run_id: str, number: int | str,
               value: float, params: dict) -> str:
    """Write the best params file, log it on the sweep's run, and return the lines that say so."""
    best_file = state / BEST_FILE
    with atomic_path(best_file) as tmp:
        tmp.write_text(best_params_text(sweep, number, value, params))
    sweep_tracking.log_best(project, sweep_run_id, number, value, params, best_file)
    return (f"best: trial {number}, {sweep.objective} = {value:.4f}, {params}\n"
            f"written to {best_file}\n{dvc_exp_command(sweep, params)}")
