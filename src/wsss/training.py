"""Classifier training loop: SGD with poly decay, per-group learning rates, optional frozen BN.

Pure of I/O and logging: progress and losses go to the ``on_step`` callback.
"""

from __future__ import annotations

from typing import Callable

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.utils.data import DataLoader

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
    """A tensor, or a tuple/list of tensors (e.g. EPS's (labels, saliency)), on `device`."""
    if isinstance(targets, (tuple, list)):
        return type(targets)(t.to(device) for t in targets)
    return targets.to(device)


def train_loop(model: nn.Module, loader: DataLoader, epochs: int, optimizer: torch.optim.Optimizer,
               device: torch.device, compute_losses: LossFunction, lr_key: str,
               on_step: StepCallback | None = None, freeze_bn_of: nn.Module | None = None) -> dict:
    """SGD with poly decay over `epochs`; compute_losses(model, inputs, targets) returns a dict
    whose "loss" is minimised (the rest is reported). Returns the final epoch's mean loss.

    lr_key names the params.yaml key to lower when the loss stops being finite.
    """
    total_steps = epochs * len(loader)
    step = 0
    epoch_loss = float("nan")
    for epoch in range(epochs):
        model.train()
        if freeze_bn_of is not None:
            freeze_batchnorm(freeze_bn_of)
        for scheduled in (loader.dataset, compute_losses):  # epoch-dependent augmentation / loss weights
            if hasattr(scheduled, "set_epoch"):
                scheduled.set_epoch(epoch)
        running, count = 0.0, 0
        for inputs, targets in loader:
            inputs, targets = inputs.to(device), to_device(targets, device)
            for group in optimizer.param_groups:
                group["lr"] = poly_lr(group["initial_lr"], step, total_steps)
            losses = compute_losses(model, inputs, targets)
            loss = losses["loss"]
            if not torch.isfinite(loss):
                raise FloatingPointError(f"loss became {loss.item()} at step {step}; lower '{lr_key}'")
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            running += loss.item() * len(inputs)
            count += len(inputs)
            step += 1
            if on_step is not None:
                on_step(step, {k: v.item() for k, v in losses.items()}
                        | {"lr": optimizer.param_groups[-1]["lr"], "epoch": epoch})
        epoch_loss = running / max(count, 1)
    return {"final_epoch_loss": epoch_loss, "steps": step}


def train_seed_classifier(model: nn.Module, loader: DataLoader, epochs: int, optimizer: torch.optim.Optimizer,
                          device: torch.device, compute_losses: LossFunction, freeze_bn: bool,
                          on_step: StepCallback | None = None) -> dict:
    """Train a seeds classifier (CAM, EPS, SIPE) with its method's losses
    (`wsss.models.seed_methods.seed_losses`)."""
    return train_loop(model, loader, epochs, optimizer, device, compute_losses, "seeds.train.lr", on_step,
                      freeze_bn_of=model.backbone if freeze_bn else None)


def train_irn(model: nn.Module, loader: DataLoader, epochs: int, optimizer: torch.optim.Optimizer,
              device: torch.device, radius: int, on_step: StepCallback | None = None) -> dict:
    """Train IRN's heads (backbone frozen) on stride-4 relation labels (without a displacement
    head, the boundary head alone)."""
    from wsss.models.irn import irn_losses

    def losses(model, images, labels):
        edge, displacement = model(images)
        if edge.shape[-2:] != labels.shape[-2:]:  # backbones round odd sizes differently
            edge = F.interpolate(edge, size=labels.shape[-2:], mode="bilinear", align_corners=False)
            if displacement is not None:
                displacement = F.interpolate(displacement, size=labels.shape[-2:], mode="bilinear",
                                             align_corners=False)
        return irn_losses(edge, displacement, labels, radius)

    return train_loop(model, loader, epochs, optimizer, device, losses, "refine.irn.train.lr", on_step)
