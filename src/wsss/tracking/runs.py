"""The one place that talks to MLflow.

Layout of runs: one *parent* run per pipeline invocation and one nested run per stage. DVC runs
each stage as its own process, so a stage finds its parent run in this order:

1. ``WSSS_PARENT_RUN_ID`` in the environment (set by ``wsss repro`` and by sweeps);
2. the run tagged with this invocation's key: the process id and start time of the ``dvc``
   process that launched the stage (so a plain ``dvc repro`` groups its stages too);
3. otherwise (a stage script run by hand) a new parent run for just this stage.

Default tracking: a sqlite database ``mlflow.db`` in the project with artifacts under
``mlruns/``, kept inside the project when it is moved or copied (``keep_artifacts_inside``);
``MLFLOW_TRACKING_URI`` switches to a shared server (or any store, used as it is).
"""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Iterator

import numpy as np

from wsss.core.params import Params
from wsss.tracking.data_version import data_tags
from wsss.tracking.system_metrics import system_metrics
from wsss.tools.dvc_command import MODULE as DVC_MODULE

PARENT_ENV = "WSSS_PARENT_RUN_ID"
INVOCATION_TAG = "wsss.invocation"
OWNER_TAG = "wsss.owner"  # the process that must close the run (wsss.core.processes.owner_id)
ORPHANED_TAG = "wsss.orphaned"  # why a run was closed by another process than its owner
STOPPED_TAG = "wsss.stopped"  # why a run was stopped: a signal to its driver, its driver's death
# MLflow's experiment kind: our runs are model training, not GenAI traces (the UI of MLflow versions
# without a browser-wide "workflow type" opens an experiment's view from it; see README).
EXPERIMENT_KIND_TAG = "mlflow.experimentKind"
MODEL_TRAINING = "custom_model_development"
UI_WORKFLOW = "machine_learning"
REGISTERED_TAG = "wsss.registered_model"  # a run's network in the Model Registry: "<name>/<version>"
RESTORED_TAG = "wsss.restored"  # a stage run recorded from its outputs: DVC did not run the stage
COMPUTED_BY_TAG = "wsss.computed_by"  # a restored run's link: the run that computed its outputs
DB_FILE = "mlflow.db"
ARTIFACT_DIR = "mlruns"
BATCH = 500  # metrics per MLflow request (the store's log_batch limit is 1000)
FLUSH_SECONDS = 30.0  # training losses reach MLflow at least this often while steps come


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
    import logging

    import mlflow  # imported lazily: it costs seconds, and the library must work without it

    # MLflow logs a store error with its whole traceback and then raises it; the raised error is
    # ours to report (a full disk in one sentence: wsss.core.errors.disk_full), once.
    logging.getLogger("mlflow.store.db.utils").setLevel(logging.CRITICAL)
    return mlflow


def configure(experiment: str, project_dir: str | Path = ".") -> str:
    """Point MLflow at the project's store and return the experiment id (created if needed)."""
    mlflow = _mlflow()
    uri = use_project_store(project_dir)
    client = mlflow.MlflowClient()
    found = client.get_experiment_by_name(experiment)
    if found is None:
        location = _sqlite_artifact_location(uri)
        try:
            found = client.get_experiment(client.create_experiment(experiment, artifact_location=location))
        except Exception:  # created concurrently by another process
            found = client.get_experiment_by_name(experiment)
            if found is None:
                raise
    if found.tags.get(EXPERIMENT_KIND_TAG) != MODEL_TRAINING:
        client.set_experiment_tag(found.experiment_id, EXPERIMENT_KIND_TAG, MODEL_TRAINING)
    return found.experiment_id


def use_project_store(project_dir: str | Path = ".") -> str:
    """Point MLflow at the project's store (or the user's MLFLOW_TRACKING_URI); returns its URI."""
    uri = tracking_uri(project_dir)
    user_uri = os.environ.get("MLFLOW_TRACKING_URI")
    if not user_uri:
        keep_artifacts_inside(tracking_root(project_dir))
    _mlflow().set_tracking_uri(uri)
    if not user_uri:  # MLflow also exports it: keep telling "the project's own store" from "the user's"
        os.environ.pop("MLFLOW_TRACKING_URI", None)
    return uri


def _sqlite_artifact_location(uri: str) -> str | None:
    """Artifacts of a sqlite store go beside its database (MLflow's default: the current folder)."""
    if not uri.startswith("sqlite:///"):
        return None
    return (Path(uri[len("sqlite:///"):]).resolve().parent / ARTIFACT_DIR).as_uri()


# `mlflow ui` sized for a laptop: one worker (its default is 4) and no job consumers (MLflow's
# GenAI evaluation jobs, 7 processes this project never uses): 530 MB instead of 2.9 GB, measured.
UI_ENV = {"MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"}


def ui_command(mlflow_bin: str | Path, store_uri: str, host: str = "127.0.0.1", port: int = 5000) -> list[str]:
    """The `mlflow ui` command line for the store `store_uri` (run it with UI_ENV)."""
    return [str(mlflow_bin), "ui", "--backend-store-uri", store_uri, "--host", host, "--port", str(port),
            "--workers", "1"]


def experiment_url(server: str, experiment_id: str) -> str:
    """The experiment's runs in the MLflow UI. MLflow 3.17's UI chooses between its GenAI view
    (traces) and its model-training view (runs) by a browser-wide "workflow type", GenAI unless
    the URL or an earlier click on "Model training" says otherwise; the URL says so."""
    return f"{server}/#/experiments/{experiment_id}/runs?workflowType={UI_WORKFLOW}"


def keep_artifacts_inside(root: Path) -> None:
    """Make the project's own store (``mlflow.db``) point at the project's own ``mlruns/``.

    MLflow records absolute artifact paths (each experiment's location, each run's artifact URI),
    so a moved or copied project would keep reading and writing the original's ``mlruns/``.
    Locations that end in ``.../mlruns`` or ``.../mlruns/<experiment id>`` and are not this
    project's are rewritten to it, in the tables of experiments, runs, logged models and registered
    model versions (MLflow has no API to change an artifact location); the copy's ``mlruns/``
    holds the copied artifacts.
    """
    import sqlite3

    db = root / DB_FILE
    if not db.exists():
        return
    with contextlib.closing(sqlite3.connect(db, timeout=60)) as con, con:
        tables = {row[0] for row in con.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        if not {"experiments", "runs"} <= tables:
            return
        for experiment_id, location in con.execute("SELECT experiment_id, artifact_location FROM experiments").fetchall():
            moved = _moved_artifact_root(location or "", str(experiment_id), root / ARTIFACT_DIR)
            if moved is None:
                continue
            old, new = moved
            print(f"{db.name}: artifact paths {old} -> {new} (the project was moved or copied)", file=sys.stderr)
            con.execute("UPDATE experiments SET artifact_location = ? || substr(artifact_location, ?) "
                        "WHERE experiment_id = ?", (new, len(old) + 1, experiment_id))
            for table, column in (("runs", "artifact_uri"), ("logged_models", "artifact_location")):
                if table in tables:
                    con.execute(f"UPDATE {table} SET {column} = ? || substr({column}, ?) "
                                f"WHERE experiment_id = ? AND substr({column}, 1, ?) = ?",
                                (new, len(old) + 1, experiment_id, len(old), old))
            if "model_versions" in tables:  # registered versions keep a copy of their model's location
                con.execute("UPDATE model_versions SET storage_location = ? || substr(storage_location, ?) "
                            "WHERE substr(storage_location, 1, ?) = ?", (new, len(old) + 1, len(old), old))


def _moved_artifact_root(location: str, experiment_id: str, artifacts: Path) -> tuple[str, str] | None:
    """(old prefix, new prefix) when ``location`` is an ``mlruns`` folder other than ``artifacts``."""
    from urllib.parse import unquote, urlparse

    is_uri = location.startswith("file:")
    path = Path(unquote(urlparse(location).path) if is_uri else location)
    if not path.is_absolute():
        return None
    if path.name == ARTIFACT_DIR:
        old = location.rstrip("/")
    elif path.parent.name == ARTIFACT_DIR and path.name == experiment_id:
        old, path = location.rstrip("/").rsplit("/", 1)[0], path.parent
    else:
        return None
    if path == artifacts:
        return None
    return old, artifacts.as_uri() if is_uri else artifacts.as_posix()


def git_commit(project_dir: str | Path = ".") -> str:
    """HEAD's sha, with ``-dirty`` when a tracked file other than what DVC writes differs from it."""
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD", "--show-prefix"], cwd=project_dir,
                             capture_output=True, text=True, timeout=10)
        lines = out.stdout.splitlines()
        if out.returncode != 0 or not lines:
            return "unknown"
        commit, prefix = lines[0].strip(), (lines[1] if len(lines) > 1 else "")
        status = subprocess.run(
            ["git", "status", "--porcelain", "-z", "--untracked-files=no"],
            cwd=project_dir, capture_output=True, text=True, timeout=10,
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    written = dvc_written_paths(project_dir)
    edited = [path for path in _status_paths(status)
              if not (path.startswith(prefix) and _dvc_writes(path[len(prefix):], written))]
    return commit + ("-dirty" if edited else "")


def _status_paths(porcelain_z: str) -> list[str]:
    """Paths of `git status --porcelain -z` (a rename's entry is followed by its old path)."""
    entries, paths = porcelain_z.split("\0"), []
    i = 0
    while i < len(entries):
        entry = entries[i]
        if len(entry) > 3:
            paths.append(entry[3:])
            if entry[0] in "RC":
                i += 1  # the old path of a rename or copy
        i += 1
    return paths


def dvc_written_paths(project_dir: str | Path = ".") -> list[str]:
    """What `dvc repro` itself writes into git-tracked files: every stage's outputs (metrics files
    kept in git) besides dvc.lock and the .gitignore files DVC keeps (see _dvc_writes)."""
    from wsss.core.dvcfile import pipeline
    from wsss.core.errors import WsssError

    try:
        return pipeline(project_dir).written_paths()
    except WsssError:
        return []


def _dvc_writes(path: str, outputs: list[str]) -> bool:
    name = Path(path).name
    return (name in ("dvc.lock", ".gitignore") or
            any(path == out or path.startswith(out + "/") for out in outputs))


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
                len(cmdline) > 2 and cmdline[1:3] in (["-m", "dvc"], ["-m", DVC_MODULE])
            ):
                return f"dvc:{socket.gethostname()}:{process.pid}:{process.create_time():.0f}"
    except psutil.Error:
        return None
    return None


def start_parent_run(experiment_id: str, params: Params, key: str, project_dir: str | Path = ".",
                     name: str | None = None, owner: str | None = None) -> str:
    """Create a parent run for one pipeline invocation and return its id; ``owner`` is the
    process that closes it (default: this one)."""
    from wsss.core.params import flatten, section_hash
    from wsss.core.processes import owner_id

    client = _mlflow().MlflowClient()
    run = client.create_run(
        experiment_id,
        run_name=name or time.strftime("pipeline %Y-%m-%d %H:%M:%S"),
        tags={
            INVOCATION_TAG: key,
            OWNER_TAG: owner or owner_id(),
            "wsss.kind": "pipeline",
            "wsss.dvc_experiment": os.environ.get("DVC_EXP_NAME", ""),
            "wsss.git_commit": git_commit(project_dir),
            "wsss.params_hash": section_hash(params, list(type(params).model_fields)),
            **data_tags(project_dir, params.dataset.root),
        },
    )
    run_id = run.info.run_id
    log_params(client, run_id, flatten(params.dump()))
    return run_id


def find_or_start_parent(experiment_id: str, params: Params, project_dir: str | Path = ".") -> tuple[str, bool]:
    """The stage's parent run, and whether a driver (wsss repro, a sweep, a replicate study)
    holds it, or else the dvc process (found by its invocation key) or this stage itself."""
    env_id = os.environ.get(PARENT_ENV) or queued_replicate_run(experiment_id)
    if env_id:
        return env_id, True
    mlflow = _mlflow()
    key = invocation_key()
    if key is not None:
        runs = mlflow.MlflowClient().search_runs(
            [experiment_id], filter_string=f"tags.`{INVOCATION_TAG}` = '{key}'", max_results=1
        )
        if runs:
            return runs[0].info.run_id, False
    return start_parent_run(experiment_id, params, key or f"manual:{os.getpid()}:{time.time():.0f}",
                            project_dir, owner=_dvc_owner(key)), False


def queued_replicate_run(experiment_id: str) -> str | None:
    """The replicate run that holds this DVC experiment's stages when it runs from DVC's queue: a
    queue worker does not pass our environment on, only the experiment's name (DVC_EXP_NAME); the
    replicate's run is the newest one tagged with that name whose driver (the run's owner) still
    runs, so that a user's own later experiment of the same name gets a run of its own."""
    from wsss.core.processes import owner_gone

    name = os.environ.get("DVC_EXP_NAME")
    if not name:
        return None
    runs = _mlflow().MlflowClient().search_runs(
        [experiment_id], filter_string=f"tags.`wsss.dvc_experiment` = '{name}' and tags.`wsss.kind` = 'replicate'",
        order_by=["attributes.start_time DESC"], max_results=1)
    if not runs or owner_gone(runs[0].data.tags.get(OWNER_TAG, "")):
        return None
    return runs[0].info.run_id


def _dvc_owner(key: str | None) -> str | None:
    """The owner name (wsss.core.processes) of the dvc process an invocation key names: a plain
    `dvc repro`'s parent run lives as long as dvc, not as the stage that created it."""
    if key is None:
        return None
    _, host, pid, start = key.split(":")
    return f"{pid}-{start}@{host}"


def close_orphaned_runs(experiment_id: str) -> list[str]:
    """Close the RUNNING runs of the experiment whose owner process on this host is gone (a
    SIGKILL, a crash, a power cut): status KILLED, tag wsss.orphaned saying why. Runs of
    running processes, of other hosts and without an owner (sweeps) are left alone."""
    from wsss.core.processes import owner_gone, owner_id

    client = _mlflow().MlflowClient()
    closed = []
    for run in client.search_runs([experiment_id], filter_string="attributes.status = 'RUNNING'",
                                  max_results=1000):
        owner = run.data.tags.get(OWNER_TAG)
        if owner and owner_gone(owner):
            client.set_tag(run.info.run_id, ORPHANED_TAG,
                           f"its process {owner} ended without closing it (killed); closed by {owner_id()}")
            client.set_terminated(run.info.run_id, "KILLED")
            closed.append(run.info.run_id)
    return closed


def last_pipeline_unfinished(experiment_id: str) -> str | None:
    """A sentence about the newest pipeline run when it did not finish (FAILED or KILLED, and
    why), for the next run to say what it found; None when it finished or there is none."""
    client = _mlflow().MlflowClient()
    runs = client.search_runs([experiment_id], filter_string="tags.`wsss.kind` = 'pipeline'",
                              order_by=["attributes.start_time DESC"], max_results=1)
    if not runs or runs[0].info.status in ("FINISHED", "RUNNING"):
        return None
    run = runs[0]
    stages = {r.data.tags.get("wsss.stage"): r.info.status for r in stage_runs(run.info.run_id)}
    unfinished = sorted(stage for stage, status in stages.items() if status != "FINISHED")
    why = run.data.tags.get(STOPPED_TAG) or run.data.tags.get(ORPHANED_TAG) or "a stage failed"
    return (f"the last pipeline run '{run.info.run_name}' ({run.info.run_id}) ended {run.info.status}: {why}; "
            f"{len(stages) - len(unfinished)} stage(s) finished" +
            (f", not {', '.join(unfinished)}" if unfinished else "") + "; DVC reruns only what it lacks")


def stop_parent_run(run_id: str, reason: str) -> None:
    """Close a parent run whose pipeline was stopped (a signal): KILLED, tag wsss.stopped."""
    client = _mlflow().MlflowClient()
    client.set_tag(run_id, STOPPED_TAG, reason)
    client.set_terminated(run_id, "KILLED")


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
        self._sent = time.monotonic()  # when log_step's metrics were last sent

    def log_metrics(self, metrics: dict, step: int | None = None, prefix: str = "") -> None:
        entries = _metric_entries(metrics, step, prefix)
        for start in range(0, len(entries), BATCH):
            self.client.log_batch(self.run_id, metrics=entries[start : start + BATCH])

    def log_step(self, metrics: dict, step: int) -> None:
        """Per-step metrics (training losses), buffered: one MLflow request per BATCH metrics
        or per FLUSH_SECONDS, whichever comes first, instead of one per step (each is a database
        transaction). Sent at the latest when the stage's run closes, also when it fails."""
        self._pending.extend(_metric_entries(metrics, step))
        if len(self._pending) >= BATCH or time.monotonic() - self._sent >= FLUSH_SECONDS:
            self.flush()

    def flush(self) -> None:
        pending, self._pending = self._pending, []
        self._sent = time.monotonic()
        for start in range(0, len(pending), BATCH):
            self.client.log_batch(self.run_id, metrics=pending[start : start + BATCH])

    def log_headline(self, metrics: dict) -> None:
        """Also put a stage's headline figures on the parent run, to compare pipeline runs."""
        StageRun(self.client, self.parent_id, self.parent_id).log_metrics(metrics)

    def log_params(self, params: dict) -> None:
        from wsss.core.params import flatten

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
def stage_run(stage: str, params: Params, sections: list[str], project_dir: str | Path = ".") -> Iterator[StageRun]:
    """Open the nested MLflow run of one stage under its pipeline's parent run.

    Logs the stage's params sections, tags (stage, git commit, params hash, owner process) and
    marks the run (and the parent) FINISHED, FAILED or, when a signal stopped it, KILLED. Runs
    that killed processes left RUNNING are closed first (close_orphaned_runs).
    """
    mlflow = _mlflow()
    experiment_id = configure(params.tracking.experiment, project_dir)
    close_orphaned_runs(experiment_id)
    parent_id, driver_closes_parent = find_or_start_parent(experiment_id, params, project_dir)
    client = mlflow.MlflowClient()
    client.update_run(parent_id, status="RUNNING")
    handle = _create_stage_run(client, experiment_id, parent_id, stage, params, sections, project_dir)
    status = "FAILED"
    try:
        with system_metrics(handle.run_id):
            yield handle
        status = "FINISHED"
    except (KeyboardInterrupt, SystemExit):  # a signal (wsss.stages.common.run_main turns SIGTERM into SystemExit)
        status = "KILLED"
        raise
    finally:
        _close_stage_run(client, handle, parent_id, stage, status, driver_closes_parent)


def _close_stage_run(client, handle: StageRun, parent_id: str, stage: str, status: str,
                     driver_closes_parent: bool) -> None:
    """End a stage's run, and its parent's unless the stage finished under a driver (wsss repro, a
    sweep, a replicate study), which closes the parent itself once the whole pipeline has run: a
    parent is never FINISHED while stages are still to come. A store that cannot be written (a
    full disk) is said in one line, not a traceback over the stage's own error."""
    from wsss.core.processes import stop_reason

    try:
        handle.flush()
        reason = stop_reason()
        if status == "KILLED" and reason:
            client.set_tag(handle.run_id, STOPPED_TAG, reason)
            client.set_tag(parent_id, STOPPED_TAG, f"{stage} stopped: {reason}")
        client.set_terminated(handle.run_id, status)
        if status != "FINISHED" or not driver_closes_parent:
            client.set_terminated(parent_id, status)
    except Exception as exc:  # the stage's own outcome (and its error) must still reach the user
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        print(f"MLflow: could not record {stage}'s end as {status} ({first}); the next run closes it",
              file=sys.stderr)


@contextlib.contextmanager
def restored_stage_run(experiment_id: str, parent_id: str, stage: str, params: Params, sections: list[str],
                       project_dir: str | Path = ".") -> Iterator[StageRun]:
    """The run of a stage DVC did not run (up to date, or restored from its run-cache), tagged
    ``wsss.restored=true``; the caller logs the figures it reads from the stage's outputs."""
    from wsss.core.params import section_hash

    client = _mlflow().MlflowClient()
    computed_by = _computing_run(client, experiment_id, stage, section_hash(params, sections))
    tags = {RESTORED_TAG: "true"}
    if computed_by is not None:  # its curves, images and models are there
        tags[COMPUTED_BY_TAG] = computed_by.info.run_id
        tags["mlflow.note.content"] = (
            f"Restored by DVC, not run: its outputs were computed by run [{computed_by.info.run_name} "
            f"{computed_by.info.run_id[:8]}](#/experiments/{computed_by.info.experiment_id}/runs/"
            f"{computed_by.info.run_id}), which has its training curves, images and models.")
    handle = _create_stage_run(client, experiment_id, parent_id, stage, params, sections, project_dir, tags)
    status = "FAILED"
    try:
        yield handle
        status = "FINISHED"
    finally:
        client.set_terminated(handle.run_id, status)


def _computing_run(client, experiment_id: str, stage: str, params_hash: str):
    """The newest run that ran `stage` (not restored) with the same params sections: the one whose
    outputs DVC restores (same params; the code may have moved on without changing them), or None."""
    runs = client.search_runs(
        [experiment_id], filter_string=f"tags.`wsss.stage` = '{stage}' and tags.`wsss.params_hash` = '{params_hash}' "
                                       "and attributes.status = 'FINISHED'",
        order_by=["attributes.start_time DESC"], max_results=50)
    return next((run for run in runs if run.data.tags.get(RESTORED_TAG) != "true"), None)


def _create_stage_run(client, experiment_id: str, parent_id: str, stage: str, params: Params, sections: list[str],
                      project_dir: str | Path, extra_tags: dict | None = None) -> StageRun:
    from wsss.core.params import section_hash
    from wsss.core.processes import owner_id

    run = client.create_run(
        experiment_id,
        run_name=stage,
        tags={
            "mlflow.parentRunId": parent_id,
            "wsss.stage": stage,
            "wsss.kind": "stage",
            OWNER_TAG: owner_id(),
            "wsss.git_commit": git_commit(project_dir),
            "wsss.params_hash": section_hash(params, sections),
            **data_tags(project_dir, params.dataset.root),
            **(extra_tags or {}),
        },
    )
    handle = StageRun(client, run.info.run_id, parent_id)
    handle.log_params({section: params.dump(section) for section in sections})
    return handle


def stage_runs(run_id: str) -> list:
    """The stage runs nested under a parent run."""
    client = _mlflow().MlflowClient()
    experiment_id = client.get_run(run_id).info.experiment_id
    return client.search_runs([experiment_id], filter_string=f"tags.`mlflow.parentRunId` = '{run_id}'")


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
