"""project.precision and the training loop's deferred loss fetching, on CPU: bf16 autocast really
runs the forward in bf16, fp16 is refused without CUDA, and the losses fetched in blocks reach
on_step step by step with the values and the errors of a step-by-step loop."""

import math

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.utils.data import DataLoader, TensorDataset

from wsss.core.errors import ParamsError
from wsss.core.precision import autocast, grad_scaler, resolve_precision
from wsss.train.loop import SYNC_STEPS, make_sgd, train_loop

CPU = torch.device("cpu")


def test_resolve_precision_on_cpu():
    assert resolve_precision("auto", CPU) == torch.float32
    assert resolve_precision("bf16", CPU) == torch.bfloat16
    assert resolve_precision("fp32", CPU) == torch.float32
    with pytest.raises(ParamsError, match="'project.precision' fp16 needs a CUDA device"):
        resolve_precision("fp16", CPU)
    assert not grad_scaler(CPU, torch.bfloat16).is_enabled()  # loss scaling is fp16's only


def _problem(steps: int, seed: int = 0):
    torch.manual_seed(seed)
    images, targets = torch.randn(steps * 2, 3, 8, 8), torch.randint(0, 4, (steps * 2,))
    model = nn.Sequential(nn.Conv2d(3, 6, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
                          nn.Linear(6, 4))
    loader = DataLoader(TensorDataset(images, targets), batch_size=2)
    return model, loader


def _losses(model, images, targets):
    logits = model(images)
    return {"loss": F.cross_entropy(logits.float(), targets), "logit_dtype": torch.tensor(float(logits.dtype == torch.bfloat16))}


def test_bf16_autocast_runs_the_forward_in_bf16():
    model, loader = _problem(3)
    seen = []
    train_loop(model, loader, 1, make_sgd([(list(model.parameters()), 1.0)], 0.01, 0.9, 0.0), CPU, _losses,
               "some.lr", lambda step, m: seen.append(m["logit_dtype"]), precision=torch.bfloat16)
    assert seen == [1.0, 1.0, 1.0]
    with autocast(CPU, torch.float32):  # fp32: no autocast at all
        assert not torch.is_autocast_enabled("cpu")


def test_losses_fetched_in_blocks_equal_a_step_by_step_loop():
    """More steps than one block: on_step sees every step once, in order, with the loss a plain
    loop (loss.item() after each step) reports, and the final epoch loss is their mean."""
    steps = SYNC_STEPS + 5
    model, loader = _problem(steps)
    reference_model, _ = _problem(steps)
    reference_model.load_state_dict(model.state_dict())
    seen = []
    summary = train_loop(model, loader, 1, make_sgd([(list(model.parameters()), 1.0)], 0.05, 0.9, 0.0), CPU,
                         _losses, "some.lr", lambda step, m: seen.append((step, m["loss"])))
    optimizer = make_sgd([(list(reference_model.parameters()), 1.0)], 0.05, 0.9, 0.0)
    expected = []
    for step, (images, targets) in enumerate(loader):
        for group in optimizer.param_groups:
            group["lr"] = 0.05 * (1 - step / steps) ** 0.9
        loss = _losses(reference_model, images, targets)["loss"]
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        expected.append((step + 1, loss.item()))
    assert seen == expected
    assert summary["steps"] == steps
    assert math.isclose(summary["final_epoch_loss"], sum(v for _, v in expected) / steps)


def test_a_non_finite_loss_names_its_step_and_the_lr_key():
    model, loader = _problem(SYNC_STEPS + 5)
    calls = []

    def exploding(model, images, targets):
        losses = _losses(model, images, targets)
        calls.append(None)
        if len(calls) >= 7:  # from step index 6 on
            losses["loss"] = losses["loss"] * float("inf")
        return losses

    with pytest.raises(FloatingPointError, match=r"loss became (inf|nan) at step 6; lower 'seeds.train.lr'"):
        train_loop(model, loader, 1, make_sgd([(list(model.parameters()), 1.0)], 0.01, 0.9, 0.0), CPU,
                   exploding, "seeds.train.lr")
