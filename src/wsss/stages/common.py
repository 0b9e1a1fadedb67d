"""What every DVC stage shares: its dvc.yaml entry, its MLflow run and clean failures.

`pipeline/<stage>.py` is a thin main: ``main("seeds", lambda stage, p: seeds(stage, p.project, ...))``
loads params.yaml once (validated), builds the `Stage` from dvc.yaml and hands the stage function
the typed sections it reads. The function opens its MLflow run with ``stage.tracked()``, which
logs exactly the params keys dvc.yaml lists for the stage.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
from dataclasses import dataclass
from typing import Callable, Iterator

from wsss.core import params as params_mod
from wsss.core.dvcfile import ArtifactPaths, pipeline
from wsss.core.errors import WsssError, disk_full
from wsss.core.processes import driver_gone, watch_driver
from wsss.core.params import Params

PARAMS_ENV = "WSSS_PARAMS"


def load_params() -> Params:
    """Validated params.yaml of the project (``WSSS_PARAMS`` may point elsewhere)."""
    return params_mod.load(os.environ.get(PARAMS_ENV, params_mod.PARAMS_FILE))


@dataclass(frozen=True)
class Stage:
    """One DVC stage as its function sees it: its name, the pipeline's artifact paths, its deps
    (``${...}`` resolved) and the params keys dvc.yaml lists for it, with their values."""

    name: str
    paths: ArtifactPaths
    deps: tuple[str, ...]
    record: dict  # {params key dvc.yaml lists: its value}: what the stage's outputs depend on
    _params: Params  # for its MLflow run only: the parent run of a stage run by hand logs them all

    @classmethod
    def of(cls, name: str, params: Params) -> Stage:
        dvc = pipeline()
        spec = dvc.stage(name)
        return cls(name, dvc.paths, tuple(dvc.deps(name, params)),
                   {key: params.dump(key) for key in spec.params}, params)

    @contextlib.contextmanager
    def tracked(self) -> Iterator:
        """The stage's nested MLflow run under its pipeline's parent (wsss.tracking.runs.stage_run)."""
        from wsss.tracking.runs import stage_run

        with stage_run(self.name, self._params, list(self.record)) as run:
            yield run

    def register_segmenter(self, run, segmenter) -> None:
        """Register the segmentation network in MLflow's Model Registry with the lineage of this
        pipeline's params (wsss.tracking.registry; `tracking.registered_model` null: not at all)."""
        from wsss.tracking.registry import register_segmentation_model

        register_segmentation_model(run, self._params, segmenter=segmenter)

    def close_orphaned_runs(self) -> None:
        """Close the MLflow runs that killed processes of this project left RUNNING."""
        from wsss.tracking.runs import close_orphaned_runs, configure

        close_orphaned_runs(configure(self._params.tracking.experiment))


def main(name: str, run: Callable[[Stage, Params], None]) -> None:
    """A stage script's main: params.yaml and dvc.yaml read once, then ``run(stage, params)``."""
    def go() -> None:
        params = load_params()
        run(Stage.of(name, params), params)
    run_main(go, name)


def _exit_on_sigterm(signum, frame) -> None:
    raise SystemExit(128 + signum)


def run_main(main: Callable[[], None], name: str = "stage") -> None:
    """Run a stage; bad input, and a full disk, end it with one sentence and exit status 2, no
    traceback.

    SIGTERM (``wsss repro`` stopping its pipeline, a scheduler's kill) unwinds the stage like an
    error: its temporary outputs are removed and its MLflow run is closed. So does the death of
    the `wsss` process that started it (wsss.core.processes.watch_driver), SIGKILL included; a
    stage whose driver is already gone does not start.
    """
    signal.signal(signal.SIGTERM, _exit_on_sigterm)
    gone = driver_gone()
    if gone:
        print(f"error: {name}: its driver, process {gone}, is gone (killed): not starting", file=sys.stderr)
        sys.exit(3)
    watch_driver(name)
    try:
        main()
    except WsssError as exc:
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(2)
    except Exception as exc:
        account = disk_full(exc)
        if account is None:
            raise
        print(f"error: {name}: {account}", file=sys.stderr)
        sys.exit(2)
