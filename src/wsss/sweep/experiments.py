"""DVC experiments as the sweep tools run them: one `dvc exp run --temp` per configuration (or
several from DVC's queue, `dvc queue start -j J`), its metrics files read back from the
experiment's git ref. Shared by `wsss ablate` (a row per configuration) and `wsss repro
--replicates` (a replicate per seed)."""

from __future__ import annotations

import json
import os
import re
import subprocess
import time
from pathlib import Path
from typing import Any

from wsss.core.errors import WsssError

SEED_KEY = "project.seed"  # what a replicate changes: weight init, data order, augmentation, K-means init


def git(project: Path, *args: str) -> str:
    done = subprocess.run(["git", *args], cwd=project, capture_output=True, text=True)
    if done.returncode != 0:
        raise WsssError(f"git {' '.join(args)} failed: {done.stderr.strip()}")
    return done.stdout


def experiment_name(*parts: str) -> str:
    """A DVC experiment name (DVC allows letters, digits, - _ . only)."""
    return re.sub(r"[^A-Za-z0-9._-]+", "_", "-".join(parts)).strip("_")


def format_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def override_value(value: Any) -> str:
    """A value in DVC's `-S` (Hydra) override syntax: strings quoted, so that a comma (as in
    "pr_is,pamr,pr_is") is not read as a sweep over several values."""
    if isinstance(value, str):
        return "'" + value.replace("'", "\\'") + "'"
    return format_value(value)


def exp_run_command(name: str, overrides: dict[str, Any], targets=(), queue: bool = False) -> list[str]:
    """`dvc exp run --temp -n NAME -S key=value ... [targets]` (``--queue`` instead of ``--temp``
    to leave it to `dvc queue start`)."""
    command = ["dvc", "exp", "run", "--queue" if queue else "--temp", "-n", name]
    for key, value in overrides.items():
        command += ["-S", f"{key}={override_value(value)}"]
    return command + list(targets)


def head(project: Path) -> str:
    """The commit experiments are based on."""
    return git(project, "rev-parse", "HEAD").strip()


def experiment_ref(baseline: str, name: str) -> str:
    return f"refs/exps/{baseline[:2]}/{baseline[2:]}/{name}"


def read_metrics(project: Path, ref: str, metrics_file: str) -> dict | None:
    """A metrics file as committed in an experiment's ref; None when the experiment has none."""
    done = subprocess.run(["git", "show", f"{ref}:{metrics_file}"], cwd=project, capture_output=True, text=True)
    return json.loads(done.stdout) if done.returncode == 0 else None


def dig(tree: dict, key: str):
    """``tree["a"]["b"]`` for ``"a.b"``; None when a part is missing."""
    node: Any = tree
    for part in key.split("."):
        if not isinstance(node, dict) or part not in node:
            return None
        node = node[part]
    return node


def start_group_run(project: Path, params, kind: str, name: str, parent: str | None = None,
                    experiment: str | None = None) -> str:
    """An MLflow run that holds DVC experiments' runs: ``kind`` (tag wsss.kind: ablation,
    ablation-row, replicates, replicate) and ``name``; under ``parent`` when given, and tagged with
    the DVC ``experiment`` it records (wsss.dvc_experiment)."""
    import mlflow

    from wsss.tracking import runs as tracking

    experiment_id = tracking.configure(params.tracking.experiment, project)
    run = tracking.start_parent_run(experiment_id, params, f"wsss-{kind}:{name}:{os.getpid()}:{time.time():.0f}",
                                    project, name=name)
    tags = {"wsss.kind": kind, "mlflow.parentRunId": parent, "wsss.dvc_experiment": experiment}
    client = mlflow.MlflowClient()
    for tag, value in tags.items():
        if value is not None:
            client.set_tag(run, tag, value)
    return run


def run_experiment(project: Path, env: dict, name: str, overrides: dict[str, Any], targets, run_id: str,
                   what: str, log=print) -> None:
    """`dvc exp run --temp` of one configuration (an earlier experiment of that name replaced),
    its stages' MLflow runs under ``run_id``; a failure closes that run FAILED and raises naming
    ``what`` (the row, the replicate)."""
    import mlflow

    from wsss.tracking import runs as tracking

    subprocess.run(["dvc", "exp", "remove", name], cwd=project, env=env, capture_output=True)
    command = exp_run_command(name, overrides, targets)
    log(f"[{what}] {' '.join(command)}")
    done = subprocess.run(command, cwd=project, env=dict(env, **{tracking.PARENT_ENV: run_id}))
    if done.returncode != 0:
        mlflow.MlflowClient().set_terminated(run_id, "FAILED")
        raise WsssError(f"{what}: `{' '.join(command)}` failed (exit {done.returncode}); finished stages are "
                        "cached and will not run again")


def run_queued(project: Path, env: dict, runs: list[tuple[str, dict[str, Any]]], targets, jobs: int,
               log=print, poll_s: float = 5.0) -> list[str]:
    """Each (name, overrides) queued with `dvc exp run --queue` (earlier experiments and tasks of
    those names replaced), then `dvc queue start -j jobs`; waits until every one has ended and
    returns the names that failed (`dvc queue logs NAME` has their output). On CPU the workers'
    stages share the cores: each gets cores / jobs threads unless OMP_NUM_THREADS is set."""
    names = [name for name, _ in runs]
    subprocess.run(["dvc", "exp", "remove", *names], cwd=project, env=env, capture_output=True)
    subprocess.run(["dvc", "queue", "remove", *names], cwd=project, env=env, capture_output=True)
    for name, overrides in runs:
        command = exp_run_command(name, overrides, targets, queue=True)
        log(" ".join(command))
        done = subprocess.run(command, cwd=project, env=env, capture_output=True, text=True)
        if done.returncode != 0:
            raise WsssError(f"`{' '.join(command)}` failed (exit {done.returncode}): {done.stderr.strip()}")
    env = dict(env)
    env.setdefault("OMP_NUM_THREADS", str(max(1, (os.cpu_count() or 1) // jobs)))
    start = ["dvc", "queue", "start", "-j", str(jobs)]
    log(" ".join(start))
    subprocess.run(start, cwd=project, env=env, capture_output=True, check=True)
    idle_polls = 0
    while True:
        time.sleep(poll_s)
        states = queue_states(project, env, names)
        if all(states.get(name) in ("Success", "Failed") for name in names):
            return [name for name in names if states[name] != "Success"]
        idle_polls = 0 if "Running" in states.values() else idle_polls + 1
        if idle_polls >= 3:  # tasks wait and no worker runs one (they ended early): start workers again
            subprocess.run(start, cwd=project, env=env, capture_output=True)
            idle_polls = 0


def queue_states(project: Path, env: dict, names: list[str]) -> dict[str, str]:
    """{experiment name: its task's status} from `dvc queue status` (Queued, Running, Success, Failed)."""
    done = subprocess.run(["dvc", "queue", "status"], cwd=project, env=env, capture_output=True, text=True)
    states = {}
    for line in done.stdout.splitlines():  # Task  Name  Created  Status
        parts = line.split()
        if len(parts) >= 4 and parts[1] in names:
            states[parts[1]] = parts[-1]
    return states


def mlflow_metrics(values: dict) -> list:
    """MLflow Metric entities of a table's numeric figures (names cut to what MLflow accepts)."""
    from mlflow.entities import Metric

    now = int(time.time() * 1000)
    safe = {re.sub(r"[^A-Za-z0-9_\-. /]", "", k).strip().replace(" ", "_"): v for k, v in values.items()}
    return [Metric(k, float(v), now, 0) for k, v in safe.items() if isinstance(v, (int, float))]
