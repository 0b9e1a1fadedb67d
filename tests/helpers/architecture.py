"""The two rules of the house, as checks the tests run (on this tree or on a broken copy):

- the library's floors (pyproject.toml's import-linter contracts): `lint-imports`;
- a stage's dvc.yaml deps hold every project module its script imports, directly or through
  others, so that a change to any of them re-runs the stage (`missing_deps`). Modules that only
  record (the MLflow client, the Model Registry) or display (progress bars) never change an
  output: they are neither required nor followed.

Run as `python -m tests.helpers.architecture ROOT` it prints the missing deps as JSON (the tests
run it in a subprocess for a copy of the tree, whose `wsss` must shadow the installed one).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

RECORD_ONLY = {"wsss.tracking.runs", "wsss.tracking.registry", "wsss.core.progress"}


def lint_imports(root: Path) -> subprocess.CompletedProcess:
    """import-linter over the tree at ``root`` (its pyproject.toml's contracts)."""
    env = {"PYTHONPATH": f"{root / 'src'}:{root}", "PATH": str(Path(sys.executable).parent)}
    return subprocess.run([str(Path(sys.executable).parent / "lint-imports"), "--no-cache"], cwd=root, env=env,
                          capture_output=True, text=True, timeout=300)


def imported_modules(graph, module: str) -> set[str]:
    """``module`` and every project module it imports, directly or not (RECORD_ONLY not followed)."""
    seen, todo = set(), [module]
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        if name not in RECORD_ONLY:
            todo.extend(graph.find_modules_directly_imported_by(name))
    return seen - RECORD_ONLY


def module_file(root: Path, module: str) -> str:
    """A module's file, relative to ``root`` (wsss under src/, pipeline at the root)."""
    base = root / "src" if module.split(".")[0] == "wsss" else root
    path = base / module.replace(".", "/")
    file = path / "__init__.py" if path.is_dir() else path.with_suffix(".py")
    return file.relative_to(root).as_posix()


def covered(file: str, deps: list[str]) -> bool:
    return any(file == dep or file.startswith(dep.rstrip("/") + "/") for dep in deps)


def missing_deps(root: Path) -> dict[str, list[str]]:
    """{stage: the files of its imported modules that its dvc.yaml deps do not cover}."""
    import grimp
    import yaml

    graph = grimp.build_graph("wsss", "pipeline", cache_dir=None)
    stages = yaml.safe_load((root / "dvc.yaml").read_text())["stages"]
    gaps = {}
    for name, stage in stages.items():
        script = stage["cmd"].split()[-1]  # python -m pipeline.<stage>
        deps = [str(dep) for dep in stage.get("deps") or []]
        files = {module_file(root, m) for m in imported_modules(graph, script)}
        missing = sorted(f for f in files if not f.endswith("__init__.py") and not covered(f, deps))
        if missing:
            gaps[name] = missing
    return gaps


if __name__ == "__main__":
    print(json.dumps(missing_deps(Path(sys.argv[1]))))
