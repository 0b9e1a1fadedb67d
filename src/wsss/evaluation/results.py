"""The results table: one row per evaluated stage (and baseline), from the DVC metrics files of
dvc.yaml's stages, in pipeline order. One run: each mIoU comes with its 95% interval over the
evaluated images (a bootstrap, wsss.evaluation.statistics), not over seeds, and a refinement's
row its difference to its input's mIoU paired on the same images; SINGLE_RUN says so under the
table. `flags`: a figure below a trivial baseline, a refinement below its input (wsss.evaluation.guards)."""

from __future__ import annotations

from pathlib import Path

from wsss.core.dvcfile import pipeline
from wsss.core.io import read_json
from wsss.evaluation import guards

COLUMNS = ["stage", "method", "split", "mIoU", "95% CI (images)", "vs its input (same images)", "bg threshold",
           "boundary F1", "co-occurrence", "flags"]
# wsss.evaluation.guards' flags as the table shows them
FLAG_MARKS = {guards.BELOW_BASELINE: "BELOW BASELINE", guards.LOWERS_INPUT: "LOWERS ITS INPUT"}
NOT_UP_TO_DATE = "NOT UP TO DATE"
STALE_NOTE = (f"{NOT_UP_TO_DATE}: the stage, or one upstream of it, changed since these figures were computed "
              "(`dvc status`); `wsss repro` brings them up to date")
SINGLE_RUN = ("single run (one project.seed): the 95% CI resamples the evaluated images, and a refinement's "
              "difference to its input is paired on them (* where its 95% interval excludes zero); seed-to-seed "
              "spread is in neither (`wsss repro --replicates N`, docs/statistics.md)")


def image_interval(metrics: dict) -> str | None:
    """``low–high`` of a metrics file's image-bootstrap interval of the mIoU (None before it had one)."""
    ci = metrics.get("miou_ci") or {}
    if ci.get("low") is None:
        return None
    return f"{ci['low']:.4f}–{ci['high']:.4f}"


def versus_input(metrics: dict) -> str | None:
    """``+0.0342 vs seeds (+0.0290 to +0.0391) *``: a refinement's mIoU minus its input's on the
    same images, the paired image-bootstrap interval, * where it excludes zero."""
    vs = metrics.get("vs_input")
    if not vs or vs.get("ci_low") is None:
        return None
    return (f"{vs['difference']:+.4f} vs {vs['reference']} ({vs['ci_low']:+.4f} to {vs['ci_high']:+.4f})"
            + (" *" if vs["resolved"] else ""))


def flag_marks(metrics: dict) -> str | None:
    """The guard rails' flags of a result, for the table (None: none)."""
    return ", ".join(FLAG_MARKS.get(f, f) for f in metrics.get("flags") or {}) or None


def stale_stages(project_dir: str | Path = ".") -> set[str]:
    """The stages whose figures no longer follow from the current params, code and data: changed
    since they ran (`dvc status`) or downstream of a stage that has."""
    from wsss.core import params as params_mod
    from wsss.tools.dvc_command import tool_env
    from wsss.tracking.restore import changed

    project = Path(project_dir)
    different = changed(project, env=tool_env())
    upstream = pipeline(project).upstream(params_mod.load(project / params_mod.PARAMS_FILE))
    return {stage for stage, above in upstream.items() if stage in different or above & different}


def result_rows(project_dir: str | Path = ".", stale: set[str] = frozenset()) -> list[dict]:
    """One row per evaluation, and the trivial baselines once per split (every evaluation scores
    them on its images; those of a split's first evaluation are shown). A row whose stage is in
    ``stale`` (`stale_stages`) is flagged NOT UP TO DATE."""
    rows = []
    splits_with_baselines = set()
    for name, stage in pipeline(project_dir).metrics_files().items():
        path = Path(project_dir) / name
        if not path.exists():
            continue
        metrics = read_json(path)
        flags = [m for m in (flag_marks(metrics), NOT_UP_TO_DATE if stage in stale else None) if m]
        rows.append({
            "stage": metrics["stage"],
            "method": metrics["method"],
            "split": metrics["split"],
            "mIoU": metrics["miou"],
            "95% CI (images)": image_interval(metrics),
            "vs its input (same images)": versus_input(metrics),
            "bg threshold": "map" if metrics.get("background") == "map" else metrics.get("bg_threshold"),
            "boundary F1": (metrics.get("boundary") or {}).get("f1"),
            # mean m_{k,c} over the (context, class) pairs that co-occur by construction
            "co-occurrence": (metrics.get("cooccurrence") or {}).get("pairs_mean"),
            "flags": ", ".join(flags) or None,
        })
        if metrics["split"] in splits_with_baselines:
            continue
        if metrics.get("baselines"):
            splits_with_baselines.add(metrics["split"])
        for baseline, values in (metrics.get("baselines") or {}).items():
            rows.append({
                "stage": "baseline",
                "method": baseline.replace("_", " "),
                "split": metrics["split"],
                "mIoU": values["miou"],
                "95% CI (images)": None,
                "vs its input (same images)": None,
                "bg threshold": None,
                "boundary F1": (values.get("boundary") or {}).get("f1"),
                "co-occurrence": None,
                "flags": None,
            })
    return rows
