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
