"""The DVC plots' data files (wsss.tracking.plot_files) and real `dvc plots show` / `dvc plots diff` of the
project's dvc.yaml plot definitions on them."""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers.browser import load_page, needs_browser
from tests.helpers.plots import (
    ABLATION_PLOTS,
    assert_every_plot_drawn,
    dvc_plots,
    plot_ids,
)
from wsss.core.project import copy_pipeline
from wsss.sweep.ablation import TABLES, write_curve_records
from wsss.tracking import metrics_files, plot_files

ROOT = Path(__file__).resolve().parents[1]
CLASSES = ["background", "boat", "car"]


def _result(stage: str, scale: float = 1.0, **extra) -> dict:
    per_class = {name: {"iou": round(scale * (0.3 + 0.2 * i), 4), "precision": 0.5, "recall": 0.25 * i,
                        "gt_pixels": 10 * i, "pred_pixels": 7} for i, name in enumerate(CLASSES)}
    per_class["car"]["iou"] = None  # absent from ground truth and prediction
    return {"stage": stage, "method": "cam", "split": "train", "num_images": 2, "miou": 0.4 * scale,
            "per_class": per_class, "boundary": {"f1": 0.2}, **extra}


SWEEP = {"0.10": 0.2, "0.05": 0.1, "0.30": 0.35}
CONFUSION = [[90, 8, 2], [5, 15, 0], [0, 0, 0]]


def test_evaluation_records_per_class_sweep_and_confusion(tmp_path):
    files = plot_files.write_evaluation(tmp_path / "metrics/segment.json",
                                        _result("segment", sweep=SWEEP, confusion=CONFUSION))
    folder = tmp_path / "plots/segment"
    assert files == [folder / "per_class.json", folder / "bg_sweep.json", folder / "confusion.json"]
    per_class = json.loads((folder / "per_class.json").read_text())
    assert per_class[0] == {"class": "background", "iou": 0.3, "precision": 0.5, "recall": 0.0}
    assert [r["class"] for r in per_class] == CLASSES and per_class[2]["iou"] is None
    sweep = json.loads((folder / "bg_sweep.json").read_text())
    assert sweep == [{"bg_threshold": 0.05, "miou": 0.1}, {"bg_threshold": 0.1, "miou": 0.2},
                     {"bg_threshold": 0.3, "miou": 0.35}]  # by threshold, as numbers
    confusion = json.loads((folder / "confusion.json").read_text())
    assert len(confusion) == 9 and confusion[1] == {"actual": "background", "predicted": "boat", "pixels": 8,
                                                    "share": 0.08}
    assert sum(r["share"] for r in confusion if r["actual"] == "boat") == pytest.approx(1.0)
    assert all(r["share"] is None for r in confusion if r["actual"] == "car")  # no ground-truth pixel
    before = {p: p.read_bytes() for p in files}
    plot_files.write_evaluation(tmp_path / "metrics/segment.json", _result("segment", sweep=SWEEP, confusion=CONFUSION))
    assert {p: p.read_bytes() for p in files} == before  # the same bytes on a re-run (dvc.lock)
    assert not list(folder.glob(".*tmp*"))


def test_a_confusion_matrix_of_the_wrong_size_is_refused(tmp_path):
    with pytest.raises(ValueError, match="3 x 3"):
        plot_files.write_evaluation(tmp_path / "metrics/segment.json", _result("segment", confusion=[[1, 2], [3, 4]]))
    assert not (tmp_path / "plots/segment/confusion.json").exists()


def test_every_evaluate_stage_writes_its_plots_with_its_metrics(tmp_path):
    metrics_files.write(tmp_path / "metrics/refine.json", _result("refine"))
    assert sorted(p.name for p in (tmp_path / "plots/refine").iterdir()) == ["per_class.json"]
    metrics_files.write(tmp_path / "metrics/seeds.json", _result("seeds", sweep=SWEEP))
    assert sorted(p.name for p in (tmp_path / "plots/seeds").iterdir()) == ["bg_sweep.json", "per_class.json"]
    assert "confusion" not in metrics_files.headline(_result("segment", confusion=CONFUSION))


def test_loss_log_writes_every_step_and_term_at_the_end(tmp_path):
    path = tmp_path / "plots/train/train_classifier.tsv"
    log = plot_files.LossLog(path)
    for step in range(1, 5):
        log.record(step, {"loss": 1.0 / step, "sal": 0.1, "cls": 0.5 / step, "lr": 0.01, "epoch": (step - 1) // 2})
    assert not path.exists()  # written once, at the end
    log.write()
    lines = path.read_text().splitlines()
    assert lines[0] == "step\tepoch\tloss\tcls\tsal"
    assert lines[1:3] == ["1\t0\t1\t0.5\t0.1", "2\t0\t0.5\t0.25\t0.1"]
    assert lines[4] == "4\t1\t0.25\t0.125\t0.1" and len(lines) == 5
    with pytest.raises(ValueError, match="step 5"):
        log.record(5, {"loss": 1.0, "epoch": 2, "lr": 0.0})


def _fake_rows(table_name: str) -> list[dict]:
    table = TABLES[table_name]
    return [{"row": name, **{c.header: 0.4 + 0.01 * i for c in table.columns}} for i, (name, _) in enumerate(table.rows)]


def test_ablation_curve_records_from_the_table_rows(tmp_path):
    path = tmp_path / "ptrecl-k.json"
    write_curve_records(TABLES["ptrecl-k"], _fake_rows("ptrecl-k"), path)
    records = json.loads(path.read_text())
    assert [r["k"] for r in records] == [2, 5, 10, 15, 20, 30]
    assert records[0] == {"k": 2, "row": "K=2", "reclass_map_miou": 0.4, "ptrecl_miou": 0.4,
                          "ptrecl_boundary_f1": 0.4}
    write_curve_records(TABLES["ptrecl-m"], _fake_rows("ptrecl-m"), path)
    assert [r["top_m"] for r in json.loads(path.read_text())] == [3, 5, 10, 15, 20, 30]


# --- real DVC on the project's plot definitions ------------------------------------------------

def write_every_plot_file(project: Path, scale: float = 1.0) -> None:
    """Plot files as the stages and `wsss ablate` write them, from fake results."""
    for stem, extra in {"seeds": {"sweep": SWEEP}, "refine": {}, "ptrecl_map": {"sweep": SWEEP}, "ptrecl": {},
                        "segment": {"confusion": CONFUSION}}.items():
        plot_files.write_evaluation(project / "metrics" / f"{stem}.json", _result(stem, scale, **extra))
    for stage in ("train_classifier", "train_irn", "train_recovery", "train_segmentation"):
        log = plot_files.LossLog(project / "plots/train" / f"{stage}.tsv")
        for step in range(1, 4):
            log.record(step, {"loss": scale / step, "affinity": 0.3, "epoch": 0, "lr": 0.1})
        log.write()
    for table in ("ptrecl-k", "ptrecl-m"):
        write_curve_records(TABLES[table], _fake_rows(table), project / "results/ablations" / f"{table}.json")


@pytest.fixture
def plots_project(tmp_path):
    """The project's pipeline files (dvc.yaml, params.yaml, DVC config with its custom templates) in a
    git repo of its own."""
    copy_pipeline(ROOT, tmp_path)
    env = dict(os.environ, PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}")
    git = ["git", "-c", "user.name=t", "-c", "user.email=t@t"]
    subprocess.run([*git, "init", "-q"], cwd=tmp_path, check=True)
    return tmp_path, env, git


def test_dvc_plots_show_draws_every_definition(plots_project):
    project, env, _ = plots_project
    write_every_plot_file(project)
    specs = assert_every_plot_drawn(project, env)
    confusion = specs["plots/segment/confusion.json"]
    assert confusion["facet"]["column"]["field"] == "rev"  # the custom template, filled
    assert confusion["spec"]["encoding"]["x"]["field"] == "predicted"
    assert len(specs["plots/train/train_irn.tsv"]["data"]["values"]) == 3


def test_without_the_ablation_files_the_other_plots_still_show(plots_project):
    project, env, _ = plots_project
    write_every_plot_file(project)
    shutil.rmtree(project / "results")
    assert_every_plot_drawn(project, env, absent=ABLATION_PLOTS)


@needs_browser
def test_the_plots_page_draws_every_plot_without_network(plots_project):
    """DVC's page loads Vega from a CDN; the project's page template (.dvc/plots_page.html, set in
    .dvc/config) inlines it, so a browser with no network draws every plot."""
    project, env, _ = plots_project
    write_every_plot_file(project)
    dvc_plots(project, env, output=("-o", str(project / "page")))
    page = project / "page" / "index.html"
    assert "cdn.jsdelivr" not in page.read_text()
    count = len(plot_ids(project))
    drawn = "document.querySelectorAll('.vega-embed canvas, .vega-embed svg.marks').length"
    report = load_page(page.as_uri(), height=3000, probe=f"{drawn} >= {count} && {drawn}")
    assert report.probe == count, report.probe
    assert not report.errors, report.errors
    assert all(url.startswith(("file:", "data:")) for url in report.requests), report.requests


def test_dvc_plots_diff_compares_two_commits(plots_project):
    project, env, git = plots_project
    write_every_plot_file(project, scale=1.0)
    subprocess.run([*git, "add", "-A"], cwd=project, check=True)
    subprocess.run([*git, "commit", "-qm", "one"], cwd=project, check=True)
    write_every_plot_file(project, scale=0.5)
    subprocess.run([*git, "commit", "-qam", "two"], cwd=project, check=True)
    specs = assert_every_plot_drawn(project, env, "HEAD~1", "HEAD")
    values = specs["plots/seeds/per_class.json"]["data"]["values"]
    background = {p["rev"]: p["iou"] for p in values if p["class"] == "background"}
    assert background == {"HEAD~1": 0.3, "HEAD": 0.15}
