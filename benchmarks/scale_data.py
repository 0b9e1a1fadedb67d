"""The VOC-size synthetic set of bench_scale.py: generated once into a git-ignored folder, reused
while its generator config is the same."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

from wsss.core.params import SyntheticParams
from wsss.data.synthetic import config_record, generate

# VOC 2012's usual resolutions, drawn per image: about 3/5 landscape 500x375, 1/5 portrait,
# 1/5 landscape 500x333 (VOC's long side is 500 px).
VOC_SIZES = ((375, 500), (375, 500), (375, 500), (500, 375), (333, 500))
VOC_TRAIN, VOC_VAL = 10_582, 1_449  # train_aug, val


def synthetic_set(root: Path, num_train: int, num_val: int, sizes=VOC_SIZES, seed: int = 0) -> dict:
    """The VOC2012 folder ``root`` holding a synthetic set of this size: reused when its
    synthetic_meta.json has the same config, else (re)generated. Returns what was done and how long."""
    config = SyntheticParams(image_sizes=[list(s) for s in sizes], num_train=num_train, num_val=num_val, seed=seed)
    shown = str(root.relative_to(Path.cwd())) if root.is_relative_to(Path.cwd()) else str(root)
    meta = root / "synthetic_meta.json"
    if meta.is_file() and json.loads(meta.read_text()).get("config") == config_record(config):
        return {"root": shown, "generated": False, "seconds": 0.0, "num_train": num_train, "num_val": num_val}
    start = time.monotonic()
    generate(root, config, progress=sys.stderr.isatty())
    return {"root": shown, "generated": True, "seconds": round(time.monotonic() - start, 1),
            "num_train": num_train, "num_val": num_val}
