"""Open the project's MLflow experiment in a headless browser and save what a user sees.

    python scripts/check_mlflow_ui.py [--project .] [--out mlflow_ui.png]

Starts `mlflow ui` on 127.0.0.1 (a free port) over the project's mlflow.db, loads the URL that
`wsss repro` prints (the experiment in MLflow's model-training view), screenshots it with headless
Chromium (`apt-get install chromium`), checks the page shows the runs table, not the GenAI traces
view, and stops the server. Exit status 1 when the page is the GenAI view.
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from wsss import tracking  # noqa: E402
from wsss.core import params as params_mod  # noqa: E402

BROWSERS = ("chromium", "chromium-browser", "google-chrome")
# Text only the model-training runs table shows; the GenAI view shows its traces page instead.
TRAINING_VIEW = ("Run Name", "Created")
GENAI_VIEW = ("Traces", "Token usage")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_until_up(url: str, server: subprocess.Popen, seconds: float = 120) -> None:
    deadline = time.time() + seconds
    while time.time() < deadline:
        if server.poll() is not None:
            raise SystemExit(f"mlflow ui exited with status {server.returncode}")
        try:
            urllib.request.urlopen(url + "/health", timeout=2)
            return
        except OSError:
            time.sleep(1)
    raise SystemExit(f"mlflow ui did not answer at {url} within {seconds:.0f} s")


def browse(browser: str, url: str, screenshot: Path) -> str:
    """Save a screenshot of the rendered page and return its DOM."""
    common = [browser, "--headless", "--no-sandbox", "--disable-gpu", "--window-size=1400,900",
              "--virtual-time-budget=20000", f"--user-data-dir={screenshot.parent / '.chromium-profile'}"]
    subprocess.run([*common, f"--screenshot={screenshot}", url], check=True, capture_output=True, timeout=180)
    dom = subprocess.run([*common, "--dump-dom", url], check=True, capture_output=True, text=True, timeout=180)
    shutil.rmtree(screenshot.parent / ".chromium-profile", ignore_errors=True)
    return dom.stdout


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--project", type=Path, default=Path("."))
    parser.add_argument("--out", type=Path, default=Path("mlflow_ui.png"))
    args = parser.parse_args()
    browser = next((b for b in BROWSERS if shutil.which(b)), None)
    if browser is None:
        raise SystemExit("no headless browser found: apt-get install chromium")
    project = args.project.resolve()
    params = params_mod.load(project / params_mod.PARAMS_FILE)
    experiment_id = tracking.configure(params.tracking.experiment, project)  # tags the experiment's kind
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    command = tracking.ui_command(Path(sys.executable).parent / "mlflow", tracking.tracking_uri(project), port=port)
    server = subprocess.Popen(command, cwd=project, env=dict(os.environ, **tracking.UI_ENV), stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        wait_until_up(base, server)
        url = tracking.experiment_url(base, experiment_id)
        args.out.parent.mkdir(parents=True, exist_ok=True)
        dom = browse(browser, url, args.out.resolve())
    finally:
        os.killpg(server.pid, signal.SIGTERM)  # `mlflow ui` and its workers: the process group we started
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()
    training = all(text in dom for text in TRAINING_VIEW)
    print(f"{url}\nscreenshot: {args.out}\nview: {'model training (runs table)' if training else 'NOT the runs table'}")
    return 0 if training else 1


if __name__ == "__main__":
    sys.exit(main())
