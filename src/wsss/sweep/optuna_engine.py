"""`wsss sweep --engine optuna`: TPE over the spec's space, a sqlite study that a killed sweep
resumes, median pruning on the reported values, trials in parallel slots (``--jobs``).

The study lives in ``.wsss/sweeps/<name>/optuna.db`` under the sweep's name. A restart finds
the trials a dead process left RUNNING, marks them FAIL and queues their params again, then
runs trials until the study holds ``budget`` finished (complete or pruned) trials. The best
params go to ``.wsss/sweeps/<name>/best_params.yaml``, a params.yaml fragment whose header
holds the equivalent ``dvc exp run -S ...`` command.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Callable

from wsss.core import params as params_mod
from wsss.evaluation.metrics import format_table
from wsss.sweep import tracking as sweep_tracking
from wsss.sweep.best import write_best
from wsss.sweep.space import Dimension, SweepError, SweepSpec
from wsss.sweep.workspace import (
    TrialError,
    code_changed,
    prepare,
    run_trial,
    sweep_lock,
)

ENGINE = "optuna"
RETRY_OF = "wsss.retry_of"  # user attr of a re-queued trial: the number of the trial it retries
INTERRUPTED = "wsss.interrupted"
FINISHED = ("COMPLETE", "PRUNED")


def _suggest(trial, dimension: Dimension):
    if dimension.type == "int":
        return trial.suggest_int(dimension.key, int(dimension.low), int(dimension.high), log=dimension.log)
    if dimension.type == "float":
        return trial.suggest_float(dimension.key, dimension.low, dimension.high, log=dimension.log)
    return trial.suggest_categorical(dimension.key, list(dimension.choices))


def _finished(study) -> list:
    return [t for t in study.get_trials(deepcopy=False) if t.state.name in FINISHED]


def recover(study, project: Path, sweep: SweepSpec, log: Callable[[str], None] = print) -> None:
    """Trials a dead process left RUNNING (or that a Ctrl-C interrupted) are marked FAIL and
    their params queued again, once: each retry names its original in a user attr."""
    from optuna.trial import TrialState

    trials = study.get_trials(deepcopy=False)
    retried = {t.user_attrs.get(RETRY_OF) for t in trials}
    for trial in trials:
        stale = trial.state == TrialState.RUNNING
        interrupted = trial.state == TrialState.FAIL and trial.user_attrs.get(INTERRUPTED)
        if (stale or interrupted) and trial.number not in retried:
            # queued before the FAIL mark: a kill in between leaves it RUNNING, seen again next time
            study.enqueue_trial(dict(trial.params), user_attrs={RETRY_OF: trial.number})
            log(f"[sweep {sweep.name}] trial {trial.number} did not finish; queued again: {trial.params}")
        if stale:
            study.tell(trial.number, state=TrialState.FAIL)
            run_id = trial.user_attrs.get("mlflow_run_id")
            if run_id:
                sweep_tracking.finish_trial_run(project, run_id, "FAIL", sweep,
                                                error="the sweep process died during this trial")


def _objective(sweep: SweepSpec, project: Path, sweep_run_id: str, log: Callable[[str], None]):
    import optuna

    def objective(trial) -> float:
        overrides = {d.key: _suggest(trial, d) for d in sweep.space}
        run_id = sweep_tracking.start_trial_run(sweep_run_id, sweep, project, trial.number, overrides)
        trial.set_user_attr("mlflow_run_id", run_id)

        def report(step: int, value: float) -> bool:
            trial.report(value, step)
            sweep_tracking.log_intermediate(project, run_id, step, value, sweep)
            return trial.should_prune()

        try:
            outcome = run_trial(sweep, project, overrides, report, run_id, label=f"trial-{trial.number}")
        except BaseException as exc:
            if isinstance(exc, KeyboardInterrupt):
                trial.set_user_attr(INTERRUPTED, True)
            trial.set_user_attr("error", str(exc).splitlines()[0] if str(exc) else type(exc).__name__)
            sweep_tracking.finish_trial_run(project, run_id, "FAIL", sweep, error=str(exc))
            log(f"[sweep {sweep.name}] trial {trial.number} FAIL: {exc}")
            raise
        trial.set_user_attr("seconds", round(outcome.seconds, 1))
        trial.set_user_attr("stages_ran", outcome.stages_with("ran"))
        trial.set_user_attr("stages_restored", outcome.stages_with("restored"))
        state = "PRUNED" if outcome.pruned else "COMPLETE"
        sweep_tracking.finish_trial_run(project, run_id, state, sweep, outcome)
        value = outcome.objective if outcome.objective is not None else outcome.values[-1]
        log(f"[sweep {sweep.name}] trial {trial.number} {state} {overrides} -> {value:.4f} "
            f"({outcome.seconds:.1f} s; ran: {', '.join(outcome.stages_with('ran')) or 'nothing'})")
        if outcome.pruned:
            raise optuna.TrialPruned()
        return outcome.objective

    return objective


def create_study(sweep: SweepSpec, state: Path, seed: int):
    import optuna

    # Our own line per trial says it all: Optuna's would repeat a failed trial's error as a repr
    # and a traceback of the objective.
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    storage = f"sqlite:///{(state / 'optuna.db').as_posix()}"
    existing = 0
    try:
        existing = len(optuna.load_study(study_name=sweep.name, storage=storage).trials)
    except KeyError:
        pass
    # Seeded by the params' project seed, offset by the trials already stored: a resumed sweep
    # does not replay the first start's random proposals.
    sampler = optuna.samplers.TPESampler(seed=seed + existing)
    # Median pruning once 5 trials have reported: a trial whose value at a step is below the
    # median of earlier trials at that step stops there.
    pruner = optuna.pruners.MedianPruner(n_startup_trials=5, n_warmup_steps=0)
    return optuna.create_study(study_name=sweep.name, storage=storage, load_if_exists=True,
                               direction=sweep.direction, sampler=sampler, pruner=pruner)


def summary(sweep: SweepSpec, study) -> str:
    rows = []
    for t in study.get_trials(deepcopy=False):
        if t.state.name == "WAITING":
            continue
        value = t.value if t.state.name == "COMPLETE" else (
            t.intermediate_values[max(t.intermediate_values)] if t.intermediate_values else None)
        rows.append({
            "trial": t.number,
            "state": t.state.name,
            "params": " ".join(f"{k}={v}" for k, v in t.params.items()),
            str(sweep.objective): "-" if value is None else f"{value:.4f}",
            "seconds": f"{t.user_attrs['seconds']:.1f}" if "seconds" in t.user_attrs else "-",
            "stages run": ", ".join(t.user_attrs.get("stages_ran", [])) or "-",
        })
    return format_table(rows, list(rows[0]) if rows else ["trial"])


def run_sweep(sweep: SweepSpec, project: str | Path, jobs: int = 1, log: Callable[[str], None] = print,
              register: bool = False) -> str:
    """Run (or resume) the sweep until its study holds ``budget`` finished trials; return the
    summary table and where the best params were written."""
    project = Path(project).resolve()
    state = prepare(sweep, project)
    with sweep_lock(state):
        if code_changed(project, state):
            log(f"[sweep {sweep.name}] note: the project's code or params.yaml changed since this sweep "
                f"started; its trials keep running the snapshot in {state / 'code'} (use --name for a new sweep)")
        seed = params_mod.load(state / "code" / params_mod.PARAMS_FILE).project.seed
        study = create_study(sweep, state, seed)
        sweep_run_id = sweep_tracking.start_sweep_run(sweep, project, ENGINE, state)
        success = False
        try:
            recover(study, project, sweep, log)
            objective = _objective(sweep, project, sweep_run_id, log)
            lock = threading.Lock()  # a failed trial's error, kept for the message below
            errors: list[str] = []

            def keep_error(study, trial) -> None:
                if trial.state.name == "FAIL":
                    with lock:
                        errors.append(trial.user_attrs.get("error", ""))

            while (remaining := sweep.budget - len(_finished(study))) > 0:
                before = len(_finished(study))
                log(f"[sweep {sweep.name}] {before} of {sweep.budget} trials finished; running {remaining} "
                    f"({jobs} at a time)")
                study.optimize(objective, n_trials=remaining, n_jobs=jobs, catch=(TrialError,),
                               callbacks=[keep_error])
                if len(_finished(study)) == before:
                    raise SweepError(f"sweep '{sweep.name}': none of the last {remaining} trials finished; "
                                     f"last error: {errors[-1] if errors else 'unknown'} "
                                     f"(logs in {state / 'logs'})")
            complete = [t for t in study.get_trials(deepcopy=False) if t.state.name == "COMPLETE"]
            text = summary(sweep, study)
            if complete:
                best = study.best_trial
                text += "\n\n" + write_best(sweep, project, state, sweep_run_id, best.number, best.value, best.params,
                                           register)
            success = True
            return text
        finally:
            sweep_tracking.finish_sweep_run(project, sweep_run_id, success)
