"""``project.precision``: the autocast dtype of a stage's forward passes.

auto is bf16 on a CUDA device that supports it and fp32 elsewhere, so CPU runs (and the
committed dvc.lock) stay in fp32. Stored outputs keep their own dtype (scores in fp16).
"""

from __future__ import annotations

import contextlib

import torch

from wsss.core.errors import ParamsError

DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}


def resolve_precision(spec: str, device: torch.device) -> torch.dtype:
    if spec == "auto":
        cuda_bf16 = device.type == "cuda" and torch.cuda.is_bf16_supported()
        return torch.bfloat16 if cuda_bf16 else torch.float32
    if spec == "fp16" and device.type != "cuda":
        raise ParamsError("params.yaml: 'project.precision' fp16 needs a CUDA device; use bf16 or fp32 on CPU")
    return DTYPES[spec]


def autocast(device: torch.device, dtype: torch.dtype):
    """torch.autocast for a reduced dtype; nothing at all for fp32."""
    if dtype == torch.float32:
        return contextlib.nullcontext()
    return torch.autocast(device_type=device.type, dtype=dtype)


def grad_scaler(device: torch.device, dtype: torch.dtype) -> torch.amp.GradScaler:
    """Loss scaling, which fp16 needs (bf16 and fp32 do not: the scaler is then disabled)."""
    return torch.amp.GradScaler(device.type, enabled=dtype == torch.float16)
