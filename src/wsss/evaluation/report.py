"""`wsss report`: the methods side by side, from the evaluation runs in MLflow.

Every evaluate stage tags its MLflow run with the method it scored (`wsss.method`): the seed
method (`cam`), a pseudo-mask chain (`cam+irn`, `cam+irn+ptrecl`) or a segmentation network with
the masks it learnt from (`cam+irn+ptrecl+deeplabv2`). The report takes the newest evaluation of
each method among the last `max_runs` runs of each evaluate stage (the current pipeline's, `dvc exp` runs'
and ablation rows' alike; only plain pipeline runs with `--pipelines-only`) and puts one row per
seeds method and per pseudo-mask chain:

    method | seeds mIoU | pseudo-mask mIoU | reclassification map mIoU | segmentation val mIoU |
    registered model | boundary F1 | co-occurrence | run

A chain's seeds mIoU is that of its seed method; its segmentation mIoU that of the newest network
trained on its masks, beside that network's Model Registry version (wsss.tracking.registry). Boundary F1 and co-occurrence are the row's own masks' (the seeds' for a
seeds row).

When the newest evaluation belongs to a replicate study (`wsss repro --replicates N`), each figure
is the mean over the study's replicates with its 95% t interval, ``mean ± half-width (n=N)``
(wsss.evaluation.statistics); otherwise the `runs` column says "single run". `flags` names the
guard rails' findings on the row's evaluations (tags `wsss.flags.<stage>`, wsss.evaluation.guards):
masks below a trivial baseline, a refinement below its input.
"""

from __future__ import annotations

import re
import tempfile
from dataclasses import dataclass
from pathlib import Path

from wsss.evaluation.metrics import format_table
from wsss.evaluation.statistics import Interval, over_seeds
from wsss.tracking.runs import REGISTERED_TAG

COLUMNS = ["method", "seeds mIoU", "pseudo-mask mIoU", "reclass. map mIoU", "segmentation val mIoU",
           "registered model", "boundary F1", "co-occurrence", "flags", "runs", "run"]
FLAGS_TAG = "wsss.flags."  # + the evaluated stage (seeds, refine, reclassification, ptrecl, segment)
_STAGES = {"evaluate_seeds": "seeds", "evaluate_refine": "refine", "evaluate_ptrecl": "ptrecl",
           "evaluate_segmentation": "segment"}
_NETWORK = re.compile(r"\+deeplab\w+$")


@dataclass(frozen=True)
class Evaluation:
    """One evaluate stage's run: which stage, which method, its metrics, when, under which run."""

    stage: str  # seeds | refine | ptrecl | segment
    method: str
    metrics: dict
    start_time: int
    run: str  # the DVC experiment or parent run it belongs to
    pipeline: bool = True  # under a plain pipeline run (not a DVC experiment, ablation row or sweep trial)
    registered: str | None = None  # a segmentation network's registry version, "<name>/<version>"
    group: str | None = None  # the replicate study (group run id) its run is a replicate of
    parent: str = ""  # its parent run's id (one replicate of a study)
    flags: tuple[str, ...] = ()  # "<stage>: <flag>, ..." from its run's tags (wsss.evaluation.guards)


def fetch_evaluations(client, experiment_id: str, max_runs: int = 200) -> list[Evaluation]:
    """The newest `max_runs` finished runs of each evaluate stage, newest first."""
    runs = []
    for stage in _STAGES:  # MLflow's search has no OR / IN on tags
        runs += client.search_runs(
            [experiment_id], filter_string=f"tags.`wsss.stage` = '{stage}' and attributes.status = 'FINISHED'",
            order_by=["attributes.start_time DESC"], max_results=max_runs)
    runs.sort(key=lambda run: run.info.start_time, reverse=True)
    parents: dict[str, tuple[str, bool, str | None]] = {}  # parent run id -> (name, plain pipeline run?, group)
    evaluations = []
    for run in runs:
        method = run.data.tags.get("wsss.method")
        if not method:  # logged before stages tagged their method
            continue
        parent_id = run.data.tags.get("mlflow.parentRunId", "")
        if parent_id and parent_id not in parents:
            parent = client.get_run(parent_id)
            experiment = parent.data.tags.get("wsss.dvc_experiment")
            plain = parent.data.tags.get("wsss.kind") == "pipeline" and not experiment
            group = parent.data.tags.get("mlflow.parentRunId") if parent.data.tags.get("wsss.kind") == "replicate" \
                else None
            parents[parent_id] = (experiment or parent.info.run_name, plain, group)
        name, plain, group = parents.get(parent_id, ("", False, None))
        evaluations.append(Evaluation(_STAGES[run.data.tags["wsss.stage"]], method, dict(run.data.metrics),
                                      run.info.start_time, name, plain, run.data.tags.get(REGISTERED_TAG), group,
                                      parent_id, _flags(run.data.tags)))
    return evaluations


def _flags(tags: dict) -> tuple[str, ...]:
    return tuple(f"{key[len(FLAGS_TAG):]}: {value}" for key, value in sorted(tags.items())
                 if key.startswith(FLAGS_TAG))


def report_rows(evaluations: list[Evaluation]) -> list[dict]:
    """One row per seeds method and pseudo-mask chain, from the newest evaluation of each."""
    newest: dict[tuple[str, str], Evaluation] = {}
    for item in sorted(evaluations, key=lambda e: e.start_time):
        newest[(item.stage, item.method)] = item
    segmentation: dict[str, Evaluation] = {}  # pseudo-mask chain -> newest network trained on it
    for (stage, method), item in newest.items():
        if stage == "segment":
            chain = _NETWORK.sub("", method)
            if chain not in segmentation or item.start_time > segmentation[chain].start_time:
                segmentation[chain] = item

    replicates: dict[tuple[str, str, str], dict[str, Evaluation]] = {}  # (stage, method, group) -> per replicate
    for item in sorted(evaluations, key=lambda e: e.start_time):
        if item.group:
            replicates.setdefault((item.stage, item.method, item.group), {})[item.parent] = item

    def figure(item: Evaluation | None, key: str) -> float | Interval | None:
        """The item's figure, or over its study's replicates the mean and interval."""
        if item is None:
            return None
        if item.group:
            values = [e.metrics[key] for e in replicates[(item.stage, item.method, item.group)].values()
                      if key in e.metrics]
            if len(values) >= 2:
                return over_seeds(values)
        return item.metrics.get(key)

    def miou(item: Evaluation | None, key: str = "miou"):
        return figure(item, key)

    rows = []
    for (stage, method), item in newest.items():
        if stage == "segment":
            continue
        seeds = newest.get(("seeds", method.split("+")[0]))
        rows.append({
            "method": method,
            "seeds mIoU": miou(seeds),
            "pseudo-mask mIoU": None if stage == "seeds" else miou(item),
            "reclass. map mIoU": miou(item, "map.miou") if stage == "ptrecl" else None,
            "segmentation val mIoU": miou(segmentation.get(method)),
            "registered model": getattr(segmentation.get(method), "registered", None),
            "boundary F1": figure(item, "boundary.f1"),
            "co-occurrence": figure(item, "cooccurrence.pairs_mean"),
            "flags": "; ".join(item.flags + getattr(segmentation.get(method), "flags", ())) or None,
            "runs": f"{len(replicates[(item.stage, item.method, item.group)])} seeds" if item.group else "single run",
            "run": item.run,
            "_order": (method.count("+"), method),
        })
    rows.sort(key=lambda r: r.pop("_order"))
    return rows


def plot_report(rows: list[dict], path: str | Path) -> None:
    """Grouped bars per method: seeds, pseudo-mask, reclassification map and segmentation mIoU."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    series = ["seeds mIoU", "pseudo-mask mIoU", "reclass. map mIoU", "segmentation val mIoU"]
    x = np.arange(len(rows))
    width = 0.8 / len(series)
    fig, ax = plt.subplots(figsize=(max(6.0, 1.4 * len(rows)), 4.0))
    for i, name in enumerate(series):
        values = [np.nan if r[name] is None else getattr(r[name], "estimate", r[name]) for r in rows]
        ax.bar(x + (i - (len(series) - 1) / 2) * width, values, width, label=name)
    ax.set_xticks(x, [r["method"] for r in rows], rotation=20, ha="right")
    ax.set_ylabel("mIoU")
    ax.set_ylim(0, 1)
    ax.legend(fontsize="small")
    ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def run_report(experiment: str, project_dir: str | Path = ".", max_runs: int = 200,
               pipelines_only: bool = False) -> str:
    """Build the report from MLflow, log it (markdown + plot) as a `wsss.kind=report` run, return
    the markdown. `pipelines_only`: leave out DVC experiments, ablation rows and sweep trials."""
    from wsss.tracking import runs as tracking

    mlflow = tracking._mlflow()
    experiment_id = tracking.configure(experiment, project_dir)
    client = mlflow.MlflowClient()
    evaluations = fetch_evaluations(client, experiment_id, max_runs)
    rows = report_rows([e for e in evaluations if e.pipeline or not pipelines_only])
    if not rows:
        return "no evaluation runs in MLflow yet: run `wsss repro` first"
    table = format_table([{k: v.format() if isinstance(v, Interval) else v for k, v in row.items()} for row in rows],
                         COLUMNS)
    run = client.create_run(experiment_id, run_name="report", tags={"wsss.kind": "report"})
    with tempfile.TemporaryDirectory() as tmp:
        (Path(tmp) / "report.md").write_text(table + "\n")
        plot_report(rows, Path(tmp) / "report.png")
        client.log_artifact(run.info.run_id, str(Path(tmp) / "report.md"))
        client.log_artifact(run.info.run_id, str(Path(tmp) / "report.png"))
    client.set_terminated(run.info.run_id, "FINISHED")
    return table
