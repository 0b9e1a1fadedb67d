"""What every pipeline stage script shares: params loading, data set opening, clean failures."""

from __future__ import annotations

import os
import signal
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
    still runs the stages that need none. Every check (``dataset.validate`` and the readers')
    sees only the images used; a cut split says so, since its other images go unchecked.
    """
    from wsss.data.registry import open_dataset

    cfg = params["dataset"] if with_saliency else dict(params["dataset"], saliency=None)
    dataset = open_dataset(cfg, split)
    limit = params["dataset"]["max_images"]
    if limit is not None and limit < len(dataset.ids):
        print(f"dataset: split {split!r}: using the first {limit} of {len(dataset.ids)} images "
              f"(dataset.max_images); the other {len(dataset.ids) - limit} are neither used nor checked")
        dataset.ids = dataset.ids[:limit]
    return dataset


def _exit_on_sigterm(signum, frame) -> None:
    raise SystemExit(128 + signum)


def run_main(main: Callable[[], None]) -> None:
    """Run a stage; bad input ends it with the error's message and exit status 2, no traceback.

    SIGTERM (``wsss repro`` stopping its pipeline, a scheduler's kill) unwinds the stage like an
    error: its temporary outputs are removed and its MLflow run is closed.
    """
    signal.signal(signal.SIGTERM, _exit_on_sigterm)
    try:
        main()
    except WsssError as exc:
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(2)
