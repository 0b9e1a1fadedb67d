"""`wsss repro --replicates N`: the pipeline once per `project.seed` = 0..N-1, and each figure's
mean with its 95% interval over the seeds, and the paired differences along the chain.

Each replicate is a DVC experiment (`dvc exp run --temp -n replicate-seed-K -S project.seed=K`),
so it keeps its own metrics in its git ref and shows in `dvc exp show`. Stages that do not read
`project.seed` (e.g. `synthesize`, dvc.yaml's params say which) have the same deps in every
replicate: DVC runs them once and takes the others from its run-cache. A replicate whose params
equal the workspace's (seed 0 with the default params) comes back whole from the run-cache.

MLflow: one group run (tag wsss.kind=replicates) with one child run per replicate (wsss.kind=
replicate), each the parent of that replicate's stage runs; the aggregates go on the group run as
``<figure>_mean``, ``_ci_low``, ``_ci_high``, ``_n``. On disk: ``metrics/replicates.json`` (the same
numbers, for `dvc metrics show metrics/replicates.json`) and ``results/replicates.md``.

`wsss verify` (``verify``) checks one run's figures against the committed study: each should fall
inside its 95% prediction interval, where one more replicate falls. This is the reproduction
check across machines; bit-for-bit equality of dvc.lock holds only on the same instruction set.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from wsss.core.dvcfile import pipeline
from wsss.core.errors import WsssError
from wsss.core.io import atomic_path, write_json
from wsss.evaluation import statistics
from wsss.evaluation.metrics import format_table
from wsss.sweep import experiments

STUDY_METRICS = "metrics/replicates.json"
STUDY_TABLE = "results/replicates.md"
# Figures of each evaluate stage's metrics file (dotted keys), as the results table shows them.
FIGURES = {"miou": "mIoU", "boundary.f1": "boundary F1", "cooccurrence.pairs_mean": "co-occurrence"}
# The headline orderings: (reference, other) metrics files' stems; other - reference is paired by seed.
ORDERINGS = (("seeds", "refine"), ("refine", "ptrecl"), ("ptrecl", "segment"))


@dataclass(frozen=True)
class Replicate:
    seed: int
    experiment: str  # the DVC experiment's name
    metrics: dict[str, dict]  # metrics file stem -> its headline figures


def summarise(replicates: list[Replicate]) -> dict:
    """Per metrics file and figure, the interval over the seeds; per ordering, the paired
    difference of the mIoU."""
    stems = list(dict.fromkeys(stem for r in replicates for stem in r.metrics))
    figures: dict[str, dict] = {}
    for stem in stems:
        for key in FIGURES:
            values = [experiments.dig(r.metrics.get(stem, {}), key) for r in replicates]
            if values and all(isinstance(v, (int, float)) for v in values):
                interval, prediction = statistics.over_seeds(values), statistics.prediction_over_seeds(values)
                figures.setdefault(stem, {"method": replicates[0].metrics[stem].get("method")})[key] = \
                    interval.as_dict() | {"values": values, "prediction_low": prediction.low,
                                          "prediction_high": prediction.high}
    differences = {}
    for reference, other in ORDERINGS:
        if reference in figures and other in figures and "miou" in figures[reference] and "miou" in figures[other]:
            interval = statistics.paired_over_seeds(figures[reference]["miou"]["values"],
                                                    figures[other]["miou"]["values"])
            differences[f"{other}-{reference}"] = interval.as_dict() | {
                "reference": figures[reference]["method"], "other": figures[other]["method"],
                "resolved": interval.excludes_zero}
    return {"seeds": [r.seed for r in replicates], "experiments": [r.experiment for r in replicates],
            "figures": figures, "differences": differences}


def flat_metrics(study: dict) -> dict[str, float]:
    """``<stem>.<figure>_mean`` / ``_ci_low`` / ``_ci_high`` / ``_n`` and the differences' likewise."""
    flat = {}
    for stem, figures in study["figures"].items():
        for key, value in figures.items():
            if key != "method":
                flat |= _interval_metrics(f"{stem}.{key}", value)
    for name, value in study["differences"].items():
        flat |= _interval_metrics(f"difference.{name}.miou", value)
    return flat


def interval_of(value: dict) -> statistics.Interval:
    """An interval written with ``Interval.as_dict`` (the study file, a confirmation), read back."""
    return statistics.Interval(value["mean"], value["ci_low"], value["ci_high"], value["n"], value["interval"],
                               value.get("sd"))


def _interval_metrics(name: str, value: dict) -> dict[str, float]:
    interval = interval_of(value)
    sd = {} if interval.sd is None else {f"{name}_sd": interval.sd}
    return interval.as_metrics(name) | sd


def _cell(value: dict) -> str:
    return interval_of(value).format()


def markdown(study: dict) -> str:
    """The study as tables: each figure as ``mean ± half-width (n)``, then the paired differences."""
    rows = []
    for stem, figures in study["figures"].items():
        row = {"stage": stem, "method": figures["method"]}
        for key, header in FIGURES.items():
            row[header] = _cell(figures[key]) if key in figures else None
        row["mIoU per seed"] = ", ".join(f"{v:.4f}" for v in figures["miou"]["values"]) if "miou" in figures else None
        rows.append(row)
    seeds = ", ".join(str(s) for s in study["seeds"])
    lines = [f"Replicates: project.seed = {seeds}; mean ± half-width of the 95% t interval (n seeds).", "",
             format_table(rows, ["stage", "method", *FIGURES.values(), "mIoU per seed"])]
    if study["differences"]:
        diffs = [{"comparison": f"{d['other']} − {d['reference']}",
                  "mIoU difference": "+" * (d["mean"] >= 0) + _cell(d),
                  "95% CI": "-" if d["ci_low"] is None else f"{d['ci_low']:+.4f} to {d['ci_high']:+.4f}",
                  "resolved": "yes" if d["resolved"] else "no"} for d in study["differences"].values()]
        lines += ["", "Paired over the same seeds; resolved: the 95% interval excludes zero.", "",
                  format_table(diffs, ["comparison", "mIoU difference", "95% CI", "resolved"])]
    return "\n".join(lines) + "\n"


# Training sections' own seeds (null: project.seed); one that is set holds its network in every replicate.
OWN_SEED_KEYS = ("seeds.train.seed", "refine.irn.train.seed", "ptrecl.recovery.train.seed", "segment.train.seed")


def held_networks(params) -> list[str]:
    """``key=value`` for each training section whose own seed is set: it does not vary with project.seed."""
    return [f"{key}={params.get(key)}" for key in OWN_SEED_KEYS if params.get(key) is not None]


def run_seeds(project: Path, env: dict, count: int, group: str, overrides: dict | None = None,
              prefix: str = "replicate", targets: tuple[str, ...] = (), log=print, jobs: int = 1,
              seed_key: str = experiments.SEED_KEY) -> list[Replicate]:
    """Run the pipeline (``targets``, default all) with ``overrides`` for seeds 0..count-1, each a
    DVC experiment ``<prefix>-seed-K`` with its MLflow child run under ``group``; return each
    replicate's metrics files. ``jobs`` > 1: from DVC's queue, that many at a time. ``seed_key``:
    the seed varied (another than project.seed, e.g. refine.irn.train.seed: one network's noise)."""
    import mlflow

    from wsss.core import params as params_mod
    from wsss.tracking.restore import record_experiment_restored

    overrides = dict(overrides or {})
    baseline = experiments.head(project)
    dvc = pipeline(project)
    client = mlflow.MlflowClient()
    planned = []  # (seed, experiment name, overrides with the seed, its params, its MLflow run)
    for seed in range(count):
        name = experiments.experiment_name(prefix, "seed", str(seed))
        seeded = overrides | {seed_key: seed}
        seed_params = params_mod.load(project / params_mod.PARAMS_FILE, seeded)
        child = experiments.start_group_run(project, seed_params, "replicate", f"{prefix} seed {seed}", group, name)
        planned.append((seed, name, seeded, seed_params, child))
    held = held_networks(planned[0][3]) if planned and seed_key == experiments.SEED_KEY else []
    if held:
        log(f"replicates: {', '.join(held)}: those networks keep that seed in every replicate; only the "
            f"others vary with {seed_key}")
    replicates = []
    try:
        if jobs > 1:
            failed = experiments.run_queued(project, env, [(name, seeded) for _, name, seeded, _, _ in planned],
                                            targets, jobs, log)
            if failed:
                raise WsssError(f"replicates {', '.join(failed)} failed (`dvc queue logs NAME` shows why); "
                                "finished stages are cached and will not run again")
        for seed, name, seeded, seed_params, child in planned:
            if jobs == 1:
                experiments.run_experiment(project, env, name, seeded, targets, child, f"{prefix} seed {seed}", log)
            ref = experiments.experiment_ref(baseline, name)
            # Only the stages this run covered: the ref also holds the other metrics files as committed.
            covered = dvc.covering(list(targets), seed_params)
            metrics = {f: experiments.read_metrics(project, ref, f) for s in covered for f in dvc.stage(s).metrics}
            # Stages the replicate took from the run-cache ran no process: their runs from the ref.
            record_experiment_restored(child, project, seed_params, covered, metrics)
            client.set_terminated(child, "FINISHED")
            replicates.append(Replicate(seed, name, {Path(f).stem: value for f, value in metrics.items()
                                                     if value is not None}))
    finally:
        for _, _, _, _, child in planned[len(replicates):]:  # the replicates that did not finish
            client.set_terminated(child, "FAILED")
    return replicates


def run_replicates(project: Path, count: int, env: dict, log=print, dvc_args: tuple[str, ...] = (),
                   jobs: int = 1) -> dict:
    """Run the pipeline for seeds 0..count-1 as DVC experiments (``jobs`` at a time from DVC's
    queue when > 1), one MLflow child run each under one group run; write and return the study."""
    import mlflow

    from wsss.core import params as params_mod

    if count < 2:
        raise WsssError(f"--replicates needs 2 or more seeds for an interval, got {count}")
    params = params_mod.load(project / params_mod.PARAMS_FILE)
    group = experiments.start_group_run(project, params, "replicates", f"replicates x{count}")
    client = mlflow.MlflowClient()  # the project's store, which start_group_run configured
    success = False
    try:
        study = summarise(run_seeds(project, env, count, group, targets=dvc_args, log=log, jobs=jobs))
        write_json(project / STUDY_METRICS, study)
        table = project / STUDY_TABLE
        with atomic_path(table) as tmp:
            tmp.write_text(markdown(study))
        client.log_batch(group, metrics=experiments.mlflow_metrics(flat_metrics(study)))
        client.log_artifact(group, str(project / STUDY_METRICS))
        client.log_artifact(group, str(table))
        success = True
        return study
    finally:
        client.set_terminated(group, "FINISHED" if success else "FAILED")


def verify(project: Path) -> list[dict]:
    """The workspace's figures (metrics/*.json of one run, e.g. a fresh clone's on another machine)
    against the committed study's prediction intervals: one row per figure with ``inside``."""
    from wsss.core.io import read_json

    path = project / STUDY_METRICS
    if not path.exists():
        raise WsssError(f"{STUDY_METRICS}: no replicate study to verify against; run `wsss repro --replicates 3` "
                        "and commit its files first")
    study = read_json(path)
    rows = []
    for stem, figures in study["figures"].items():
        metrics_file = project / "metrics" / f"{stem}.json"
        if not metrics_file.exists():
            raise WsssError(f"{metrics_file.relative_to(project)}: missing; run `wsss repro` first")
        current = read_json(metrics_file)
        for key, header in FIGURES.items():
            if key not in figures or figures[key]["prediction_low"] is None:
                continue
            value = experiments.dig(current, key)
            low, high = figures[key]["prediction_low"], figures[key]["prediction_high"]
            rows.append({"stage": stem, "figure": header, "this run": value,
                         "replicates (mean)": figures[key]["mean"], "expected range": f"{low:.4f}–{high:.4f}",
                         "inside": value is not None and low <= value <= high})
    return rows
