"""Benchmark: the GPU path. Every method's core on the device against the CPU, training and
inference throughput at the papers' VOC sizes, the whole VOC train_aug pipeline projected from
those rates beside its FLOP floor, and a training stage under torchrun.

    .venv/bin/python benchmarks/bench_gpu.py --out       # one H200 (sized for <= 8 min): writes benchmarks/results/gpu.json
    .venv/bin/python benchmarks/bench_gpu.py --device cpu --tiny [--out FILE]   # the CPU mode the tests run

    options: [--device cuda|cpu] [--tiny] [--out [FILE]] [--time-budget-s 300] [--peak-tflops T]
             [--compile | --no-compile] [--threads N]

1. Equality: each method's core with the same weights (seeded, built on the CPU, then copied) on
   the same inputs, on --device and on the CPU, both in fp32 with TF32 off (the check is about the
   code path, not the precision): CAM multi-scale + flip inference (`infer_seed_maps`), IRN's
   boundary head, the random walk, PAMR, SIPE's IS-CAM, the EPS loss, PtReCl's reclassification
   and DeepLab's multi-scale prediction. The largest absolute difference of each, beside the
   tolerance this script states for it (TOLERANCES); exit status 1 if one is above it.
2. Throughput, as the stages run (wsss.train.loop, wsss.train.ddp.prepare: channels_last on
   CUDA): training images/s of the classifier (CAM), IRN's boundary head and DeepLab-ASPP, in fp32
   and in bf16 autocast, eager and under torch.compile (the network compiled, the loss eager);
   per image: 4-scale + flip CAM inference and IRN's boundary map (fp32 and bf16), the random walk
   and PAMR. Each is a warm-up then timed steps between device syncs, the input batch prepared
   (pinned) once: data loading is not measured. Peak memory of each (benchmarks/measure.py): on
   CUDA torch.cuda.max_memory_allocated above what was allocated before the row (weights,
   optimizer state and activations included), on CPU the peak RSS likewise.
   Default sizes, the papers' VOC ones: ResNet-50 (random init; output stride 16), batch 16,
   512 crops for CAM and IRN, 321 for DeepLab, 375x500 images for inference. --tiny: the
   project's `tiny` backbone, 64-px crops, batch 2, 64x80 images, one warm-up and 2 timed steps.
3. Projection: the whole VOC train_aug pipeline (10,582 images, the papers' epochs: see STAGES)
   on one device from these rates (the pipeline's precision, eager), beside its floor: the FLOPs
   of one step (torch.utils.flop_counter.FlopCounterMode) over --peak-tflops (790 TFLOP/s bf16
   dense, issue 28's figure for one H200; on CPU a bound on the cores' fp32 peak), as a ratio.
4. torchrun: `python -m torch.distributed.run --standalone --nproc_per_node 1` of the
   train_classifier stage (wsss.train.ddp's process group: nccl on CUDA, gloo on CPU) in a scratch
   copy of the project on 8 tiny synthetic images: its exit status, wall time and backend.

Rows that would start after --time-budget-s are skipped and recorded as such (the torch.compile
rows come last); a row that fails records its error instead of ending the run. Prints the tables;
--out writes everything as JSON (default path benchmarks/results/gpu.json).
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import gc
import subprocess
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import torch
import torch.nn.functional as F
import yaml
from torch.utils.data import DataLoader, Dataset
from torch.utils.flop_counter import FlopCounterMode

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))
from measure import Scratch, peak_memory_mb, sync, write_json  # noqa: E402

from wsss.core.dvcfile import pipeline  # noqa: E402
from wsss.core.params import (  # noqa: E402
    BackboneParams,
    ClassifierTrainParams,
    IrnTrainParams,
    PamrParams,
    PtreclParams,
    SeedsParams,
    WalkParams,
    read_raw,
)
from wsss.core.precision import DTYPES, autocast, resolve_precision  # noqa: E402
from wsss.data.transforms import to_tensor  # noqa: E402
from wsss.methods.eps import eps_losses  # noqa: E402
from wsss.methods.irn import IRN  # noqa: E402
from wsss.methods.pamr import PAMR  # noqa: E402
from wsss.methods.pseudo_masks import irn_mask, pamr_mask  # noqa: E402
from wsss.methods.ptrecl import PrototypeBank, build_prototypes, reclassify  # noqa: E402
from wsss.methods.random_walk import random_walk  # noqa: E402
from wsss.methods.seed_methods import build_seed_model, infer_seed_maps, seed_losses  # noqa: E402
from wsss.models.backbones import build_backbone  # noqa: E402
from wsss.models.deeplab import DeepLab, predict, segmentation_loss  # noqa: E402
from wsss.train.ddp import Ranks, prepare  # noqa: E402
from wsss.train.loop import make_sgd, train_irn, train_loop, train_seed_classifier  # noqa: E402

RESULTS = ROOT / "benchmarks" / "results" / "gpu.json"
NUM_FOREGROUND = 20  # VOC's classes; DeepLab adds the background
CLASS_IDS = np.array([1, 15])  # an image labelled aeroplane and person
SCALES = tuple(SeedsParams().infer.scales)  # 1.0, 0.5, 1.5, 2.0 (docs/methods.md §1)
VOC_TRAIN_AUG = 10_582
H200_BF16_DENSE_TFLOPS = 790.0  # issue 28's figure for one H200
# An x86 core's fp32 peak at most: 2 FMA units x 16 lanes (AVX-512) x 2 FLOPs x 4 GHz; the CPU
# floor counts one per torch thread.
CPU_CORE_TFLOPS = 0.256
LR = 1e-3  # small: random data must not drive the loss to inf (the loop stops then); the cost is the same


@dataclass(frozen=True)
class Sizes:
    backbone: str  # seeds.backbone.name
    output_stride: int
    crops: dict  # training crop of each network
    batch: int
    image: tuple[int, int]  # the image of the inference rows and of the equality checks
    radius: int  # IRN's training radius on the stride-4 grid
    warmup: int  # untimed steps (or images) first
    steps: int  # timed steps (or images)


# The references' (wsss.core.params' defaults; docs/methods.md §1, §2, §9), on a 375x500 VOC image.
VOC = Sizes("resnet50", 16, {"classifier": 512, "irn": 512, "deeplab": 321}, 16, (375, 500),
            IrnTrainParams().radius, 3, 10)
TINY = Sizes("tiny", 8, {"classifier": 64, "irn": 64, "deeplab": 64}, 2, (64, 80), 5, 1, 2)


# --------------------------------------------------------------------------------------------
# Networks and inputs, the same on every device
# --------------------------------------------------------------------------------------------
def network(name: str, sizes: Sizes) -> torch.nn.Module:
    """A network as the stages build it, seeded: the same weights every time (no download)."""
    torch.manual_seed(0)
    backbone = build_backbone(BackboneParams(name=sizes.backbone, pretrained=False, output_stride=sizes.output_stride))
    if name == "irn":
        return IRN(backbone, displacement=False)  # the pipeline's boundary head alone
    if name == "deeplab":
        return DeepLab(backbone, NUM_FOREGROUND + 1, "v2")
    method = {"classifier": "cam"}.get(name, name)
    return build_seed_model(SeedsParams(method=method), backbone, NUM_FOREGROUND)


def rgb_image(size: tuple[int, int], seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (*size, 3), dtype=np.uint8)


def blocky_labels(batch: int, size: tuple[int, int], classes: int, seed: int) -> torch.Tensor:
    """B x H x W label maps of 4x4 blocks of random classes, one pixel in 10 ignored (255): pairs
    of every kind for IRN, a cross-entropy for DeepLab."""
    generator = torch.Generator().manual_seed(seed)
    coarse = torch.randint(0, classes, (batch, 1, 4, 4), generator=generator).float()
    labels = F.interpolate(coarse, size=size, mode="nearest")[:, 0].long()
    labels[torch.rand(labels.shape, generator=generator) < 0.1] = 255
    return labels


def on(module: torch.nn.Module, device: torch.device) -> torch.nn.Module:
    return copy.deepcopy(module).to(device)


@contextlib.contextmanager
def full_fp32():
    """cuDNN convolutions default to TF32 on recent GPUs: the equality compares fp32 with fp32."""
    saved = torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32
    torch.backends.cudnn.allow_tf32 = torch.backends.cuda.matmul.allow_tf32 = False
    try:
        yield
    finally:
        torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32 = saved


# --------------------------------------------------------------------------------------------
# 1. Equality: each core as f(device) -> its output, weights and inputs made once on the CPU
# --------------------------------------------------------------------------------------------
def cam_core(sizes: Sizes):
    model, image = network("classifier", sizes).eval(), to_tensor(rgb_image(sizes.image))
    return lambda device: infer_seed_maps(on(model, device), image.to(device), torch.from_numpy(CLASS_IDS),
                                          SCALES, True)[0]


def irn_boundary_core(sizes: Sizes):
    model, image = network("irn", sizes).eval(), to_tensor(rgb_image(sizes.image))
    return lambda device: on(model, device).boundary(image.to(device))


def random_walk_core(sizes: Sizes):
    generator = torch.Generator().manual_seed(0)
    grid = stride4(sizes.image)
    maps, boundary = torch.rand(len(CLASS_IDS), *grid, generator=generator), torch.rand(grid, generator=generator)
    walk = WalkParams()  # the reference's radius, beta and 2^8 steps
    return lambda device: random_walk(maps.to(device), boundary.to(device), walk.radius, walk.beta, walk.exp_times)


def pamr_core(sizes: Sizes):
    generator = torch.Generator().manual_seed(0)
    image = to_tensor(rgb_image(sizes.image))[None]
    scores = torch.rand(1, len(CLASS_IDS) + 1, *sizes.image, generator=generator)
    cfg = PamrParams()
    return lambda device: PAMR(cfg.num_iter, cfg.dilations, cfg.sigma)(image.to(device), scores.to(device))


def sipe_core(sizes: Sizes):
    model, image = network("sipe", sizes).eval(), to_tensor(rgb_image(sizes.image))

    def is_cam(device):
        maps, background = infer_seed_maps(on(model, device), image.to(device), torch.from_numpy(CLASS_IDS),
                                           SCALES, True)
        return torch.cat([background[None], maps])
    return is_cam


def eps_core(sizes: Sizes):
    model = network("eps", sizes).eval()
    images = torch.stack([to_tensor(rgb_image(sizes.image, seed)) for seed in (0, 1)])
    labels = torch.zeros(2, NUM_FOREGROUND)
    labels[:, CLASS_IDS - 1] = 1.0
    saliency = torch.rand(2, *sizes.image, generator=torch.Generator().manual_seed(0))
    cfg = SeedsParams().eps

    def loss(device):
        losses = eps_losses(on(model, device), images.to(device), labels.to(device), saliency.to(device),
                            cfg.strategy, cfg.tau, cfg.lam)
        return torch.stack([losses["loss"], losses["cls"], losses["sal"]])
    return loss


def ptrecl_core(sizes: Sizes, dim: int = 256):
    """Prototypes from a bank of random features (built on the CPU, as stage ptrecl_prototypes
    writes them), then the reclassification of one image's features on the device."""
    generator = torch.Generator().manual_seed(0)
    grid = stride4(stride4(sizes.image))  # the recovery network's output stride, 16
    cfg = PtreclParams()
    bank = PrototypeBank(cfg.prototypes.pixels_per_image, cfg.prototypes.capacity, generator=0)
    for _ in range(8):
        mask = torch.from_numpy(CLASS_IDS)[torch.randint(0, 2, grid, generator=generator)]
        mask[torch.rand(grid, generator=generator) < 0.3] = 0
        bank.add(torch.randn(dim, *grid, generator=generator), mask, CLASS_IDS.tolist())
    prototypes = build_prototypes(bank, cfg.prototypes.k, cfg.prototypes.kmeans_iters, generator=0)
    features = torch.randn(dim, *grid, generator=generator)
    return lambda device: reclassify(features.to(device), CLASS_IDS.tolist(), prototypes, cfg.reclassify.top_m,
                                     cfg.reclassify.formula)


def deeplab_core(sizes: Sizes):
    model, image = network("deeplab", sizes).eval(), to_tensor(rgb_image(sizes.image))
    return lambda device: predict(on(model, device), image.to(device), scales=(0.5, 1.0, 1.5), hflip=True)


CORES = {"cam_multiscale": cam_core, "irn_boundary": irn_boundary_core, "random_walk": random_walk_core,
         "pamr": pamr_core, "sipe_is_cam": sipe_core, "eps_loss": eps_core, "ptrecl_reclassify": ptrecl_core,
         "deeplab_predict": deeplab_core}
# Largest |device - CPU| allowed. Maps, probabilities and losses are of order 1 and fp32 keeps 7
# digits: 1e-4 leaves room for other summation orders (256 walk steps, 10 PAMR iterations).
# SIPE's seeds are argmaxes of the structure analysis: a near-tie that flips one seed moves its
# prototype, hence 1e-3. PtReCl computes in exact fixed-point arithmetic: the same bits expected.
TOLERANCES = {"cam_multiscale": 1e-4, "irn_boundary": 1e-4, "random_walk": 1e-4, "pamr": 1e-4,
              "sipe_is_cam": 1e-3, "eps_loss": 1e-4, "ptrecl_reclassify": 1e-6, "deeplab_predict": 1e-4}


def stride4(size: tuple[int, int]) -> tuple[int, int]:
    return -(-size[0] // 4), -(-size[1] // 4)


def equality_row(name: str, sizes: Sizes, device: torch.device) -> dict:
    core = CORES[name](sizes)
    with torch.no_grad(), full_fp32():
        reference = core(torch.device("cpu")).double()
        result = core(device).cpu().double()
    diff = (result - reference).abs().max().item()
    return {"max_abs_diff": diff, "passed": diff <= TOLERANCES[name], "shape": list(reference.shape),
            "reference_max_abs": reference.abs().max().item()}


# --------------------------------------------------------------------------------------------
# 2. Throughput
# --------------------------------------------------------------------------------------------
class Repeat(Dataset):
    """One prepared batch, `steps` times: the loop's cost without data loading's."""

    def __init__(self, batch: tuple, steps: int):
        self.batch, self.steps = batch, steps

    def __len__(self) -> int:
        return self.steps

    def __getitem__(self, index: int) -> tuple:
        return self.batch


def training_batch(name: str, sizes: Sizes, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """(images, targets) of one batch: multi-hot labels for the classifier, relation labels on the
    stride-4 grid for IRN, label maps for DeepLab; pinned on CUDA, as the stages' loaders pin."""
    crop = sizes.crops[name]
    images = torch.stack([to_tensor(rgb_image((crop, crop), seed)) for seed in range(sizes.batch)])
    if name == "classifier":
        targets = torch.zeros(sizes.batch, NUM_FOREGROUND)
        targets[:, CLASS_IDS - 1] = 1.0
    else:
        grid = stride4((crop, crop)) if name == "irn" else (crop, crop)
        targets = blocky_labels(sizes.batch, grid, len(CLASS_IDS) + 1 if name == "irn" else NUM_FOREGROUND + 1, 0)
    if device.type == "cuda":
        images, targets = images.pin_memory(), targets.pin_memory()
    return images, targets


def train_steps(name: str, model, loader: DataLoader, optimizer, device: torch.device, precision: torch.dtype,
                sizes: Sizes) -> dict:
    """One epoch over `loader` with the loop and losses of the network's stage."""
    if name == "classifier":  # BN frozen, as the reference trains its pretrained backbone
        return train_seed_classifier(model, loader, 1, optimizer, device, seed_losses(SeedsParams(), ()),
                                     freeze_bn=True, precision=precision)
    if name == "irn":
        return train_irn(model, loader, 1, optimizer, device, sizes.radius, precision=precision)
    return train_loop(model, loader, 1, optimizer, device, segmentation_loss, "segment.train.lr",
                      precision=precision)


def seconds(fn: Callable[[], object], device: torch.device) -> float:
    sync(str(device))
    start = time.perf_counter()
    fn()
    sync(str(device))
    return time.perf_counter() - start


def trainable(name: str, sizes: Sizes, device: torch.device) -> tuple[torch.nn.Module, torch.optim.Optimizer]:
    """The network as its stage prepares it for training (channels_last on CUDA), and its SGD."""
    model = prepare(network(name, sizes).to(device), Ranks(0, 1, device), sync_bn=False)
    return model, make_sgd([([p for p in model.parameters() if p.requires_grad], 1.0)], LR, 0.9, 1e-4)


def training_rate(name: str, sizes: Sizes, device: torch.device, precision: str, compiled: bool) -> dict:
    model, optimizer = trainable(name, sizes, device)
    if compiled:
        torch.compiler.reset()  # from scratch: no other variant's graphs count against dynamo's recompile limit
    trained = torch.compile(model) if compiled else model
    batch = training_batch(name, sizes, device)
    dtype = DTYPES[precision]

    def steps(count: int) -> float:
        loader = DataLoader(Repeat(batch, count), batch_size=None)
        return seconds(lambda: train_steps(name, trained, loader, optimizer, device, dtype, sizes), device)

    warmup = steps(sizes.warmup)  # with torch.compile: the compilation
    timed = steps(sizes.steps)
    return {"images_per_s": sizes.batch * sizes.steps / timed, "ms_per_step": 1e3 * timed / sizes.steps,
            "warmup_s": warmup}


def training_flops(name: str, sizes: Sizes, device: torch.device) -> float:
    """FLOPs per image of one training step (forward, backward; the optimizer's element-wise work
    is not counted)."""
    model, optimizer = trainable(name, sizes, device)
    loader = DataLoader(Repeat(training_batch(name, sizes, device), 1), batch_size=None)
    return flops(lambda: train_steps(name, model, loader, optimizer, device, torch.float32, sizes)) / sizes.batch


def inference_call(name: str, sizes: Sizes, device: torch.device, precision: str) -> Callable[[], object]:
    """One image's work as its stage does it, from the CPU's data to the CPU's result."""
    image = rgb_image(sizes.image)
    dtype = DTYPES[precision]
    scores = np.random.default_rng(0).random((len(CLASS_IDS), *sizes.image), dtype=np.float32)
    if name == "cam_inference":  # stage seeds
        model = network("classifier", sizes).to(device).eval()
        return lambda: no_grad_autocast(device, dtype, lambda: infer_seed_maps(
            model, to_tensor(image).to(device), torch.from_numpy(CLASS_IDS), SCALES, True)[0].float().cpu())
    if name == "irn_boundary":  # stage irn_boundaries
        model = network("irn", sizes).to(device).eval()
        return lambda: no_grad_autocast(device, dtype,
                                        lambda: model.boundary(to_tensor(image).to(device)).float().cpu())
    if name == "random_walk":  # stage refine: the walk on a stored boundary map
        boundary = torch.rand(stride4(sizes.image), generator=torch.Generator().manual_seed(0))
        walk = WalkParams()
        return lambda: irn_mask(boundary.to(device), scores, CLASS_IDS, walk.radius, walk.beta, walk.exp_times,
                                walk.bg_score)
    cfg = PamrParams()  # refine.method pamr, at the image's resolution
    pamr = PAMR(cfg.num_iter, cfg.dilations, cfg.sigma).to(device)
    return lambda: pamr_mask(image, scores, CLASS_IDS, 0.25, pamr, device)


@torch.no_grad()
def no_grad_autocast(device: torch.device, dtype: torch.dtype, fn: Callable[[], object]) -> object:
    with autocast(device, dtype):
        return fn()


def inference_rate(name: str, sizes: Sizes, device: torch.device, precision: str) -> dict:
    call = inference_call(name, sizes, device, precision)
    warmup = seconds(lambda: [call() for _ in range(sizes.warmup)], device)
    timed = seconds(lambda: [call() for _ in range(sizes.steps)], device)
    return {"images_per_s": sizes.steps / timed, "ms_per_image": 1e3 * timed / sizes.steps, "warmup_s": warmup}


def inference_flops(name: str, sizes: Sizes, device: torch.device) -> float:
    return flops(inference_call(name, sizes, device, "fp32"))


def flops(fn: Callable[[], object]) -> float:
    counter = FlopCounterMode(display=False)
    with counter:
        fn()
    return float(counter.get_total_flops())


def with_peak_memory(measure: Callable[[], dict], device: torch.device) -> dict:
    figures = {}
    figures["peak_memory_mb"] = peak_memory_mb(lambda: figures.update(measure()), str(device))
    return figures


TRAINING = ("classifier", "irn", "deeplab")
INFERENCE = {"cam_inference": ("bf16", "fp32"), "irn_boundary": ("bf16", "fp32"), "random_walk": ("fp32",),
             "pamr": ("fp32",)}
# The inference with a FLOP floor: FlopCounterMode counts the walk's and PAMR's sparse products as
# dense ones (N x N per product), which would put their floor far above their cost.
COUNTED_INFERENCE = ("cam_inference", "irn_boundary")


def training_plan(sizes: Sizes, device: torch.device, compiled: bool) -> list[tuple[dict, Callable]]:
    """(row, measurement) of every network in both precisions, the pipeline's (bf16 on CUDA) first."""
    fmt = "channels_last" if device.type == "cuda" else "contiguous"  # wsss.train.ddp.prepare's choice
    return [({"work": name, "kind": "training", "precision": precision, "compiled": compiled, "memory_format": fmt,
              "batch": sizes.batch, "size": [sizes.crops[name]] * 2},
             lambda n=name, p=precision: with_peak_memory(lambda: training_rate(n, sizes, device, p, compiled), device))
            for precision in ("bf16", "fp32") for name in TRAINING]


def inference_plan(sizes: Sizes, device: torch.device) -> list[tuple[dict, Callable]]:
    return [({"work": name, "kind": "inference", "precision": precision, "compiled": False,
              "memory_format": "contiguous", "batch": 1, "size": list(sizes.image)},
             lambda n=name, p=precision: with_peak_memory(lambda: inference_rate(n, sizes, device, p), device))
            for name, precisions in INFERENCE.items() for precision in precisions]


def flop_plan(sizes: Sizes, device: torch.device) -> list[tuple[dict, Callable]]:
    return ([({"work": name}, lambda n=name: {"flops_per_image": training_flops(n, sizes, device)})
             for name in TRAINING]
            + [({"work": name}, lambda n=name: {"flops_per_image": inference_flops(n, sizes, device)})
               for name in COUNTED_INFERENCE])


# --------------------------------------------------------------------------------------------
# 3. Projection
# --------------------------------------------------------------------------------------------
# DeepLab-v2 as the WSSS papers train it (kazuto1011/deeplab-pytorch, configs/voc12.yaml: batch 5
# x 2 accumulated, 20,000 iterations, 321 crops, on train_aug); docs/methods.md §9.
DEEPLAB_IMAGES = 20_000 * 10
# (stage, measured work, images it processes at VOC size, where that count comes from), in
# pipeline order. Not projected: irn_labels (dense CRF, on the CPU), ptrecl_prototypes, the
# evaluations, data loading and each stage's start.
STAGES = (
    ("train_classifier", "classifier", ClassifierTrainParams().epochs * VOC_TRAIN_AUG,
     "5 epochs, the reference's (wsss.core.params' default; docs/methods.md §1)"),
    ("seeds", "cam_inference", VOC_TRAIN_AUG, "every image, 4 scales + flip"),
    ("train_irn", "irn", IrnTrainParams().epochs * VOC_TRAIN_AUG,
     "3 epochs, the reference's (wsss.core.params' default; docs/methods.md §2)"),
    ("irn_boundaries", "irn_boundary", VOC_TRAIN_AUG, "every image and its flip"),
    ("refine", "random_walk", VOC_TRAIN_AUG, "one walk per image, 2^8 steps"),
    ("train_recovery", "deeplab", DEEPLAB_IMAGES, "DeepLab-v2's 20,000 iterations of 10 images"),
    ("ptrecl", "random_walk", VOC_TRAIN_AUG, "the re-refinement's walk only"),
    ("train_segmentation", "deeplab", DEEPLAB_IMAGES, "DeepLab-v2's 20,000 iterations of 10 images"),
)


def measured_rate(rows: list[dict], work: str, precision: str) -> float | None:
    """images/s of `work` as the pipeline runs it: eager, in its precision (fp32 where that is the
    only one measured)."""
    for wanted in (precision, "fp32"):
        for row in rows:
            if row["work"] == work and row["precision"] == wanted and not row["compiled"] and "images_per_s" in row:
                return row["images_per_s"]
    return None


def projection(rows: list[dict], flop_rows: list[dict], precision: str, peak_tflops: float) -> dict:
    flops_of = {row["work"]: row.get("flops_per_image") for row in flop_rows}
    stages = []
    for stage, work, images, source in STAGES:
        rate, per_image = measured_rate(rows, work, precision), flops_of.get(work)
        hours = images / rate / 3600 if rate else None
        floor = images * per_image / (peak_tflops * 1e12) / 3600 if per_image else None
        stages.append({"stage": stage, "work": work, "images": images, "source": source, "images_per_s": rate,
                       "hours": hours, "flops_per_image": per_image, "floor_hours": floor,
                       "ratio": hours / floor if hours and floor else None})
    with_floor = [s for s in stages if s["ratio"] is not None]
    total_floor = sum(s["floor_hours"] for s in with_floor)
    return {"precision": precision, "peak_tflops": peak_tflops, "stages": stages,
            "hours": sum(s["hours"] for s in stages if s["hours"] is not None),
            "missing": [s["stage"] for s in stages if s["hours"] is None],
            "hours_with_floor": sum(s["hours"] for s in with_floor), "floor_hours": total_floor,
            "ratio": sum(s["hours"] for s in with_floor) / total_floor if with_floor else None}


# --------------------------------------------------------------------------------------------
# 4. torchrun
# --------------------------------------------------------------------------------------------
# The smallest real training stage: 8 synthetic 64x80 images, one epoch of 2 steps, tiny backbone.
TORCHRUN_PARAMS = {"data.synthetic.num_train": 8, "data.synthetic.num_val": 2, "data.synthetic.image_sizes": None,
                   "data.synthetic.image_height": 64, "data.synthetic.image_width": 80,
                   "seeds.backbone.name": "tiny", "seeds.train.epochs": 1, "seeds.train.batch_size": 4,
                   "seeds.train.resize_long": [48, 64], "seeds.train.crop_size": 48,
                   "project.devices": 1, "project.progress": False}
TORCHRUN = ["-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "1", "-m", "pipeline.train_classifier"]


def torchrun_row(device: torch.device) -> dict:
    with Scratch(ROOT, None, "gpu") as scratch:
        params = scratch.project / "params.yaml"
        params.write_text(yaml.safe_dump(read_raw(params, TORCHRUN_PARAMS | {"project.device": device.type}),
                                         sort_keys=False))
        data = subprocess.run([sys.executable, "-m", "pipeline.synthesize"], cwd=scratch.project, env=scratch.env,
                              capture_output=True, text=True, timeout=300)
        if data.returncode:
            return {"rc": None, "error": "synthesize failed: " + data.stderr[-2000:]}
        start = time.monotonic()
        run = subprocess.run([sys.executable, *TORCHRUN], cwd=scratch.project, env=scratch.env, capture_output=True,
                             text=True, timeout=300)
        wall = time.monotonic() - start
        checkpoint = scratch.project / pipeline(scratch.project).paths.classifier
        row = {"command": " ".join(["python", *TORCHRUN]), "rc": run.returncode, "wall_s": wall,
               # what wsss.train.ddp.process_group initialises for the stage's device
               "backend": "nccl" if device.type == "cuda" else "gloo", "checkpoint_written": checkpoint.is_file()}
        if run.returncode:
            row["log_tail"] = (run.stdout + run.stderr)[-2000:]
        return row


# --------------------------------------------------------------------------------------------
# Running the rows, the report
# --------------------------------------------------------------------------------------------
class Budget:
    def __init__(self, seconds: float):
        self.start, self.limit = time.monotonic(), seconds

    def elapsed(self) -> float:
        return time.monotonic() - self.start

    def spent(self) -> bool:
        return self.elapsed() > self.limit


def attempt(row: dict, measure: Callable[[], dict], budget: Budget, device: torch.device) -> dict:
    """`row` with what `measure()` gives, or why it has nothing: skipped (the budget is spent) or
    the error it raised."""
    if "skipped" in row:
        return row
    if budget.spent():
        return row | {"skipped": f"time budget spent ({budget.limit:.0f} s)"}
    start = time.monotonic()
    try:
        return row | measure() | {"row_s": time.monotonic() - start}
    except Exception as exc:  # one variant's failure (a compile error, out of memory) is a result
        return row | {"error": f"{type(exc).__name__}: {exc}"[:2000]}
    finally:
        gc.collect()
        if device.type == "cuda":
            torch.cuda.empty_cache()


def device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    with open("/proc/cpuinfo") as cpuinfo:
        return next((line.split(":", 1)[1].strip() for line in cpuinfo if line.startswith("model name")), "cpu")


def compile_skipped(choice: bool | None, device: torch.device) -> str | None:
    """Why the torch.compile rows do not run, if they do not (--compile / --no-compile, or the default)."""
    if choice is False:
        return "--no-compile"
    if choice is None and device.type != "cuda":
        return "not on CPU unless --compile (inductor's C++ builds are slow there)"
    return None


def run(args) -> dict:
    device, sizes, budget = torch.device(args.device), TINY if args.tiny else VOC, Budget(args.time_budget_s)
    precision = next(name for name, dtype in DTYPES.items() if dtype == resolve_precision("auto", device))
    peak = args.peak_tflops or (H200_BF16_DENSE_TFLOPS if device.type == "cuda"
                                else CPU_CORE_TFLOPS * torch.get_num_threads())
    result = {"device": {"type": device.type, "name": device_name(device), "torch": torch.__version__,
                         "cuda": torch.version.cuda, "cpu_threads": torch.get_num_threads(),
                         "tf32": {"cudnn": torch.backends.cudnn.allow_tf32,
                                  "matmul": torch.backends.cuda.matmul.allow_tf32}},
              "sizes": asdict(sizes) | {"tiny": args.tiny}, "time_budget_s": args.time_budget_s}

    def rows(plan: list[tuple[dict, Callable]]) -> list[dict]:
        return [attempt(row, measure, budget, device) for row, measure in plan]

    result["equality"] = rows([({"core": name, "tolerance": TOLERANCES[name]},
                                lambda n=name: equality_row(n, sizes, device)) for name in CORES])
    result["throughput"] = rows(training_plan(sizes, device, False) + inference_plan(sizes, device))
    result["flops"] = rows(flop_plan(sizes, device))
    result["torchrun"] = attempt({}, lambda: torchrun_row(device), budget, device)
    reason = compile_skipped(args.compile, device)
    compiled = training_plan(sizes, device, True)
    result["throughput"] += rows([(row | {"skipped": reason}, measure) if reason else (row, measure)
                                  for row, measure in compiled])
    result["projection"] = projection(result["throughput"], result["flops"], precision, peak)
    result["wall_s"] = budget.elapsed()
    return result


def _figure(value, digits: int = 3) -> str:
    return "–" if value is None else f"{value:.{digits}g}"


def _note(row: dict) -> str:
    return row.get("skipped") or (row.get("error", "")[:80])


def report(result: dict) -> str:
    device = result["device"]
    lines = [f"{device['name']} ({device['type']}), torch {device['torch']}; sizes {result['sizes']}", "",
             "| core | max abs diff | tolerance | passed |", "|---|---:|---:|---|"]
    lines += [f"| {r['core']} | {_figure(r.get('max_abs_diff'))} | {r['tolerance']:g} | "
              f"{'yes' if r.get('passed') else 'NO ' + _note(r)} |" for r in result["equality"]]
    lines += ["", "| work | precision | compiled | batch x size | images/s | peak MB | warm-up s | note |",
              "|---|---|---|---|---:|---:|---:|---|"]
    lines += [f"| {r['work']} | {r['precision']} | {'yes' if r['compiled'] else 'no'} | "
              f"{r['batch']} x {'x'.join(map(str, r['size']))} | {_figure(r.get('images_per_s'))} | "
              f"{_figure(r.get('peak_memory_mb'), 4)} | {_figure(r.get('warmup_s'))} | {_note(r)} |"
              for r in result["throughput"]]
    plan = result["projection"]
    lines += ["", f"Projection at VOC size ({plan['precision']}, eager; floor at {plan['peak_tflops']:g} TFLOP/s):", "",
              "| stage | images | images/s | hours | GFLOP per image | floor hours | ratio |",
              "|---|---:|---:|---:|---:|---:|---:|"]
    lines += [f"| {s['stage']} | {s['images']} | {_figure(s['images_per_s'])} | {_figure(s['hours'])} | "
              f"{_figure(s['flops_per_image'] and s['flops_per_image'] / 1e9)} | {_figure(s['floor_hours'])} | "
              f"{_figure(s['ratio'])} |" for s in plan["stages"]]
    lines.append(f"| **total** | | | **{_figure(plan['hours'])}** | | {_figure(plan['floor_hours'])} | "
                 f"{_figure(plan['ratio'])} (stages with a floor) |")
    run = result["torchrun"]
    lines += ["", (f"torchrun: {run.get('command', '')}: rc {run.get('rc')}, {_figure(run.get('wall_s'))} s, "
                   f"backend {run.get('backend')} {_note(run)}"), f"wall time {result['wall_s']:.0f} s"]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", choices=("cuda", "cpu"), default="cuda")
    parser.add_argument("--tiny", action="store_true", help="small sizes and the tiny backbone (the CPU test)")
    parser.add_argument("--out", type=Path, nargs="?", const=RESULTS,
                        help="also write the results as JSON (default path: benchmarks/results/gpu.json)")
    parser.add_argument("--time-budget-s", type=float, default=300.0,
                        help="skip the rows that would start later than this (default 300)")
    parser.add_argument("--peak-tflops", type=float,
                        help="the device's peak for the floor (default: 790 on CUDA, threads x 0.256 on CPU)")
    parser.add_argument("--compile", action=argparse.BooleanOptionalAction,
                        help="the torch.compile rows (default: on CUDA only)")
    parser.add_argument("--threads", type=int, help="torch's CPU threads (default: torch's own choice)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.device == "cuda" and not torch.cuda.is_available():
        parser.error("no CUDA device here; --device cpu (with --tiny) runs the CPU mode")
    result = run(args)
    print(report(result))
    if args.out:
        write_json(args.out, result)
    failed = [row["core"] for row in result["equality"] if not row.get("passed")]
    if failed:
        sys.exit(f"the device and the CPU disagree beyond tolerance: {', '.join(failed)}")


if __name__ == "__main__":
    main()
