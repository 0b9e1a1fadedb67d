"""Where trials run, and how they reuse what earlier trials computed.

A sweep keeps its state in ``.wsss/sweeps/<name>/``:

- ``code/``: a snapshot of the pipeline (dvc.yaml, params.yaml, pipeline/, src/, DVC config) taken
  when the sweep first starts, so every trial of a sweep runs the same code and base params;
- ``slots/<i>/``: a pool of workspaces, each a copy of ``code/`` that is a DVC repository of its
  own (no git) whose cache is the project's ``.dvc/cache``; a trial locks a free slot
  (``slots/<i>.lock``, flock: safe across threads and processes), writes its params.yaml and runs
  ``dvc repro`` there;
- ``logs/``: each trial's dvc and stage output.

Reuse comes from DVC's run-cache, which is keyed by a stage's command, its dependencies' hashes
and its params values: a stage whose inputs match an earlier run anywhere in the project (a
plain ``dvc repro``, another trial, another slot) is checked out from the cache instead of run.
So a trial that changes only downstream params reruns only the stages that read them.

The shared cache stays consistent under concurrent trials because DVC writes cache objects
and run-cache entries to a temporary name and renames them into place (dvc_objects'
``LocalFileSystem.put_file`` / ``copy``, dvc's ``StageCache.save``), or hardlinks them, which is
just as atomic: a reader never sees half an object, and two writers of one hash write the same
bytes. Outputs are checked out as hardlinks into the cache (read-only); that is safe because
every stage writes its outputs to a temporary path and renames it (``wsss.core.io.atomic_path`` /
``atomic_dir``), never in place.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import re
import shutil
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterator

import yaml

from wsss.core import params as params_mod
from wsss.core.errors import WsssError
from wsss.core.io import atomic_path
from wsss.core.processes import DRIVER_ENV, owner_id
from wsss.core.project import copy_pipeline, pipeline_digest
from wsss.sweep.experiments import SEED_KEY
from wsss.sweep.space import SweepError, SweepSpec
from wsss.tools.dvc_command import tool_env

STATE_ROOT = Path(".wsss") / "sweeps"
READY = ".wsss-slot"  # written last into a slot: its copy is complete
LOG_TAIL_LINES = 40

# What `dvc repro` (3.67) prints for each stage it visits.
STAGE_STATUS = (
    ("ran", re.compile(r"^Running stage '([^']+)'", re.M)),
    ("restored", re.compile(r"^Stage '([^']+)' is cached - skipping run, checking out outputs", re.M)),
    ("unchanged", re.compile(r"^Stage '([^']+)' didn't change, skipping", re.M)),
)


class TrialError(WsssError):
    """A trial's `dvc repro` failed; carries its overrides and the tail of its log."""

    def __init__(self, message: str, overrides: dict, log: Path | None = None, tail: str = ""):
        super().__init__(message + (f"\n--- last lines of {log} ---\n{tail}" if tail else ""))
        self.overrides = overrides
        self.log = log
        self.tail = tail


@dataclass
class TrialOutcome:
    """What one trial did: the values it reported, its objective (None when pruned), and for each
    stage it visited whether the stage ran, was restored from the run-cache or was unchanged."""

    overrides: dict
    values: list[float] = field(default_factory=list)
    objective: float | None = None  # with seeds_per_trial > 1, the mean of seed_objectives
    seed_objectives: list[float] = field(default_factory=list)
    pruned: bool = False
    stages: dict[str, str] = field(default_factory=dict)  # stage -> ran | restored | unchanged
    seconds: float = 0.0
    step_seconds: list[float] = field(default_factory=list)
    slot: str = ""
    log: Path | None = None

    def stages_with(self, status: str) -> list[str]:
        return [stage for stage, s in self.stages.items() if s == status]


def state_dir(project: str | Path, name: str) -> Path:
    return Path(project).resolve() / STATE_ROOT / name


@contextlib.contextmanager
def _flock(path: Path, blocking: bool = True) -> Iterator[int | None]:
    """An exclusive flock on ``path``; yields the descriptor, or None if not blocking and taken."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | (0 if blocking else fcntl.LOCK_NB))
        except BlockingIOError:
            yield None
            return
        yield fd
    finally:
        os.close(fd)  # closing the last descriptor of the file releases the lock


@contextlib.contextmanager
def sweep_lock(state: Path) -> Iterator[None]:
    """Held by the process that drives a sweep, so two drivers never share one study."""
    with _flock(state / "sweep.lock", blocking=False) as fd:
        if fd is None:
            raise SweepError(f"sweep '{state.name}' is already running in another process "
                             f"(lock {state / 'sweep.lock'})")
        yield


def prepare(spec: SweepSpec, project: str | Path) -> Path:
    """Create the sweep's state dir and code snapshot once; refuse a changed spec on resume.

    Idempotent and safe to call from every trial (threads, processes, Ray workers).
    """
    project = Path(project).resolve()
    state = state_dir(project, spec.name)
    with _flock(state / "prepare.lock"):
        identity = state / "spec.json"
        if identity.exists():
            stored = json.loads(identity.read_text())
            if stored != spec.identity():
                raise SweepError(
                    f"{spec.path}: sweep '{spec.name}' was started with a different spec "
                    f"(objective, report, fixed or space; stored in {identity}); give this one "
                    f"another --name, or remove {state} to start over")
        else:
            with atomic_path(identity) as tmp:
                tmp.write_text(json.dumps(spec.identity(), indent=2) + "\n")
        code = state / "code"
        if not (code / READY).exists():
            _snapshot(project, code)
    return state


def _snapshot(project: Path, dest: Path) -> None:
    if not (project / ".dvc").is_dir():
        raise SweepError(f"{project}: not a DVC project (no .dvc/)")
    tmp = dest.with_name(dest.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    copy_pipeline(project, tmp)
    (tmp / READY).write_text(pipeline_digest(project) + "\n")
    shutil.rmtree(dest, ignore_errors=True)
    os.replace(tmp, dest)


def code_changed(project: str | Path, state: Path) -> bool:
    """Whether the project's pipeline code or params.yaml differ from the sweep's snapshot."""
    stamp = state / "code" / READY
    return stamp.exists() and stamp.read_text().strip() != pipeline_digest(Path(project).resolve())


def _project_cache_dir(project: Path) -> str:
    """The project's DVC cache dir as DVC resolves it (a cache.dir setting included)."""
    from dvc.repo import Repo

    repo = Repo(str(project))
    try:
        return os.path.abspath(repo.cache.local_cache_dir)
    finally:
        repo.close()


def _dvc_config_local(cache_dir: str) -> str:
    # config.local: machine-local, never committed. No git in a slot; no update check or
    # analytics process per dvc call; outputs as hardlinks into the cache (copy across devices).
    return (
        "[core]\n    no_scm = true\n    analytics = false\n    check_update = false\n"
        f"[cache]\n    dir = \"{cache_dir}\"\n    type = \"hardlink,copy\"\n    slow_link_warning = false\n"
    )


@dataclass(frozen=True)
class Slot:
    path: Path
    lock_fd: int  # handed to dvc, so the slot stays taken while a killed sweep's dvc lives on


@contextlib.contextmanager
def acquire_slot(project: Path, state: Path) -> Iterator[Slot]:
    """Lock the first free slot of the pool, creating it (a copy of the snapshot) if needed."""
    slots = state / "slots"
    index = 0
    while True:
        with _flock(slots / f"{index}.lock", blocking=False) as fd:
            if fd is not None:
                path = slots / str(index)
                if not (path / READY).exists():
                    _create_slot(project, state / "code", path)
                yield Slot(path, fd)
                return
        index += 1


def _create_slot(project: Path, code: Path, path: Path) -> None:
    shutil.rmtree(path, ignore_errors=True)
    shutil.copytree(code, path)
    (path / READY).unlink()
    (path / ".dvc" / "config.local").write_text(_dvc_config_local(_project_cache_dir(project)))
    (path / READY).write_text((code / READY).read_text())


# Trials register no model (wsss.tracking.registry): a sweep registers its best trial only, on request
# (wsss.sweep.best.register_best).
TRIAL_PARAMS = {"tracking.registered_model": None}
VISIBLE_GPUS = "CUDA_VISIBLE_DEVICES"


@dataclass(frozen=True)
class Placement:
    """The devices a trial was given: the GPU ids its `dvc repro` sees (None: the environment's
    own; empty: none, so `project.device: auto` is the CPU) and the processes per stage that
    follow (None: as the params say)."""

    gpus: tuple[str, ...] | None = None
    devices: int | None = None

    def env(self) -> dict:
        return {} if self.gpus is None else {VISIBLE_GPUS: ",".join(self.gpus)}

    def params(self) -> dict:
        return {} if self.devices is None else {"project.devices": self.devices}


def trial_overrides(sweep: SweepSpec, overrides: dict, placement: Placement = Placement()) -> dict:
    """Every params key a trial sets: its placement's, the spec's fixed ones, its own."""
    return placement.params() | sweep.fixed | overrides


def write_slot_params(state: Path, slot: Path, overrides: dict) -> None:
    raw = params_mod.read_raw(state / "code" / params_mod.PARAMS_FILE, TRIAL_PARAMS | overrides)
    params_mod.validate(raw)
    with atomic_path(slot / params_mod.PARAMS_FILE) as tmp:
        tmp.write_text(yaml.safe_dump(raw, sort_keys=False))


def trial_env(project: Path, slot: Path, trial_run_id: str | None, placement: Placement = Placement()) -> dict:
    """The environment of a trial's `dvc repro`: this interpreter's tools first (as `wsss repro`),
    the slot's own code importable (it is what DVC hashed), MLflow runs in the project's store,
    nested under the trial's run, and the GPUs of its placement."""
    from wsss.tracking import runs as tracking

    env = tool_env(dict(os.environ) | placement.env())
    env[DRIVER_ENV] = owner_id()  # the process running the trial (a Ray worker, the sweep): its stages end with it
    env["PYTHONPATH"] = os.pathsep.join([str(slot / "src"), str(slot)])
    env["PYTHONDONTWRITEBYTECODE"] = "1"  # no __pycache__ inside the src/ dirs DVC hashes
    env["MLFLOW_TRACKING_URI"] = tracking.tracking_uri(project)
    env.pop(tracking.PARENT_ENV, None)
    if trial_run_id:
        env[tracking.PARENT_ENV] = trial_run_id
    return env


def stage_statuses(dvc_output: str) -> dict[str, str]:
    """{stage: ran | restored | unchanged} from `dvc repro` output, in the order DVC printed them."""
    found = []
    for status, pattern in STAGE_STATUS:
        found += [(m.start(), m.group(1), status) for m in pattern.finditer(dvc_output)]
    return {stage: status for _, stage, status in sorted(found)}


def _tail(text: str, lines: int = LOG_TAIL_LINES) -> str:
    return "\n".join(text.rstrip().splitlines()[-lines:])


def _run_steps(sweep: SweepSpec, slot, env: dict, handle, log: Path, outcome: TrialOutcome,
               report: Callable[[int, float], bool] | None) -> float | None:
    """One `dvc repro` per step of the sweep in the slot, reporting intermediate values to
    ``report`` (None: not reported); the objective, or None when ``report`` pruned the trial."""
    overrides = outcome.overrides
    steps = sweep.steps
    for number, step in enumerate(steps):
        step_start = time.monotonic()
        offset = handle.tell()
        handle.write(f"$ dvc repro {step.stage}\n".encode())
        handle.flush()
        done = subprocess.run(["dvc", "repro", step.stage], cwd=slot.path, env=env, stdout=handle,
                              stderr=subprocess.STDOUT, pass_fds=(slot.lock_fd,))
        output = log.read_bytes()[offset:].decode(errors="replace")
        for stage, status in stage_statuses(output).items():
            # the first visit tells: a later step sees the same stage unchanged
            outcome.stages.setdefault(stage, status)
        outcome.step_seconds.append(time.monotonic() - step_start)
        if done.returncode != 0:
            raise TrialError(
                f"sweep '{sweep.name}': `dvc repro {step.stage}` failed (exit {done.returncode}) "
                f"for overrides {overrides}", overrides, log, _tail(output))
        if report is None:
            continue
        try:
            for index, metric in step.reports:
                value = metric.read(slot.path)
                outcome.values.append(value)
                if report(index, value) and number < len(steps) - 1:
                    outcome.pruned = True
        except WsssError as exc:
            raise TrialError(f"sweep '{sweep.name}': {exc} (overrides {overrides})", overrides, log) from None
        if outcome.pruned:
            return None
    try:
        return sweep.objective.read(slot.path)
    except WsssError as exc:
        raise TrialError(f"sweep '{sweep.name}': {exc} (overrides {overrides})", overrides, log) from None


def run_trial(sweep: SweepSpec, project: str | Path, overrides: dict,
              report: Callable[[int, float], bool], trial_run_id: str | None = None,
              label: str | None = None, placement: Placement = Placement()) -> TrialOutcome:
    """Run one trial of ``sweep`` with ``overrides`` ({params key: value}) in a free slot.

    For each step of the sweep (``sweep.steps``) runs ``dvc repro <stage>``, then reads the
    step's reported metrics and calls ``report(index, value)``; a True answer prunes the trial
    (stops it) unless nothing is left to run. Engine-agnostic: Optuna, Ray Tune or a plain loop
    call it the same way; ``placement`` is the devices an engine gave the trial. With the spec's
    ``seeds_per_trial`` R > 1 the steps run for project.seed 0..R-1 and the objective is their
    mean. Raises TrialError when a `dvc repro` fails or a metric is unreadable.
    """
    project = Path(project).resolve()
    state = prepare(sweep, project)
    overrides = dict(overrides)
    outcome = TrialOutcome(overrides)
    start = time.monotonic()
    label = label or time.strftime("%Y%m%d-%H%M%S")
    with acquire_slot(project, state) as slot:
        outcome.slot = slot.path.name
        log = state / "logs" / f"{label}-slot{slot.path.name}.log"
        log.parent.mkdir(parents=True, exist_ok=True)
        outcome.log = log
        env = trial_env(project, slot.path, trial_run_id, placement)
        objectives = []
        with open(log, "ab") as handle:
            for name, value in placement.env().items():  # the log says which GPUs the trial ran on
                handle.write(f"$ export {name}={value!r}\n".encode())
            # seeds_per_trial > 1: the trial is scored by its mean over the seeds; only the first
            # seed's intermediate values are reported (and pruned on)
            for seed in (range(sweep.seeds_per_trial) if sweep.seeds_per_trial > 1 else [None]):
                seeded = overrides if seed is None else overrides | {SEED_KEY: seed}
                write_slot_params(state, slot.path, trial_overrides(sweep, seeded, placement))
                if seed is not None:
                    handle.write(f"# {SEED_KEY} = {seed}\n".encode())
                objective = _run_steps(sweep, slot, env, handle, log, outcome, report if seed in (None, 0) else None)
                if objective is None:  # pruned
                    break
                objectives.append(objective)
        if objectives and not outcome.pruned:
            outcome.objective = sum(objectives) / len(objectives)
            outcome.seed_objectives = objectives
    outcome.seconds = time.monotonic() - start
    return outcome
