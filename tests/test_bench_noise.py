"""benchmarks/bench_noise.py: the spread table of two replicate studies (the studies themselves run
through wsss.sweep.replicates, tested on a real project in tests/test_replicates.py)."""

import json
import sys
from pathlib import Path

import numpy as np
import pytest

from wsss.sweep.replicates import Replicate, summarise

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))
import bench_noise as B  # noqa: E402


def _study(seeds_miou: list[float], refine_miou: list[float]) -> dict:
    return summarise([Replicate(k, f"noise-seed-{k}", {"seeds": {"method": "cam", "miou": s},
                                                       "refine": {"method": "cam+irn", "miou": r}})
                      for k, (s, r) in enumerate(zip(seeds_miou, refine_miou))])


def test_spread_is_the_standard_deviation_over_seeds_before_and_after_with_their_ratio(capsys):
    before = _study([0.40, 0.44, 0.48], [0.45, 0.47, 0.55])
    after = _study([0.47, 0.48, 0.49], [0.50, 0.52, 0.51])
    rows = B.spread(before, after)
    assert rows["seeds"]["sd_before"] == pytest.approx(np.std([0.40, 0.44, 0.48], ddof=1))
    assert rows["seeds"]["sd_after"] == pytest.approx(0.01)
    assert rows["seeds"]["ratio"] == pytest.approx(0.01 / np.std([0.40, 0.44, 0.48], ddof=1))
    B.print_report(before, after, rows)
    out = capsys.readouterr().out
    assert "cam+irn − cam" in out and "resolved" in out and "1.00 pt" in out


def test_a_baseline_override_is_key_equals_yaml_value():
    assert B.parse_override("seeds.train.epochs=12") == ("seeds.train.epochs", 12)
    assert B.parse_override("refine.method=crf") == ("refine.method", "crf")
    with pytest.raises(Exception, match="KEY=VALUE"):
        B.parse_override("seeds.train.epochs")


def test_each_step_of_the_chain_shows_how_its_figure_follows_its_input(tmp_path, capsys, monkeypatch):
    study = _study([0.40, 0.44, 0.48], [0.45, 0.50, 0.52])
    [step] = B.chain_steps(study)
    assert (step["input"], step["output"]) == ("seeds", "refine")
    assert step["correlation"] == pytest.approx(np.corrcoef([0.40, 0.44, 0.48], [0.45, 0.50, 0.52])[0, 1])
    assert step["sd_step"] == pytest.approx(np.std([0.05, 0.06, 0.04], ddof=1))
    saved = tmp_path / "noise.json"
    saved.write_text(json.dumps({"before": study, "after": study, "spread": B.spread(study, study)}))
    monkeypatch.setattr(sys, "argv", ["bench_noise.py", "--from-json", str(saved)])
    assert B.main() == 0
    assert "seeds -> refine" in capsys.readouterr().out


def test_after_overrides_and_targets_reach_both_studies(tmp_path, monkeypatch):
    calls = []

    def study(project, env, count, name, overrides, targets=(), seed_key="project.seed"):
        calls.append((name, overrides, targets, seed_key))
        return _study([0.40, 0.44, 0.48], [0.45, 0.50, 0.52])

    monkeypatch.setattr(B, "study", study)
    out = tmp_path / "noise.json"
    monkeypatch.setattr(sys, "argv", ["bench_noise.py", "--replicates", "3", "--baseline", "refine.irn.train.epochs=15",
                                      "--after", "refine.irn.train.epochs=30", "--targets", "evaluate_refine",
                                      "--out", str(out)])
    assert B.main() == 0
    assert calls == [("baseline", {"refine.irn.train.epochs": 15}, ("evaluate_refine",), "project.seed"),
                     ("after", {"refine.irn.train.epochs": 30}, ("evaluate_refine",), "project.seed")]
    saved = json.loads(out.read_text())
    assert saved["after_overrides"] == {"refine.irn.train.epochs": 30} and saved["targets"] == ["evaluate_refine"]

    # One network's own noise: the second study varies its seed; the first comes from the file.
    calls.clear()
    monkeypatch.setattr(sys, "argv", ["bench_noise.py", "--replicates", "3", "--before-from", str(out),
                                      "--vary", "refine.irn.train.seed", "--out", str(tmp_path / "irn.json")])
    assert B.main() == 0
    assert calls == [("params-refine-irn-train-seed", {}, (), "refine.irn.train.seed")]
    varied = json.loads((tmp_path / "irn.json").read_text())
    assert varied["before"] == saved["before"] and varied["after_varies"] == "refine.irn.train.seed"


def test_a_figure_held_fixed_has_no_correlation():
    held = _study([0.47, 0.47, 0.47], [0.55, 0.56, 0.55])
    (step,) = B.chain_steps(held)
    assert step["correlation"] is None and step["sd_step"] == pytest.approx(np.std([0.55, 0.56, 0.55], ddof=1))
