"""Reading what the end-to-end tests logged to an MLflow store."""

from __future__ import annotations

import mlflow


def all_runs(uri: str, filter_string: str = "") -> list:
    """The runs of experiment 'wsss', oldest first; none when it does not exist."""
    client = mlflow.MlflowClient(tracking_uri=uri)
    experiment = client.get_experiment_by_name("wsss")
    if experiment is None:
        return []
    return client.search_runs([experiment.experiment_id], filter_string,
                              order_by=["attributes.start_time ASC"], max_results=5000)


def pipeline_runs(uri: str):
    """(client, the pipeline parent runs oldest first, {parent run id: its stage runs})."""
    runs = all_runs(uri)
    parents = [r for r in runs if r.data.tags.get("wsss.kind") == "pipeline"]
    children = {p.info.run_id: [r for r in runs if r.data.tags.get("mlflow.parentRunId") == p.info.run_id]
                for p in parents}
    return mlflow.MlflowClient(tracking_uri=uri), parents, children


def stage_runs(uri: str, stage: str) -> list:
    return [run for run in all_runs(uri) if run.data.tags.get("wsss.stage") == stage]


def model_versions(uri: str, name: str = "wsss-segmenter") -> list:
    """The registered versions of model ``name``, oldest first."""
    client = mlflow.MlflowClient(tracking_uri=uri)
    return sorted(client.search_model_versions(f"name = '{name}'"), key=lambda v: int(v.version))
