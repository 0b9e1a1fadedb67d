"""DVC experiments as the sweep tools run them: one `dvc exp run --temp` per configuration, its
metrics files read back from the experiment's git ref. Shared by `wsss ablate` (a row per
configuration) and `wsss repro --replicates` (a replicate per seed)."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path
from typing import Any

from wsss.core.errors import WsssError


def git(project: Path, *args: str) -> str:
    done = subprocess.run(["git", *args], cwd=project, capture_output=True, text=True)
    if done.returncode != 0:
        raise WsssError(f"git {' '.join(args)} failed: {done.stderr.strip()}")
    return done.stdout


def experiment_name(*parts: str) -> str:
    """A DVC experiment name (DVC allows letters, digits, - _ . only)."""
    return re.sub(r"[^A-Za-z0-9._-]+", "_", "-".join(parts)).strip("_")


def format_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def override_value(value: Any) -> str:
    """A value in DVC's `-S` (Hydra) override syntax: strings quoted, so that a comma (as in
    "pr_is,pamr,pr_is") is not read as a sweep over several values."""
    if isinstance(value, str):
        return "'" + value.replace("'", "\\'") + "'"
    return format_value(value)


def exp_run_command(name: str, overrides: dict[str, Any], targets=()) -> list[str]:
    """`dvc exp run --temp -n NAME -S key=value ... [targets]`."""
    command = ["dvc", "exp", "run", "--temp", "-n", name]
    for key, value in overrides.items():
        command += ["-S", f"{key}={override_value(value)}"]
    return command + list(targets)


def head(project: Path) -> str:
    """The commit experiments are based on."""
    return git(project, "rev-parse", "HEAD").strip()


def experiment_ref(baseline: str, name: str) -> str:
    return f"refs/exps/{baseline[:2]}/{baseline[2:]}/{name}"


def read_metrics(project: Path, ref: str, metrics_file: str) -> dict | None:
    """A metrics file as committed in an experiment's ref; None when the experiment has none."""
    done = subprocess.run(["git", "show", f"{ref}:{metrics_file}"], cwd=project, capture_output=True, text=True)
    return json.loads(done.stdout) if done.returncode == 0 else None


def dig(tree: dict, key: str):
    """``tree["a"]["b"]`` for ``"a.b"``; None when a part is missing."""
    node: Any = tree
    for part in key.split("."):
        if not isinstance(node, dict) or part not in node:
            return None
        node = node[part]
    return node
