"""What every pipeline stage script shares: params loading, data set opening, clean failures."""

from __future__ import annotations

import os
import sys
from typing import Callable

from wsss import params as params_mod
from wsss.errors import WsssError

PARAMS_ENV = "WSSS_PARAMS"


def load_params() -> dict:
    """Validated params.yaml of the project (``WSSS_PARAMS`` may point elsewhere)."""
    return params_mod.load(os.environ.get(PARAMS_ENV, params_mod.PARAMS_FILE))


def open_split(params: dict, split: str, with_saliency: bool = False):
    """Open one split of the configured data set, honouring ``dataset.max_images``.

    Saliency is opened only for stages that use it, so a data set without saliency maps
    still runs the stages that need none.
    """
    from wsss.data.registry import open_dataset

    cfg = params["dataset"] if with_saliency else dict(params["dataset"], saliency=None)
    dataset = open_dataset(cfg, split)
    limit = params["dataset"]["max_images"]
    if limit is not None:
        dataset.ids = dataset.ids[:limit]
    return dataset


def run_main(main: Callable[[], None]) -> None:
    """Run a stage; bad input ends it with the error's message and exit status 2, no traceback."""
    try:
        main()
    except WsssError as exc:
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(2)
