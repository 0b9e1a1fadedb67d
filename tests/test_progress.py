"""`project.progress`: auto shows bars on a terminal only, never in CI; the switch is not a DVC
dependency of any stage, so turning bars on or off re-runs nothing."""

from __future__ import annotations

import io
import re
import time
from pathlib import Path

import pytest
import yaml

from wsss.core import params as params_mod
from wsss.core.errors import ParamsError
from wsss.core.progress import ProgressLines, progress_bar, progress_enabled

ROOT = Path(__file__).resolve().parents[1]


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


@pytest.mark.parametrize(("setting", "tty", "ci", "shown"), [
    ("auto", True, None, True),
    ("auto", False, None, False),  # a log file or a pipe
    ("auto", True, "true", False),  # CI, even on a pseudo-terminal
    ("auto", True, "false", True),
    (True, False, "true", True),
    (False, True, None, False),
])
def test_progress_enabled(monkeypatch, setting, tty, ci, shown):
    monkeypatch.setattr("sys.stderr", Terminal() if tty else io.StringIO())
    if ci is None:
        monkeypatch.delenv("CI", raising=False)
    else:
        monkeypatch.setenv("CI", ci)
    assert progress_enabled(setting) is shown


def test_progress_bar_draws_a_bar_only_when_enabled(monkeypatch):
    monkeypatch.delenv("CI", raising=False)
    for stream, bar in ((Terminal(), True), (io.StringIO(), False)):
        monkeypatch.setattr("sys.stderr", stream)
        assert list(progress_bar("auto", range(3), desc="stage")) == [0, 1, 2]
        assert "stage" in stream.getvalue() and ("\r" in stream.getvalue()) is bar  # else progress lines


def test_progress_default_and_bad_value(tmp_path):
    assert params_mod.load(ROOT / "params.yaml").project.progress == "auto"
    bad = tmp_path / "params.yaml"
    bad.write_text(yaml.safe_dump({"project": {"progress": "sometimes"}}))
    with pytest.raises(ParamsError, match="project.progress"):
        params_mod.load(bad)


def test_no_stage_depends_on_progress_or_workers():
    """DVC params of every stage: of `project` only seed, device, devices (a training stage's
    process count) and precision (what changes outputs); not progress bars nor loader workers."""
    stages = yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"]
    for name, stage in stages.items():
        project_keys = [k for k in stage.get("params", []) if isinstance(k, str) and k.split(".")[0] == "project"]
        assert set(project_keys) <= {"project.seed", "project.device", "project.devices", "project.precision"}, \
            (name, project_keys)


def test_without_a_terminal_auto_prints_progress_lines(monkeypatch):
    """CI, nohup, a log file: no bar, but a line at the first step and then every interval, with
    the rate, images/s for a training batch, the ETA and the loss (issue 27: 40 silent minutes)."""
    monkeypatch.delenv("CI", raising=False)
    stream = io.StringIO()
    monkeypatch.setattr("sys.stderr", stream)
    bar = progress_bar("auto", total=4, desc="train_irn", unit="step", items_per_step=8)
    assert isinstance(bar, ProgressLines)
    bar.interval = 0.0  # every update prints
    bar.set_postfix(epoch=1, loss="0.4123")
    bar.update()
    time.sleep(0.01)
    bar.update()
    bar.close()
    lines = stream.getvalue().splitlines()
    assert len(lines) == 2
    assert lines[0] == "train_irn: 1/4 step (25%), epoch 1, loss 0.4123"  # no rate yet: start-up would skew it
    assert re.fullmatch(r"train_irn: 2/4 step \(50%\), [0-9.]+ step/s \([0-9.]+ images/s\), ETA \d+m\d\ds, "
                        r"epoch 1, loss 0.4123", lines[1]), lines[1]


def test_progress_lines_wait_for_the_interval_and_end_with_a_last_line():
    stream = io.StringIO()
    lines = ProgressLines(range(100), desc="seeds", unit="image", interval=3600, stream=stream)
    assert list(lines) == list(range(100))
    # the first image's line, then none for an hour, then the last at the end
    assert [line.split(",")[0] for line in stream.getvalue().splitlines()] == [
        "seeds: 1/100 image (1%)", "seeds: 100/100 image (100%)"]


def test_progress_false_prints_nothing(monkeypatch):
    stream = io.StringIO()
    monkeypatch.setattr("sys.stderr", stream)
    assert list(progress_bar(False, range(3), desc="stage")) == [0, 1, 2]
    assert stream.getvalue() == ""
