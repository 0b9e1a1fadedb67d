"""Long runs the session starts in the background: `wsss repro` of a fresh tiny project, and the
scale benchmark's two parts.

Each keeps about one of two cores busy (most of a stage's time goes to starting its process), so
the session starts them as soon as it knows a selected test needs them (tests/conftest.py) and
goes on with the other tests meanwhile.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import NamedTuple

from tests.helpers.project import ROOT, Project, make_project


class TinyRun(NamedTuple):
    """A finished `wsss repro` of the tiny project: its folder and what the run printed."""

    path: Path
    output: str  # what it printed, stdout and stderr


class Commands:
    """Commands started now, at the same time, each in its own process group with its output in
    ``<folder>/<name>.log``; ``wait()`` waits for them all."""

    def __init__(self, folder: Path, commands: dict[str, tuple[list[str], Path, dict]]):
        self.folder = folder
        self.processes = {}
        for name, (command, cwd, env) in commands.items():
            with open(self.log(name), "wb") as log:
                self.processes[name] = subprocess.Popen(command, cwd=cwd, env=env, stdout=log,
                                                        stderr=subprocess.STDOUT, start_new_session=True)

    def log(self, name: str) -> Path:
        return self.folder / f"{name}.log"

    def wait(self, timeout: float) -> None:
        """Every command's end; an AssertionError with its output for one that failed."""
        for name, process in self.processes.items():
            try:
                returncode = process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.stop()
                raise AssertionError(f"{name} took over {timeout} s:\n{self.log(name).read_text()[-6000:]}") from None
            assert returncode == 0, f"{name} failed ({returncode}):\n{self.log(name).read_text()[-6000:]}"

    def stop(self) -> None:
        """End the commands still running and what they started (their own process groups)."""
        for process in self.processes.values():
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGTERM)
                try:
                    process.wait(60)
                except subprocess.TimeoutExpired:
                    os.killpg(process.pid, signal.SIGKILL)
                    process.wait()


class BackgroundTinyRun:
    """`wsss repro` started now in a fresh tiny project in ``folder``/project."""

    def __init__(self, folder: Path):
        self.project: Project = make_project(folder / "project")
        self.commands = Commands(folder, {"wsss-repro": (["wsss", "repro"], self.project.path, self.project.env)})
        self._result: TinyRun | None = None

    def result(self, timeout: float = 1800) -> TinyRun:
        if self._result is None:
            self.commands.wait(timeout)
            self._result = TinyRun(self.project.path, self.commands.log("wsss-repro").read_text())
        return self._result

    def stop(self) -> None:
        self.commands.stop()


# `python benchmarks/bench_scale.py` on tiny settings, one process per part (throughput, bounded
# memory): what test_bench_scale checks.
SCALE_BENCHMARK_PARTS = {
    "throughput": ["--sizes", "48x64,64x48", "--num-train", "8", "--num-val", "4", "--images", "4", "--batch", "2",
                   "--crop", "48", "--backbone", "tiny", "--mem-counts", ""],
    "memory": ["--skip-throughput", "--mem-counts", "4,8", "--mem-size", "40x52", "--mem-train", "4"],
}


class BackgroundScaleBenchmark:
    """The scale benchmark's two parts started now in ``folder``, at the same time."""

    def __init__(self, folder: Path):
        self.folder = folder
        env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(ROOT / "src"), str(ROOT)]),
                   PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}")
        script = str(ROOT / "benchmarks" / "bench_scale.py")
        self.commands = Commands(folder, {
            part: ([sys.executable, script, "--data-dir", str(folder / "data"), *args, "--out",
                    str(folder / f"{part}.json")], ROOT, env)
            for part, args in SCALE_BENCHMARK_PARTS.items()})
        self._result: dict | None = None

    def result(self, timeout: float = 1800) -> dict:
        """{part: what it wrote to its --out file}."""
        if self._result is None:
            self.commands.wait(timeout)
            self._result = {part: json.loads((self.folder / f"{part}.json").read_text())
                            for part in SCALE_BENCHMARK_PARTS}
        return self._result

    def stop(self) -> None:
        self.commands.stop()
