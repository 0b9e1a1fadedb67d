"""Classifier training loop: SGD with poly decay, per-group learning rates, optional frozen BN,
mixed precision; the training stages' data loader.

Pure of I/O and logging: progress and losses go to the ``on_step`` callback.
"""

from __future__ import annotations

import math
from typing import Callable

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.utils.data import DataLoader, Dataset

from wsss.core.precision import autocast, grad_scaler
from wsss.train.ddp import (
    GlobalBatchSampler,
    Ranks,
    local_batch,
    mean_over_ranks,
    unwrap,
)

StepCallback = Callable[[int, dict], None]


def freeze_batchnorm(module: nn.Module) -> None:
    """Keep BN statistics and affine parameters fixed (the reference freezes them)."""
    for layer in module.modules():
        if isinstance(layer, nn.modules.batchnorm._BatchNorm):
            layer.eval()
            for p in layer.parameters():
                p.requires_grad_(False)


def poly_lr(base: float, step: int, total: int, power: float = 0.9) -> float:
    return base * (1.0 - step / max(total, 1)) ** power


def make_sgd(groups: list[tuple[list, float]], lr: float, momentum: float, weight_decay: float):
    """SGD over (parameters, lr multiplier) groups. Momentum is a real momentum here: the
    public WSSS repos pass weight decay into SGD's momentum slot (docs/methods.md §1); we do not."""
    param_groups = [
        {"params": params, "lr": lr * mult, "initial_lr": lr * mult}
        for params, mult in groups
        if params
    ]
    return torch.optim.SGD(param_groups, lr=lr, momentum=momentum, weight_decay=weight_decay)


LossFunction = Callable[[nn.Module, torch.Tensor, torch.Tensor], dict]


def to_device(targets, device: torch.device):
    """A tensor, or a tuple/list of tensors (e.g. EPS's (labels, saliency)), on `device`; copied
    without waiting (from pinned memory on CUDA)."""
    if isinstance(targets, (tuple, list)):
        return type(targets)(t.to(device, non_blocking=True) for t in targets)
    return targets.to(device, non_blocking=True)


class EpochItems(Dataset):
    """A training data set read by (epoch, index) items (distributed.GlobalBatchSampler): a
    DataLoader worker sets its own copy's epoch, so persistent workers augment as the epoch says."""

    def __init__(self, items: Dataset):
        self.items = items

    def __len__(self) -> int:
        return len(self.items)

    def set_epoch(self, epoch: int) -> None:
        if hasattr(self.items, "set_epoch"):
            self.items.set_epoch(epoch)

    def __getitem__(self, key: tuple[int, int]):
        epoch, index = key
        self.set_epoch(epoch)
        return self.items[index]


def train_loader(items: Dataset, batch_size: int, batch_key: str, seed: int, num_workers: int,
                 ranks: Ranks) -> DataLoader:
    """This rank's share of the shuffled global batches of `batch_size` (params key `batch_key`)
    over `items`: the batches of DataLoader(shuffle=True, generator seeded by `seed`), the last
    partial one dropped unless there is only one. Pinned memory on CUDA; workers kept across epochs."""
    local_batch(batch_size, batch_key, ranks.world)  # checks that it divides
    sampler = GlobalBatchSampler(len(items), batch_size, len(items) > batch_size, seed, ranks)
    return DataLoader(EpochItems(items), batch_sampler=sampler, num_workers=num_workers,
                      pin_memory=ranks.device.type == "cuda", persistent_workers=num_workers > 0,
                      generator=torch.Generator().manual_seed(seed))  # the workers' base seeds


SYNC_STEPS = 20  # steps whose losses are fetched from the device (and checked) together


def train_loop(model: nn.Module, loader: DataLoader, epochs: int, optimizer: torch.optim.Optimizer,
               device: torch.device, compute_losses: LossFunction, lr_key: str,
               on_step: StepCallback | None = None, freeze_bn_of: nn.Module | None = None,
               precision: torch.dtype = torch.float32) -> dict:
    """SGD with poly decay over `epochs`; compute_losses(model, inputs, targets) returns a dict
    whose "loss" is minimised (the rest is reported). Returns the final epoch's mean loss.

    The forward passes run under autocast in `precision` (fp16 with loss scaling). Losses stay on
    the device and are fetched every SYNC_STEPS steps and at each epoch's end (as their mean over
    the ranks under DDP), then reported step by step and checked: lr_key names the params.yaml
    key to lower when the loss stops being finite.
    """
    total_steps = epochs * len(loader)
    scaler = grad_scaler(device, precision)
    image_format = torch.channels_last if device.type == "cuda" else torch.preserve_format
    step = 0
    epoch_loss = float("nan")
    for epoch in range(epochs):
        model.train()
        if freeze_bn_of is not None:
            freeze_batchnorm(freeze_bn_of)
        for scheduled in (loader.batch_sampler, loader.dataset, compute_losses):  # epoch-dependent
            if hasattr(scheduled, "set_epoch"):  # batches, augmentation, loss weights
                scheduled.set_epoch(epoch)
        totals = [0.0, 0]  # the epoch's sum of loss x batch size, and of batch sizes
        pending: list[tuple[int, dict, float, int]] = []  # (step, losses on the device, lr, batch size)
        for inputs, targets in loader:
            inputs = inputs.to(device, non_blocking=True, memory_format=image_format)
            targets = to_device(targets, device)
            for group in optimizer.param_groups:
                group["lr"] = poly_lr(group["initial_lr"], step, total_steps)
            with autocast(device, precision):
                losses = compute_losses(model, inputs, targets)
            optimizer.zero_grad(set_to_none=True)
            scaler.scale(losses["loss"]).backward()
            scaler.step(optimizer)
            scaler.update()
            pending.append((step, {k: v.detach() for k, v in losses.items()}, optimizer.param_groups[-1]["lr"],
                            len(inputs)))
            step += 1
            if len(pending) == SYNC_STEPS:
                _report(pending, epoch, lr_key, on_step, totals)
        _report(pending, epoch, lr_key, on_step, totals)
        epoch_loss = totals[0] / max(totals[1], 1)
    return {"final_epoch_loss": epoch_loss, "steps": step}


def _report(pending: list, epoch: int, lr_key: str, on_step: StepCallback | None, totals: list) -> None:
    """Fetch the pending steps' losses in one transfer, check them, hand them to on_step, add
    them to the epoch's totals and empty `pending`."""
    if not pending:
        return
    flat = torch.stack([value.double() for _, losses, _, _ in pending for value in losses.values()])
    values = iter(mean_over_ranks(flat).tolist())
    for step, losses, lr, size in pending:
        fetched = {name: next(values) for name in losses}
        if not math.isfinite(fetched["loss"]):
            raise FloatingPointError(f"loss became {fetched['loss']} at step {step}; lower '{lr_key}'")
        totals[0] += fetched["loss"] * size
        totals[1] += size
        if on_step is not None:
            on_step(step + 1, fetched | {"lr": lr, "epoch": epoch})
    pending.clear()


def train_seed_classifier(model: nn.Module, loader: DataLoader, epochs: int, optimizer: torch.optim.Optimizer,
                          device: torch.device, compute_losses: LossFunction, freeze_bn: bool,
                          on_step: StepCallback | None = None, precision: torch.dtype = torch.float32) -> dict:
    """Train a seeds classifier (CAM, EPS, SIPE) with its method's losses
    (`wsss.methods.seed_methods.seed_losses`)."""
    return train_loop(model, loader, epochs, optimizer, device, compute_losses, "seeds.train.lr", on_step,
                      freeze_bn_of=unwrap(model).backbone if freeze_bn else None, precision=precision)


def train_irn(model: nn.Module, loader: DataLoader, epochs: int, optimizer: torch.optim.Optimizer,
              device: torch.device, radius: int, on_step: StepCallback | None = None,
              precision: torch.dtype = torch.float32, pair_sources: str = "all") -> dict:
    """Train IRN's heads (backbone frozen) on stride-4 relation labels (without a displacement
    head, the boundary head alone); `pair_sources` as `wsss.methods.irn.pair_labels`."""
    from wsss.methods.irn import irn_losses

    def losses(model, images, labels):
        edge, displacement = model(images)
        if edge.shape[-2:] != labels.shape[-2:]:  # backbones round odd sizes differently
            edge = F.interpolate(edge, size=labels.shape[-2:], mode="bilinear", align_corners=False)
            if displacement is not None:
                displacement = F.interpolate(displacement, size=labels.shape[-2:], mode="bilinear",
                                             align_corners=False)
        return irn_losses(edge, displacement, labels, radius, pair_sources)

    return train_loop(model, loader, epochs, optimizer, device, losses, "refine.irn.train.lr", on_step,
                      precision=precision)
