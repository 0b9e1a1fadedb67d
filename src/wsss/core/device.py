"""Resolve ``project.device`` (auto | cpu | cuda | cuda:N) to a torch.device, and
``project.devices`` to the devices of a stage's processes (one process per device)."""

from __future__ import annotations

import os

import torch

from wsss.core.errors import ParamsError
from wsss.core.params import ProjectParams


def resolve_device(spec: str = "auto") -> torch.device:
    if spec == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if spec.startswith("cuda") and not torch.cuda.is_available():
        raise ParamsError(f"params.yaml: 'project.device' is {spec!r} but no CUDA device is available")
    return torch.device(spec)


def process_devices(project: ProjectParams) -> list[torch.device]:
    """One device per process of a stage, from the ``project`` section.

    CUDA: ``devices: auto`` is every visible GPU (CUDA_VISIBLE_DEVICES, as Ray or a scheduler
    set it), N the first N of them. CPU: N processes share the cores (auto is one).
    """
    device, count = resolve_device(project.device), project.devices
    if device.type != "cuda":
        return [device] * (1 if count == "auto" else count)
    visible = torch.cuda.device_count()
    if count == "auto":
        count = visible
    if count == 1:
        return [device]
    if device.index is not None:
        raise ParamsError(f"params.yaml: 'project.devices' is {count} but 'project.device' names one GPU "
                          f"({device}); use device cuda or auto")
    if count > visible:
        raise ParamsError(f"params.yaml: 'project.devices' is {count} but only {visible} GPU(s) are visible")
    return [torch.device("cuda", index) for index in range(count)]


def available_cores() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


def threads_per_process(processes: int) -> int:
    """CPU threads for each of ``processes`` processes sharing this machine's cores."""
    return max(1, available_cores() // processes)
