"""Training stages over several processes (``project.devices: N``): DDP under torch.distributed's
elastic launcher (what ``torchrun`` runs), gloo on CPU and nccl on CUDA.

The stage process that DVC starts is the *launcher*: with N > 1 processes it starts N copies of
the stage (the ranks), waits for them and reports a failed rank by its number and exit status.
Each rank trains on its contiguous slice of every global batch (the batches of a one-process
run: GlobalBatchSampler), gradients are averaged, BN statistics are taken over the global batch
(SyncBatchNorm), and only rank 0 logs to MLflow and writes the loss table and the checkpoint.
With one process nothing of this happens: the stage trains in-process as before.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import sys
import uuid
from pathlib import Path
from typing import Callable, Iterator

import torch
import torch.distributed as dist
import torch.nn as nn
from torch.utils.data import BatchSampler, RandomSampler, Sampler

from wsss.core.device import process_devices, resolve_device, threads_per_process
from wsss.core.errors import ParamsError, WorkerError
from wsss.core.io import remove_stale_temps
from wsss.core.params import ProjectParams


def _world_env() -> int | None:
    """The number of ranks when this process is one (torchrun sets WORLD_SIZE), else None."""
    size = os.environ.get("WORLD_SIZE")
    return int(size) if size else None


def relaunch(project: ProjectParams, stage: str, checkpoint: str | os.PathLike, batch: tuple[str, int],
             after: Callable[[], None]) -> bool:
    """Run the stage as ``project.devices`` ranks when that is more than one process and this
    process is not a rank already; returns whether it did (then the caller has nothing left to
    do). The global batch (``batch``: params key, value) must divide over them. A failed rank
    raises WorkerError naming it and the checkpoint the ranks may have written is removed;
    ``after()`` runs however the ranks ended (what a killed rank 0 left behind is cleaned there)."""
    from torch.distributed.elastic.multiprocessing.api import SignalException
    from torch.distributed.elastic.multiprocessing.errors import ChildFailedError
    from torch.distributed.launcher.api import LaunchConfig, elastic_launch

    devices = process_devices(project)
    if len(devices) == 1 or _world_env() is not None:
        return False
    count = len(devices)
    local_batch(batch[1], batch[0], count)
    if devices[0].type == "cpu":  # the ranks share the cores
        os.environ["OMP_NUM_THREADS"] = str(threads_per_process(count))
    config = LaunchConfig(min_nodes=1, max_nodes=1, nproc_per_node=count, run_id=str(uuid.uuid4()),
                          rdzv_backend="c10d", rdzv_endpoint="localhost:0",  # loopback, a free port
                          max_restarts=0, monitor_interval=0.1)
    checkpoint = Path(checkpoint)
    before = _stamp(checkpoint)
    try:
        elastic_launch(config, sys.executable)("-m", f"pipeline.{stage}")
    except ChildFailedError as exc:
        rank, failure = exc.get_first_failure()
        how = (f"killed by signal {failure.signal_name()}" if failure.exitcode < 0
               else f"exit code {failure.exitcode}")
        raise WorkerError(f"{stage}: rank {rank} of {count} failed ({how}); "
                          f"{_discard(checkpoint, before)}") from None
    except SignalException as exc:  # the launcher was stopped: the agent has stopped the ranks
        _discard(checkpoint, before)
        raise SystemExit(128 + int(exc.sigval)) from None
    finally:
        if checkpoint.parent.is_dir():  # a SIGKILLed rank 0's temporary checkpoint
            remove_stale_temps(checkpoint.parent)
        after()
    return True


def _stamp(path: Path) -> tuple | None:
    try:
        stat = path.stat()
    except FileNotFoundError:
        return None
    return stat.st_mtime_ns, stat.st_ino


def _discard(checkpoint: Path, before: tuple | None) -> str:
    """A failed stage leaves no checkpoint of its own: remove one written during the launch."""
    if before is None and not checkpoint.exists():
        return "no checkpoint was written"
    if _stamp(checkpoint) != before:
        checkpoint.unlink(missing_ok=True)
        return f"the checkpoint it wrote ({checkpoint}) was removed"
    return f"{checkpoint} is the one from before this run"


@dataclasses.dataclass(frozen=True)
class Ranks:
    """This process's place among a stage's processes."""

    rank: int
    world: int
    device: torch.device

    @property
    def main(self) -> bool:
        """Rank 0: the process that logs and writes the stage's outputs."""
        return self.rank == 0


@contextlib.contextmanager
def process_group(project: ProjectParams) -> Iterator[Ranks]:
    """This process's rank and device; inside torchrun, joined to the stage's process group
    for the block (gloo on CPU, nccl on CUDA). Outside, rank 0 of 1 on ``project.device``."""
    world = _world_env()
    if world is None:
        yield Ranks(0, 1, resolve_device(project.device))
        return
    devices = process_devices(project)
    if len(devices) != world:
        raise ParamsError(f"params.yaml: 'project.devices' gives {len(devices)} process(es) but the stage "
                          f"runs in {world} (torchrun --nproc_per_node); make them agree")
    device = devices[int(os.environ["LOCAL_RANK"])]
    if device.type == "cuda":
        torch.cuda.set_device(device)
    dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    try:
        yield Ranks(dist.get_rank(), world, device)
    finally:
        dist.destroy_process_group()


def local_batch(global_batch: int, key: str, world: int) -> int:
    """Each of ``world`` ranks' share of a global batch (params key ``key``), which must split evenly."""
    if global_batch % world:
        raise ParamsError(f"params.yaml: '{key}' is {global_batch}, which does not divide over the "
                          f"{world} processes of 'project.devices'; use a multiple of {world}")
    return global_batch // world


class GlobalBatchSampler(Sampler[list]):
    """The batches of ``DataLoader(shuffle=True, generator=Generator().manual_seed(seed),
    batch_size=global_batch, drop_last=drop_last)``, each cut into ``world`` contiguous slices
    of which this rank takes its own; items are (epoch, index) for EpochItems.

    The sampler owns its generator and, each epoch, first draws what that DataLoader drew from
    it for its workers' base seed: so one rank's batches are the old loader's exactly, and they
    do not depend on num_workers or persistent workers (which draw that seed only once)."""

    def __init__(self, size: int, global_batch: int, drop_last: bool, seed: int, ranks: Ranks):
        self.generator = torch.Generator().manual_seed(seed)
        self.batches = BatchSampler(RandomSampler(range(size), generator=self.generator), global_batch, drop_last)
        self.rank, self.world = ranks.rank, ranks.world
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return len(self.batches)

    def __iter__(self):
        torch.empty((), dtype=torch.int64).random_(generator=self.generator)  # the old loader's worker seed
        for batch in self.batches:
            # an uneven last batch (drop_last off: fewer images than one batch) splits as evenly as it can
            start, stop = (len(batch) * self.rank) // self.world, (len(batch) * (self.rank + 1)) // self.world
            yield [(self.epoch, index) for index in batch[start:stop]]


def prepare(model: nn.Module, ranks: Ranks, sync_bn: bool) -> nn.Module:
    """``model`` (on ``ranks.device``) for training: channels_last on CUDA; over several ranks
    DDP (gradients averaged), with its BN layers normalising over the global batch when
    ``sync_bn`` (BN that is trained). Its parameters stay those of ``model`` (an optimizer made
    before keeps working), its state_dict keys too (see unwrap)."""
    if ranks.device.type == "cuda":
        model = model.to(memory_format=torch.channels_last)
    if ranks.world == 1:
        return model
    if sync_bn:
        model = (nn.SyncBatchNorm.convert_sync_batchnorm(model) if ranks.device.type == "cuda"
                 else _convert_batchnorm(model))
    return nn.parallel.DistributedDataParallel(model, device_ids=[ranks.device] if ranks.device.type == "cuda" else None)


def unwrap(model: nn.Module) -> nn.Module:
    """The trained network inside DDP (its state_dict has the keys of a one-process run)."""
    return model.module if isinstance(model, nn.parallel.DistributedDataParallel) else model


class GlooSyncBatchNorm(nn.modules.batchnorm._BatchNorm):
    """BatchNorm over the global batch for CPU tensors (torch's SyncBatchNorm takes GPU tensors
    only): per-channel mean and variance from all ranks' sums, all-reduced with autograd, so
    that the gradients are those of a one-process run on the global batch."""

    def _check_input_dim(self, input: torch.Tensor) -> None:
        if input.dim() < 2:
            raise ValueError(f"expected at least 2D input (got {input.dim()}D input)")

    def forward(self, input: torch.Tensor) -> torch.Tensor:
        if not (self.training and dist.is_initialized()):
            return super().forward(input)
        from torch.distributed.nn.functional import all_reduce

        dims = [d for d in range(input.dim()) if d != 1]
        count = all_reduce(torch.tensor(float(input.numel() // input.shape[1]), dtype=input.dtype))
        mean = all_reduce(input.sum(dims)) / count
        shape = [1, -1] + [1] * (input.dim() - 2)
        centred = input - mean.reshape(shape)
        var = all_reduce((centred * centred).sum(dims)) / count
        if self.track_running_stats:
            self.num_batches_tracked.add_(1)
            factor = 1.0 / float(self.num_batches_tracked) if self.momentum is None else self.momentum
            with torch.no_grad():
                self.running_mean.mul_(1 - factor).add_(mean.detach(), alpha=factor)
                self.running_var.mul_(1 - factor).add_(var.detach() * count / max(count - 1, 1), alpha=factor)
        out = centred * torch.rsqrt(var + self.eps).reshape(shape)
        if self.affine:
            out = out * self.weight.reshape(shape) + self.bias.reshape(shape)
        return out


def _convert_batchnorm(module: nn.Module) -> nn.Module:
    """``module`` with every BN layer a GlooSyncBatchNorm sharing its parameters and buffers."""
    if isinstance(module, nn.modules.batchnorm._BatchNorm):
        synced = GlooSyncBatchNorm(module.num_features, module.eps, module.momentum, module.affine,
                                   module.track_running_stats)
        synced.load_state_dict(module.state_dict())
        if module.affine:
            synced.weight, synced.bias = module.weight, module.bias
        synced.train(module.training)
        return synced
    for name, child in module.named_children():
        module.add_module(name, _convert_batchnorm(child))
    return module


def mean_over_ranks(values: torch.Tensor) -> torch.Tensor:
    """The mean of ``values`` over the ranks (one all-reduce); ``values`` itself in one process."""
    if not dist.is_initialized() or dist.get_world_size() == 1:
        return values
    values = values.clone()
    dist.all_reduce(values)
    return values / dist.get_world_size()

