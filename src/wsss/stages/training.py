"""What the training stages share: the launch over ``project.devices`` processes (DDP, wsss.train.ddp),
and around the training loop one MLflow stage run, a progress bar, the per-step loss table (a DVC
plot) and the checkpoint, all on rank 0 only."""

from __future__ import annotations

import contextlib
import os
import sys
from typing import Callable

import torch.nn as nn

from wsss.core.io import save_state_dict
from wsss.core.params import ProjectParams
from wsss.core.progress import progress_bar
from wsss.data.base import SegmentationDataset
from wsss.data.transforms import small_images_warning
from wsss.stages import collapse
from wsss.stages.common import Stage
from wsss.tracking.plot_files import LossLog
from wsss.train.ddp import Ranks, process_group, relaunch, unwrap
from wsss.train.loop import StepCallback


def warn_small_images(dataset: SegmentationDataset, crop_size: int, key: str) -> None:
    """Print `small_images_warning`'s warning, if any, to stderr."""
    warning = small_images_warning(dataset, crop_size, key)
    if warning:
        print(warning, file=sys.stderr)


def train_stage(stage: Stage, project: ProjectParams, checkpoint: str, batch: tuple[str, int],
                train: Callable[[Ranks], None]) -> None:
    """A training stage's body: ``train(ranks)`` in this process, or in each of the ranks that
    relaunch starts (``project.devices`` > 1); ``batch`` is (params key, global batch size)."""
    if relaunch(project, stage.name, checkpoint, batch, after=stage.close_orphaned_runs):
        return
    with process_group(project) as ranks:
        train(ranks)


class NoRun:
    """The MLflow stage run of a rank other than 0: logs nothing (one stage run per stage)."""

    def __getattr__(self, name):
        return lambda *args, **kwargs: None


def run_training(stage: Stage, ranks: Ranks, project: ProjectParams, total_steps: int, model: nn.Module,
                 checkpoint: str | os.PathLike, train: Callable[[StepCallback], dict], tags: dict | None = None,
                 desc: str | None = None, batch_size: int | None = None) -> dict:
    """Call train(on_step) inside the stage's MLflow run, then (rank 0) write the loss table and
    `model`'s state dict to `checkpoint`. Returns train's summary. ``batch_size`` (global) turns
    the progress lines' steps/s into images/s too."""
    tracked = stage.tracked() if ranks.main else contextlib.nullcontext(NoRun())
    with tracked as run:
        for key, value in (tags or {}).items():
            run.set_tag(key, value)
        bar = progress_bar(project.progress if ranks.main else False, total=total_steps, desc=desc or stage.name,
                           unit="step", items_per_step=batch_size)
        losses = LossLog(stage.paths.train_loss_table(stage.name))

        def on_step(step: int, metrics: dict) -> None:
            bar.set_postfix(epoch=int(metrics.get("epoch", 0)) + 1, loss=f"{metrics['loss']:.4f}", refresh=False)
            bar.update(1)
            # every loss term of the method (cls, sal for EPS, gsc for SIPE, IRN's) and the lr
            run.log_step({f"train.{k}": v for k, v in metrics.items() if k != "epoch"}, step)
            losses.record(step, metrics)

        summary = train(on_step)
        bar.close()
        run.log_metrics({"train.final_epoch_loss": summary["final_epoch_loss"]})
        if ranks.main:  # before the checkpoint: with on_collapse fail, no weights to train on
            collapse.report(stage.name, run, collapse.loss_findings(summary), project.on_collapse)
        if ranks.main:
            losses.write()
            save_state_dict(checkpoint, unwrap(model).state_dict())
    return summary
