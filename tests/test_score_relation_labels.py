"""scripts/score_relation_labels.py: the counts behind the relation-label table of docs/presets.md."""

import argparse
import importlib.util
from pathlib import Path

import numpy as np
import pytest

_SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "score_relation_labels.py"
_spec = importlib.util.spec_from_file_location("score_relation_labels", _SCRIPT)
score_relation_labels = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(score_relation_labels)


def test_counts_right_and_wrong_labels_and_leave_ignored_mask_pixels_out():
    mask = np.array([[0, 0, 1, 1],
                     [0, 2, 1, 255]], dtype=np.uint8)
    labels = np.array([[0, 255, 1, 2],
                       [1, 2, 0, 0]], dtype=np.uint8)
    # background labels at (0,0) right, (1,2) wrong, (1,3) ignored by the mask;
    # foreground at (0,2) right, (0,3) wrong class, (1,0) on background, (1,1) right.
    counts = score_relation_labels.label_counts(labels, mask)
    assert counts.tolist() == [2, 1, 4, 2, 7]


def test_a_threshold_pair_is_fg_comma_bg():
    assert score_relation_labels.threshold_pair("0.8,0.4") == (0.8, 0.4)
    with pytest.raises(argparse.ArgumentTypeError, match="FG,BG"):
        score_relation_labels.threshold_pair("0.8")
