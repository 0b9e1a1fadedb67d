"""Sharded per-image stages (wsss.train.sharding): N processes write what one process writes, a killed
run resumes from its partial folders, and a changed input never resumes from stale files.

The runner's tests use a trivial worker (fast); the `seeds` stage's run as real processes with a
real SIGKILL (slow). On CPU a network's bytes depend on the torch threads of its process, so the
unsharded reference runs with the threads of one shard (threads_per_process(2)).
"""

import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest
import yaml

from wsss.core.device import threads_per_process
from wsss.core.errors import DataError, WsssError
from wsss.core.params import ProjectParams, SyntheticParams
from wsss.data.synthetic import generate
from wsss.train.sharding import FINGERPRINT, ShardedStage, fingerprint, partial_folder

ROOT = Path(__file__).resolve().parents[1]
IDS = [f"img{k:02d}" for k in range(12)]
KILL_ONCE = "kill-once"  # the trivial worker SIGKILLs its own process at this id while this file exists


# -- the runner, with a trivial worker ----------------------------------------------------------
def make_copy_worker(config, device, dataset):
    """Writes "<id> <source's text>" for each id, into both output folders; `dataset` is the
    source file. At the id named in <source>.kill-once, removes that file and SIGKILLs itself."""
    source = Path(dataset)
    trigger = source.with_suffix("." + KILL_ONCE)

    def worker(image_id, folders):
        if trigger.exists() and trigger.read_text() == image_id:
            trigger.unlink()
            os.kill(os.getpid(), signal.SIGKILL)
        for folder, suffix in zip(folders, (".txt", ".out")):
            (folder / f"{image_id}{suffix}").write_text(f"{image_id} {source.read_text()}")
    return worker


def _stage(tmp_path: Path, devices: int, ids=IDS) -> ShardedStage:
    project = ProjectParams(device="cpu", devices=devices, progress=False)
    source = tmp_path / "source.txt"
    outputs = {tmp_path / "out/a": ".txt", tmp_path / "out/b": ".out"}
    return ShardedStage("copy", {"project.devices": devices}, project, str(source), ids, outputs, make_copy_worker,
                        None, [str(source)])


def _contents(folder: Path) -> dict:
    return {path.name: path.read_bytes() for path in sorted(folder.iterdir())}


@pytest.mark.parametrize("devices", [1, 2])
def test_runner_writes_every_image_then_renames_the_partial_folders(tmp_path, devices):
    (tmp_path / "source.txt").write_text("v1")
    assert _stage(tmp_path, devices).run() == len(IDS)
    for folder, suffix in (("a", ".txt"), ("b", ".out")):
        assert _contents(tmp_path / "out" / folder) == {f"{i}{suffix}": f"{i} v1".encode() for i in IDS}
        assert not partial_folder(tmp_path / "out" / folder).exists()


def test_killed_shard_fails_the_stage_and_the_rerun_does_the_rest(tmp_path):
    (tmp_path / "source.txt").write_text("v1")
    (tmp_path / f"source.{KILL_ONCE}").write_text(IDS[7])  # shard 2 of 2 gets the odd positions
    with pytest.raises(WsssError, match=r"^copy: shard 2 of 2 \(device cpu\) was killed by signal SIGKILL; "
                                        r"(\d+) of 12 images are done, kept in .*a\.partial, .*b\.partial; "
                                        r"re-run the stage to resume$") as failure:
        _stage(tmp_path, 2).run()
    done = int(re.search(r"(\d+) of 12", str(failure.value))[1])
    partial = partial_folder(tmp_path / "out/a")
    assert 3 <= done < 12 and not (tmp_path / "out/a").exists()  # shard 2 finished img01, 03, 05 first
    assert len([n for n in os.listdir(partial) if not n.startswith(".")]) == done
    assert _stage(tmp_path, 2).run() == 12 - done
    assert _contents(tmp_path / "out/a") == {f"{i}.txt": f"{i} v1".encode() for i in IDS}
    assert not partial.exists() and not partial_folder(tmp_path / "out/b").exists()


def _half_done(tmp_path: Path, count: int) -> Path:
    """The partial folders of a run stopped after ``count`` images; returns the first."""
    stage = _stage(tmp_path, 1)
    stage._open_partials()
    for image_id in IDS[:count]:
        stage.worker(image_id, stage.partials)
    return stage.partials[0]


def test_changed_input_does_not_resume_from_stale_files(tmp_path):
    (tmp_path / "source.txt").write_text("v1")
    _half_done(tmp_path, 5)
    (tmp_path / "source.txt").write_text("v2")
    assert _stage(tmp_path, 1).run() == len(IDS)
    assert all(path.read_text().endswith(" v2") for path in (tmp_path / "out/a").iterdir())


def test_fingerprint_holds_what_changes_the_bytes(tmp_path):
    record = {"project.devices": 1, "x.y": 1}
    (tmp_path / "input.txt").write_text("a")
    inputs = [str(tmp_path / "input.txt")]
    base = fingerprint("s", record, 2, IDS, inputs)
    assert fingerprint("s", record, 2, IDS, inputs) == base
    assert fingerprint("s", {**record, "project.devices": 2}, 2, IDS, inputs) != base
    assert fingerprint("s", record, 1, IDS, inputs) != base  # torch threads
    assert fingerprint("s", {**record, "x.y": 2}, 2, IDS, inputs) != base
    assert fingerprint("s", record, 2, IDS[:-1], inputs) != base
    (tmp_path / "input.txt").write_text("b")
    assert fingerprint("s", record, 2, IDS, inputs) != base


def test_unchanged_inputs_resume_and_the_fingerprint_leaves_no_trace(tmp_path):
    (tmp_path / "source.txt").write_text("v1")
    partial = _half_done(tmp_path, 5)
    (partial / f"{IDS[5]}.txt").write_text("half")  # img05 has one of its two files: not done
    assert (partial / FINGERPRINT).exists()
    assert _stage(tmp_path, 1).run() == len(IDS) - 5
    assert sorted(os.listdir(tmp_path / "out/a")) == [f"{i}.txt" for i in IDS]
    assert (tmp_path / "out/a" / f"{IDS[5]}.txt").read_text() == f"{IDS[5]} v1"


def test_an_image_left_without_files_fails_the_stage(tmp_path):
    (tmp_path / "source.txt").write_text("v1")
    stage = _stage(tmp_path, 1)
    stage.worker = lambda image_id, folders: None if image_id == IDS[3] else make_copy_worker(
        None, None, str(tmp_path / "source.txt"))(image_id, folders)
    with pytest.raises(DataError, match=rf"^copy: 1 image\(s\) have no output after the run \(first: {IDS[3]}\)"):
        stage.run()
    assert not (tmp_path / "out/a").exists()


# -- the seeds stage, as real processes -----------------------------------------------------------
NUM_IMAGES = 40


@pytest.fixture(scope="module")
def seeds_project(tmp_path_factory, _mlflow_db_template):
    """A project with NUM_IMAGES synthetic images, a random classifier and the unsharded seeds,
    made with the torch threads of one of two shards."""
    import torch

    from wsss.core import params as params_mod
    from wsss.core.io import save_state_dict
    from wsss.data.registry import open_dataset
    from wsss.methods.seed_methods import build_seed_model
    from wsss.models.backbones import build_backbone

    project = tmp_path_factory.mktemp("seeds-project")
    shutil.copy(ROOT / "dvc.yaml", project / "dvc.yaml")
    generate(project / "data", SyntheticParams(image_height=64, image_width=80, num_train=NUM_IMAGES, num_val=2))
    (project / "params.yaml").write_text(yaml.safe_dump(
        {"dataset": {"root": "data"}, "project": {"progress": False, "device": "cpu"}}))
    params = params_mod.load(project / "params.yaml")
    torch.manual_seed(0)
    dataset = open_dataset(params.dataset.model_copy(update={"root": str(project / "data")}),
                           params.dataset.train_split)
    backbone = build_backbone(params.seeds.backbone.model_copy(update={"pretrained": False}))
    model = build_seed_model(params.seeds, backbone, dataset.num_classes - 1)
    save_state_dict(project / "artifacts/seeds/classifier.pt", model.state_dict())
    shutil.copy(_mlflow_db_template, project / "mlflow.db")
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(ROOT / "src"), str(ROOT)]),
               MLFLOW_TRACKING_URI=f"sqlite:///{project / 'mlflow.db'}",
               OMP_NUM_THREADS=str(threads_per_process(2)))
    env.pop("WSSS_PARENT_RUN_ID", None)
    _seeds(project, env)
    reference = _contents(project / "artifacts/seeds/maps")
    assert len(reference) == NUM_IMAGES
    env.pop("OMP_NUM_THREADS")
    _set_devices(project, 2)
    return project, env, reference


def _set_devices(project: Path, devices: int) -> None:
    params = yaml.safe_load((project / "params.yaml").read_text())
    params["project"]["devices"] = devices
    (project / "params.yaml").write_text(yaml.safe_dump(params))


def _seeds(project: Path, env: dict, check: bool = True) -> subprocess.CompletedProcess:
    done = subprocess.run([sys.executable, "-m", "pipeline.seeds"], cwd=project, env=env, capture_output=True,
                          text=True, timeout=600)
    assert done.returncode == 0 or not check, done.stderr
    return done


def _written(folder: Path) -> list[Path]:
    """The score maps in a folder, not the temporary files they are written to (dot names)."""
    return [path for path in folder.glob("*.npz") if not path.name.startswith(".")]


def _computed(done: subprocess.CompletedProcess) -> int:
    return int(re.search(r"\((\d+) computed in this run\)", done.stdout)[1])


@pytest.mark.slow
def test_sharded_seeds_equal_unsharded_byte_for_byte(seeds_project):
    project, env, reference = seeds_project
    assert _computed(_seeds(project, env)) == NUM_IMAGES
    assert _contents(project / "artifacts/seeds/maps") == reference
    assert not partial_folder(project / "artifacts/seeds/maps").exists()


@pytest.mark.slow
def test_seeds_killed_halfway_resume_to_the_same_maps(seeds_project):
    project, env, reference = seeds_project
    maps, partial = project / "artifacts/seeds/maps", partial_folder(project / "artifacts/seeds/maps")
    shutil.rmtree(maps, ignore_errors=True)  # as DVC does before it runs a stage
    stage = subprocess.Popen([sys.executable, "-m", "pipeline.seeds"], cwd=project, env=env,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 300
    while len(_written(partial)) < 4 and stage.poll() is None and time.monotonic() < deadline:
        time.sleep(0.01)
    workers = [p for p in psutil.Process(stage.pid).children() if "spawn_main" in " ".join(p.cmdline())]
    assert len(workers) == 2, "the stage should run two shard processes"
    workers[0].send_signal(signal.SIGKILL)
    _, stderr = stage.communicate(timeout=300)
    assert stage.returncode == 2 and "Traceback" not in stderr, stderr
    failure = re.search(r"error: seeds: shard [12] of 2 \(device cpu\) was killed by signal SIGKILL; (\d+) of "
                        rf"{NUM_IMAGES} images are done, kept in artifacts/seeds/maps\.partial; re-run the stage "
                        r"to resume", stderr)
    assert failure, stderr
    done = int(failure[1])
    assert 4 <= done < NUM_IMAGES and not maps.exists()
    assert len(_written(partial)) == done  # a killed shard may leave the temporary file of the map it wrote
    assert _computed(_seeds(project, env)) == NUM_IMAGES - done  # only the rest
    assert _contents(maps) == reference and not partial.exists()
