"""The house rules hold, and their checks fail when a rule is broken (tests.helpers.architecture)."""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers.architecture import lint_imports, missing_deps

ROOT = Path(__file__).resolve().parents[1]


def _copy_tree(tmp_path: Path) -> Path:
    dest = tmp_path / "tree"
    dest.mkdir()
    for name in ("src", "pipeline", "tests"):
        shutil.copytree(ROOT / name, dest / name, ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
    for name in ("pyproject.toml", "dvc.yaml"):
        shutil.copy(ROOT / name, dest / name)
    return dest


def _append(path: Path, line: str) -> None:
    path.write_text(path.read_text() + f"\n{line}\n")


def test_the_library_floors_hold():
    result = lint_imports(ROOT)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 broken" in result.stdout


@pytest.mark.parametrize("module, line, broken", [
    # a floor importing from one above it (core from the stages)
    ("src/wsss/core/errors.py", "import wsss.stages.common  # noqa", "wsss.core is not allowed to import wsss.stages"),
    # a stage script importing another stage script
    ("pipeline/refine.py", "import pipeline.seeds  # noqa", "pipeline.refine is not allowed to import pipeline.seeds"),
])
def test_an_import_that_breaks_the_house_fails_the_contract(tmp_path, module, line, broken):
    tree = _copy_tree(tmp_path)
    _append(tree / module, line)
    result = lint_imports(tree)
    assert result.returncode != 0
    assert broken in result.stdout


def test_every_stage_lists_the_code_it_runs_in_its_deps():
    assert missing_deps(ROOT) == {}


def test_a_stage_importing_code_outside_its_deps_is_caught(tmp_path):
    """What would have caught irn_boundaries running pipeline/train_irn.py's code without listing
    it: the stale-cache bug of issue 24."""
    tree = _copy_tree(tmp_path)
    _append(tree / "src/wsss/stages/irn_boundaries.py", "import wsss.evaluation.visualize  # noqa")
    env = dict(os.environ, PYTHONPATH=f"{tree / 'src'}:{tree}")
    out = subprocess.run([sys.executable, "-m", "tests.helpers.architecture", str(tree)], cwd=tree, env=env,
                         capture_output=True, text=True, timeout=300, check=True)
    assert json.loads(out.stdout) == {"irn_boundaries": ["src/wsss/evaluation/visualize.py"]}
