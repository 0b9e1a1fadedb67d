"""Load a page in headless Chromium and report what a user would see: the state of every <img>,
console errors, the URLs it requested, and a screenshot.

Playwright (the `dev` extra) drives the machine's own Chromium (`executable_path`), never a browser
of its own: nothing is downloaded. `needs_browser` skips a test, saying what to install, where
either is missing (scripts/install_browser.sh installs Debian's chromium).
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass

import pytest

try:
    from playwright.sync_api import Error as PlaywrightError
    from playwright.sync_api import sync_playwright
except ImportError:  # the dev extra not installed: the browser tests skip
    sync_playwright = None

BROWSERS = ("chromium", "chromium-browser", "google-chrome")
# Headless on a machine without a display, GPU, sandbox privileges or network (ENVIRONMENT notes).
FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
         "--disable-component-update", "--disable-sync"]
IMAGES_JS = """Array.from(document.images).map(img => ({
    alt: img.alt, complete: img.complete, naturalWidth: img.naturalWidth, naturalHeight: img.naturalHeight}))"""


def find_browser() -> str | None:
    return next((path for path in map(shutil.which, BROWSERS) if path), None)


def missing() -> str | None:
    """Why a page cannot be opened here (what to install), or None."""
    if sync_playwright is None:
        return "playwright not installed (the dev extra: scripts/bootstrap.sh installs it)"
    if find_browser() is None:
        return "no Chromium installed (scripts/install_browser.sh installs Debian's chromium)"
    return None


needs_browser = pytest.mark.skipif(missing() is not None, reason=missing() or "")


@dataclass
class PageReport:
    ready_state: str
    images: list[dict]  # {alt, complete, naturalWidth, naturalHeight} of every <img>
    errors: list[str]  # console errors, uncaught exceptions, failed loads
    requests: list[str]  # URLs the page requested (the page's own included)
    screenshot: bytes  # PNG of the viewport
    title: str = ""
    probe: object = None  # the last value of load_page's `probe` expression


def load_page(url: str, width: int = 1400, height: int = 1000, timeout: float = 120,
              probe: str | None = None) -> PageReport:
    """Open `url` in a fresh headless Chromium, wait for its load event (and, with `probe`, a
    JavaScript expression, until it is true: what a page's scripts draw after loading), and report."""
    errors: list[str] = []
    requests: list[str] = []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=find_browser(), headless=True, args=FLAGS,
                                             timeout=timeout * 1000)
        try:
            page = browser.new_page(viewport={"width": width, "height": height})
            page.set_default_timeout(timeout * 1000)
            page.on("console", lambda m: m.type in ("error", "assert") and errors.append(f"console: {m.text}"))
            page.on("pageerror", lambda e: errors.append(f"exception: {e}"))
            page.on("requestfailed", lambda r: errors.append(f"load failed: {r.url}: {r.failure}"))
            page.on("request", lambda r: requests.append(r.url))
            page.goto(url, wait_until="load")
            probed = None
            if probe is not None:
                try:
                    page.wait_for_function(probe, polling=200)
                except PlaywrightError:  # timed out: the report says what the probe last saw
                    pass
                probed = page.evaluate(probe)
            images = page.evaluate(IMAGES_JS)
            ready, title = page.evaluate("document.readyState"), page.title()
            screenshot = page.screenshot()
        finally:
            browser.close()
    return PageReport(ready, images, errors, requests, screenshot, title, probed)
