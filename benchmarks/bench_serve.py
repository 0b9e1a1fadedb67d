"""Benchmark: `wsss serve` on large images, bounded (`--max-side`, the default 1024) against the
same server unbounded (`--max-side 0`: the network at full size, as the server was before).

    .venv/bin/python benchmarks/bench_serve.py [--model models:/wsss-segmenter/latest]
                                               [--sides 2000 3000] [--out [FILE]]

Needs a project whose MLflow store holds the model (`bash scripts/main.sh` registers one). For
each configuration a fresh `wsss serve` process on a loopback port gets, in order: an 8000 x 8000
image announced as JSON (768 MB; refused from its Content-Length), an 8000 x 8000 JPEG (refused
from its header), then one JPEG of each --sides. Per request: the HTTP status, the seconds, and
the server's peak RSS so far (VmHWM of the server process, Linux). The ratios bounded / unbounded
are printed per side. The server is stopped by its process group.
"""

from __future__ import annotations

import argparse
import http.client
import io
import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
from measure import write_json  # noqa: E402

ANNOUNCED_JSON_BYTES = 768_000_000  # an 8000 x 8000 x 3 image as JSON lists


def _jpeg(side: int, seed: int = 0) -> bytes:
    """A photo-like JPEG: smooth colour fields (a small random image scaled up)."""
    small = np.random.default_rng(seed).integers(0, 256, (max(2, side // 8), max(2, side // 8), 3), dtype=np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(small).resize((side, side), Image.BILINEAR).save(buffer, format="JPEG", quality=90)
    return buffer.getvalue()


def _peak_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM"):
            return int(line.split()[1]) / 1024
    return float("nan")


def _request(port: int, body: bytes, headers: dict, declared: int | None = None) -> tuple[int, float]:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=1800)
    start = time.perf_counter()
    try:
        if declared is None:
            connection.request("POST", "/invocations", body, headers)
        else:  # announce `declared` bytes, send the first few: the server must answer from the headers
            connection.putrequest("POST", "/invocations")
            for key, value in {**headers, "Content-Length": str(declared)}.items():
                connection.putheader(key, value)
            connection.endheaders(body)
        response = connection.getresponse()
        response.read()
        return response.status, time.perf_counter() - start
    finally:
        connection.close()


def serve_and_probe(project: Path, model: str, max_side: int, sides: list[int], port: int) -> list[dict]:
    command = [str(Path(sys.executable).parent / "wsss"), "--project", str(project), "serve", "--model", model,
               "--port", str(port), "--max-side", str(max_side)]
    server = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    rows = []
    try:
        deadline = time.monotonic() + 300
        while True:
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/ping", timeout=2)
                break
            except OSError:
                if server.poll() is not None or time.monotonic() > deadline:
                    raise SystemExit(f"`{' '.join(command)}` did not come up")
                time.sleep(0.5)
        probes = [("8000x8000 as JSON (announced)", b'{"inputs": {"image": [[[', {"Content-Type": "application/json"},
                   ANNOUNCED_JSON_BYTES),
                  ("8000x8000 JPEG", _jpeg(8000), {"Content-Type": "image/jpeg"}, None)]
        probes += [(f"{side}x{side} JPEG", _jpeg(side), {"Content-Type": "image/jpeg", "Accept": "image/png"}, None)
                   for side in sides]
        for name, body, headers, declared in probes:
            if server.poll() is not None:
                rows.append({"max_side": max_side, "request": name, "status": "server dead"})
                continue
            try:
                status, seconds = _request(port, body, headers, declared)
            except (ConnectionError, http.client.HTTPException):
                status, seconds = "connection lost", float("nan")
            alive = server.poll() is None
            rows.append({"max_side": max_side, "request": name, "status": status, "seconds": round(seconds, 2),
                         "peak_rss_mb": round(_peak_mb(server.pid), 0) if alive else None, "alive": alive})
            print(rows[-1], flush=True)
    finally:
        if server.poll() is None:
            os.killpg(server.pid, signal.SIGTERM)
            server.wait(timeout=60)
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--project", type=Path, default=ROOT)
    parser.add_argument("--model", default="models:/wsss-segmenter/latest")
    parser.add_argument("--sides", type=int, nargs="+", default=[2000, 3000])
    parser.add_argument("--port", type=int, default=5097)
    parser.add_argument("--out", nargs="?", const=str(ROOT / "benchmarks/results/serve.json"), default=None)
    args = parser.parse_args()
    bounded = serve_and_probe(args.project, args.model, 1024, args.sides, args.port)
    unbounded = serve_and_probe(args.project, args.model, 0, args.sides, args.port)
    print("\nbounded (--max-side 1024) / unbounded (--max-side 0), same requests:")
    for side in args.sides:
        name = f"{side}x{side} JPEG"
        b = next(r for r in bounded if r["request"] == name)
        u = next(r for r in unbounded if r["request"] == name)
        if b.get("status") == 200 and u.get("status") == 200:
            print(f"  {name}: time {b['seconds'] / u['seconds']:.2f}x, peak RSS so far "
                  f"{b['peak_rss_mb'] / u['peak_rss_mb']:.2f}x ({b['seconds']} s vs {u['seconds']} s, "
                  f"{b['peak_rss_mb']:.0f} MB vs {u['peak_rss_mb']:.0f} MB)")
        else:
            print(f"  {name}: bounded {b.get('status')}, unbounded {u.get('status')}")
    if args.out:
        write_json(Path(args.out), {"bounded": bounded, "unbounded": unbounded})
    return 0


if __name__ == "__main__":
    sys.exit(main())
