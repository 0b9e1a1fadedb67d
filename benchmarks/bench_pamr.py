"""Benchmark: PAMR (one gather for all dilations) against a straightforward implementation.

    .venv/bin/python benchmarks/bench_pamr.py [--device cpu|cuda] [--threads 2] [--repeats 5]

Case: a quarter-resolution VOC image (3 x 94 x 125), 4 classes given at stride 4 (24 x 32),
10 iterations, dilations 1, 2, 4, 8, 12, 24. The baseline is the usual per-dilation code: pad
the map once per dilation and slice out the 8 neighbours, in a Python loop, every iteration.
Both run in this process; the script checks they agree and prints median times and the ratio.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
from wsss.refine.pamr import PAMR  # noqa: E402

DILATIONS = (1, 2, 4, 8, 12, 24)
RING = [(dy, dx) for dy in (-1, 0, 1) for dx in (-1, 0, 1) if (dy, dx) != (0, 0)]


def baseline_pamr(image: torch.Tensor, mask: torch.Tensor, num_iter: int = 10) -> torch.Tensor:
    """Per-dilation padding and slicing, the way the public implementations loop."""
    height, width = image.shape[-2:]
    mask = F.interpolate(mask, size=(height, width), mode="bilinear", align_corners=True)

    def neighbours(x: torch.Tensor, dilation: int) -> torch.Tensor:
        padded = F.pad(x, [dilation] * 4, mode="replicate")
        return torch.stack([padded[..., dilation + dy * dilation: dilation + dy * dilation + height,
                                   dilation + dx * dilation: dilation + dx * dilation + width]
                            for dy, dx in RING], dim=2)

    window = torch.cat([image.unsqueeze(2), neighbours(image, 1)], dim=2)
    sigma = window.std(dim=2, keepdim=True)
    kernel = torch.cat([-(image.unsqueeze(2) - neighbours(image, d)).abs() / (1e-8 + 0.1 * sigma)
                        for d in DILATIONS], dim=2)
    weights = F.softmax(kernel.mean(dim=1, keepdim=True), dim=2)
    for _ in range(num_iter):
        mask = (torch.cat([neighbours(mask, d) for d in DILATIONS], dim=2) * weights).sum(dim=2)
    return mask


def timed(fn, repeats: int, device: str) -> tuple[float, torch.Tensor]:
    out = fn()  # warm-up
    times = []
    for _ in range(repeats):
        if device.startswith("cuda"):
            torch.cuda.synchronize()
        start = time.perf_counter()
        out = fn()
        if device.startswith("cuda"):
            torch.cuda.synchronize()
        times.append(time.perf_counter() - start)
    return statistics.median(times), out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    generator = torch.Generator().manual_seed(0)
    image = torch.rand(1, 3, 94, 125, generator=generator).to(args.device)
    mask = torch.rand(1, 4, 24, 32, generator=generator).to(args.device)
    pamr = PAMR(10, DILATIONS)
    ours, refined = timed(lambda: pamr(image, mask), args.repeats, args.device)
    base, expected = timed(lambda: baseline_pamr(image, mask), args.repeats, args.device)
    print(f"PAMR on 3x94x125, 4 classes, 10 iterations, dilations {DILATIONS}; device {args.device}, "
          f"{args.threads} threads, median of {args.repeats}\n")
    print("| implementation | seconds |")
    print("| -------------- | ------- |")
    print(f"| one padding    | {ours:7.4f} |")
    print(f"| per dilation   | {base:7.4f} |")
    print(f"\nspeed-up {base / ours:.2f}x; max |difference| {(refined - expected).abs().max().item():.1e}")


if __name__ == "__main__":
    main()
