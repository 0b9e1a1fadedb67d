"""The data files of the DVC plots (`dvc plots show` / `dvc plots diff`, declared in dvc.yaml).

DVC plots lists of records (a JSON array, a TSV); each writer here turns one result into those
records, written atomically, in a fixed order and format so that a re-run gives the same bytes.

- an evaluate stage's result (wsss.tracking.metrics_files.write) -> ``plots/<metrics file stem>/``:
  ``per_class.json`` {class, iou, precision, recall}; ``bg_sweep.json`` {bg_threshold, miou} when
  the result holds a background-threshold sweep; ``confusion.json`` {actual, predicted, pixels,
  share} when it holds its confusion matrix (one record per class pair: DVC's own confusion
  templates count one record per sample, impossible per pixel);
- a training stage's per-step losses (LossLog) -> ``plots/train/<stage>.tsv``;
- an ablation table whose rows vary one parameter (wsss.sweep.ablation) -> ``results/ablations/<table>.json``.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

from wsss.core.io import atomic_path

PLOTS_DIR = "plots"
PER_CLASS = "per_class.json"
BG_SWEEP = "bg_sweep.json"
CONFUSION = "confusion.json"


def plots_dir(metrics_file: str | Path) -> Path:
    """``metrics/seeds.json`` -> ``plots/seeds`` (beside the metrics folder)."""
    path = Path(metrics_file)
    return path.parent.parent / PLOTS_DIR / path.stem


def write_records(path: str | Path, records: list[dict]) -> None:
    """A JSON array of records, one per line, keys in the records' own order."""
    lines = ",\n".join("  " + json.dumps(record) for record in records)
    with atomic_path(path) as tmp:
        tmp.write_text(f"[\n{lines}\n]\n" if records else "[]\n")


def per_class_records(result: dict) -> list[dict]:
    return [{"class": name, "iou": scores.get("iou"), "precision": scores.get("precision"),
             "recall": scores.get("recall")} for name, scores in result["per_class"].items()]


def sweep_records(result: dict) -> list[dict]:
    """The sweep's {"0.30": miou} as records, by threshold."""
    points = sorted((float(threshold), miou) for threshold, miou in result["sweep"].items())
    return [{"bg_threshold": threshold, "miou": miou} for threshold, miou in points]


def confusion_records(result: dict) -> list[dict]:
    """result["confusion"] (rows = ground truth, columns = prediction, in per_class order) as one
    record per (actual, predicted) pair; share: of the actual class's pixels (None for a class
    absent from the ground truth)."""
    names = list(result["per_class"])
    matrix = result["confusion"]
    if len(matrix) != len(names) or any(len(row) != len(names) for row in matrix):
        raise ValueError(f"confusion matrix must be {len(names)} x {len(names)} (one row and column per class)")
    records = []
    for actual, row in zip(names, matrix):
        total = sum(row)
        for predicted, pixels in zip(names, row):
            records.append({"actual": actual, "predicted": predicted, "pixels": int(pixels),
                            "share": pixels / total if total else None})
    return records


def write_evaluation(metrics_file: str | Path, result: dict) -> list[Path]:
    """Every plot file of one evaluation result; returns their paths."""
    folder = plots_dir(metrics_file)
    files = {PER_CLASS: per_class_records}
    if "sweep" in result:
        files[BG_SWEEP] = sweep_records
    if "confusion" in result:
        files[CONFUSION] = confusion_records
    written = []
    for name, records in files.items():
        write_records(folder / name, records(result))
        written.append(folder / name)
    return written


class LossLog:
    """A training stage's per-step losses (what it sends to MLflow), kept as tuples of numbers
    and written as one TSV at the end: step, epoch, loss, then the method's other loss terms."""

    NOT_LOSSES = ("epoch", "lr")

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.terms: tuple[str, ...] | None = None
        self.rows: list[tuple] = []

    def record(self, step: int, metrics: dict) -> None:
        """One step's train_loop on_step metrics ({"loss", other terms, "lr", "epoch"})."""
        terms = ("loss", *sorted(k for k in metrics if k != "loss" and k not in self.NOT_LOSSES))
        if self.terms is None:
            self.terms = terms
        elif terms != self.terms:
            raise ValueError(f"{self.path}: step {step} reports the losses {terms}, earlier steps {self.terms}")
        self.rows.append((int(step), int(metrics["epoch"]), *(float(metrics[k]) for k in terms)))

    def write(self) -> None:
        header = "\t".join(("step", "epoch", *(self.terms or ("loss",))))
        lines = [header] + ["\t".join([str(step), str(epoch), *(f"{v:.7g}" for v in losses)])
                            for step, epoch, *losses in self.rows]
        with atomic_path(self.path) as tmp:
            tmp.write_text("\n".join(lines) + "\n")


def field_name(header: str) -> str:
    """A table column header as a plot field: "PtReCl mIoU" -> "ptrecl_miou"."""
    return re.sub(r"[^a-z0-9]+", "_", header.lower()).strip("_")


def ablation_records(curve_key: str, values: list, rows: list[dict], headers: list[str]) -> list[dict]:
    """An ablation table's rows against the value of its varied parameter: {<last part of the
    key>, row, <one field per column>}, e.g. {"k": 10, "row": "K=10", "ptrecl_miou": 0.47}."""
    x = curve_key.split(".")[-1]
    return [{x: value, "row": row["row"], **{field_name(h): row[h] for h in headers}}
            for value, row in zip(values, rows)]
