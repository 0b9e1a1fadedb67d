"""`wsss repro` of a fresh tiny project, run in the background.

A run of the whole tiny pipeline keeps about one of two cores busy (most of its time goes to
starting the stages' processes), so the session starts its shared runs as soon as it knows a
selected test needs them (tests/conftest.py) and goes on with the tests before that one.
"""

from __future__ import annotations

import os
import signal
import subprocess
from pathlib import Path
from typing import NamedTuple

from tests.helpers.project import Project, make_project


class TinyRun(NamedTuple):
    """A finished `wsss repro` of the tiny project: its folder and what the run printed."""

    path: Path
    stdout: str


class BackgroundRun:
    """`wsss repro` started now in a fresh tiny project at ``dest``; ``result()`` waits for it."""

    def __init__(self, dest: Path):
        self.project: Project = make_project(dest)
        self.stdout, self.stderr = dest.parent / f"{dest.name}.stdout", dest.parent / f"{dest.name}.stderr"
        with open(self.stdout, "wb") as out, open(self.stderr, "wb") as err:
            self.process = subprocess.Popen(["wsss", "repro"], cwd=dest, env=self.project.env, stdout=out,
                                            stderr=err, start_new_session=True)
        self._result: TinyRun | None = None

    def result(self, timeout: float = 1800) -> TinyRun:
        """The finished run; an AssertionError with its output if it failed."""
        if self._result is None:
            try:
                returncode = self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.stop()
                raise AssertionError(f"`wsss repro` in {self.project.path} took over {timeout} s") from None
            stdout = self.stdout.read_text()
            if returncode != 0:
                raise AssertionError(f"`wsss repro` in {self.project.path} failed ({returncode}):\n"
                                     f"{stdout[-6000:]}\n{self.stderr.read_text()[-6000:]}")
            self._result = TinyRun(self.project.path, stdout)
        return self._result

    def stop(self) -> None:
        """End the run and its stages (its own process group) if it still runs."""
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(60)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()
