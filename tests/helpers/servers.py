"""Real server processes on the loopback for tests: a free port, and a process started in its own
session, waited for on its health URL and stopped by its process id."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import time
import urllib.request
from pathlib import Path


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextlib.contextmanager
def running_server(command: list[str], port: int, cwd: Path, env: dict, log: Path, timeout: float = 180,
                   ready: str = "/ping"):
    """Start `command` (which listens on 127.0.0.1:`port`), wait until `ready` answers, yield the
    process; then SIGTERM (SIGKILL after 30 s) to its process group."""
    with open(log, "wb") as out:
        server = subprocess.Popen(command, cwd=cwd, env=env, stdout=out, stderr=subprocess.STDOUT,
                                  start_new_session=True)
        try:
            deadline = time.monotonic() + timeout
            while True:
                try:
                    urllib.request.urlopen(f"http://127.0.0.1:{port}{ready}", timeout=2)
                    break
                except OSError:
                    assert server.poll() is None, log.read_text()
                    assert time.monotonic() < deadline, f"the server did not come up:\n{log.read_text()}"
                    time.sleep(0.5)
            yield server
        finally:
            os.killpg(server.pid, signal.SIGTERM)
            try:
                server.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(server.pid, signal.SIGKILL)
                server.wait()
