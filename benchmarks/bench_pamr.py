"""Benchmark: PAMR (wsss.methods.pamr: one gather for all dilations, one sparse product per
iteration) against a straightforward per-dilation implementation.

    .venv/bin/python benchmarks/bench_pamr.py [--device cpu|cuda] [--threads 2] [--repeats 10]
                                              [--size 94x125] [--out [FILE]]

Case: a quarter-resolution VOC image (3 x 94 x 125), 4 classes given at stride 4 (24 x 32, resized
inside), 10 iterations, dilations 1, 2, 4, 8, 12, 24. Three variants: ours; an ablation (our
gather, but a dense weighted sum per iteration); and the baseline, a straightforward per-dilation
implementation shaped like the reference code (both defined below, clearly labelled). All are
timed in this process (median of --repeats after a warm-up, their calls interleaved) and checked
against the baseline (exit status 1 if any differs by more than 1e-4). Peak memory is measured
for each in a fresh subprocess, so that one variant's allocations cannot hide another's: on CPU
the peak RSS (VmHWM, reset through /proc/self/clear_refs: Linux only) above the RSS just before
the call, on CUDA torch.cuda.max_memory_allocated above what was allocated before the call.
"""

from __future__ import annotations

import argparse
import functools
import statistics
import subprocess
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
from measure import parse_size, peak_memory_mb, sync, write_json  # noqa: E402

from wsss.methods.pamr import PAMR, neighbour_index  # noqa: E402

DILATIONS = (1, 2, 4, 8, 12, 24)
NUM_ITER, CLASSES, STRIDE = 10, 4, 4


# --- BASELINE: the straightforward implementation, structured like the reference code ----------
# Per dilation: replicate-pad by d, then a dilated 3x3 convolution with fixed one-hot kernels
# extracts the 8 neighbours (difference kernels for the image, copy kernels for the map) and the
# 3x3 window (σ, over every dilation's window as the reference's LocalStDev(dilations)); the
# dilations are concatenated. Every iteration pads and convolves the map once per dilation.

def _one_hot_kernels(with_centre: bool) -> torch.Tensor:
    cells = [(r, c) for r in range(3) for c in range(3) if with_centre or (r, c) != (1, 1)]
    weight = torch.zeros(len(cells), 1, 3, 3)
    for k, (r, c) in enumerate(cells):
        weight[k, 0, r, c] = 1.0
    return weight


def _baseline_neighbours(x: torch.Tensor, weight: torch.Tensor, dilations) -> torch.Tensor:
    """B x K x H x W -> B x K x P x H x W by one padding and one convolution per dilation."""
    batch, channels, height, width = x.shape
    flat = x.reshape(batch * channels, 1, height, width)
    out = [F.conv2d(F.pad(flat, [d] * 4, mode="replicate"), weight, dilation=d) for d in dilations]
    return torch.cat(out, dim=1).view(batch, channels, -1, height, width)


def baseline_pamr(image: torch.Tensor, mask: torch.Tensor, num_iter: int = NUM_ITER,
                  dilations=DILATIONS) -> torch.Tensor:
    copy = _one_hot_kernels(with_centre=False).to(image)
    window = _one_hot_kernels(with_centre=True).to(image)
    diff = window[4:5] - copy  # centre minus neighbour
    mask = F.interpolate(mask, size=image.shape[-2:], mode="bilinear", align_corners=True)
    sigma = _baseline_neighbours(image, window, dilations).std(dim=2, keepdim=True)  # every dilation's window
    kernel = -_baseline_neighbours(image, diff, dilations).abs() / (1e-8 + 0.1 * sigma)
    weights = F.softmax(kernel.mean(dim=1, keepdim=True), dim=2)
    for _ in range(num_iter):
        mask = (_baseline_neighbours(mask, copy, dilations) * weights).sum(dim=2)
    return mask


# --- ABLATION: our gather index and affinities, but a dense gather + weighted sum per iteration ----
# (B x C x N x P values each time) instead of the sparse product: shows what the product buys.

def dense_gather_pamr(image: torch.Tensor, mask: torch.Tensor, num_iter: int = NUM_ITER) -> torch.Tensor:
    module = PAMR(num_iter, DILATIONS)
    height, width = image.shape[-2:]
    weights = module.affinity(image).unsqueeze(1)  # B x 1 x N x P
    index = neighbour_index(height, width, module.offsets, image.device).flatten()
    scores = F.interpolate(mask, size=(height, width), mode="bilinear", align_corners=True).flatten(2)
    batch, classes, n = scores.shape
    for _ in range(num_iter):
        neighbours = scores.reshape(batch * classes, n).index_select(1, index).view(batch, classes, n, -1)
        scores = (neighbours * weights).sum(dim=3)
    return scores.view(batch, classes, height, width)


# --- harness ------------------------------------------------------------------------------------

def make_inputs(size: tuple[int, int], device: str) -> tuple[torch.Tensor, torch.Tensor]:
    height, width = size
    generator = torch.Generator().manual_seed(0)
    image = torch.rand(1, 3, height, width, generator=generator)
    mask = torch.rand(1, CLASSES, -(-height // STRIDE), -(-width // STRIDE), generator=generator)
    return image.to(device), mask.to(device)


VARIANTS = {"ours": "ours: one gather, sparse product per iteration",
            "dense_gather": "ablation: one gather, dense weighted sum",
            "baseline": "baseline: per-dilation pad + conv (reference)"}


def variant(name: str):
    return {"ours": PAMR(NUM_ITER, DILATIONS), "dense_gather": dense_gather_pamr, "baseline": baseline_pamr}[name]


def median_seconds(fns: dict, repeats: int, device: str) -> dict[str, float]:
    """Median seconds per call of each function, after a warm-up call of each.

    The repeats are interleaved (one call of each function per round), so that a burst of load
    from elsewhere on the machine hits every variant alike rather than one of them.
    """
    for fn in fns.values():
        fn()  # warm-up: caches, allocator, kernels
    times = {name: [] for name in fns}
    for _ in range(repeats):
        for name, fn in fns.items():
            sync(device)
            start = time.perf_counter()
            fn()
            sync(device)
            times[name].append(time.perf_counter() - start)
    return {name: statistics.median(t) for name, t in times.items()}


def peak_memory_child(name: str, size: tuple[int, int], device: str) -> float:
    """In a fresh process: the peak memory (MB) one call of `name` adds above what was in use.

    A warm-up call on a small image first loads the kernels and libraries (one-off costs that
    are not the method's); the measured call at `size` still builds its own caches.
    """
    fn = variant(name)
    small_image, small_mask = make_inputs((16, 20), device)
    image, mask = make_inputs(size, device)
    with torch.no_grad():
        fn(small_image, small_mask)
        return peak_memory_mb(lambda: fn(image, mask), device)


def peak_memory(name: str, args) -> float:
    cmd = [sys.executable, __file__, "--memory-of", name, "--device", args.device,
           "--threads", str(args.threads), "--size", f"{args.size[0]}x{args.size[1]}"]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
    return float(out.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=10)
    parser.add_argument("--size", type=parse_size, default=(94, 125), help="image H x W (default 94x125)")
    parser.add_argument("--out", type=Path, nargs="?", const=ROOT / "benchmarks" / "results" / "pamr.json",
                        help="also write the results as JSON (default path: benchmarks/results/pamr.json)")
    parser.add_argument("--memory-of", choices=list(VARIANTS), help=argparse.SUPPRESS)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    if args.memory_of:  # child process: one peak-memory measurement
        print(peak_memory_child(args.memory_of, args.size, args.device))
        return

    image, mask = make_inputs(args.size, args.device)
    fns = {name: variant(name) for name in VARIANTS}
    with torch.no_grad():
        reference = fns["baseline"](image, mask)
        diff = {name: (fn(image, mask) - reference).abs().max().item() for name, fn in fns.items()}
        seconds = median_seconds({name: functools.partial(fn, image, mask) for name, fn in fns.items()},
                                 args.repeats, args.device)
    memory = {name: peak_memory(name, args) for name in VARIANTS}

    height, width = args.size
    h, w = mask.shape[-2:]
    print(f"PAMR: image 3x{height}x{width}, {CLASSES} classes at {h}x{w}, {NUM_ITER} iterations, dilations "
          f"{DILATIONS}; device {args.device}, {args.threads} threads, median of {args.repeats}; "
          f"torch {torch.__version__}\n")
    print("| implementation                                 | ms per call | peak memory (MB) | max abs diff to baseline |")
    print("| ---------------------------------------------- | ----------- | ---------------- | ------------------------ |")
    for name, label in VARIANTS.items():
        print(f"| {label:<46} | {1e3 * seconds[name]:11.2f} | {memory[name]:16.1f} | {diff[name]:24.1e} |")
    ratio = seconds["baseline"] / seconds["ours"]
    print(f"\nspeed ratio baseline / ours: {ratio:.1f}x; memory ratio baseline / ours: "
          f"{memory['baseline'] / max(memory['ours'], 0.1):.1f}x")

    if args.out:
        result = {"case": {"image": [3, height, width], "classes": CLASSES, "mask": [h, w], "num_iter": NUM_ITER,
                           "dilations": list(DILATIONS)},
                  "device": args.device, "threads": args.threads, "repeats": args.repeats,
                  "torch": torch.__version__, "seconds": seconds, "peak_memory_mb": memory,
                  "speed_ratio": ratio, "max_abs_diff_to_baseline": diff}
        write_json(args.out, result)
    if max(diff.values()) > 1e-4:
        sys.exit(f"the variants disagree: max abs differences {diff}")


if __name__ == "__main__":
    main()
