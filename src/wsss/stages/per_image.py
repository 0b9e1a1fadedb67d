"""The per-image stages' runner (wsss.train.sharding) for a `Stage`."""

from wsss.core.params import ProjectParams
from wsss.stages.common import Stage
from wsss.train.sharding import MakeWorker, ShardedStage


def sharded(stage: Stage, project: ProjectParams, dataset, outputs: dict[str, str], make_worker: MakeWorker,
            config) -> ShardedStage:
    """``stage`` over every image of ``dataset`` on ``project.devices`` processes: its files in
    ``outputs`` ({folder: suffix}), written by ``make_worker(config, device, dataset)``; resumable
    from what a killed run with the same params (dvc.yaml's keys) and deps finished."""
    return ShardedStage(stage.name, stage.record, project, dataset, dataset.ids, outputs, make_worker, config,
                        list(stage.deps))
