"""Shared fixtures: a real MLflow sqlite database made once per session and copied per test."""

import shutil
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))  # the `pipeline` package lives at the project root


@pytest.fixture(scope="session")
def _mlflow_db_template(tmp_path_factory):
    import mlflow

    path = tmp_path_factory.mktemp("mlflow-template") / "mlflow.db"
    mlflow.MlflowClient(tracking_uri=f"sqlite:///{path}").search_experiments()  # runs migrations
    return path


@pytest.fixture
def mlflow_db(tmp_path, _mlflow_db_template, monkeypatch):
    """A fresh, migrated sqlite tracking database in tmp_path; MLFLOW_TRACKING_URI points at it."""
    path = tmp_path / "mlflow.db"
    shutil.copy(_mlflow_db_template, path)
    uri = f"sqlite:///{path}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    monkeypatch.delenv("WSSS_PARENT_RUN_ID", raising=False)
    return uri
