"""`project.progress`: auto shows bars on a terminal only, never in CI; the switch is not a DVC
dependency of any stage, so turning bars on or off re-runs nothing."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
import yaml

from wsss.core import params as params_mod
from wsss.core.errors import ParamsError
from wsss.core.progress import progress_bar, progress_enabled

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


def test_progress_bar_writes_only_when_enabled(monkeypatch):
    monkeypatch.delenv("CI", raising=False)
    for stream, expected in ((Terminal(), True), (io.StringIO(), False)):
        monkeypatch.setattr("sys.stderr", stream)
        assert list(progress_bar("auto", range(3), desc="stage")) == [0, 1, 2]
        assert ("stage" in stream.getvalue()) is expected


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
