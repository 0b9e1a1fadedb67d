"""Load a page in headless Chromium and report what a user would see: the state of every <img>,
console errors, the URLs it requested, and a screenshot.

Talks to Chromium over the DevTools protocol on a pipe (`--remote-debugging-pipe`: JSON messages,
each ended by a NUL byte, Chromium reading fd 3 and writing fd 4), so it needs no driver and no
Python package besides the standard library. `find_browser()` is None where no Chromium is
installed (scripts/install_browser.sh installs Debian's).
"""

from __future__ import annotations

import fcntl
import json
import os
import select
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass

BROWSERS = ("chromium", "chromium-browser", "google-chrome")
# Headless on a machine without a display, GPU, sandbox privileges or network (ENVIRONMENT notes).
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--remote-debugging-pipe"]
IMAGES_JS = """JSON.stringify(Array.from(document.images).map(img => ({
    alt: img.alt, complete: img.complete, naturalWidth: img.naturalWidth, naturalHeight: img.naturalHeight})))"""


def find_browser() -> str | None:
    return next((path for path in map(shutil.which, BROWSERS) if path), None)


@dataclass
class PageReport:
    ready_state: str
    images: list[dict]  # {alt, complete, naturalWidth, naturalHeight} of every <img>
    errors: list[str]  # console errors, uncaught exceptions, failed loads
    requests: list[str]  # URLs the page requested (the page's own included)
    screenshot: bytes  # PNG of the viewport
    title: str = ""
    probe: object = None  # the last value of load_page's `probe` expression


class _DevTools:
    """One Chromium process and its DevTools pipe."""

    def __init__(self, browser: str, width: int, height: int):
        self.profile = tempfile.mkdtemp(prefix="wsss-chromium-")
        to_chrome_r, self._write = os.pipe()
        self._read, from_chrome_w = os.pipe()

        def onto_fds_3_and_4():  # in the child: the pipe ends Chromium expects, whatever their numbers were
            high_r = fcntl.fcntl(to_chrome_r, fcntl.F_DUPFD, 10)
            high_w = fcntl.fcntl(from_chrome_w, fcntl.F_DUPFD, 10)
            os.dup2(high_r, 3)
            os.dup2(high_w, 4)

        self.process = subprocess.Popen(
            [browser, *FLAGS, f"--user-data-dir={self.profile}", f"--window-size={width},{height}", "about:blank"],
            preexec_fn=onto_fds_3_and_4, pass_fds=(3, 4), stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL)
        os.close(to_chrome_r)
        os.close(from_chrome_w)
        self._buffer = b""
        self._next_id = 0
        self.events: list[dict] = []

    def call(self, method: str, params: dict | None = None, session: str | None = None, timeout: float = 60) -> dict:
        self._next_id += 1
        message = {"id": self._next_id, "method": method, "params": params or {}}
        if session:
            message["sessionId"] = session
        os.write(self._write, json.dumps(message).encode() + b"\0")
        deadline = time.monotonic() + timeout
        while True:
            reply = self._receive(deadline)
            if reply.get("id") == self._next_id:
                if "error" in reply:
                    raise RuntimeError(f"DevTools {method}: {reply['error']}")
                return reply["result"]
            self.events.append(reply)

    def wait_for(self, method: str, session: str, timeout: float = 60) -> dict:
        deadline = time.monotonic() + timeout
        seen = len(self.events)
        while True:
            for event in self.events[seen:]:
                if event.get("method") == method and event.get("sessionId") == session:
                    return event
            seen = len(self.events)
            self.events.append(self._receive(deadline))

    def _receive(self, deadline: float) -> dict:
        while b"\0" not in self._buffer:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([self._read], [], [], left)[0]:
                raise TimeoutError("Chromium did not answer in time")
            chunk = os.read(self._read, 1 << 20)
            if not chunk:
                raise RuntimeError(f"Chromium closed its DevTools pipe (exit status {self.process.poll()})")
            self._buffer += chunk
        message, self._buffer = self._buffer.split(b"\0", 1)
        return json.loads(message)

    def close(self) -> None:
        try:
            self.call("Browser.close", timeout=10)
        except (OSError, RuntimeError, TimeoutError):
            pass
        try:
            self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.process.kill()  # the browser we started, by its handle
            self.process.wait()
        for fd in (self._read, self._write):
            os.close(fd)
        shutil.rmtree(self.profile, ignore_errors=True)


def load_page(url: str, browser: str, width: int = 1400, height: int = 1000, timeout: float = 120,
              probe: str | None = None) -> PageReport:
    """Open `url` in a fresh headless Chromium, wait for its load event (and, with `probe`, a
    JavaScript expression, until it is true: what a page's scripts draw after loading), and report."""
    tools = _DevTools(browser, width, height)
    try:
        target = tools.call("Target.createTarget", {"url": "about:blank"}, timeout=timeout)["targetId"]
        session = tools.call("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
        for domain in ("Page", "Runtime", "Log", "Network"):
            tools.call(f"{domain}.enable", session=session)
        tools.call("Emulation.setDeviceMetricsOverride",
                   {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": False}, session)
        navigation = tools.call("Page.navigate", {"url": url}, session, timeout)
        if navigation.get("errorText"):
            raise RuntimeError(f"{url}: {navigation['errorText']}")
        tools.wait_for("Page.loadEventFired", session, timeout)

        def evaluate(expression: str):
            return tools.call("Runtime.evaluate", {"expression": expression, "returnByValue": True},
                              session)["result"].get("value")

        probed = None
        if probe is not None:
            deadline = time.monotonic() + timeout
            while not (probed := evaluate(probe)) and time.monotonic() < deadline:
                time.sleep(0.2)
        images = json.loads(evaluate(IMAGES_JS))
        ready, title = evaluate("document.readyState"), evaluate("document.title")
        screenshot = tools.call("Page.captureScreenshot", {"format": "png"}, session, timeout)["data"]
        tools.call("Runtime.evaluate", {"expression": "0"}, session)  # drains the events sent meanwhile
        return PageReport(ready, images, _errors(tools.events), _requests(tools.events), _b64(screenshot), title, probed)
    finally:
        tools.close()


def _b64(data: str) -> bytes:
    import base64

    return base64.b64decode(data)


def _errors(events: list[dict]) -> list[str]:
    errors = []
    for event in events:
        method, params = event.get("method"), event.get("params", {})
        if method == "Runtime.consoleAPICalled" and params.get("type") in ("error", "assert"):
            errors.append("console: " + " ".join(str(a.get("value", a.get("description", ""))) for a in params["args"]))
        elif method == "Runtime.exceptionThrown":
            errors.append("exception: " + params["exceptionDetails"].get("text", ""))
        elif method == "Log.entryAdded" and params["entry"]["level"] == "error":
            errors.append(f"log ({params['entry']['source']}): {params['entry']['text']}")
        elif method == "Network.loadingFailed":
            errors.append(f"load failed: {params.get('errorText')}")
    return errors


def _requests(events: list[dict]) -> list[str]:
    return [e["params"]["request"]["url"] for e in events if e.get("method") == "Network.requestWillBeSent"]
