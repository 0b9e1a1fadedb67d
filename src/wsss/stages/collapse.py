"""Collapsed outputs, said loudly: what a stage writes when its network learnt nothing useful.

On a few hundred real photos with the papers' learning rates every stage reported success while
many CAMs were all zero, IRN's loss went to exactly 0 and its boundary maps were empty. (A NaN
loss or map already stops its stage: wsss.train.loop, wsss.core.io.) Each check
reads what a stage wrote, after every process has written it, so sharding does not matter. It
returns findings, sentences that name the images; `report` prints each as a WARNING and tags the
stage's MLflow run (`wsss.collapse`). With `project.on_collapse: fail` it raises CollapseError
instead, so that nothing downstream trains on the outputs.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Iterable, Literal

import numpy as np

from wsss.core.errors import CollapseError
from wsss.core.io import load_boundary_map, load_score_map

# A boundary map whose maximum is below this shows no boundary anywhere. Sigmoid outputs, so
# never exactly 0; a trained IRN's maps reach 0.7 or more on every synthetic image.
EMPTY_BOUNDARY = 0.05
EXAMPLES = 5  # image ids named per finding


def _named(ids: list[str], total: int, what: str) -> str:
    shown = ", ".join(ids[:EXAMPLES]) + (", ..." if len(ids) > EXAMPLES else "")
    return f"{len(ids)} of {total} images {what} ({shown})"


def score_map_findings(folder: str | Path, ids: Iterable[str]) -> list[str]:
    """Seed maps whose every labelled class's map is all zero, or some labelled class's map.
    (A NaN map never gets here: writing it fails, wsss.core.io.save_score_map.)"""
    ids = list(ids)
    all_zero, empty_class = [], []
    for image_id in ids:
        scores = load_score_map(Path(folder) / f"{image_id}.npz").scores
        peaks = scores.reshape(len(scores), -1).max(axis=1) if scores.size else np.zeros(0)
        if len(peaks) and (peaks <= 0).all():
            all_zero.append(image_id)
        elif (peaks <= 0).any():
            empty_class.append(image_id)
    findings = []
    if all_zero:
        findings.append(_named(all_zero, len(ids), "have an all-zero map for every labelled class"))
    if empty_class:
        findings.append(_named(empty_class, len(ids), "have a labelled class whose map is all zero"))
    return findings


def boundary_findings(folder: str | Path, ids: Iterable[str]) -> list[str]:
    """IRN boundary maps with no boundary anywhere (maximum below EMPTY_BOUNDARY)."""
    ids = list(ids)
    empty = [image_id for image_id in ids if float(load_boundary_map(folder, image_id).max()) < EMPTY_BOUNDARY]
    return [_named(empty, len(ids), f"have an empty boundary map (maximum below {EMPTY_BOUNDARY})")] if empty else []


def loss_findings(summary: dict) -> list[str]:
    """A training whose final epoch's mean loss is exactly 0: nothing left to learn from, usually
    labels that no longer hold both classes of a pair, or a loss with no term left."""
    loss = summary.get("final_epoch_loss")
    return ["the final epoch's mean loss is exactly 0"] if loss == 0.0 else []


def report(stage: str, run, findings: list[str], policy: Literal["warn", "fail"]) -> None:
    """Tag the run and warn about each finding, or raise CollapseError with policy fail."""
    if not findings:
        return
    run.set_tag("wsss.collapse", "; ".join(findings))
    if policy == "fail":
        raise CollapseError(f"{stage}: collapsed outputs: {'; '.join(findings)} (project.on_collapse: fail)")
    for finding in findings:
        print(f"{stage}: WARNING: collapsed outputs: {finding} (project.on_collapse: fail to stop here)",
              file=sys.stderr)
