"""The best trial of a sweep, whatever engine ran it: a params.yaml fragment headed by the
`dvc exp run -S ...` command that reproduces it (`.wsss/sweeps/<name>/best_params.yaml`), also
logged to the sweep's MLflow run."""

from __future__ import annotations

import shlex
from pathlib import Path

import yaml

from wsss.core import params as params_mod
from wsss.core.io import atomic_path
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
               value: float, params: dict, register: bool = False) -> str:
    """Write the best params file, log it on the sweep's run, and return the lines that say so;
    with `register`, also register the best trial's segmentation network (register_best)."""
    best_file = state / BEST_FILE
    with atomic_path(best_file) as tmp:
        tmp.write_text(best_params_text(sweep, number, value, params))
    sweep_tracking.log_best(project, sweep_run_id, number, value, params, best_file)
    text = (f"best: trial {number}, {sweep.objective} = {value:.4f}, {params}\n"
            f"written to {best_file}\n{dvc_exp_command(sweep, params)}")
    if register:
        text += "\n" + register_best(sweep, project, state, sweep_run_id, number, params)
    return text


REGISTERING_STAGE = "evaluate_segmentation"


def register_best(sweep: SweepSpec, project: Path, state: Path, sweep_run_id: str, number: int | str,
                  params: dict) -> str:
    """Register the segmentation network of the best trial (trials themselves register nothing).

    The trial's params run `dvc repro evaluate_segmentation` in a slot, under a run of their own
    nested in the sweep's: what the trial already computed comes from DVC's cache, and a sweep
    whose objective lies upstream trains the segmentation network now. Its version's lineage
    also names the sweep and the trial."""
    import subprocess

    import mlflow

    from wsss.sweep.space import SweepError
    from wsss.sweep.workspace import acquire_slot, trial_env, write_slot_params
    from wsss.tracking import registry
    from wsss.tracking import runs as tracking

    name = params_mod.load(project / params_mod.PARAMS_FILE).tracking.registered_model
    if not name:
        raise SweepError("--register: tracking.registered_model in params.yaml is null; name the registered model")
    run_id = sweep_tracking.start_trial_run(sweep_run_id, sweep, project, f"{number} (best, registered)", params)
    state_name = "FAIL"
    try:
        with acquire_slot(project, state) as slot:
            write_slot_params(state, slot.path, sweep.fixed | dict(params))
            log = state / "logs" / f"register-trial{number}.log"
            log.parent.mkdir(parents=True, exist_ok=True)
            with open(log, "ab") as handle:
                done = subprocess.run(["dvc", "repro", REGISTERING_STAGE], cwd=slot.path,
                                      env=trial_env(project, slot.path, run_id), stdout=handle,
                                      stderr=subprocess.STDOUT, pass_fds=(slot.lock_fd,))
            if done.returncode != 0:
                raise SweepError(f"sweep '{sweep.name}': `dvc repro {REGISTERING_STAGE}` of the best trial failed "
                                 f"(exit {done.returncode}); see {log}")
            slot_params = params_mod.load(slot.path / params_mod.PARAMS_FILE)
            tracking.configure(slot_params.tracking.experiment, project)
            run = tracking.StageRun(mlflow.MlflowClient(), run_id, sweep_run_id)
            lineage = {"wsss.sweep": sweep.name, "wsss.trial": str(number),
                       "wsss.git_commit": tracking.git_commit(project)}
            version = registry.register_segmentation_model(run, slot_params, slot.path, name=name,
                                                           extra_lineage=lineage)
        state_name = "COMPLETE"
    finally:
        sweep_tracking.finish_trial_run(project, run_id, state_name, sweep)
    return f"registered the best trial's network as models:/{version}"
