"""Long runs the session starts in the background: `wsss repro` of a fresh tiny project, and the
scale benchmark.

Each keeps about one of two cores busy (most of a stage's time goes to starting its processes),
so the session queues them as soon as it knows a selected test needs them (tests/conftest.py),
two at a time, and goes on with the other tests meanwhile.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
from pathlib import Path
from typing import Callable, NamedTuple

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

    def finished(self) -> bool:
        return all(process.poll() is not None for process in self.processes.values())

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


# `python benchmarks/bench_scale.py` on tiny settings, both its parts (throughput, bounded memory):
# what test_bench_scale checks.
SCALE_BENCHMARK_ARGS = ["--sizes", "48x64,64x48", "--num-train", "8", "--num-val", "4", "--images", "4", "--batch",
                        "2", "--crop", "48", "--backbone", "tiny", "--mem-counts", "4,8", "--mem-size", "40x52",
                        "--mem-train", "4"]


class BackgroundScaleBenchmark:
    """The scale benchmark started now in ``folder``."""

    def __init__(self, folder: Path):
        self.out = folder / "scale.json"
        env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(ROOT / "src"), str(ROOT)]),
                   PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}")
        command = [sys.executable, str(ROOT / "benchmarks" / "bench_scale.py"), "--data-dir", str(folder / "data"),
                   *SCALE_BENCHMARK_ARGS, "--out", str(self.out)]
        self.commands = Commands(folder, {"bench_scale": (command, ROOT, env)})
        self._result: dict | None = None

    def result(self, timeout: float = 1800) -> dict:
        """What it wrote to its --out file."""
        if self._result is None:
            self.commands.wait(timeout)
            self._result = json.loads(self.out.read_text())
        return self._result


class Background:
    """Jobs started in the order they are added, at most ``slots`` at a time (each keeps about a
    core busy), by a thread of the test process; ``result(name)`` waits for a job's end."""

    def __init__(self, slots: int = 2):
        self.slots = slots
        self.queued: list[tuple[str, Callable[[], object]]] = []
        self.started: dict[str, object] = {}
        self.errors: dict[str, BaseException] = {}
        self._stopping = threading.Event()
        self._changed = threading.Condition()
        self._thread: threading.Thread | None = None

    def add(self, name: str, start: Callable[[], object]) -> None:
        """Queue ``start`` (it starts the job and returns it: an object with ``commands``, a
        Commands, and ``result()``)."""
        with self._changed:
            if name not in self.started and name not in (n for n, _ in self.queued):
                self.queued.append((name, start))
        if self._thread is None or not self._thread.is_alive():
            self._thread = threading.Thread(target=self._schedule, name="background-jobs", daemon=True)
            self._thread.start()

    def _schedule(self) -> None:
        while not self._stopping.is_set():
            with self._changed:
                running = [job for job in self.started.values() if not job.commands.finished()]
                while self.queued and len(running) < self.slots:
                    name, start = self.queued.pop(0)
                    try:
                        self.started[name] = job = start()
                        running.append(job)
                    except BaseException as exc:  # handed to whoever waits for the job
                        self.errors[name] = exc
                    self._changed.notify_all()
                if not self.queued:
                    return
            self._stopping.wait(0.5)

    def result(self, name: str, start: Callable[[], object], timeout: float = 3600):
        """The job's result, the job queued first if it was not."""
        self.add(name, start)
        with self._changed:
            if not self._changed.wait_for(lambda: name in self.started or name in self.errors, timeout):
                raise AssertionError(f"background job {name} did not start within {timeout} s")
        if name in self.errors:
            raise self.errors[name]
        return self.started[name].result()

    def stop(self) -> None:
        """Start nothing more; end what runs."""
        self._stopping.set()
        with self._changed:
            self.queued.clear()
            jobs = list(self.started.values())
        for job in jobs:
            job.commands.stop()
