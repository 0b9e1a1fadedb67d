"""Per-image stages over ``project.devices`` processes, resumable after a kill.

A stage hands over its image ids, its output folders (with the suffix of each image's file) and
a module-level ``make_worker(config, device, dataset) -> worker(image_id, folders)`` that loads
its model once (``config``: the stage's typed params sections, picklable); ``worker`` writes one
image's files atomically into the given folders. The runner

- writes into a partial folder beside each output, ``<output>.partial/`` (DVC deletes a stage's
  outs before it runs the stage, so what a killed run finished must live outside them), holding
  ``.fingerprint.json``: the stage, the params keys dvc.yaml lists for it, the torch
  threads of each process (on CPU a network's output bytes depend on them: reductions split
  by thread), the image ids and a digest of its inputs (md5 of files, name/size/mtime of the
  files in folders). A run resumes only from partial folders with the same fingerprint; any
  other is wiped first, so no stale image survives;
- skips the images whose files all exist, runs the rest: in this process when there is one
  device (as a plain loop would), else in one spawned process per device, shards ``ids[k::N]``,
  with ``threads_per_process(N)`` torch threads each. The files equal those of one process
  with as many threads (on CPU not those of one process with N times the threads);
- fails the stage when a process dies (error exit or signal), stopping the others, naming the
  shard and how many images are done; SIGTERM to the stage ends its processes;
- checks that every image has its files and renames the partial folders onto the outputs.
"""

from __future__ import annotations

import hashlib
import json
import multiprocessing as mp
import os
import shutil
import signal
import sys
from multiprocessing.connection import wait
from pathlib import Path
from typing import Callable

import torch

from wsss.core.device import process_devices, threads_per_process
from wsss.core.errors import DataError, WsssError
from wsss.core.io import remove_stale_temps, write_json
from wsss.core.params import ProjectParams
from wsss.core.progress import progress_bar

PARTIAL_SUFFIX = ".partial"
FINGERPRINT = ".fingerprint.json"

Worker = Callable[[str, list[Path]], None]  # (image id, output folders): writes that image's files
MakeWorker = Callable[[object, torch.device, object], Worker]  # (config, device, dataset) -> worker


def partial_folder(output: str | os.PathLike) -> Path:
    return Path(str(output).rstrip("/") + PARTIAL_SUFFIX)


def input_digest(path: str | os.PathLike) -> str:
    """md5 of a file; of a folder, a digest of its files' names, sizes and mtimes (cheap at
    10,000 images; a touched file counts as changed); "missing" for neither."""
    path = Path(path)
    if path.is_file():
        md5 = hashlib.md5()
        with open(path, "rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                md5.update(block)
        return md5.hexdigest()
    if not path.is_dir():
        return "missing"
    listing = hashlib.sha256()
    for folder, subdirs, files in sorted(os.walk(path)):
        subdirs[:] = sorted(d for d in subdirs if d != "__pycache__")
        for name in sorted(files):
            stat = os.stat(os.path.join(folder, name))
            listing.update(f"{os.path.relpath(os.path.join(folder, name), path)}\0{stat.st_size}\0"
                           f"{stat.st_mtime_ns}\n".encode())
    return listing.hexdigest()


def fingerprint(stage: str, params: dict, threads: int, ids: list[str], inputs: list[str]) -> dict:
    """What a partial folder's images were computed from (as JSON would give it back); ``params``:
    {params key: value} of the keys the stage's outputs depend on."""
    record = {"stage": stage, "params": params, "threads": threads,
              "ids": hashlib.sha256("\n".join(ids).encode()).hexdigest(),
              "inputs": {str(path): input_digest(path) for path in inputs}}
    return json.loads(json.dumps(record, sort_keys=True, default=str))


def _read_fingerprint(folder: Path) -> dict | None:
    try:
        return json.loads((folder / FINGERPRINT).read_text())
    except (OSError, ValueError):
        return None


def _names(folder: Path) -> set[str]:
    return set(os.listdir(folder)) if folder.is_dir() else set()


class ShardedStage:
    """One run of a per-image stage; see the module's docstring. With one device the worker is
    made here, so a stage's bad checkpoint fails before its MLflow run opens, as it always did."""

    def __init__(self, stage: str, record: dict, project: ProjectParams, dataset, ids: list[str],
                 outputs: dict[str, str], make_worker: MakeWorker, config, inputs: list[str]):
        self.stage, self.record, self.progress = stage, record, project.progress
        self.dataset, self.ids, self.make_worker, self.config = dataset, list(ids), make_worker, config
        self.inputs = list(inputs)
        self.outputs = {Path(folder): suffix for folder, suffix in outputs.items()}
        self.partials = [partial_folder(folder) for folder in self.outputs]
        self.devices = process_devices(project)
        self.worker = make_worker(config, self.devices[0], dataset) if len(self.devices) == 1 else None
        self.threads = torch.get_num_threads() if self.worker is not None else threads_per_process(len(self.devices))

    def run(self) -> int:
        """Write every image's files, then the outputs; returns how many images it computed
        (the others were done by a killed run with the same fingerprint)."""
        self._open_partials()
        todo = self._missing()
        with progress_bar(self.progress, total=len(self.ids), initial=len(self.ids) - len(todo), desc=self.stage,
                          unit="image") as bar:
            if self.worker is not None:
                for image_id in todo:
                    self.worker(image_id, self.partials)
                    bar.update()
            elif todo:
                self._run_processes(todo, bar)
        missing = self._missing()
        if missing:
            raise DataError(f"{self.stage}: {len(missing)} image(s) have no output after the run "
                            f"(first: {missing[0]}) in {self.partials[0]}; re-run the stage")
        for partial, output in zip(self.partials, self.outputs):
            remove_stale_temps(partial)
            (partial / FINGERPRINT).unlink()
            if output.exists():
                shutil.rmtree(output)
            os.replace(partial, output)
        return len(todo)

    def _open_partials(self) -> None:
        """Keep the partial folders of an interrupted run with the same fingerprint; wipe any other."""
        expected = fingerprint(self.stage, self.record, self.threads, self.ids, self.inputs)
        if all(_read_fingerprint(p) == expected for p in self.partials):
            return
        for partial in self.partials:
            if partial.exists():
                print(f"{self.stage}: {partial} holds another run's images (other inputs or params): removed")
                shutil.rmtree(partial)
            partial.mkdir(parents=True)
            write_json(partial / FINGERPRINT, expected)

    def _missing(self) -> list[str]:
        """The ids without all their files (each file is renamed into place whole, so one that
        exists is complete)."""
        present = [(_names(p), suffix) for p, suffix in zip(self.partials, self.outputs.values())]
        return [i for i in self.ids if not all(f"{i}{suffix}" in names for names, suffix in present)]

    def _run_processes(self, todo: list[str], bar) -> None:
        context = mp.get_context("spawn")  # fork would copy this process's threads and CUDA state
        count = len(self.devices)
        counters = [context.RawValue("q", 0) for _ in self.devices]  # lock-free: one writer each
        processes = [
            context.Process(target=_shard_main, name=f"{self.stage}-shard{k + 1}",
                            args=(self.make_worker, self.config, device, self.dataset, self.threads, todo[k::count],
                                  self.partials, counters[k]))
            for k, device in enumerate(self.devices)
        ]
        try:
            for process in processes:
                process.start()
            running = list(processes)
            while running:
                wait([p.sentinel for p in running], timeout=0.5)
                bar.update(len(self.ids) - len(todo) + sum(c.value for c in counters) - bar.n)
                for process in [p for p in running if p.exitcode is not None]:
                    running.remove(process)
                    if process.exitcode != 0:
                        _stop(processes)
                        self._fail(processes.index(process), process.exitcode)
        finally:
            _stop(processes)

    def _fail(self, shard: int, exitcode: int) -> None:
        how = (f"was killed by signal {signal.Signals(-exitcode).name}" if exitcode < 0
               else f"exited with status {exitcode}")
        done = len(self.ids) - len(self._missing())  # the other processes are stopped: this is final
        raise WsssError(f"{self.stage}: shard {shard + 1} of {len(self.devices)} (device {self.devices[shard]}) "
                        f"{how}; {done} of {len(self.ids)} images are done, kept in "
                        f"{', '.join(map(str, self.partials))}; re-run the stage to resume")


def _stop(processes: list) -> None:
    """SIGTERM to the shards still running (they die at once: no handler), and reap them all."""
    for process in processes:
        if process.is_alive():
            process.terminate()
    for process in processes:
        if process.pid is not None:
            process.join()


def _shard_main(make_worker: MakeWorker, config, device: torch.device, dataset, threads: int,
                ids: list[str], folders: list[Path], counter) -> None:
    """A shard's process: make the worker once, write its images, count them."""
    torch.set_num_threads(threads)
    try:
        worker = make_worker(config, device, dataset)
        for image_id in ids:
            worker(image_id, folders)
            counter.value += 1
    except WsssError as exc:  # the message without a traceback, as wsss.stages.common.run_main prints it
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(2)

