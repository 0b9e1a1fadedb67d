"""Shared fixtures: a real MLflow sqlite database made once per session and copied per test, and
the tiny project of the end-to-end tests: fresh copies, and copies of the one `wsss repro` of it
run per session, started in the background as soon as a selected test needs it
(tests/helpers/ has the plain functions they use)."""

import shutil
import sys
import tempfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))  # the `pipeline` package lives at the project root

from tests.helpers.background import BackgroundRun, TinyRun  # noqa: E402
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


# The session's shared runs of the whole tiny pipeline, by fixture name: started in the background
# once the tests are collected, if a selected test needs them, so the tests before it run meanwhile.
SHARED_RUNS = ("tiny_run", "second_tiny_run")
_RUNS = pytest.StashKey[dict]()


def _start_shared_run(config, name: str) -> BackgroundRun:
    runs = config.stash.setdefault(_RUNS, {})
    if name not in runs:
        factory = getattr(config, "_tmp_path_factory", None)  # pytest's tmp_path_factory (its folders)
        base = factory.mktemp(name.replace("_", "-")) if factory else Path(tempfile.mkdtemp(prefix=f"wsss-{name}-"))
        runs[name] = BackgroundRun(base / "project")
    return runs[name]


def pytest_collection_finish(session):
    if session.config.option.collectonly:
        return
    for name in SHARED_RUNS:
        if any(name in getattr(item, "fixturenames", ()) for item in session.items):
            _start_shared_run(session.config, name)


def pytest_sessionfinish(session):
    for background in session.config.stash.get(_RUNS, {}).values():
        background.stop()


@pytest.fixture(scope="session")
def tiny_run(request) -> TinyRun:
    """`wsss repro` of the tiny project from scratch, once per session: every stage run, its
    outputs, dvc.lock, DVC's cache and run-cache, and the MLflow runs in the project's own store
    (one pipeline run, a registered model). Never changed: tests use a copy (finished_project)."""
    return _start_shared_run(request.config, "tiny_run").result()


@pytest.fixture(scope="session")
def second_tiny_run(request) -> TinyRun:
    """Another `wsss repro` of the tiny project from scratch, in another copy (no outputs, no DVC
    cache: every stage runs), at the same time as tiny_run (test_reproducible compares them)."""
    return _start_shared_run(request.config, "second_tiny_run").result()


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
