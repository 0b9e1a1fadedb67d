"""Benchmark: IRN's random walk, sparse (ours) against the dense (hw)² formulation.

    .venv/bin/python benchmarks/bench_random_walk.py [--device cpu|cuda] [--threads 2] [--out FILE]

Sizes: VOC (a stride-4 map of 94x125, 3 classes) and COCO (160x120, 3 classes) with IRN's
defaults (radius 5, beta 10, exp_times 8); the dense form runs at the largest size where it
fits in reasonable time and memory (--dense-size, default 47x63: a quarter of the VOC map's
pixels) and the sparse one runs there too, so the ratio compares like with like. Each case runs
in a fresh subprocess so that its peak memory (see measure.py) is its own. Prints a markdown table of medians.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

from measure import parse_size, peak_memory_mb, sync, write_json

ROOT = Path(__file__).resolve().parents[1]
RADIUS, BETA, EXP_TIMES = 5, 10.0, 8


def dense_walk(maps, boundary, radius: int, beta: float, exp_times: int):
    """IRN's formulation: the dense (hw)² affinity, column-normalised, squared exp_times times."""
    import torch

    from wsss.methods.random_walk import forward_offsets, pair_affinities

    height, width = boundary.shape
    n = height * width
    half = pair_affinities(boundary, radius, beta)  # already raised to beta
    affinity = torch.eye(n, device=boundary.device)
    ys, xs = torch.meshgrid(torch.arange(height), torch.arange(width), indexing="ij")
    for k, (dy, dx) in enumerate(forward_offsets(radius)):
        inside = (ys + dy < height) & (xs + dx >= 0) & (xs + dx < width)
        src = (ys * width + xs)[inside].to(boundary.device)
        dst = ((ys + dy) * width + xs + dx)[inside].to(boundary.device)
        affinity[src, dst] = half[k][inside.to(boundary.device)]
        affinity[dst, src] = half[k][inside.to(boundary.device)]
    transition = affinity / affinity.sum(dim=0, keepdim=True)
    for _ in range(exp_times):
        transition = transition @ transition
    x = maps * (1.0 - boundary)
    return (x.reshape(len(maps), n) @ transition).reshape(maps.shape)


def run_case(kind: str, height: int, width: int, device: str, repeats: int, threads: int) -> dict:
    """Time one case in this process; report median seconds and peak memory above baseline."""
    import torch

    from wsss.methods.random_walk import random_walk

    torch.set_num_threads(threads)
    generator = torch.Generator().manual_seed(0)
    boundary = (torch.rand(height, width, generator=generator) ** 4).to(device)
    maps = torch.rand(3, height, width, generator=generator).to(device)
    walk = random_walk if kind == "sparse" else dense_walk

    def once():
        out = walk(maps, boundary, RADIUS, BETA, EXP_TIMES)
        sync(device)
        return out

    result = walk(maps, boundary, RADIUS, BETA, EXP_TIMES)  # warm-up: libraries, allocator
    peak = peak_memory_mb(once, device)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        once()
        times.append(time.perf_counter() - start)
    return {"kind": kind, "size": f"{height}x{width}", "device": device, "seconds": statistics.median(times),
            "peak_mb": peak, "checksum": float(result.double().sum())}


def _in_subprocess(kind: str, size: tuple[int, int], args) -> dict:
    cmd = [sys.executable, __file__, "--case", kind, "--size", f"{size[0]}x{size[1]}", "--device", args.device,
           "--repeats", str(args.repeats), "--threads", str(args.threads)]
    env = dict(os.environ, PYTHONPATH=f"{ROOT / 'src'}{os.pathsep}{os.environ.get('PYTHONPATH', '')}")
    out = subprocess.run(cmd, capture_output=True, text=True, env=env, check=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--dense-size", type=parse_size, default=(47, 63))
    parser.add_argument("--out", type=Path, help="also write the rows as JSON here")
    parser.add_argument("--case", choices=["sparse", "dense"], help=argparse.SUPPRESS)
    parser.add_argument("--size", type=parse_size, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.case:  # child process: one measurement
        print(json.dumps(run_case(args.case, *args.size, args.device, args.repeats, args.threads)))
        return

    rows = [_in_subprocess("sparse", (94, 125), args), _in_subprocess("sparse", (120, 160), args),
            _in_subprocess("sparse", args.dense_size, args), _in_subprocess("dense", args.dense_size, args)]
    sparse_small, dense_small = rows[2], rows[3]
    agree = abs(sparse_small["checksum"] - dense_small["checksum"]) / max(1e-9, abs(dense_small["checksum"]))
    print(f"random walk, radius {RADIUS}, beta {BETA}, exp_times {EXP_TIMES} ({2**EXP_TIMES} steps), "
          f"3 maps, device {args.device}, {args.threads} threads, median of {args.repeats}\n")
    print("| formulation | map size | seconds | peak memory (MB) |")
    print("| ----------- | -------- | ------- | ---------------- |")
    for row in rows:
        print(f"| {row['kind']:<11} | {row['size']:<8} | {row['seconds']:7.3f} | {row['peak_mb']:16.1f} |")
    print(f"\nat {dense_small['size']}: dense / sparse time {dense_small['seconds'] / sparse_small['seconds']:.0f}x, "
          f"memory {dense_small['peak_mb'] / max(sparse_small['peak_mb'], 0.1):.0f}x; "
          f"relative checksum difference {agree:.1e}")
    n_small = args.dense_size[0] * args.dense_size[1]
    dense_voc = dense_small["seconds"] * (94 * 125 / n_small) ** 3
    print(f"dense at 94x125, extrapolated by (hw)^3: ~{dense_voc:.0f} s and {4 * (94 * 125) ** 2 / 2**20:.0f} MB "
          f"per (hw)^2 matrix, vs {rows[0]['seconds']:.3f} s sparse ({dense_voc / rows[0]['seconds']:.0f}x)")
    if args.out:
        write_json(args.out, rows)


if __name__ == "__main__":
    main()
