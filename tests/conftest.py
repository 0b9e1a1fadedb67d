"""Shared fixtures: a real MLflow sqlite database made once per session and copied per test, and
the tiny project of the end-to-end tests: fresh copies, and copies of the one `wsss repro` of it
run per session, started in the background as soon as a selected test needs it
(tests/helpers/ has the plain functions they use)."""

import shutil
import subprocess
import sys
from pathlib import Path
from typing import NamedTuple

import pytest

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))  # the `pipeline` package lives at the project root

from tests.helpers.background import background_job, job_rank, jobs_needed, scheduler  # noqa: E402
from tests.helpers.project import Project, copy_project, make_project  # noqa: E402


@pytest.fixture(scope="session")
def _mlflow_db_template(tmp_path_factory):
    import mlflow

    path = tmp_path_factory.mktemp("mlflow-template") / "mlflow.db"
    mlflow.MlflowClient(tracking_uri=f"sqlite:///{path}").search_experiments()  # runs migrations
    return path


@pytest.fixture
def mlflow_db(tmp_path, _mlflow_db_template, monkeypatch):
    """A fresh, migrated sqlite tracking database in tmp_path; MLFLOW_TRACKING_URI points at it
    (in this process too: a URI an earlier test's in-process `wsss` command set with
    mlflow.set_tracking_uri, which outranks the variable, is cleared for the test)."""
    path = tmp_path / "mlflow.db"
    shutil.copy(_mlflow_db_template, path)
    uri = f"sqlite:///{path}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    monkeypatch.setattr("mlflow.tracking._tracking_service.utils._tracking_uri", None)
    monkeypatch.delenv("WSSS_PARENT_RUN_ID", raising=False)
    return uri


@pytest.fixture
def _own_store(monkeypatch):
    """No MLFLOW_TRACKING_URI nor parent run in this process: a project's runs go to its own store."""
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.delenv("WSSS_PARENT_RUN_ID", raising=False)


@pytest.fixture
def tiny_project(tmp_path, _mlflow_db_template, _own_store) -> Project:
    """A fresh copy of the project with the tiny params in its own git repo; nothing run yet. Its
    runs go to its own store, ``tiny_project.uri`` (an empty one there already)."""
    return make_project(tmp_path / "project", store=_mlflow_db_template)


class TinyRun(NamedTuple):
    """A finished `wsss repro` of the tiny project from scratch: its folder and what it printed."""

    path: Path
    output: str  # stdout and stderr


def _tiny_run(job) -> TinyRun:
    project = make_project(job.folder / "project", environ=job.environ)
    done = job.run(["wsss", "repro"], project.path, project.env)
    return TinyRun(project.path, done.stdout + done.stderr)


@background_job(rank=0)
def tiny_run(job) -> TinyRun:
    """`wsss repro` of the tiny project from scratch, once per session (in the background): every
    stage run, its outputs, dvc.lock, DVC's cache and run-cache, and the MLflow runs in the
    project's own store (one pipeline run, a registered model). Never changed: tests use a copy
    (finished_project)."""
    return _tiny_run(job)


@background_job(rank=0)
def second_tiny_run(job) -> TinyRun:
    """Another `wsss repro` of the tiny project from scratch, in another copy (no outputs, no DVC
    cache: every stage runs), at the same time as tiny_run (test_reproducible compares them)."""
    return _tiny_run(job)


@background_job(after=("tiny_run",))
def replicate_study(job) -> tuple[Project, subprocess.CompletedProcess]:
    """`wsss repro --replicates 2 --jobs 2 evaluate_seeds` in a copy of the finished tiny project
    (the classifier's stages: what a seed changes first), both replicates from DVC's queue;
    tests/test_replicates.py checks it, and the confirmed sweep of tests/test_sweep.py (one
    replicate at a time) starts from it (seed 1's classifier in its run-cache)."""
    project = copy_project(job.result("tiny_run").path, job.folder / "project", job.environ)
    return project, job.run(["wsss", "repro", "--replicates", "2", "--jobs", "2", "evaluate_seeds"], project.path,
                            project.env)


def pytest_collection_modifyitems(items):
    """The tests that need no background job first, then by the ranks of the jobs they need (in
    file order within each group): the jobs run while the tests before theirs do."""
    items.sort(key=job_rank)


def pytest_collection_finish(session):
    if session.config.option.collectonly:
        return
    needed = {name for item in session.items for name in jobs_needed(item)}
    if needed:
        scheduler(session.config).queue(needed)


def pytest_sessionfinish(session):
    scheduler(session.config).stop()


@pytest.fixture
def finished_project(tiny_run, tmp_path, _own_store) -> Project:
    """A copy of the session's finished tiny project (tiny_run), its own to change: outputs, git,
    DVC cache and run-cache, and its MLflow store (artifact paths moved to the copy)."""
    return copy_project(tiny_run.path, tmp_path / "project")


@pytest.fixture
def synthesized_project(tiny_run, tiny_project) -> Project:
    """A fresh tiny project (nothing in dvc.lock, no MLflow run) holding the synthetic data set
    its `synthesize` stage writes, taken from the session's run."""
    synthetic = "data/synthetic"
    shutil.copytree(tiny_run.path / synthetic, tiny_project.path / synthetic)
    return tiny_project
