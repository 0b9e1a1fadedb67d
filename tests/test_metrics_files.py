"""wsss.tracking.metrics_files.headline_figures: the keys a sweep may name, against real files."""

import json
from pathlib import Path

from wsss.tracking.metrics_files import headline_figures, is_headline_figure

ROOT = Path(__file__).resolve().parents[1]
EVALUATED = ("seeds", "refine", "ptrecl_map", "ptrecl", "segment")  # the committed full run's files


def _numbers(node, prefix=""):
    if isinstance(node, dict):
        for key, value in node.items():
            yield from _numbers(value, f"{prefix}{key}.")
    elif isinstance(node, (int, float)) and not isinstance(node, bool):
        yield prefix[:-1]


def test_every_number_of_the_committed_metrics_files_is_a_headline_figure():
    found = set()
    for name in EVALUATED:
        found |= set(_numbers(json.loads((ROOT / "metrics" / f"{name}.json").read_text())))
    assert all(is_headline_figure(key) for key in found), [k for k in found if not is_headline_figure(k)]
    assert {"miou", "miou_ci.low", "boundary.f1", "vs_input.difference", "baselines.all_background.miou"} <= found


def test_labels_are_not_figures():
    assert not any(map(is_headline_figure, ("stage", "method", "split", "flags", "background", "vs_input.resolved",
                                            "mIoU", "baselines.all_background")))
    assert "miou" in headline_figures()
