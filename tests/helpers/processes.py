"""Finding the processes a test left running: by working folder and command line."""

from __future__ import annotations

from pathlib import Path


def processes_in(folder: Path, *markers: str, below: bool = False) -> list:
    """The processes working in `folder` (or, `below`, anywhere under it) whose command line has
    one of `markers` (psutil processes with `cmdline` and `cwd` in their `info`)."""
    import psutil

    found = []
    for process in psutil.process_iter(["cmdline", "cwd"]):
        cwd = process.info["cwd"] or ""
        cmdline = " ".join(process.info["cmdline"] or [])
        inside = cwd.startswith(str(folder)) if below else cwd == str(folder)
        if inside and any(marker in cmdline for marker in markers):
            found.append(process)
    return found
