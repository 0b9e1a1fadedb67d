"""The one place that talks to MLflow.

Layout of runs: one *parent* run per pipeline invocation and one nested run per stage. DVC runs
each stage as its own process, so a stage finds its parent run in this order:

1. ``WSSS_PARENT_RUN_ID`` in the environment (set by ``wsss repro`` and by sweeps);
2. the run tagged with this invocation's key: the process id and start time of the ``dvc``
   process that launched the stage (so a plain ``dvc repro`` groups its stages too);
3. otherwise (a stage script run by hand) a new parent run for just this stage.

Default tracking: a sqlite database ``mlflow.db`` in the project with artifacts under
``mlruns/``; ``MLFLOW_TRACKING_URI`` switches to a shared server.
"""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import time
from pathlib import Path
from typing import Iterator

import numpy as np

PARENT_ENV = "WSSS_PARENT_RUN_ID"
INVOCATION_TAG = "wsss.invocation"
DB_FILE = "mlflow.db"
ARTIFACT_DIR = "mlruns"
BATCH = 500  # metrics per MLflow request (the store's log_batch limit is 1000)


def tracking_root(project_dir: str | Path = ".") -> Path:
    """The project whose mlflow.db and mlruns/ receive the runs.

    ``dvc exp run --queue`` runs stages in a copy under ``<project>/.dvc/tmp/exps/``; their
    runs belong in the project's own store, not in the throw-away copy.
    """
    path = Path(project_dir).resolve()
    parts = path.parts
    for i in range(len(parts) - 3):
        if parts[i : i + 3] == (".dvc", "tmp", "exps"):
            return Path(*parts[:i])
    return path


def tracking_uri(project_dir: str | Path = ".") -> str:
    uri = os.environ.get("MLFLOW_TRACKING_URI")
    if uri:
        return uri
    return f"sqlite:///{(tracking_root(project_dir) / DB_FILE).as_posix()}"


def _mlflow():
    import mlflow  # imported lazily: it costs seconds, and the library must work without it

    return mlflow


def configure(experiment: str, project_dir: str | Path = ".") -> str:
    """Point MLflow at the project's store and return the experiment id (created if needed)."""
    mlflow = _mlflow()
    uri = tracking_uri(project_dir)
    mlflow.set_tracking_uri(uri)
    client = mlflow.MlflowClient()
    found = client.get_experiment_by_name(experiment)
    if found is not None:
        return found.experiment_id
    location = None
    if uri.startswith("sqlite:"):
        location = (tracking_root(project_dir) / ARTIFACT_DIR).as_uri()
    try:
        return client.create_experiment(experiment, artifact_location=location)
    except Exception:  # created concurrently by another process
        found = client.get_experiment_by_name(experiment)
        if found is None:
            raise
        return found.experiment_id


def git_commit(project_dir: str | Path = ".") -> str:
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=project_dir, capture_output=True, text=True, timeout=10
        )
        commit = out.stdout.strip()
        if out.returncode != 0 or not commit:
            return "unknown"
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=project_dir, capture_output=True, text=True, timeout=10,
        ).stdout.strip()
        return commit + ("-dirty" if dirty else "")
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def invocation_key() -> str | None:
    """Identify the dvc process that launched us (pid + start time), or None if there is none."""
    import psutil

    try:
        for process in psutil.Process().parents():
            try:
                cmdline = process.cmdline()
            except (psutil.AccessDenied, psutil.ZombieProcess):
                continue
            if any(Path(part).name in ("dvc", "dvc.exe") for part in cmdline[:2]) or (
                len(cmdline) > 2 and cmdline[1:3] == ["-m", "dvc"]
            ):
                return f"dvc:{socket.gethostname()}:{process.pid}:{process.create_time():.0f}"
    except psutil.Error:
        return None
    return None


def start_parent_run(experiment_id: str, params: dict, key: str, project_dir: str | Path = ".",
                     name: str | None = None) -> str:
    """Create a parent run for one pipeline invocation and return its id."""
    from wsss.params import flatten, section_hash

    client = _mlflow().MlflowClient()
    run = client.create_run(
        experiment_id,
        run_name=name or time.strftime("pipeline %Y-%m-%d %H:%M:%S"),
        tags={
            INVOCATION_TAG: key,
            "wsss.kind": "pipeline",
            "wsss.dvc_experiment": os.environ.get("DVC_EXP_NAME", ""),
            "wsss.git_commit": git_commit(project_dir),
            "wsss.params_hash": section_hash(params, list(params)),
        },
    )
    run_id = run.info.run_id
    log_params(client, run_id, flatten(params))
    return run_id


def find_or_start_parent(experiment_id: str, params: dict, project_dir: str | Path = ".") -> str:
    env_id = os.environ.get(PARENT_ENV)
    if env_id:
        return env_id
    mlflow = _mlflow()
    key = invocation_key()
    if key is not None:
        runs = mlflow.MlflowClient().search_runs(
            [experiment_id], filter_string=f"tags.`{INVOCATION_TAG}` = '{key}'", max_results=1
        )
        if runs:
            return runs[0].info.run_id
    return start_parent_run(experiment_id, params, key or f"manual:{os.getpid()}:{time.time():.0f}",
                            project_dir)


def log_params(client, run_id: str, flat: dict) -> None:
    from mlflow.entities import Param

    params = [Param(k, str(v)[:6000]) for k, v in flat.items()]
    for start in range(0, len(params), 100):
        client.log_batch(run_id, params=params[start : start + 100])


class StageRun:
    """Handle given to a stage: log metrics, images and files to its nested run."""

    def __init__(self, client, run_id: str, parent_id: str):
        self.client = client
        self.run_id = run_id
        self.parent_id = parent_id
        self._pending: list = []  # log_step's metrics not sent yet

    def log_metrics(self, metrics: dict, step: int | None = None, prefix: str = "") -> None:
        entries = _metric_entries(metrics, step, prefix)
        for start in range(0, len(entries), BATCH):
            self.client.log_batch(self.run_id, metrics=entries[start : start + BATCH])

    def log_step(self, metrics: dict, step: int) -> None:
        """Per-step metrics (training losses), buffered: one MLflow request per BATCH metrics
        instead of one per step (each is a database transaction). Sent at the latest when the
        stage's run closes, also when it fails."""
        self._pending.extend(_metric_entries(metrics, step))
        if len(self._pending) >= BATCH:
            self.flush()

    def flush(self) -> None:
        pending, self._pending = self._pending, []
        for start in range(0, len(pending), BATCH):
            self.client.log_batch(self.run_id, metrics=pending[start : start + BATCH])

    def log_headline(self, metrics: dict) -> None:
        """Also put a stage's headline figures on the parent run, to compare pipeline runs."""
        StageRun(self.client, self.parent_id, self.parent_id).log_metrics(metrics)

    def log_params(self, params: dict) -> None:
        from wsss.params import flatten

        log_params(self.client, self.run_id, flatten(params))

    def log_image(self, image: np.ndarray, artifact_file: str) -> None:
        self.client.log_image(self.run_id, image, artifact_file=artifact_file)

    def log_artifact(self, path: str | Path, artifact_path: str | None = None) -> None:
        self.client.log_artifact(self.run_id, str(path), artifact_path)

    def set_tag(self, key: str, value: str) -> None:
        self.client.set_tag(self.run_id, key, value)


def _metric_entries(metrics: dict, step: int | None = None, prefix: str = "") -> list:
    from mlflow.entities import Metric

    now = int(time.time() * 1000)
    return [Metric(prefix + key, float(value), now, step or 0) for key, value in _flatten_numbers(metrics).items()]


def _flatten_numbers(tree: dict, prefix: str = "") -> dict:
    """Nested dict -> {"a.b": number}; non-numeric leaves (names, None) are skipped."""
    flat = {}
    for key, value in tree.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            flat.update(_flatten_numbers(value, name + "."))
        elif isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool):
            if np.isfinite(value):
                flat[name] = float(value)
    return flat


@contextlib.contextmanager
def stage_run(stage: str, params: dict, sections: list[str], project_dir: str | Path = ".") -> Iterator[StageRun]:
    """Open the nested MLflow run of one stage under its pipeline's parent run.

    Logs the stage's params sections, tags (stage, git commit, params hash) and marks the run
    (and the parent) FINISHED or FAILED.
    """
    from wsss.params import get_key, section_hash

    mlflow = _mlflow()
    experiment_id = configure(params["tracking"]["experiment"], project_dir)
    parent_id = find_or_start_parent(experiment_id, params, project_dir)
    client = mlflow.MlflowClient()
    client.update_run(parent_id, status="RUNNING")
    run = client.create_run(
        experiment_id,
        run_name=stage,
        tags={
            "mlflow.parentRunId": parent_id,
            "wsss.stage": stage,
            "wsss.kind": "stage",
            "wsss.git_commit": git_commit(project_dir),
            "wsss.params_hash": section_hash(params, sections),
        },
    )
    handle = StageRun(client, run.info.run_id, parent_id)
    handle.log_params({section: get_key(params, section) for section in sections})
    status = "FAILED"
    try:
        yield handle
        status = "FINISHED"
    finally:
        handle.flush()
        client.set_terminated(run.info.run_id, status)
        client.set_terminated(parent_id, status)


def finish_parent_run(run_id: str, success: bool) -> bool:
    """Close a parent run; delete it if no stage ran under it. Returns whether any stage ran."""
    client = _mlflow().MlflowClient()
    run = client.get_run(run_id)
    children = client.search_runs(
        [run.info.experiment_id], filter_string=f"tags.`mlflow.parentRunId` = '{run_id}'", max_results=1
    )
    if not children:
        client.delete_run(run_id)
        return False
    client.set_terminated(run_id, "FINISHED" if success else "FAILED")
    return True
