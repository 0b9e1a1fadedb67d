"""Benchmark: the pipeline at PASCAL VOC size on this machine. Cost, not accuracy.

    python benchmarks/bench_scale.py [--data DIR] [--out [FILE]] [--workdir DIR]
                                     [--images N] [--batch B] [--mem-counts 1000,10000] ...

1. The data: a synthetic set in the VOC layout with VOC train_aug's size and resolution (10,582
   train + 1,449 val images of 500x375 / 375x500 / 500x333), generated once into data/scale/
   (git-ignored; reused while its config is the same), or a VOC-layout folder given with --data.
2. Throughput at VOC resolution with ResNet-50 (random init; output stride 16; 512 crops), on the
   first --images training images (and as many val images): every stage of dvc.yaml run for real
   (`python -m pipeline.<stage>` in a scratch copy of the project, its own MLflow store), each
   training stage for one epoch at batch --batch. images/s is the steady rate, without the
   stage's start (imports, model building, MLflow): per-image stages from the times their
   output files were written, the training stages (their losses reach MLflow in blocks), the
   evaluations and the prototypes from a run on 2 images beside the run on N; the
   gallery (12 rows whatever the count) is projected as measured. The sharded stages (seeds,
   irn_labels, irn_boundaries, refine, ptrecl) run with `project.devices: 1` (one process, all
   threads) and with `2` (two processes, one thread each).
   Peak memory: the largest summed RSS of the stage's process tree, polled every 50 ms (psutil).
3. Bounded memory: the per-image and evaluation stages over the first 1,000 and the first 10,000
   images of a set of small images (--mem-size, tiny backbone, classifier / IRN / recovery net
   trained on --mem-train images for one epoch): peak RSS at both counts and their ratio.
4. The projected wall time of the default pipeline at VOC size (default params' epochs and
   batches, ResNet-50 at 512 crops, 10,582 train and 1,449 val images, project.devices 1): each
   stage's start plus its work over its measured rate.

--preset NAME (presets/NAME.yaml, e.g. voc-resnet50) runs the throughput part with that preset's
backbone, crops, IRN and walk settings (each training still one epoch at --batch, random init) and
projects with its epochs and batches instead of params.yaml's.

Prints the tables as markdown; --out writes everything as JSON (default benchmarks/results/scale.json).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shlex
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import psutil
import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))
from measure import copy_project, parse_size, scratch_env, write_json  # noqa: E402
from scale_data import VOC_SIZES, VOC_TRAIN, VOC_VAL, synthetic_set  # noqa: E402

from wsss.core.dvcfile import pipeline  # noqa: E402
from wsss.core.params import read_raw, set_key  # noqa: E402
from wsss.stages.presets import load_preset  # noqa: E402

RESULTS = "benchmarks/results/scale.json"
DATA = ROOT / "data" / "scale"
SHARDED = ("seeds", "irn_labels", "irn_boundaries", "refine", "ptrecl")
TRAINING = {"train_classifier": "seeds.train", "train_irn": "refine.irn.train",
            "train_recovery": "ptrecl.recovery.train", "train_segmentation": "segment.train"}
PER_IMAGE_FILES = {"seeds": "artifacts/seeds/maps", "irn_labels": "artifacts/irn/relation_labels",
                   "irn_boundaries": "artifacts/irn/boundaries", "refine": "artifacts/refine/masks",
                   "ptrecl": "artifacts/ptrecl/masks", "evaluate_segmentation": "artifacts/segment/predictions"}
VAL_STAGES = ("evaluate_segmentation",)  # what runs on the val split (the others: the train split)
# Whose cost does not grow with the images, near enough: the gallery draws tracking.gallery's 12
# rows (its ranking pass over the final masks is an evaluation's cost); projected as measured.
CONSTANT = ("gallery",)
# The stages bounded memory is measured on: the sharded per-image stages and the evaluations.
MEMORY_STAGES = ("seeds", "evaluate_seeds", "irn_labels", "irn_boundaries", "refine", "evaluate_refine",
                 "ptrecl", "evaluate_ptrecl")
WORKERS = {1: "1 worker x 2 threads", 2: "2 workers x 1 thread"}


# ---------------------------------------------------------------------------------------------
# Running one stage
# ---------------------------------------------------------------------------------------------
def deep_update(tree: dict, update: dict) -> dict:
    for key, value in update.items():
        if isinstance(value, dict):
            deep_update(tree.setdefault(key, {}), value)
        else:
            tree[key] = value
    return tree


class Project:
    """A scratch copy of the project (code, params, its own MLflow store) whose stages run for
    real as `python -m pipeline.<stage>`, each under the params it is given."""

    def __init__(self, folder: Path, params: dict, env: dict | None = None):
        self.folder = folder
        folder.mkdir(parents=True)
        copy_project(ROOT, folder)
        self.params = deep_update(read_raw(folder / "params.yaml"), params)
        self.env = dict(scratch_env(folder, folder), **(env or {}))
        self.log = folder / "stages.log"

    def run(self, stage: str, overrides: dict | None = None) -> dict:
        """Run a stage; wall seconds and the peak RSS (MB) of its process tree."""
        params = deep_update(json.loads(json.dumps(self.params)), overrides or {})
        params_file = self.folder / "params.yaml"
        params_file.write_text(yaml.safe_dump(params, sort_keys=False))
        with open(self.log, "a") as log:
            log.write(f"\n=== {stage} {json.dumps(overrides or {})}\n")
            log.flush()
            start = time.monotonic()
            process = subprocess.Popen([sys.executable, "-m", f"pipeline.{stage}"], cwd=self.folder,
                                       env=dict(self.env, WSSS_PARAMS=str(params_file)), stdout=log,
                                       stderr=subprocess.STDOUT)
            peak = TreePeak(process.pid)
            code = process.wait()
            wall = time.monotonic() - start
            peak.stop()
        if code != 0:
            tail = self.log.read_text().splitlines()[-30:]
            raise RuntimeError(f"stage {stage} failed ({code}) in {self.folder}:\n" + "\n".join(tail))
        return {"wall_s": round(wall, 2), "peak_rss_mb": round(peak.mb, 1)}


class TreePeak:
    """The largest summed RSS of a process and its descendants, polled every `interval` s.
    Descendants younger than `settle` s are left out: a child forked to exec a small tool (git)
    has its parent's RSS until the exec, and counting it would double the parent's."""

    def __init__(self, pid: int, interval: float = 0.05, settle: float = 0.5):
        self.bytes, self.settle, self._done = 0, settle, threading.Event()
        self._thread = threading.Thread(target=self._poll, args=(pid, interval), daemon=True)
        self._thread.start()

    def _poll(self, pid: int, interval: float) -> None:
        try:
            root = psutil.Process(pid)
        except psutil.NoSuchProcess:
            return
        while not self._done.is_set():
            total, now = 0, time.time()
            try:
                for process in [root, *root.children(recursive=True)]:
                    try:
                        if process is root or now - process.create_time() >= self.settle:
                            total += process.memory_info().rss
                    except psutil.NoSuchProcess:
                        pass
            except psutil.NoSuchProcess:
                return
            self.bytes = max(self.bytes, total)
            self._done.wait(interval)

    def stop(self) -> None:
        self._done.set()
        self._thread.join()

    @property
    def mb(self) -> float:
        return self.bytes / 2**20


def file_rate(folder: Path, workers: int) -> float | None:
    """Images/s from the times a stage wrote its per-image files: after each worker's first
    (model loading and warm-up are over), files per second up to the last."""
    times = sorted(p.stat().st_mtime for p in folder.iterdir() if p.is_file())
    if len(times) <= workers or times[-1] <= times[workers - 1]:
        return None
    return (len(times) - workers) / (times[-1] - times[workers - 1])


# ---------------------------------------------------------------------------------------------
# Throughput at VOC size (ResNet-50)
# ---------------------------------------------------------------------------------------------
def voc_params(data: dict, images: int, batch: int, crop: int, backbone: str) -> dict:
    train = {"epochs": 1, "batch_size": batch, "crop_size": crop}
    # ResNet-50 at output stride 16, as the CAM / IRN references (the tiny net keeps its default)
    net = {"name": "resnet50", "pretrained": False, "output_stride": 16} if backbone == "resnet50" else \
        {"name": backbone, "pretrained": False}
    return {
        "project": {"progress": False, "devices": 1},
        "dataset": {**data, "max_images": images},
        "seeds": {"backbone": net,
                  "train": {**train, "resize_long": [crop * 5 // 8, crop * 5 // 4]}},  # reference 320-640 at 512
        "refine": {"irn": {"image_scale": 1.0, "train": {**train, "radius": 10}}},  # IRN reference at VOC size
        "ptrecl": {"recovery": {"train": train}},
        "segment": {"train": train},
    }


def preset_params(data: dict, images: int, batch: int, preset: dict) -> dict:
    """The throughput runs' params with a preset's values: its backbone (random init), crops, IRN
    and walk settings; every training one epoch at ``batch`` and lr 0.001; the data set is ``data``."""
    params = {"project": {"progress": False, "devices": 1}, "dataset": {**data, "max_images": images}}
    for key, value in preset.items():
        if not key.startswith("dataset."):
            set_key(params, key, value)
    set_key(params, "seeds.backbone.pretrained", False)  # cost, not accuracy: no download
    for section in TRAINING.values():
        set_key(params, f"{section}.epochs", 1)
        set_key(params, f"{section}.batch_size", batch)
        # random init with frozen BN diverges at the papers' rates; a step costs the same at any rate
        set_key(params, f"{section}.lr", 0.001)
    return params


def with_preset(defaults: dict, preset: dict) -> dict:
    """params.yaml's values with a preset's written in (what `wsss init --preset` gives)."""
    for key, value in preset.items():
        set_key(defaults, key, value)
    return defaults


def measure_throughput(project: Project, stages: list[str], images: int) -> list[dict]:
    """Every stage in pipeline order on `images` images; the sharded ones with 1 and 2 workers."""
    rows = []
    for stage in stages:
        split = "val" if stage in VAL_STAGES else "train"
        if stage in CONSTANT:
            rows.append(row(stage, split, images, "", project.run(stage), None))
        elif stage in PER_IMAGE_FILES:
            for workers in (1, 2) if stage in SHARDED else (1,):
                figures = project.run(stage, {"project": {"devices": workers}})
                rate = file_rate(project.folder / PER_IMAGE_FILES[stage], workers)
                rows.append(row(stage, split, images, WORKERS[workers] if stage in SHARDED else "", figures, rate,
                                workers))
        else:  # no per-image files (training: losses reach MLflow in blocks): the rate from the
            # difference with a run on 2 images
            small = project.run(stage, {"dataset": {"max_images": 2}})
            figures = project.run(stage)
            extra = figures["wall_s"] - small["wall_s"]
            rate = (images - 2) / extra if extra > 0 and images > 2 else None
            rows.append(row(stage, split, images, "", figures, rate))
    return rows


def row(stage: str, split: str, images: int, config: str, figures: dict, rate: float | None,
        workers: int = 1) -> dict:
    start = None if rate is None else max(0.0, figures["wall_s"] - images / rate)
    print(f"  {stage:22s} {config:22s} wall {figures['wall_s']:7.1f} s  {fmt(rate, 3)} images/s  "
          f"peak {figures['peak_rss_mb']:7.0f} MB", flush=True)
    return {"stage": stage, "split": split, "images": images, "config": config, "workers": workers, **figures,
            "images_per_s": None if rate is None else round(rate, 4),
            "start_s": None if start is None else round(start, 1)}


# ---------------------------------------------------------------------------------------------
# Projection: the default pipeline at VOC size
# ---------------------------------------------------------------------------------------------
def projection(rows: list[dict], defaults: dict, num_train: int, num_val: int) -> list[dict]:
    """Each stage's projected wall time at VOC size from its 1-worker row: its start plus its
    images (training: the default epochs x the images of the full batches) over its rate."""
    out = []
    for r in rows:
        if r["workers"] != 1:
            continue
        images = num_val if r["split"] == "val" else num_train
        if r["stage"] in CONSTANT:
            out.append({"stage": r["stage"], "work": "as measured", "images_per_s": None,
                        "hours": round(r["wall_s"] / 3600, 2)})
            continue
        if r["stage"] in TRAINING:
            cfg = lookup(defaults, TRAINING[r["stage"]])
            work = cfg["epochs"] * (images // cfg["batch_size"]) * cfg["batch_size"]
            what = f"{cfg['epochs']} epochs x {images // cfg['batch_size']} steps x {cfg['batch_size']}"
        else:
            work, what = images, f"{images} images"
        seconds = None if r["images_per_s"] is None else r["start_s"] + work / r["images_per_s"]
        out.append({"stage": r["stage"], "work": what, "images_per_s": r["images_per_s"],
                    "hours": None if seconds is None else round(seconds / 3600, 2)})
    return out


def lookup(tree: dict, dotted: str):
    for key in dotted.split("."):
        tree = tree[key]
    return tree


# ---------------------------------------------------------------------------------------------
# Bounded memory: peak RSS at 1,000 and 10,000 images
# ---------------------------------------------------------------------------------------------
# The memory runs' settings beside the defaults: what makes 10,000 images affordable on 2 cores.
MEMORY_CONFIG = ("tiny backbone (random init), {size} images, seeds.infer scales [1.0] without flip, "
                 "refine.irn.image_scale 1.0, weights from 1 epoch on the first {train} images, 1 thread per stage")


def memory_params(root: Path, size: tuple[int, int], train_images: int) -> dict:
    train = {"epochs": 1, "batch_size": 8, "crop_size": min(size)}
    return {
        "project": {"progress": False, "devices": 1},
        "dataset": {"name": "synthetic", "root": str(root), "max_images": train_images},
        "seeds": {"backbone": {"name": "tiny", "pretrained": False},
                  "train": {**train, "resize_long": [max(size), max(size)]},
                  "infer": {"scales": [1.0], "hflip": False}},
        "refine": {"irn": {"image_scale": 1.0, "train": train}},
        "ptrecl": {"recovery": {"train": train}},
        "segment": {"train": train},
    }


def measure_memory(project: Project, counts: list[int]) -> list[dict]:
    """Weights from one epoch on the first images (the training stages' own code), then every
    memory stage over the first `count` images, for each count."""
    def train(stage: str) -> None:
        project.run(stage)  # on memory_params' train_images

    peaks = {stage: {} for stage in MEMORY_STAGES}
    walls = {stage: {} for stage in MEMORY_STAGES}
    for index, count in enumerate(counts):
        limit = {"dataset": {"max_images": count}}
        for stage in MEMORY_STAGES:
            if index == 0 and stage == "seeds":
                train("train_classifier")
            if index == 0 and stage == "irn_boundaries":
                train("train_irn")
            if index == 0 and stage == "ptrecl":
                train("train_recovery")
                train("ptrecl_prototypes")
            figures = project.run(stage, limit)
            # keyed by the count as text, as the JSON file has it
            peaks[stage][str(count)], walls[stage][str(count)] = figures["peak_rss_mb"], figures["wall_s"]
            print(f"  {stage:22s} {count:6d} images  wall {figures['wall_s']:7.1f} s  "
                  f"peak {figures['peak_rss_mb']:7.0f} MB", flush=True)
    first, last = str(counts[0]), str(counts[-1])
    return [{"stage": s, "peak_rss_mb": peaks[s], "wall_s": walls[s],
             "ratio": round(peaks[s][last] / peaks[s][first], 3)} for s in MEMORY_STAGES]


# ---------------------------------------------------------------------------------------------
# Tables
# ---------------------------------------------------------------------------------------------
def fmt(value, digits: int = 1) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def throughput_table(rows: list[dict]) -> str:
    lines = ["| stage | split | images | workers | wall s | images/s | start s | peak RSS MB |",
             "|---|---|---:|---|---:|---:|---:|---:|"]
    for r in rows:
        lines.append(f"| {r['stage']} | {r['split']} | {r['images']} | {r['config'] or '1'} | {r['wall_s']:.1f} | "
                     f"{fmt(r['images_per_s'], 3)} | {fmt(r['start_s'])} | {r['peak_rss_mb']:.0f} |")
    return "\n".join(lines)


def workers_table(rows: list[dict]) -> str:
    lines = ["| stage | images/s, 1 worker x 2 threads | images/s, 2 workers x 1 thread | ratio |",
             "|---|---:|---:|---:|"]
    for stage in SHARDED:
        rates = {r["workers"]: r["images_per_s"] for r in rows if r["stage"] == stage}
        if len(rates) == 2:
            ratio = rates[2] / rates[1] if rates[1] and rates[2] else None
            lines.append(f"| {stage} | {fmt(rates[1], 3)} | {fmt(rates[2], 3)} | {fmt(ratio, 2)} |")
    return "\n".join(lines)


def projection_table(rows: list[dict]) -> str:
    lines = ["| stage | work at VOC size | images/s | projected hours |", "|---|---|---:|---:|"]
    for r in rows:
        lines.append(f"| {r['stage']} | {r['work']} | {fmt(r['images_per_s'], 3)} | {fmt(r['hours'], 2)} |")
    known = [r["hours"] for r in rows if r["hours"] is not None]
    missing = [r["stage"] for r in rows if r["hours"] is None]
    lines.append(f"| **total** | | | **{sum(known):.1f}**{' (without ' + ', '.join(missing) + ')' if missing else ''} |")
    return "\n".join(lines)


def memory_table(rows: list[dict], counts: list[int]) -> str:
    first, last = str(counts[0]), str(counts[-1])
    lines = [f"| stage | peak RSS MB, {first} images | peak RSS MB, {last} images | ratio | "
             f"wall s, {first} | wall s, {last} |", "|---|---:|---:|---:|---:|---:|"]
    for r in rows:
        lines.append(f"| {r['stage']} | {r['peak_rss_mb'][first]:.0f} | {r['peak_rss_mb'][last]:.0f} | "
                     f"{r['ratio']:.3f} | {r['wall_s'][first]:.1f} | {r['wall_s'][last]:.1f} |")
    return "\n".join(lines)


def machine() -> dict:
    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), platform.processor())
    return {"cpu": cpu, "cores": os.cpu_count(), "memory_gb": round(psutil.virtual_memory().total / 2**30, 1),
            "load_average_at_start": [round(x, 2) for x in os.getloadavg()], "python": platform.python_version()}


# ---------------------------------------------------------------------------------------------
def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", default=None, help="a VOC-layout folder (VOC2012) instead of the synthetic set")
    parser.add_argument("--train-split", default="train", help="--data's training split (real VOC: train_aug)")
    parser.add_argument("--data-dir", default=str(DATA), help="where the synthetic sets are generated and kept")
    parser.add_argument("--sizes", default=",".join(f"{h}x{w}" for h, w in VOC_SIZES),
                        help="synthetic set: image sizes HxW, one drawn per image")
    parser.add_argument("--num-train", type=int, default=VOC_TRAIN, help="synthetic set: training images")
    parser.add_argument("--num-val", type=int, default=VOC_VAL, help="synthetic set: val images")
    parser.add_argument("--images", type=int, default=8, help="images each throughput stage runs on")
    parser.add_argument("--batch", type=int, default=2, help="batch of the training stages in the throughput runs")
    parser.add_argument("--crop", type=int, default=512, help="training crop")
    parser.add_argument("--backbone", default="resnet50", help="seeds.backbone.name of the throughput runs")
    parser.add_argument("--preset", default=None, help="a preset's backbone, crops and epochs instead (presets/NAME.yaml; "
                        "--backbone and --crop are then the preset's)")
    parser.add_argument("--mem-counts", default="1000,10000", help="image counts of the memory runs ('' = skip)")
    parser.add_argument("--mem-size", default="40x52", help="image size of the memory runs' set")
    parser.add_argument("--mem-train", type=int, default=16, help="images the memory runs' weights train on")
    parser.add_argument("--skip-throughput", action="store_true", help="only the memory part")
    parser.add_argument("--workdir", default=None, help="scratch folder (default: a temporary one, removed)")
    parser.add_argument("--out", nargs="?", const=RESULTS, default=None, help=f"write JSON (default {RESULTS})")
    args = parser.parse_args(argv)
    counts = [int(c) for c in args.mem_counts.split(",") if c]
    mem_size = parse_size(args.mem_size)
    data_dir = Path(args.data_dir).resolve()

    command = "python benchmarks/bench_scale.py " + shlex.join(sys.argv[1:] if argv is None else argv)
    result = {"machine": machine(), "command": command}
    scratch = Path(args.workdir or tempfile.mkdtemp(prefix="wsss-bench-scale-"))
    started = time.monotonic()
    try:
        if not args.skip_throughput:
            if args.data:
                data = {"name": "voc", "root": str(Path(args.data).resolve()), "train_split": args.train_split,
                        "eval_split": args.train_split, "saliency": None}
                result["data"] = {"root": data["root"], "generated": False}
            else:
                sizes = tuple(parse_size(size) for size in args.sizes.split(","))
                print(f"data: {args.num_train} + {args.num_val} synthetic images of {args.sizes} in {data_dir}")
                result["data"] = synthetic_set(data_dir / "voc" / "VOCdevkit" / "VOC2012", args.num_train,
                                               args.num_val, sizes)
                data = {"name": "synthetic", "root": str(data_dir / "voc" / "VOCdevkit" / "VOC2012")}
                print(f"data: {'generated in ' + str(result['data']['seconds']) + ' s' if result['data']['generated'] else 'reused'}")
            part_start = time.monotonic()
            defaults = read_raw(ROOT / "params.yaml")
            if args.preset:
                preset = load_preset(args.preset, ROOT)
                project = Project(scratch / "voc", preset_params(data, args.images, args.batch, preset))
                defaults = with_preset(defaults, preset)
                backbone = f"{preset['seeds.backbone.name']} (random init), preset {args.preset}"
                crops = "/".join(str(preset[f"{section}.crop_size"]) for section in TRAINING.values())
            else:
                project = Project(scratch / "voc", voc_params(data, args.images, args.batch, args.crop, args.backbone))
                backbone = "ResNet-50 (random init, output stride 16)" if args.backbone == "resnet50" else \
                    f"{args.backbone} (random init)"
                crops = str(args.crop)
            print(f"throughput: {backbone}, {crops} crops, batch {args.batch}, first {args.images} images")
            stage_names = list(pipeline(ROOT).stages)[1:]  # not synthesize
            rows = measure_throughput(project, stage_names, args.images)
            plan = projection(rows, defaults, VOC_TRAIN, VOC_VAL)
            result["throughput"] = {"images": args.images, "batch": args.batch, "crop": crops, "preset": args.preset,
                                    "backbone": backbone, "rows": rows, "command": command,
                                    "load_average_at_start": result["machine"]["load_average_at_start"],
                                    "seconds": round(time.monotonic() - part_start, 1)}
            result["projection"] = {"num_train": VOC_TRAIN, "num_val": VOC_VAL, "rows": plan,
                                    "total_hours": round(sum(r["hours"] for r in plan if r["hours"] is not None), 1)}
        if counts:
            part_start = time.monotonic()
            root = data_dir / f"small-{mem_size[0]}x{mem_size[1]}" / "VOCdevkit" / "VOC2012"
            made = synthetic_set(root, max(counts), 10, sizes=(mem_size,))
            print(f"memory: {max(counts)} synthetic images of {mem_size[0]}x{mem_size[1]} "
                  f"{'generated in ' + str(made['seconds']) + ' s' if made['generated'] else 'reused'}")
            # one thread: memory does not depend on it, and 2 threads on a busy 2-core machine spin
            project = Project(scratch / "memory", memory_params(root, mem_size, args.mem_train),
                              env={"OMP_NUM_THREADS": "1"})
            result["memory"] = {"counts": counts, "image_size": list(mem_size), "data": made,
                                "config": MEMORY_CONFIG.format(size=f"{mem_size[0]}x{mem_size[1]}",
                                                               train=args.mem_train),
                                "rows": measure_memory(project, counts), "command": command,
                                "load_average_at_start": [round(x, 2) for x in os.getloadavg()]}
            result["memory"]["seconds"] = round(time.monotonic() - part_start, 1)
    finally:
        if args.workdir is None:
            shutil.rmtree(scratch, ignore_errors=True)
    result["seconds"] = round(time.monotonic() - started, 1)
    print_report(result)
    if args.out:  # a run of one part keeps the other part's figures in the file
        out = ROOT / args.out
        write_json(out, {**(json.loads(out.read_text()) if out.is_file() else {}), **result})
    return 0


def print_report(result: dict) -> None:
    m = result["machine"]
    print(f"\nCPU: {m['cpu']}, {m['cores']} cores, {m['memory_gb']} GB; load average at start "
          f"{m['load_average_at_start']}; benchmark {result['seconds']:.0f} s")
    if "throughput" in result:
        t = result["throughput"]
        print(f"\n### Throughput at VOC resolution ({t['backbone']}, {t['crop']} crops, batch {t['batch']}, "
              f"first {t['images']} images)\n")
        print(throughput_table(t["rows"]))
        print("\n### Sharded stages: 1 vs 2 workers\n")
        print(workers_table(t["rows"]))
        p = result["projection"]
        which = f"the {t['preset']} preset" if t.get("preset") else "the default pipeline"
        print(f"\n### Projected wall time of {which} at VOC size ({p['num_train']} train, "
              f"{p['num_val']} val images, project.devices 1)\n")
        print(projection_table(p["rows"]))
    if "memory" in result:
        mem = result["memory"]
        print(f"\n### Bounded memory ({mem['config']})\n")
        print(memory_table(mem["rows"], mem["counts"]))


if __name__ == "__main__":
    sys.exit(main())
