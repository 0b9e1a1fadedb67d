"""The evaluate stages' figures on disk and in MLflow, one place for the stage scripts and for the
runs `wsss repro` records for stages DVC did not run (wsss.tracking.restore).

Each evaluation result is written twice: its headline figures to the DVC metrics file
(``metrics/seeds.json``: what `dvc metrics show` / `dvc exp show` / sweeps / ablations read) and
the whole result (per-class IoU / precision / recall and pixel counts, the threshold curve,
co-occurrence per pair, baselines) to its details file (``metrics/details/seeds.json``, a cached
DVC output), and the records of its DVC plots to ``plots/seeds/`` (wsss.tracking.plot_files).
"""

from __future__ import annotations

from pathlib import Path

from wsss.core.io import read_json, write_json
from wsss.tracking import plot_files

DETAILS_DIR = "details"
LABELS = ("stage", "method", "split", "flags")  # what describes a result; not MLflow metrics

# Headline keys of a result, nested as in the result ({"boundary": ["f1"]} keeps boundary.f1).
HEADLINE = {
    "stage": True, "method": True, "split": True, "num_images": True, "miou": True, "miou_ci": ["low", "high"],
    "boundary": ["f1"], "cooccurrence": ["pairs_mean"],
    # a refinement against its input on the same images (wsss.evaluation.masks.difference_over_images)
    "vs_input": True,
    # a figure below a trivial baseline, a refinement below its input (wsss.evaluation.guards)
    "flags": True,
    # seeds
    "background": True, "bg_threshold": True, "at_reference_threshold": ["bg_threshold", "miou"],
    "crf": ["miou", "boundary"],
    # the PtReCl reclassification map alone
    "best_bg_threshold": True, "best_miou": True,
}


# The figures of vs_input (the rest of it, "reference" and "resolved", are not numbers).
VS_INPUT_FIGURES = ("difference", "ci_low", "ci_high", "n_images")


def headline_figures() -> list[str]:
    """Every dotted key of a number an evaluate stage's metrics file can hold, as `headline`
    keeps them (a baseline's key written ``baselines.<name>.miou``)."""
    keys = []
    for key, keep in HEADLINE.items():
        if key in LABELS or key == "background":
            continue
        if key == "vs_input":
            keys += [f"vs_input.{k}" for k in VS_INPUT_FIGURES]
        elif key == "crf":
            keys += ["crf.miou", "crf.boundary.f1"]
        elif keep is True:
            keys.append(key)
        else:
            keys += [f"{key}.{k}" for k in keep]
    return [*keys, "baselines.<name>.miou"]


def is_headline_figure(key: str) -> bool:
    """Whether a metrics file can hold a number at ``key`` (a sweep's objective or report key
    must be one)."""
    parts = key.split(".")
    if len(parts) == 3 and parts[0] == "baselines" and parts[2] == "miou":
        return True
    return key in headline_figures()


def details_path(metrics_file: str | Path) -> Path:
    """``metrics/seeds.json`` -> ``metrics/details/seeds.json``."""
    path = Path(metrics_file)
    return path.parent / DETAILS_DIR / path.name


def headline(result: dict) -> dict:
    """The figures of a result that belong in its DVC metrics file."""
    out = {}
    for key, keep in HEADLINE.items():
        if key not in result:
            continue
        value = result[key]
        if keep is True or not isinstance(value, dict):
            out[key] = value
        else:
            out[key] = {k: _headline_value(k, value[k]) for k in keep if k in value}
    baselines = result.get("baselines")
    if baselines:  # the trivial baselines' mIoU, rows of the results table
        out["baselines"] = {name: {"miou": values["miou"]} for name, values in baselines.items()}
    return out


def _headline_value(key, value):
    return {"f1": value["f1"]} if key == "boundary" and isinstance(value, dict) else value


def write(metrics_file: str | Path, result: dict) -> None:
    """Write the whole result to the details file and the plot files, then its headline to the
    metrics file."""
    write_json(details_path(metrics_file), result)
    plot_files.write_evaluation(metrics_file, result)
    write_json(metrics_file, headline(result))


def read(metrics_file: str | Path, project_dir: str | Path = ".") -> dict:
    """The whole result: the details file when there is one, else the metrics file's headline."""
    details = Path(project_dir) / details_path(metrics_file)
    return read_json(details if details.exists() else Path(project_dir) / metrics_file)


def _refine_figures(result: dict) -> dict:
    refine_method = result["method"].split("+")[-1]  # "<seeds method>+<refine method>"
    return {f"refine.{refine_method}.miou": result["miou"], "refine.boundary_f1": result["boundary"]["f1"]}


# Metrics file's name -> (prefix of its figures in the stage's MLflow run, its figures on the parent run).
MLFLOW = {
    "seeds": ("", lambda r: {f"seeds.{r['method']}.miou": r["miou"], "seeds.bg_threshold": r["bg_threshold"]}),
    "refine": ("", _refine_figures),
    "ptrecl_map": ("map.", lambda r: {"ptrecl.map.miou": r["miou"]}),
    "ptrecl": ("", lambda r: {"ptrecl.miou": r["miou"], "ptrecl.boundary_f1": r["boundary"]["f1"]}),
    "segment": ("", lambda r: {"segment.val_miou": r["miou"], "segment.boundary_f1": r["boundary"]["f1"]}),
}


def logged(metrics_file: str | Path) -> bool:
    """Whether a stage's metrics file has figures for MLflow (log)."""
    return Path(metrics_file).stem in MLFLOW


def log(run, metrics_file: str, result: dict, project_dir: str | Path | None = ".") -> None:
    """Log one result to a stage's run (a wsss.tracking.runs.StageRun): the method it scored as the
    tag `wsss report` groups by, every figure, the parent's headline figures and both files (from
    ``project_dir``; None: the figures only, for a result that is not the workspace's)."""
    prefix, parent_figures = MLFLOW[Path(metrics_file).stem]
    run.set_tag("wsss.method", result["method"])
    if result.get("flags"):
        run.set_tag(f"wsss.flags.{result['stage']}", ", ".join(result["flags"]))
    run.log_metrics({prefix + k: v for k, v in result.items() if k not in LABELS})
    run.log_headline(parent_figures(result))
    if project_dir is None:
        return
    run.log_artifact(Path(project_dir) / metrics_file)
    details = Path(project_dir) / details_path(metrics_file)
    if details.exists():
        run.log_artifact(details, DETAILS_DIR)
