"""What the training stages share around their training loop: one MLflow stage run, a progress
bar, the per-step loss table (a DVC plot) and the checkpoint, all on rank 0 only."""

from __future__ import annotations

import os
from typing import Callable

import torch.nn as nn

from wsss.distributed import Ranks, stage_run, unwrap
from wsss.io import save_state_dict
from wsss.layout import TRAIN_LOSSES
from wsss.plot_files import LossLog
from wsss.progress import progress_bar
from wsss.training import StepCallback


def run_training(ranks: Ranks, params: dict, stage: str, sections: list[str], total_steps: int,
                 model: nn.Module, checkpoint: str | os.PathLike, train: Callable[[StepCallback], dict],
                 tags: dict | None = None, desc: str | None = None) -> dict:
    """Call train(on_step) inside the stage's MLflow run, then (rank 0) write the loss table and
    `model`'s state dict to `checkpoint`. Returns train's summary."""
    with stage_run(ranks, stage, params, sections) as run:
        for key, value in (tags or {}).items():
            run.set_tag(key, value)
        shown = params if ranks.main else dict(params, project=dict(params["project"], progress=False))
        bar = progress_bar(shown, total=total_steps, desc=desc or stage)
        losses = LossLog(TRAIN_LOSSES.format(stage=stage))

        def on_step(step: int, metrics: dict) -> None:
            bar.update(1)
            bar.set_postfix(loss=f"{metrics['loss']:.4f}")
            # every loss term of the method (cls, sal for EPS, gsc for SIPE, IRN's) and the lr
            run.log_step({f"train.{k}": v for k, v in metrics.items() if k != "epoch"}, step)
            losses.record(step, metrics)

        summary = train(on_step)
        bar.close()
        run.log_metrics({"train.final_epoch_loss": summary["final_epoch_loss"]})
        if ranks.main:
            losses.write()
            save_state_dict(checkpoint, unwrap(model).state_dict())
    return summary
