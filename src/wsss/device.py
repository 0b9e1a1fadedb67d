"""Resolve ``project.device`` (auto | cpu | cuda | cuda:N) to a torch.device."""

from __future__ import annotations

import torch

from wsss.errors import ParamsError


def resolve_device(spec: str = "auto") -> torch.device:
    if spec == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if spec.startswith("cuda") and not torch.cuda.is_available():
        raise ParamsError(f"params.yaml: 'project.device' is {spec!r} but no CUDA device is available")
    return torch.device(spec)
