"""`wsss sweep --engine ray`: the same sweep on Ray Tune, on this machine or on a cluster.

A Tuner runs the spec's trials with Optuna's TPE as the searcher (`OptunaSearch`) and ASHA as
the scheduler; ASHA's rungs are the reported values (the spec's `report` metrics, then the
objective), so a trial stopped early is a pruned one. Each trial is the engine-agnostic
`run_trial` (a `dvc repro` per step in a slot of the sweep's pool, reusing every cached stage)
inside a Ray worker with the resources asked for (`--cpus-per-trial`, `--gpus-per-trial`).

- GPUs: the ids Ray assigned a trial (`ray.get_gpu_ids()`) are its `dvc repro`'s
  CUDA_VISIBLE_DEVICES, so `project.device: auto` (or cuda) runs on them, and its
  `project.devices` is set to match: `--gpus-per-trial N` (a whole number) runs each stage
  as N processes, DDP over the trial's N GPUs; a fraction below 1 shares one GPU with other
  trials, one process; 0 hides every GPU (Ray 2.60 leaves a GPU-less worker the node's
  CUDA_VISIBLE_DEVICES, so the trial sets it empty itself) and leaves `project.devices` as the
  params say. The trial's MLflow run has tags wsss.gpus (the ids) and wsss.devices.

- Local: `ray.init` on the loopback only (127.0.0.1, no dashboard), as many CPUs as this
  machine's or `--ray-cpus`. A cluster: `--address HOST:PORT` (or `auto`); its workers need
  this project (its DVC cache and sweep state included) on a shared file system at the same
  path and `wsss` installed; the driver's MLFLOW_TRACKING_URI is passed on to them.
- MLflow: the sweep's parent run, one nested run per trial attempt (the pipeline's stage runs
  nest under it). A failed attempt is marked FAIL with its error and retried
  (`--max-failures`); a trial that fails every attempt is listed as FAIL in the summary, never
  dropped.

Unlike the Optuna engine, a killed Ray sweep starts afresh when run again, but its trials
reuse every stage the killed one finished (DVC's run-cache).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Callable

from wsss.core import params as params_mod
from wsss.evaluation.metrics import format_table
from wsss.sweep import tracking as sweep_tracking
from wsss.sweep.best import write_best
from wsss.sweep.space import Dimension, SweepError, SweepSpec
from wsss.sweep.workspace import (
    Placement,
    prepare,
    run_trial,
    sweep_lock,
    trial_overrides,
)

ENGINE = "ray"
VALUE = "value"  # what each report carries: a reported metric's value, the objective's last


def optuna_space(sweep: SweepSpec) -> dict:
    """The spec's dimensions as Optuna distributions, for OptunaSearch."""
    from optuna.distributions import (
        CategoricalDistribution,
        FloatDistribution,
        IntDistribution,
    )

    def distribution(d: Dimension):
        if d.type == "int":
            return IntDistribution(int(d.low), int(d.high), log=d.log)
        if d.type == "float":
            return FloatDistribution(d.low, d.high, log=d.log)
        return CategoricalDistribution(list(d.choices))

    return {d.key: distribution(d) for d in sweep.space}


def check_gpus_per_trial(gpus_per_trial: float, sweep: SweepSpec) -> None:
    """A trial's GPUs are a share of one (0 < G < 1) or whole GPUs, and set `project.devices`."""
    if gpus_per_trial < 0 or (gpus_per_trial > 1 and not float(gpus_per_trial).is_integer()):
        raise SweepError(f"--gpus-per-trial must be 0, a fraction below 1 (GPUs shared by trials) or a "
                         f"whole number (one stage process per GPU), got {gpus_per_trial:g}")
    keys = set(sweep.fixed) | {d.key for d in sweep.space}
    if gpus_per_trial > 0 and "project.devices" in keys:
        raise SweepError(f"{sweep.path}: 'project.devices' is set by --gpus-per-trial (one process per GPU "
                         f"of a trial); remove it from the spec's fixed/space, or use --gpus-per-trial 0")


def check_cluster_gpus(gpus_per_trial: float) -> None:
    """A trial's GPUs come from one node: fail now rather than wait for a node that has them."""
    import ray

    most = max((node["Resources"].get("GPU", 0) for node in ray.nodes() if node["Alive"]), default=0)
    if gpus_per_trial > most:
        raise SweepError(f"--gpus-per-trial {gpus_per_trial:g}: no node of the Ray cluster has that many GPUs "
                         f"(the most on one node: {most:g})")


def trial_placement(gpus_per_trial: float) -> Placement:
    """Inside a Ray trial: the GPUs Ray assigned it, as its stages are to see them."""
    import ray

    gpus = tuple(str(i) for i in ray.get_gpu_ids())
    if gpus_per_trial == 0:
        return Placement(gpus=())
    return Placement(gpus, devices=len(gpus) if gpus_per_trial >= 1 else 1)


def placement_tags(placement: Placement, overrides: dict, base_devices) -> dict:
    """What a trial ran on, for its MLflow run: GPU ids (none: hidden) and processes per stage."""
    devices = overrides.get("project.devices", base_devices)
    return {"wsss.gpus": ",".join(placement.gpus) if placement.gpus else "none", "wsss.devices": str(devices)}


def node_tags() -> dict:
    """Which node of the cluster runs this trial attempt: Ray's node id and the host's name.
    (Outside a Ray worker there is no node; asking Ray for its context would start a Ray.)"""
    import socket

    import ray

    tags = {"wsss.host": socket.gethostname()}
    if ray.is_initialized():
        tags["wsss.node"] = ray.get_runtime_context().get_node_id()
    return tags


def _trainable(sweep: SweepSpec, project: Path, sweep_run_id: str, gpus_per_trial: float, base_devices):
    """The function each Ray trial runs: one `run_trial`, reporting every value to Tune."""

    def trainable(config: dict) -> None:
        from ray import tune

        trial_id = tune.get_context().get_trial_id()  # Ray's id of the trial, kept by its retries
        overrides = {d.key: config[d.key] for d in sweep.space}
        placement = trial_placement(gpus_per_trial)
        tags = placement_tags(placement, trial_overrides(sweep, overrides, placement), base_devices) | node_tags()
        run_id = sweep_tracking.start_trial_run(sweep_run_id, sweep, project, trial_id, overrides, tags)

        def report(step: int, value: float) -> bool:
            sweep_tracking.log_intermediate(project, run_id, step, value, sweep)
            tune.report({VALUE: value, "mlflow_run_id": run_id})
            return False  # ASHA stops a trial itself, between two reports

        try:
            outcome = run_trial(sweep, project, overrides, report, run_id, label=f"ray-{trial_id}",
                                placement=placement)
        except SystemExit:
            # Tune stopped the trial inside tune.report (ASHA pruned it: Ray's session ends the
            # trial's thread with sys.exit(0)); Tune counts it as stopped, not failed
            sweep_tracking.finish_trial_run(project, run_id, "PRUNED", sweep)
            raise
        except BaseException as exc:
            sweep_tracking.finish_trial_run(project, run_id, "FAIL", sweep, error=str(exc))
            raise
        sweep_tracking.finish_trial_run(project, run_id, "COMPLETE", sweep, outcome)
        tune.report({VALUE: outcome.objective, "objective": outcome.objective, "mlflow_run_id": run_id,
                     "seconds": outcome.seconds, "stages_ran": ",".join(outcome.stages_with("ran"))})

    return trainable


def _pruned_runs_callback(sweep: SweepSpec, project: Path):
    """Closes the MLflow run of a trial that ASHA stopped: its worker never got to."""
    from ray import tune

    class ClosePrunedRuns(tune.Callback):
        def on_trial_complete(self, iteration, trials, trial, **info):
            result = trial.last_result or {}
            if "objective" not in result and result.get("mlflow_run_id"):
                sweep_tracking.finish_trial_run(project, result["mlflow_run_id"], "PRUNED", sweep)

    return ClosePrunedRuns()


def init_ray(address: str | None, num_cpus: int | None = None) -> None:
    """Connect to a cluster at `address`, or start a local Ray bound to the loopback alone."""
    if not address:
        # Without this (read when ray is imported) Ray binds to the machine's external
        # interface and listens on all of them.
        os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")
    import ray

    if ray.is_initialized():
        return
    if address:
        # A cluster's workers have the environment their `ray start` had, not this one's: the
        # user's MLflow store goes with the job (else trials would log to the project's sqlite).
        uri = os.environ.get("MLFLOW_TRACKING_URI")
        ray.init(address=address, log_to_driver=False,
                 runtime_env={"env_vars": {"MLFLOW_TRACKING_URI": uri}} if uri else None)
        return
    ray.init(num_cpus=num_cpus, include_dashboard=False, _node_ip_address="127.0.0.1",
             log_to_driver=False, configure_logging=False)


def _state_of(result) -> str:
    if result.error is not None:
        return "FAIL"
    return "COMPLETE" if "objective" in (result.metrics or {}) else "PRUNED"


def summary(sweep: SweepSpec, results) -> tuple[str, list]:
    """The trials table, and the (number, value, params) of each complete trial."""
    rows, complete = [], []
    for result in sorted(results, key=lambda r: r.path or ""):
        metrics = result.metrics or {}
        number = metrics.get("trial_id", "-")
        params = {d.key: (result.config or {}).get(d.key) for d in sweep.space}
        state = _state_of(result)
        value = metrics.get(VALUE)
        if state == "COMPLETE":
            complete.append((number, metrics["objective"], params))
        rows.append({
            "trial": number,
            "state": state,
            "params": " ".join(f"{k}={v}" for k, v in params.items()),
            str(sweep.objective): "-" if value is None or state == "FAIL" else f"{value:.4f}",
            "seconds": f"{metrics['seconds']:.1f}" if "seconds" in metrics else "-",
            "stages run": metrics.get("stages_ran") or "-",
            "error": str(result.error).splitlines()[0][:80] if result.error is not None else "",
        })
    return format_table(rows, list(rows[0]) if rows else ["trial"]), complete


def run_sweep(sweep: SweepSpec, project: str | Path, jobs: int = 1, log: Callable[[str], None] = print,
              address: str | None = None, cpus_per_trial: float = 1, gpus_per_trial: float = 0,
              max_failures: int = 1, ray_cpus: int | None = None, register: bool = False) -> str:
    """Run the sweep's `budget` trials on Ray Tune; return the summary and the best params' file."""
    if cpus_per_trial <= 0 or max_failures < 0:
        raise SweepError("--cpus-per-trial must be > 0, --max-failures >= 0")
    check_gpus_per_trial(gpus_per_trial, sweep)
    project = Path(project).resolve()
    state = prepare(sweep, project)
    with sweep_lock(state):
        base = params_mod.load(state / "code" / params_mod.PARAMS_FILE).project
        seed = base.seed
        sweep_run_id = sweep_tracking.start_sweep_run(sweep, project, ENGINE, state)
        success = False
        try:
            init_ray(address, ray_cpus)
            check_cluster_gpus(gpus_per_trial)
            import optuna
            from ray import tune
            from ray.tune.schedulers import ASHAScheduler
            from ray.tune.search import ConcurrencyLimiter
            from ray.tune.search.optuna import OptunaSearch

            log(f"[sweep {sweep.name}] ray: {sweep.budget} trials, {jobs} at a time, "
                f"{cpus_per_trial} CPU / {gpus_per_trial} GPU each, {max_failures} retries")
            mode = "max" if sweep.direction == "maximize" else "min"
            rungs = len(sweep.report) + 1  # one report per reported metric, then the objective
            search = OptunaSearch(optuna_space(sweep), metric=VALUE, mode=mode,
                                  sampler=optuna.samplers.TPESampler(seed=seed))
            tuner = tune.Tuner(
                tune.with_resources(_trainable(sweep, project, sweep_run_id, gpus_per_trial, base.devices),
                                    {"cpu": cpus_per_trial, "gpu": gpus_per_trial}),
                tune_config=tune.TuneConfig(
                    metric=VALUE, mode=mode, num_samples=sweep.budget,
                    search_alg=ConcurrencyLimiter(search, max_concurrent=jobs),
                    scheduler=ASHAScheduler(max_t=rungs, grace_period=1, reduction_factor=2),
                ),
                run_config=tune.RunConfig(
                    name=sweep.name, storage_path=str(state / "ray"), verbose=0,
                    failure_config=tune.FailureConfig(max_failures=max_failures),
                    callbacks=[_pruned_runs_callback(sweep, project)],
                ),
            )
            results = tuner.fit()
            lost = sweep_tracking.close_lost_trial_runs(
                project, sweep_run_id, "its Ray worker ended without closing the run (its node died?); Tune "
                                      f"retried the trial (up to --max-failures {max_failures})")
            if lost:
                log(f"[sweep {sweep.name}] {len(lost)} trial attempt(s) lost with their worker: their MLflow runs "
                    "are FAILED; Tune retried them")
            text, complete = summary(sweep, results)
            failed = sum(1 for r in results if r.error is not None)
            if failed:
                text += f"\n\n{failed} trial(s) failed after {max_failures} retries (logs in {state / 'logs'})"
            if complete:
                pick = max if sweep.direction == "maximize" else min
                number, value, best = pick(complete, key=lambda item: item[1])
                text += "\n\n" + write_best(sweep, project, state, sweep_run_id, number, value, best, register)
            else:
                raise SweepError(f"sweep '{sweep.name}': no trial finished\n{text}")
            success = True
            return text
        finally:
            sweep_tracking.finish_sweep_run(project, sweep_run_id, success)
