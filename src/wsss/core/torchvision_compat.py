"""Let the registry's CUDA-built torchvision import on a CPU-only torch.

torchvision 0.28's PyPI wheel is built against CUDA torch. On the CPU torch 2.13 wheel its
import fails with ``RuntimeError: operator torchvision::nms does not exist`` because the
compiled extension that defines the operator schemas cannot load (pytorch issues 122494,
157648). Declaring the two schemas that torchvision's Python code looks up at import time
(``nms`` and ``qnms``) lets models, transforms.v2 and the pure-Python ops work. The NMS
kernels themselves stay unavailable, which this project does not use.

Call :func:`import_torchvision` instead of ``import torchvision``. When the real extension
loads (a CUDA torch, or a matching CPU build) nothing is registered.
"""

from __future__ import annotations

import importlib

_SCHEMAS = {
    "nms": "nms(Tensor dets, Tensor scores, float iou_threshold) -> Tensor",
    "qnms": "qnms(Tensor dets, Tensor scores, float iou_threshold) -> Tensor",
}
_library = None  # keeps the torch.library.Library alive; schemas vanish when it is collected


def _operator_exists(name: str) -> bool:
    import torch

    try:
        torch._C._dispatch_find_schema_or_throw(f"torchvision::{name}", "")
        return True
    except RuntimeError:
        return False


def _register_missing_schemas() -> None:
    global _library
    import torch

    missing = [name for name in _SCHEMAS if not _operator_exists(name)]
    if not missing:
        return
    if _library is None:
        _library = torch.library.Library("torchvision", "FRAGMENT")
    for name in missing:
        _library.define(_SCHEMAS[name])


def import_torchvision():
    """Import and return torchvision, declaring missing operator schemas only if needed."""
    try:
        return importlib.import_module("torchvision")
    except RuntimeError as exc:
        if "torchvision::nms" not in str(exc):
            raise
    # A failed import leaves half-initialised modules behind; drop them before retrying.
    import sys

    for module in [m for m in sys.modules if m == "torchvision" or m.startswith("torchvision.")]:
        del sys.modules[module]
    _register_missing_schemas()
    return importlib.import_module("torchvision")
