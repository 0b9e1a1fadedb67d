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

from tests.helpers.background import (  # noqa: E402
    Background, BackgroundScaleBenchmark, BackgroundTinyRun, TinyRun)
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


# Long runs shared by the tests, by the name of the fixture that gives their result, in the order
# they start: queued once the tests are collected, if a selected test needs them, and run in the
# background two at a time (each keeps about one of two cores busy). The tests that need none run
# first, meanwhile; the others follow in the same order as the runs.
BACKGROUND = {"tiny_run": BackgroundTinyRun, "second_tiny_run": BackgroundTinyRun,
              "scale_benchmark": BackgroundScaleBenchmark}
_JOBS = pytest.StashKey[Background]()


def _jobs(config) -> Background:
    if _JOBS not in config.stash:
        config.stash[_JOBS] = Background(slots=2)
    return config.stash[_JOBS]


def _starter(config, name: str):
    def start():
        factory = getattr(config, "_tmp_path_factory", None)  # tmp_path_factory's (its folders, kept as theirs)
        folder = factory.mktemp(name.replace("_", "-")) if factory else Path(tempfile.mkdtemp(prefix=f"wsss-{name}-"))
        return BACKGROUND[name](folder)
    return start


def _needs(item) -> int:
    """1 + the index in BACKGROUND of the last run the test needs; 0 for none."""
    names = list(BACKGROUND)
    return max((1 + names.index(n) for n in getattr(item, "fixturenames", ()) if n in BACKGROUND), default=0)


def pytest_collection_modifyitems(items):
    items.sort(key=_needs)  # stable: in file order within each group


def pytest_collection_finish(session):
    if session.config.option.collectonly:
        return
    for name in BACKGROUND:
        if any(name in getattr(item, "fixturenames", ()) for item in session.items):
            _jobs(session.config).add(name, _starter(session.config, name))


def pytest_sessionfinish(session):
    if _JOBS in session.config.stash:
        session.config.stash[_JOBS].stop()


def _result(request, name: str):
    return _jobs(request.config).result(name, _starter(request.config, name))


@pytest.fixture(scope="session")
def tiny_run(request) -> TinyRun:
    """`wsss repro` of the tiny project from scratch, once per session: every stage run, its
    outputs, dvc.lock, DVC's cache and run-cache, and the MLflow runs in the project's own store
    (one pipeline run, a registered model). Never changed: tests use a copy (finished_project)."""
    return _result(request, "tiny_run")


@pytest.fixture(scope="session")
def second_tiny_run(request) -> TinyRun:
    """Another `wsss repro` of the tiny project from scratch, in another copy (no outputs, no DVC
    cache: every stage runs), at the same time as tiny_run (test_reproducible compares them)."""
    return _result(request, "second_tiny_run")


@pytest.fixture(scope="session")
def scale_benchmark(request) -> dict:
    """`python benchmarks/bench_scale.py` on tiny settings (helpers.background.SCALE_BENCHMARK_ARGS),
    started after the tiny runs: what it wrote to its --out file."""
    return _result(request, "scale_benchmark")


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
