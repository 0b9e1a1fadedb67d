"""A sweep's MLflow runs, whatever engine drives it.

One parent run per sweep (tags wsss.kind=sweep, wsss.sweep, wsss.engine; the spec as params and
as an artifact), resumed rather than duplicated when a killed sweep restarts (its id is kept in
the sweep's state dir). Each trial is a nested run (wsss.kind=trial, wsss.trial=<number>) with
its overrides as params, the reported values as the metric ``intermediate`` (one step each), the
objective, and tags naming the stages that ran / were restored. The pipeline's own stage runs
nest under the trial's run (the trial passes its id to `dvc repro` as WSSS_PARENT_RUN_ID).
"""

from __future__ import annotations

import time
from pathlib import Path

from wsss.core import params as params_mod
from wsss.core.io import atomic_path
from wsss.sweep.space import SweepSpec
from wsss.sweep.workspace import TrialOutcome
from wsss.tracking import runs as tracking

RUN_ID_FILE = "mlflow_run_id"
# Trial states as Optuna names them, and the MLflow run status each ends in.
RUN_STATUS = {"COMPLETE": "FINISHED", "PRUNED": "KILLED", "FAIL": "FAILED"}


def _client(project: Path):
    import mlflow

    return mlflow.MlflowClient(tracking_uri=tracking.tracking_uri(project))


def _experiment(project: Path) -> str:
    params = params_mod.load(Path(project) / params_mod.PARAMS_FILE)
    return tracking.configure(params.tracking.experiment, project)


def start_sweep_run(sweep: SweepSpec, project: str | Path, engine: str, state: Path) -> str:
    """The sweep's parent run: the one a previous start of this sweep created, else a new one."""
    project = Path(project).resolve()
    experiment_id = _experiment(project)
    client = _client(project)
    stored = state / RUN_ID_FILE
    if stored.exists():
        run_id = stored.read_text().strip()
        try:
            run = client.get_run(run_id)
        except Exception:  # deleted from the store since: start afresh
            run = None
        if run is not None and run.info.lifecycle_stage == "active":
            client.update_run(run_id, status="RUNNING")
            client.set_tag(run_id, "wsss.budget", str(sweep.budget))
            return run_id
    run = client.create_run(
        experiment_id,
        run_name=f"sweep {sweep.name}",
        tags={
            "wsss.kind": "sweep",
            "wsss.sweep": sweep.name,
            "wsss.engine": engine,
            "wsss.budget": str(sweep.budget),
            "wsss.git_commit": tracking.git_commit(project),
        },
    )
    run_id = run.info.run_id
    tracking.log_params(client, run_id, sweep.flat_params())
    client.log_artifact(run_id, str(sweep.path))
    with atomic_path(stored) as tmp:
        tmp.write_text(run_id + "\n")
    return run_id


def start_trial_run(sweep_run_id: str, sweep: SweepSpec, project: str | Path, number: int | str,
                    overrides: dict, tags: dict | None = None) -> str:
    """A trial's nested run; `number` is the engine's name for the trial (Optuna's number, Ray's id);
    `tags`: more of them (what the trial runs on)."""
    project = Path(project).resolve()
    client = _client(project)
    run = client.create_run(
        _experiment(project),
        run_name=f"{sweep.name} trial {number}",
        tags={
            "mlflow.parentRunId": sweep_run_id,
            "wsss.kind": "trial",
            "wsss.sweep": sweep.name,
            "wsss.trial": str(number),
        } | (tags or {}),
    )
    tracking.log_params(client, run.info.run_id, overrides)
    return run.info.run_id


def log_intermediate(project: str | Path, run_id: str, step: int, value: float, sweep: SweepSpec) -> None:
    """One reported value, as it arrives: the metric ``intermediate`` at this step (what the
    pruner sees) and the reported metric under its own name."""
    from mlflow.entities import Metric

    now = int(time.time() * 1000)
    metrics = [Metric("intermediate", value, now, step), Metric(sweep.report[step].name, value, now, 0)]
    _client(Path(project)).log_batch(run_id, metrics=metrics)


def finish_trial_run(project: str | Path, run_id: str, state: str, sweep: SweepSpec,
                     outcome: TrialOutcome | None = None, error: str | None = None) -> None:
    """Close a trial's run as COMPLETE, PRUNED or FAIL (tag wsss.state; MLflow status to match)."""
    from mlflow.entities import Metric, RunTag

    client = _client(Path(project))
    now = int(time.time() * 1000)
    tags = [RunTag("wsss.state", state)]
    metrics = []
    if outcome is not None:
        tags += [RunTag(f"wsss.stages_{status}", ",".join(outcome.stages_with(status)))
                 for status in ("ran", "restored", "unchanged")]
        tags.append(RunTag("wsss.slot", outcome.slot))
        metrics.append(Metric("seconds", outcome.seconds, now, 0))
        if outcome.objective is not None:
            metrics += [Metric("objective", outcome.objective, now, 0),
                        Metric(sweep.objective.name, outcome.objective, now, 0)]
    if error:
        tags.append(RunTag("wsss.error", error[-5000:]))
    client.log_batch(run_id, metrics=metrics, tags=tags)
    client.set_terminated(run_id, RUN_STATUS[state])


def log_best(project: str | Path, sweep_run_id: str, number: int, value: float, params: dict,
             best_file: Path | None = None) -> None:
    """The best trial so far on the parent run: a metric and tags (params are immutable in
    MLflow, and a resumed sweep may find a better trial)."""
    from mlflow.entities import Metric, RunTag

    client = _client(Path(project))
    tags = [RunTag("wsss.best_trial", str(number))] + [RunTag(f"best.{k}", str(v)) for k, v in params.items()]
    client.log_batch(sweep_run_id, metrics=[Metric("best_value", value, int(time.time() * 1000), 0)], tags=tags)
    if best_file is not None:
        client.log_artifact(sweep_run_id, str(best_file))


def finish_sweep_run(project: str | Path, sweep_run_id: str, success: bool) -> None:
    _client(Path(project)).set_terminated(sweep_run_id, "FINISHED" if success else "FAILED")


def close_lost_trial_runs(project: str | Path, sweep_run_id: str, why: str) -> list[str]:
    """Close the trial runs of a sweep still RUNNING once its engine is done with them: attempts
    whose worker died with its node (Ray retried the trial elsewhere) never closed their own.
    They end FAILED, tagged wsss.state FAIL and ``why``. Returns their ids."""
    from mlflow.entities import RunTag

    client = _client(Path(project))
    runs = client.search_runs([_experiment(Path(project).resolve())],
                              filter_string=f"tags.`mlflow.parentRunId` = '{sweep_run_id}' and "
                                            "tags.`wsss.kind` = 'trial' and attributes.status = 'RUNNING'")
    for run in runs:
        client.log_batch(run.info.run_id, tags=[RunTag("wsss.state", "FAIL"), RunTag("wsss.error", why)])
        client.set_terminated(run.info.run_id, "FAILED")
    return [run.info.run_id for run in runs]
