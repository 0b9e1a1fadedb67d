"""What the benchmark scripts share: sizes on the command line, device sync, peak memory,
scratch copies of the project, and writing results atomically. Peak memory on CPU is the peak RSS (VmHWM) above the RSS at a reset
through /proc/self/clear_refs (Linux only); on CUDA, torch.cuda.max_memory_allocated."""

from __future__ import annotations

import json
import os
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Callable

import torch

from wsss.core.project import copy_pipeline


def parse_size(text: str) -> tuple[int, int]:
    """"94x125" -> (94, 125)."""
    height, width = text.lower().split("x")
    return int(height), int(width)


def sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def _status_kb(field: str) -> int:
    with open("/proc/self/status") as status:
        return next(int(line.split()[1]) for line in status if line.startswith(field + ":"))


def peak_memory_mb(fn: Callable[[], object], device: str) -> float:
    """Peak memory (MB) one call of fn adds above what was in use just before it."""
    if device.startswith("cuda"):
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        before = torch.cuda.memory_allocated()
        fn()
        torch.cuda.synchronize()
        return (torch.cuda.max_memory_allocated() - before) / 2**20
    with open("/proc/self/clear_refs", "w") as clear_refs:
        clear_refs.write("5")  # resets VmHWM to the current RSS
    before = _status_kb("VmRSS")
    fn()
    return (_status_kb("VmHWM") - before) / 1024


def write_json(path: Path, result) -> None:
    """Write then rename: a reader never sees half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(result, indent=2) + "\n")
    tmp.replace(path)


class Scratch:
    """A scratch folder holding a copy of the project (``project``) and its environment (``env``):
    removed at the end unless a --workdir named it or ``keep`` was set (to look at a failure)."""

    def __init__(self, root: Path, workdir: str | None, name: str, extra: tuple[str, ...] = ()):
        self.folder = Path(workdir or tempfile.mkdtemp(prefix=f"wsss-bench-{name}-"))
        self.keep = workdir is not None
        self.project = self.folder / "project"
        self.project.mkdir(parents=True, exist_ok=False)
        copy_project(root, self.project, extra)
        self.env = scratch_env(self.project, self.folder)

    def __enter__(self) -> "Scratch":
        return self

    def __exit__(self, *exc) -> None:
        if not self.keep:
            shutil.rmtree(self.folder, ignore_errors=True)


def copy_project(root: Path, dest: Path, extra: tuple[str, ...] = ()) -> None:
    """The pipeline of the project at ``root`` (wsss.core.project), copied into ``dest`` with no
    git: DVC runs there without an SCM, like a sweep's slots."""
    copy_pipeline(root, dest, extra)
    (dest / ".dvc" / "config.local").write_text("[core]\n    no_scm = true\n    analytics = false\n")


def scratch_env(project: Path, scratch: Path) -> dict:
    """Environment for running the copied project: its own sources, this interpreter's tools, an
    MLflow store in the scratch folder, no parent run or params file inherited."""
    env = dict(os.environ, PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
               PYTHONPATH=f"{project / 'src'}{os.pathsep}{project}",
               MLFLOW_TRACKING_URI=f"sqlite:///{scratch / 'mlflow.db'}")
    env.pop("WSSS_PARENT_RUN_ID", None)
    env.pop("WSSS_PARAMS", None)
    return env
