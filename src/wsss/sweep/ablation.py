"""The seed papers' ablation tables, each reproduced by one command: `wsss ablate <table>`.

A table is a list of rows; a row is a set of params.yaml overrides. Each row runs as a DVC
experiment (`dvc exp run --temp -S key=value ... <targets>`), so rows whose stages already ran
with the same parameters come back from DVC's run cache at no cost, and each row stays
available to `dvc exp show` / `dvc exp apply` under the name `<table>-<row>`. Every row also gets
one MLflow run (tags wsss.kind=ablation-row, the row's overrides as params, the table's figures
as metrics) nested under one parent run per table; the stages that ran for the row nest under
the row's run. The table is written as markdown to `results/ablations/<table>.md`; a table whose
rows vary one parameter (``curve``) also as a PNG plot and as the records of a DVC plot
(`results/ablations/<table>.json`, declared in dvc.yaml's top-level plots).

With ``--replicates N`` each row runs once per project.seed 0..N-1 as wsss.sweep.replicates does
(experiments `<table>-<row>-seed-K`, one MLflow replicate run per seed under the row's run;
``jobs`` > 1: a row's seeds from DVC's queue, that many at a time): each figure is
shown as mean ± half-width of its 95% t interval, and the first column's difference to the first
row, paired by seed, is marked when its interval excludes zero (wsss.evaluation.statistics).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from wsss.core.errors import WsssError
from wsss.core.io import atomic_path
from wsss.evaluation import statistics
from wsss.evaluation.metrics import format_table
from wsss.methods.sipe import TABLE3_STEPS
from wsss.sweep import experiments
from wsss.sweep import replicates as replicates_mod
from wsss.tracking import plot_files

RESULTS_DIR = Path("results/ablations")
SEEDS = "metrics/seeds.json"
REFINE = "metrics/refine.json"
PTRECL_MAP = "metrics/ptrecl_map.json"
PTRECL = "metrics/ptrecl.json"


@dataclass(frozen=True)
class Column:
    """One figure of the table: a key path into one metrics file of the row's experiment."""

    header: str
    metrics_file: str
    key: str  # dotted path, e.g. "cooccurrence.pairs_mean"


@dataclass(frozen=True)
class Claim:
    """A paper's claim a table can test: ``other`` row's figure in ``column`` is higher (or lower)
    than the ``reference`` row's, judged by their difference paired by seed."""

    text: str
    reference: str  # row names
    other: str
    column: str  # a column header
    higher_is_claimed: bool = True


@dataclass(frozen=True)
class Table:
    title: str
    targets: tuple[str, ...]  # dvc stages each row reproduces (with their upstream stages)
    rows: tuple[tuple[str, dict[str, Any]], ...]  # (row name, params overrides)
    columns: tuple[Column, ...]
    note: str = ""
    common: dict[str, Any] = field(default_factory=dict)  # overrides shared by every row
    curve: str | None = None  # an override key: the table is also plotted against its value (TABLE.png)
    claims: tuple[Claim, ...] = ()  # judged with --replicates


SEED_COLUMNS = (
    Column("seeds mIoU", SEEDS, "miou"),
    Column("boundary F1", SEEDS, "boundary.f1"),
    Column("co-occurrence (pairs)", SEEDS, "cooccurrence.pairs_mean"),
)
PTRECL_COLUMNS = (
    Column("reclass. map mIoU", PTRECL_MAP, "miou"),
    Column("PtReCl mIoU", PTRECL, "miou"),
    Column("PtReCl boundary F1", PTRECL, "boundary.f1"),
)
EPS = {"seeds.method": "eps"}
AE = "seeds.ae_sipe."

TABLES: dict[str, Table] = {
    "eps-strategies": Table(
        "EPS map selection strategies (EPS paper, Table 2)",
        ("evaluate_seeds",),
        tuple((name, {"seeds.eps.strategy": name}) for name in ("none", "naive", "predefined", "adaptive")),
        SEED_COLUMNS,
        "predefined sends seeds.eps.predefined_background to the background; none is our reading "
        "(the estimate is 1 - background map alone).",
        EPS,
        claims=(Claim("adaptive map selection above naive (EPS paper, Table 2)", "naive", "adaptive", "seeds mIoU"),),
    ),
    "eps-tau": Table(
        "EPS overlap threshold tau (lambda 0.5)",
        ("evaluate_seeds",),
        tuple((f"tau={tau}", {"seeds.eps.tau": tau, "seeds.eps.lam": 0.5}) for tau in (0.3, 0.4, 0.5)),
        SEED_COLUMNS,
        common=EPS,
    ),
    "eps-lambda": Table(
        "EPS saliency-loss weight lambda (tau 0.4)",
        ("evaluate_seeds",),
        tuple((f"lambda={lam}", {"seeds.eps.lam": lam, "seeds.eps.tau": 0.4}) for lam in (0.3, 0.5, 0.7, 0.9)),
        SEED_COLUMNS,
        common=EPS,
    ),
    "ae-sipe": Table(
        "AE-SIPE cumulative ablation (AE-SIPE paper, Table 2), seeds without / with dense CRF",
        ("evaluate_seeds",),
        (
            ("SIPE baseline", {AE + "steps": "pr_is", AE + "hierarchical_structure": False,
                               AE + "is_cam_norm": "max", AE + "bg_scale": 1.0}),
            ("+ affinity enhancement", {AE + "steps": "pr_is,pamr,pr_is", AE + "hierarchical_structure": False,
                                        AE + "is_cam_norm": "max", AE + "bg_scale": 1.0}),
            ("+ hierarchical features", {AE + "steps": "pr_is,pamr,pr_is", AE + "hierarchical_structure": True,
                                         AE + "is_cam_norm": "max", AE + "bg_scale": 1.0}),
            ("+ IS-CAM normalisation", {AE + "steps": "pr_is,pamr,pr_is", AE + "hierarchical_structure": True,
                                        AE + "is_cam_norm": "minmax", AE + "bg_scale": 1.0}),
            ("+ background rescaling", {AE + "steps": "pr_is,pamr,pr_is", AE + "hierarchical_structure": True,
                                        AE + "is_cam_norm": "minmax", AE + "bg_scale": 0.8}),
        ),
        (Column("seeds mIoU", SEEDS, "miou"), Column("+CRF mIoU", SEEDS, "crf.miou"),
         Column("boundary F1", SEEDS, "boundary.f1")),
        common={"seeds.method": "ae_sipe", "evaluate.seeds_crf": True},
        # the paper's VOC figures (docs/methods.md §6): 58.6 -> 64.2 -> 65.4 -> 65.4 -> 65.8
        claims=(Claim("affinity enhancement lifts SIPE (AE-SIPE paper, Table 2)", "SIPE baseline",
                      "+ affinity enhancement", "seeds mIoU"),
                Claim("hierarchical features add to it (Table 2)", "+ affinity enhancement",
                      "+ hierarchical features", "seeds mIoU"),
                Claim("background rescaling adds to it (Table 2)", "+ IS-CAM normalisation",
                      "+ background rescaling", "seeds mIoU"),
                Claim("AE-SIPE, all of it, above SIPE (Table 2)", "SIPE baseline", "+ background rescaling",
                      "seeds mIoU")),
    ),
    "ae-sipe-orders": Table(
        "AE-SIPE prototype / PAMR orders (AE-SIPE paper, Table 3)",
        ("evaluate_seeds",),
        tuple((name, {AE + "steps": steps, AE + "hierarchical_structure": False, AE + "is_cam_norm": "max",
                      AE + "bg_scale": 1.0}) for name, steps in TABLE3_STEPS.items()),
        SEED_COLUMNS[:2],
        common={"seeds.method": "ae_sipe"},
        # the paper's VOC figures (docs/methods.md §6): 58.6, 59.5, 56.6, 62.3, 64.2
        claims=(Claim("(PAMR, Pr, IS) above the baseline (AE-SIPE paper, Table 3)", "baseline",
                      "baseline+pamr,pr_is (AE)", "seeds mIoU"),
                Claim("(PAMR, Pr, IS) above a second (Pr, IS) (Table 3)", "baseline+pr_is",
                      "baseline+pamr,pr_is (AE)", "seeds mIoU"),
                Claim("PAMR before the second round above PAMR after it (Table 3)", "baseline+pr_is,pamr,pr_is",
                      "baseline+pamr,pr_is,pr_is", "seeds mIoU")),
    ),
    "methods": Table(
        "Seed methods: seeds and pseudo masks after IRN",
        ("evaluate_seeds", "evaluate_refine"),
        tuple((m, {"seeds.method": m}) for m in ("cam", "sipe", "ae_sipe", "eps")),
        (Column("seeds mIoU", SEEDS, "miou"), Column("seeds co-occurrence", SEEDS, "cooccurrence.pairs_mean"),
         Column("IRN mIoU", REFINE, "miou"), Column("IRN boundary F1", REFINE, "boundary.f1"),
         Column("IRN co-occurrence", REFINE, "cooccurrence.pairs_mean")),
        "co-occurrence: mean m_{k,c} = FP_{k,c} / TP_c over the (context, class) pairs that co-occur "
        "by construction in the synthetic set.",
        {"refine.method": "irn"},
        claims=(Claim("SIPE's seeds above CAM's (SIPE paper, Table 1)", "cam", "sipe", "seeds mIoU"),
                Claim("AE-SIPE's seeds above SIPE's (AE-SIPE paper, Table 1)", "sipe", "ae_sipe", "seeds mIoU"),
                Claim("EPS lowers the co-occurrence confusion of CAM (EPS paper, Fig. 5)", "cam", "eps",
                      "seeds co-occurrence", higher_is_claimed=False)),
    ),
    "sipe-dilation": Table(
        "SIPE against CAM with and without the backbone's dilation (results/sipe-vs-cam.md)",
        ("evaluate_seeds",),
        tuple((f"{m}{suffix}", {"seeds.method": m, "seeds.backbone.dilate": dilate})
              for dilate, suffix in ((True, ""), (False, " undilated"))
              for m in ("cam", "sipe", "ae_sipe")),
        SEED_COLUMNS[:2],
        "dilated: the default backbone (level 4 at stride 8); undilated: level 4 at stride 16, where "
        "the features of different regions are less alike and SIPE's structure analysis can seed "
        "smaller objects.",
        claims=(Claim("SIPE's seeds above CAM's, undilated (SIPE paper, Table 1)", "cam undilated",
                      "sipe undilated", "seeds mIoU"),
                Claim("dropping the dilation lifts SIPE's seeds", "sipe", "sipe undilated", "seeds mIoU")),
    ),
    "refine": Table(
        "Pseudo-mask refinement of CAM's seeds",
        ("evaluate_refine",),
        tuple((m, {"refine.method": m}) for m in ("none", "crf", "pamr", "irn")),
        (Column("mIoU", REFINE, "miou"), Column("boundary F1", REFINE, "boundary.f1"),
         Column("co-occurrence", REFINE, "cooccurrence.pairs_mean")),
        "none: the seeds alone, with their background score (refine.bg_threshold: auto, evaluate_seeds' best).",
        {"seeds.method": "cam"},
        claims=(Claim("IRN's masks above CAM's seeds (IRN paper)", "none", "irn", "mIoU"),
                Claim("PAMR's masks above CAM's seeds (1-stage-wseg paper)", "none", "pamr", "mIoU"),
                Claim("dense CRF's masks above CAM's seeds", "none", "crf", "mIoU")),
    ),
    "ptrecl-k": Table(
        "PtReCl: number of prototypes K per class and set (PtReCl paper: flat within 1% for K 10-30)",
        ("evaluate_ptrecl",),
        tuple((f"K={k}", {"ptrecl.prototypes.k": k}) for k in (2, 5, 10, 15, 20, 30)),
        PTRECL_COLUMNS,
        curve="ptrecl.prototypes.k",
    ),
    "ptrecl-m": Table(
        "PtReCl: top m prototypes deciding the score (K 20; paper: m 10-20 best)",
        ("evaluate_ptrecl",),
        tuple((f"m={m}", {"ptrecl.reclassify.top_m": m, "ptrecl.prototypes.k": 20}) for m in (3, 5, 10, 15, 20, 30)),
        PTRECL_COLUMNS,
        curve="ptrecl.reclassify.top_m",
    ),
}


def experiment_name(table: str, row: str) -> str:
    return experiments.experiment_name(table, row)


def dvc_command(table: Table, name: str, overrides: dict[str, Any]) -> list[str]:
    return experiments.exp_run_command(name, table.common | overrides, table.targets)


def row_metrics(project: Path, ref: str, table: Table) -> dict[str, Any]:
    """The table's figures from the metrics files committed in one experiment ref."""
    files: dict[str, dict] = {}
    values = {}
    for column in table.columns:
        if column.metrics_file not in files:
            files[column.metrics_file] = experiments.read_metrics(project, ref, column.metrics_file) or {}
        values[column.header] = experiments.dig(files[column.metrics_file], column.key)
    return values


def replicate_figures(table: Table, metrics: dict[str, dict]) -> dict[str, Any]:
    """The table's figures from one replicate's metrics files (keyed by file stem, as
    wsss.sweep.replicates.Replicate holds them)."""
    return {c.header: experiments.dig(metrics.get(Path(c.metrics_file).stem, {}), c.key) for c in table.columns}


def replicate_cells(table: Table, rows: list[dict]) -> list[dict]:
    """Rows whose figures are lists over seeds, as cells: each figure ``mean ± half-width (n)``,
    and the first column's difference to the first (reference) row paired by seed, marked ``*``
    when its 95% interval excludes zero."""
    headline = table.columns[0].header
    reference = rows[0][headline]
    cells = []
    for index, row in enumerate(rows):
        cell = {"row": row["row"]}
        for column in table.columns:
            values = row[column.header]
            cell[column.header] = statistics.over_seeds(values).format() if None not in values else None
        if index == 0:
            cell[_difference_header(table, rows)] = "reference"
        elif None not in reference and None not in row[headline]:
            difference = statistics.paired_over_seeds(reference, row[headline])
            mark = " *" if difference.excludes_zero else ""
            cell[_difference_header(table, rows)] = f"{difference.estimate:+.4f} ± {difference.half_width:.4f}{mark}"
        cells.append(cell)
    return cells


def claim_rows(table: Table, rows: list[dict]) -> list[dict]:
    """Each claim of the table against rows of lists over seeds: other − reference paired by seed,
    its 95% interval, and "holds" / "reversed" when the interval excludes zero, else "not resolved"."""
    by_name = {row["row"]: row for row in rows}
    out = []
    for claim in table.claims:
        reference, other = by_name[claim.reference][claim.column], by_name[claim.other][claim.column]
        if None in reference or None in other:
            continue
        difference = statistics.paired_over_seeds(reference, other)
        verdict = "not resolved"
        if difference.excludes_zero:
            verdict = "holds" if (difference.estimate > 0) == claim.higher_is_claimed else "reversed"
        out.append({"claim": claim.text, "difference": f"{claim.other} − {claim.reference}: {difference.estimate:+.4f}",
                    "95% CI": f"{difference.low:+.4f} to {difference.high:+.4f}", "verdict": verdict})
    return out


def _difference_header(table: Table, rows: list[dict]) -> str:
    return f"Δ {table.columns[0].header} vs {rows[0]['row']}"


def markdown(table_name: str, table: Table, rows: list[dict], replicates: int = 1) -> str:
    """The table; with replicates (rows of lists over seeds) as mean ± half-width with the paired
    differences to the reference row."""
    common = ", ".join(f"{k}={experiments.format_value(v)}" for k, v in table.common.items())
    command = f"`wsss ablate {table_name}" + (f" --replicates {replicates}`" if replicates > 1 else "`")
    lines = [f"### {table.title}", "", command + (f" (every row: {common})" if common else ""), ""]
    headers = ["row", *[c.header for c in table.columns]]
    if replicates > 1:
        lines.append(format_table(replicate_cells(table, rows), [*headers, _difference_header(table, rows)]))
        lines += ["", f"Mean ± half-width of the 95% t interval over project.seed 0..{replicates - 1}; Δ: paired "
                  "by seed, * where its 95% interval excludes zero (docs/statistics.md)."]
        if table.claims:
            lines += ["", format_table(claim_rows(table, rows), ["claim", "difference", "95% CI", "verdict"])]
    else:
        lines.append(format_table(rows, headers))
        lines += ["", "Single run (one project.seed): `--replicates N` gives intervals and paired differences."]
    if table.note:
        lines += ["", table.note]
    return "\n".join(lines) + "\n"


def run_table(table_name: str, project: Path, env: dict, log=print, replicates: int = 1, jobs: int = 1) -> str:
    """Run every row of a table as a DVC experiment (per seed 0..replicates-1 with replicates,
    ``jobs`` of a row's seeds at a time from DVC's queue); return (and write) its markdown."""
    import mlflow

    from wsss.core import params as params_mod

    if table_name not in TABLES:
        raise WsssError(f"unknown ablation table {table_name!r}; known: {', '.join(TABLES)}")
    table = TABLES[table_name]
    params = params_mod.load(project / params_mod.PARAMS_FILE)
    for _, overrides in table.rows:  # a bad override fails before any row runs
        params_mod.load(project / params_mod.PARAMS_FILE, table.common | overrides)
    baseline = experiments.head(project)
    parent = experiments.start_group_run(project, params, "ablation", f"ablation {table_name}")
    client = mlflow.MlflowClient()  # the project's store, which start_group_run configured
    rows, means_rows, success = [], [], False  # rows: figures (lists over seeds with replicates); means_rows
    try:
        for row_name, overrides in table.rows:
            name = experiment_name(table_name, row_name)
            row_params = params_mod.load(project / params_mod.PARAMS_FILE, table.common | overrides)
            row_run = experiments.start_group_run(project, row_params, "ablation-row", f"{table_name}: {row_name}",
                                                  parent, name)
            for key, value in (table.common | overrides).items():
                client.set_tag(row_run, f"override.{key}", experiments.format_value(value))
            if replicates > 1:  # each seed a replicate run under the row's run, `jobs` at a time
                seeds = replicates_mod.run_seeds(project, env, replicates, row_run, table.common | overrides,
                                                 name, table.targets, log, jobs)
                per_seed = [replicate_figures(table, replicate.metrics) for replicate in seeds]
                values = {c.header: [v[c.header] for v in per_seed] for c in table.columns}
                means = {k: sum(v) / len(v) for k, v in values.items() if None not in v}
                rows.append({"row": row_name, **values})
                means_rows.append({"row": row_name, **means})
            else:
                experiments.run_experiment(project, env, name, table.common | overrides, table.targets, row_run,
                                           f"ablation {table_name}, row {row_name!r}", log)
                means = row_metrics(project, experiments.experiment_ref(baseline, name), table)
                rows.append({"row": row_name, **means})
                means_rows.append(rows[-1])
            client.log_batch(row_run, metrics=experiments.mlflow_metrics(means))
            client.set_terminated(row_run, "FINISHED")
        text = markdown(table_name, table, rows, replicates)
        out = project / RESULTS_DIR / f"{table_name}.md"
        with atomic_path(out) as tmp:
            tmp.write_text(text)
        client.log_artifact(parent, str(out))
        if table.curve is not None:
            plot = out.with_suffix(".png")
            plot_curve(table, means_rows, plot)
            client.log_artifact(parent, str(plot))
            write_curve_records(table, means_rows, out.with_suffix(".json"))
        success = True
        return text
    finally:
        client.set_terminated(parent, "FINISHED" if success else "FAILED")


def plot_curve(table: Table, rows: list[dict], path: Path) -> None:
    """Every column of the table against the value of `table.curve` (the paper's ablation curves)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    x = curve_values(table, rows)
    fig, ax = plt.subplots(figsize=(6.0, 3.6))
    for column in table.columns:
        ax.plot(x, [row[column.header] for row in rows], marker="o", label=column.header)
    ax.set_xlabel(table.curve)
    ax.set_title(table.title, fontsize="small")
    ax.grid(alpha=0.3)
    ax.legend(fontsize="small")
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=100, format="png")
    plt.close(fig)


def curve_values(table: Table, rows: list[dict]) -> list:
    """The value of the table's varied parameter in each row."""
    return [dict(table.rows)[row["row"]][table.curve] for row in rows]


def write_curve_records(table: Table, rows: list[dict], path: Path) -> None:
    """The table as DVC plot records: {<varied key's last part>, row, <a field per column>}."""
    records = plot_files.ablation_records(table.curve, curve_values(table, rows), rows,
                                          [c.header for c in table.columns])
    plot_files.write_records(path, records)
