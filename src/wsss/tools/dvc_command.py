"""`dvc` as wsss runs it: safe while several dvc processes commit into one cache.

dvc-objects (5.x) tries a reflink first whenever it puts a file into the cache. On Linux its
reflink opens the destination with O_TRUNC and, where the file system has no reflinks (ext4,
overlayfs), unlinks it again. When another process has just added that very object (two sweep
trials, two queued replicates computing equal files), the object is truncated: the cache entry
vanishes and every workspace hardlinked to it holds an empty file ("No data left in file").
`reflink_via_temp` clones onto a fresh temporary name and renames the clone into place, so no
existing file is opened for writing.

Every dvc that wsss starts, and the `dvc exp exec-run` that DVC's queue workers start, finds
``dvc`` first on the PATH of `tool_env`: ``bin/dvc``, which runs this module.
"""

from __future__ import annotations

import os
import sys
import uuid
from collections.abc import Callable, Mapping
from pathlib import Path

MODULE = "wsss.tools.dvc_command"
BIN = Path(__file__).parent / "bin"  # its `dvc` runs this module with $WSSS_PYTHON
PYTHON_ENV = "WSSS_PYTHON"


def reflink_via_temp(src: str, dst: str, clone: Callable[[str, str], None]) -> None:
    """``clone(src, tmp)`` onto a new name beside ``dst``, then renamed onto ``dst``."""
    tmp = f"{dst}.{uuid.uuid4().hex}.reflink.tmp"
    clone(src, tmp)  # fails (and removes tmp) where the file system has no reflinks
    try:
        os.replace(tmp, dst)  # an existing cache object has the same content: replacing it is safe
    except OSError:
        os.unlink(tmp)
        raise


def install() -> None:
    """Route dvc-objects' reflink through `reflink_via_temp` (only Linux's truncates)."""
    if sys.platform != "linux":
        return
    from dvc_objects.fs import system

    clone = system.reflink
    if getattr(clone, "wsss_safe", False):
        return

    def reflink(src: str, dst: str) -> None:
        reflink_via_temp(src, dst, clone)

    reflink.wsss_safe = True
    system.reflink = reflink


def tool_env(base: Mapping[str, str] | None = None, **extra: str) -> dict:
    """``base`` (default: this process's environment) in which `dvc` is `bin/dvc` and `python`,
    `mlflow` are the ones installed beside wsss, even when the virtual environment is not active."""
    env = dict(os.environ if base is None else base, **extra)
    env["PATH"] = os.pathsep.join([str(BIN), str(Path(sys.executable).parent), env.get("PATH", "")])
    env[PYTHON_ENV] = sys.executable
    return env


def main(argv: list[str] | None = None) -> int:
    install()
    from dvc.cli import main as dvc_main

    return dvc_main(sys.argv[1:] if argv is None else argv)


if __name__ == "__main__":
    sys.exit(main())
