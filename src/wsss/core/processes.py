"""Naming a process for good, so that what it leaves behind (a temporary output, an MLflow run
left RUNNING) can be recognised as orphaned once it is gone.

An owner is ``<pid>-<start>@<host>``: the start time (whole seconds) tells a dead process from
a later one that reuses its pid. Only owners on this host can be checked.
"""

from __future__ import annotations

import functools
import os
import re
import socket

OWNER_RE = re.compile(r"(?P<pid>\d+)-(?P<start>\d+)@(?P<host>[A-Za-z0-9._-]+)")


def _start_time(pid: int) -> str | None:
    import psutil

    try:
        return f"{psutil.Process(pid).create_time():.0f}"
    except psutil.Error:
        return None


@functools.cache
def owner_id(pid: int | None = None) -> str:
    """The owner name of process ``pid`` (default: this one; a forked child gets its own)."""
    if pid is None:
        return owner_id(os.getpid())
    return f"{pid}-{_start_time(pid)}@{socket.gethostname()}"


def owner_gone(owner: str) -> bool:
    """True when ``owner`` names a process of this host that no longer runs; False when it
    runs, or lives on another host, or the text is no owner name (nothing can be said)."""
    match = OWNER_RE.fullmatch(owner)
    if match is None or match["host"] != socket.gethostname():
        return False
    return _start_time(int(match["pid"])) != match["start"]


# A stage outlives nothing that started it: `wsss` names itself in DRIVER_ENV for every process
# it starts (wsss.cli.main), and a stage (wsss.stages.common.run_main) stops when that driver is
# gone, even when it was SIGKILLed and could not stop its children itself. Ray workers and DVC's
# queue workers on other hosts (or without the variable) have no local driver to watch.
DRIVER_ENV = "WSSS_DRIVER"
DRIVER_POLL_S = 1.0
_stop_reasons: list[str] = []


def stop_reason() -> str | None:
    """Why this process was told to stop by its watchdog, or None."""
    return _stop_reasons[0] if _stop_reasons else None


def driver_gone() -> str | None:
    """The owner name of this process's driver (DRIVER_ENV) when it no longer runs, else None."""
    owner = os.environ.get(DRIVER_ENV)
    return owner if owner and owner_gone(owner) else None


def watch_driver(name: str, poll_s: float = DRIVER_POLL_S) -> None:
    """Send this process SIGTERM (which a stage unwinds like an error: temporary outputs removed,
    MLflow run KILLED) once its driver is gone; a daemon thread polls every `poll_s` seconds."""
    import signal
    import sys
    import threading
    import time

    owner = os.environ.get(DRIVER_ENV)
    if not owner:
        return

    def watch() -> None:
        while not owner_gone(owner):
            time.sleep(poll_s)
        _stop_reasons.append(f"its driver, process {owner}, is gone (killed)")
        print(f"{name}: its driver, process {owner}, is gone (killed): stopping", file=sys.stderr, flush=True)
        os.kill(os.getpid(), signal.SIGTERM)

    threading.Thread(target=watch, name="driver-watchdog", daemon=True).start()
