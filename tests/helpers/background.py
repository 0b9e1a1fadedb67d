"""Work the session runs in the background while the tests go on: background jobs.

A run of pipeline stages keeps about one of two cores busy (most of a stage's time goes to
starting its process), so the long runs the end-to-end tests check (the session's runs of the
whole tiny pipeline, the scale benchmark, a few tests' own runs) are jobs: declared with
``@background_job`` (which makes a session fixture of the job's name that gives its result), queued
once the tests are collected if a selected test needs them, and run two at a time by threads of
the test process, in the order of their rank, while the tests that need none of them run
(tests/conftest.py orders the tests so). A job only runs commands (``job.run``) and touches files
in its own folder and project copies; its test makes the checks.
"""

from __future__ import annotations

import os
import signal
import subprocess
import tempfile
import threading
import time
from pathlib import Path
from typing import Any, Callable, NamedTuple

import pytest


class Job(NamedTuple):
    name: str
    work: Callable[[JobContext], Any]
    after: tuple[str, ...]  # the jobs whose results it reads (job.result)
    rank: int  # jobs start in rank order (then in the order declared); tests too, by their jobs' ranks


JOBS: dict[str, Job] = {}
_SCHEDULER = pytest.StashKey["Scheduler"]()


def background_job(*, after: tuple[str, ...] = (), rank: int = 1):
    """Declare ``work(job)`` a background job named after the function; returns a session fixture
    of that name whose value is what ``work`` returned (its exception raised in the test)."""

    def declare(work: Callable[[JobContext], Any]):
        name = work.__name__
        JOBS[name] = Job(name, work, tuple(after), rank)

        @pytest.fixture(scope="session", name=name)
        def fixture(request):
            return scheduler(request.config).result(name)

        fixture.__doc__ = work.__doc__
        return fixture

    return declare


def jobs_needed(item) -> list[str]:
    """The background jobs a collected test needs (directly or through its fixtures)."""
    return [name for name in getattr(item, "fixturenames", ()) if name in JOBS]


def job_rank(item) -> int:
    """0 for a test that needs no job, else 1 + the highest rank of the jobs it needs."""
    return max((1 + JOBS[name].rank for name in jobs_needed(item)), default=0)


def scheduler(config) -> Scheduler:
    if _SCHEDULER not in config.stash:
        config.stash[_SCHEDULER] = Scheduler(config)
    return config.stash[_SCHEDULER]


class JobContext:
    """What a running job gets: its own folder, the environment the session started with, the
    results of the jobs it comes after, and ``run`` for its commands."""

    def __init__(self, scheduler: Scheduler, name: str, folder: Path):
        self.scheduler, self.name, self.folder = scheduler, name, folder
        self.environ = scheduler.environ

    def result(self, name: str):
        assert name in JOBS[self.name].after, f"job {self.name} reads {name} without coming after it"
        return self.scheduler.result(name)

    def run(self, cmd, cwd: Path, env: dict, check: bool = True, timeout: float = 1800) -> subprocess.CompletedProcess:
        """Run ``cmd`` (in a process group of its own, ended if the session stops); with ``check``, a
        failure raises with its output."""
        process = subprocess.Popen(cmd, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                   start_new_session=True)
        with self.scheduler.lock:
            self.scheduler.processes.add(process)
        try:
            stdout, stderr = process.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            _end(process)
            raise AssertionError(f"job {self.name}: {cmd} took over {timeout} s") from None
        finally:
            with self.scheduler.lock:
                self.scheduler.processes.discard(process)
        done = subprocess.CompletedProcess(cmd, process.returncode, stdout, stderr)
        if check and done.returncode != 0:
            raise AssertionError(f"job {self.name}: {cmd} failed ({done.returncode}):\n{stdout[-6000:]}\n"
                                 f"{stderr[-6000:]}")
        return done


def _end(process: subprocess.Popen) -> None:
    """End a process started by ``JobContext.run`` and what it started (its process group)."""
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(60)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


class Scheduler:
    """The session's background jobs: a queue in rank order and ``slots`` worker threads."""

    def __init__(self, config, slots: int = 2):
        self.config, self.slots = config, slots
        self.environ = dict(os.environ)  # as the session started: tests change theirs meanwhile
        self.lock = threading.Condition()
        self.queued: list[str] = []
        self.running: set[str] = set()
        self.results: dict[str, tuple[bool, Any]] = {}  # name: (succeeded, result or exception)
        self.processes: set[subprocess.Popen] = set()
        self.workers: list[threading.Thread] = []
        self.stopping = False

    def queue(self, names) -> None:
        """Queue the jobs (and those they come after) not queued yet; start the workers."""
        with self.lock:
            wanted, todo = set(), list(names)
            while todo:
                name = todo.pop()
                if name not in wanted:
                    wanted.add(name)
                    todo.extend(JOBS[name].after)
            new = [n for n in JOBS if n in wanted and n not in self.queued and n not in self.running
                   and n not in self.results]
            order = list(JOBS)
            self.queued = sorted(self.queued + new, key=lambda n: (JOBS[n].rank, order.index(n)))
            factory = getattr(self.config, "_tmp_path_factory", None)
            if factory is not None:
                factory.getbasetemp()  # made here, once: the factory is not thread-safe
            self.workers = [w for w in self.workers if w.is_alive()]
            while len(self.workers) < min(self.slots, len(self.queued)):
                worker = threading.Thread(target=self._work, name=f"background-job-{len(self.workers)}", daemon=True)
                self.workers.append(worker)
                worker.start()
            self.lock.notify_all()

    def _work(self) -> None:
        while True:
            with self.lock:
                if self.stopping or not self.queued:
                    return
                name = self.queued.pop(0)
                self.running.add(name)
            try:
                folder = self._folder(name)
                outcome = (True, JOBS[name].work(JobContext(self, name, folder)))
            except BaseException as exc:  # handed to the tests that need the job
                outcome = (False, exc)
            with self.lock:
                self.running.discard(name)
                self.results[name] = outcome
                self.lock.notify_all()

    def _folder(self, name: str) -> Path:
        """A new folder for the job, among tmp_path_factory's (kept as theirs are)."""
        factory = getattr(self.config, "_tmp_path_factory", None)
        if factory is None:
            return Path(tempfile.mkdtemp(prefix=name))
        with self.lock:  # the factory is not thread-safe
            return factory.mktemp(name.replace("_", "-"))

    def result(self, name: str, timeout: float = 3600):
        """The job's result once it has run (queued now if it was not)."""
        self.queue([name])
        deadline = time.monotonic() + timeout
        with self.lock:
            while name not in self.results:
                assert not self.stopping, f"background job {name}: the session stopped"
                assert self.lock.wait(max(0.0, deadline - time.monotonic())) or name in self.results, \
                    f"background job {name} did not end within {timeout} s"
            succeeded, value = self.results[name]
        if not succeeded:
            raise value
        return value

    def stop(self) -> None:
        """Start nothing more; end the commands the running jobs run."""
        with self.lock:
            self.stopping = True
            self.queued.clear()
            processes = list(self.processes)
            self.lock.notify_all()
        for process in processes:
            _end(process)
