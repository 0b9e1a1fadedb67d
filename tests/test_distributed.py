"""Training stages over several processes (project.devices): real torch elastic launches of 2 CPU
ranks (gloo) in a tiny project, compared with the one-process run, and a real MLflow sqlite db.

Tolerance: 2 ranks train on halves of the same global batches, with gradients averaged and BN over
the global batch, so they differ from one process only by float summation order; every checkpoint
tensor must agree within TOLERANCE (absolute, max over elements) and each step's losses within it
too (the TSV has 7 significant digits). At the tiny project's learning rates SGD amplifies such
rounding differences about tenfold per step (2e-7 in the loss at step 4, 0.05 in the weights after
18 steps), so these runs train a few steps at a lower learning rate (EQUAL_RUN).
"""

import os
import shutil
import signal
import subprocess
import sys
import time

import mlflow
import numpy as np
import psutil
import pytest
import torch
from torch.utils.data import DataLoader

from tests.helpers.mlflow_runs import all_runs, stage_runs
from tests.helpers.project import TINY_TRAIN_IMAGES, run_stage, set_param
from wsss.core.errors import ParamsError
from wsss.core.params import ProjectParams
from wsss.train.ddp import GlobalBatchSampler, Ranks, relaunch

TOLERANCE = 1e-4
EQUAL_RUN = {"epochs": 2, "lr": 0.005}  # 6 steps of 8 images
CLASSIFIER = "artifacts/seeds/classifier.pt"


def _trained(cwd, env, stage, devices, outputs):
    """Run `stage` over `devices` processes; returns {output: its bytes' path copy}."""
    set_param(cwd, "project.devices", devices)
    run_stage(cwd, env, stage)
    kept = {}
    for output in outputs:
        kept[output] = cwd / f"{output}.{devices}"
        shutil.copy(cwd / output, kept[output])
    return kept


def _assert_same_training(one: dict, two: dict, weights: str, losses: str) -> float:
    """Checkpoints within TOLERANCE tensor by tensor, loss tables step by step; returns the
    largest difference of the weights."""
    a, b = torch.load(one[weights]), torch.load(two[weights])
    assert a.keys() == b.keys()
    worst = 0.0
    for key in a:
        if a[key].is_floating_point():
            worst = max(worst, (a[key] - b[key]).abs().max().item())
        else:
            assert torch.equal(a[key], b[key]), key
    assert worst <= TOLERANCE, f"largest weight difference {worst}"
    rows_a = [line.split("\t") for line in one[losses].read_text().splitlines()]
    rows_b = [line.split("\t") for line in two[losses].read_text().splitlines()]
    assert rows_a[0] == rows_b[0] and len(rows_a) == len(rows_b)
    for row_a, row_b in zip(rows_a[1:], rows_b[1:]):
        assert row_a[:2] == row_b[:2]  # step, epoch
        np.testing.assert_allclose(np.array(row_a[2:], float), np.array(row_b[2:], float), atol=TOLERANCE)
    return worst


def test_global_batches_are_the_one_process_loader_batches():
    """Rank 0 of 1 gets the old DataLoader(shuffle=True, seeded generator)'s batches, epoch after
    epoch; two ranks split each of them in halves."""
    size, batch, seed = 21, 6, 3
    old = DataLoader(range(size), batch_size=batch, shuffle=True, drop_last=True,
                     generator=torch.Generator().manual_seed(seed))
    one = GlobalBatchSampler(size, batch, True, seed, Ranks(0, 1, torch.device("cpu")))
    halves = [GlobalBatchSampler(size, batch, True, seed, Ranks(rank, 2, torch.device("cpu"))) for rank in (0, 1)]
    for epoch in range(3):
        for sampler in (one, *halves):
            sampler.set_epoch(epoch)
        expected, batches = [b.tolist() for b in old], list(one)
        assert [[index for _, index in b] for b in batches] == expected
        assert all(e == epoch for b in batches for e, _ in b)
        split = [[[index for _, index in b] for b in sampler] for sampler in halves]
        assert [first + second for first, second in zip(*split)] == expected
        assert all(len(b) == batch // 2 for b in split[0] + split[1])


def test_batch_not_dividing_over_the_processes_is_a_params_error():
    project = ProjectParams(device="cpu", devices=2)
    with pytest.raises(ParamsError, match=r"'seeds.train.batch_size' is 9, which does not divide over the 2 "):
        relaunch(project, "train_classifier", "unused.pt", ("seeds.train.batch_size", 9), after=lambda: None)


@pytest.mark.slow
def test_two_processes_train_the_classifier_as_one_and_log_one_run(synthesized_project):
    cwd, env = synthesized_project
    uri = synthesized_project.uri
    for key, value in EQUAL_RUN.items():
        set_param(cwd, f"seeds.train.{key}", value)
    outputs = [CLASSIFIER, "plots/train/train_classifier.tsv"]
    one = _trained(cwd, env, "train_classifier", 1, outputs)
    two = _trained(cwd, env, "train_classifier", 2, outputs)
    worst = _assert_same_training(one, two, *outputs)
    print(f"train_classifier: largest weight difference, 2 vs 1 process: {worst:.3g}")
    runs = stage_runs(uri, "train_classifier")
    assert len(runs) == 2 and all(run.info.status == "FINISHED" for run in runs)  # one per invocation
    for run in runs:  # rank 0's run holds every step
        history = mlflow.MlflowClient(tracking_uri=uri).get_metric_history(run.info.run_id, "train.loss")
        assert len(history) == EQUAL_RUN["epochs"] * (TINY_TRAIN_IMAGES // 8)


@pytest.mark.slow
def test_two_processes_train_the_segmenter_as_one(tiny_project):
    """train_segmentation on label maps without ignored pixels and crops inside every image, so
    that both ranks average the cross-entropy over equally many pixels (see README)."""
    cwd, env = tiny_project
    set_param(cwd, "data.synthetic.image_sizes", [[72, 88], [80, 72]])
    run_stage(cwd, env, "synthesize")
    set_param(cwd, "segment.masks", "refine")
    set_param(cwd, "segment.train.scale_range", [1.0, 1.0])
    set_param(cwd, "seeds.train.epochs", 1)
    for key, value in EQUAL_RUN.items():
        set_param(cwd, f"segment.train.{key}", value)
    run_stage(cwd, env, "train_classifier")
    truth, labels = cwd / "data/synthetic/VOCdevkit/VOC2012/SegmentationClass", cwd / "artifacts/refine/masks"
    labels.mkdir(parents=True)
    from PIL import Image

    for path in truth.glob("*.png"):
        label = np.array(Image.open(path))
        Image.fromarray(np.where(label == 255, 0, label).astype(np.uint8)).save(labels / path.name)
    outputs = ["artifacts/segment/deeplab.pt", "plots/train/train_segmentation.tsv"]
    one = _trained(cwd, env, "train_segmentation", 1, outputs)
    two = _trained(cwd, env, "train_segmentation", 2, outputs)
    worst = _assert_same_training(one, two, *outputs)
    print(f"train_segmentation: largest weight difference, 2 vs 1 process: {worst:.3g}")


def _rank_process(launcher: psutil.Process, rank: int) -> psutil.Process | None:
    for child in launcher.children(recursive=True):
        try:
            if child.environ().get("RANK") == str(rank):
                return child
        except psutil.Error:
            continue
    return None


@pytest.mark.slow
@pytest.mark.parametrize("rank", [0, 1])
def test_a_killed_rank_fails_the_stage_cleanly(synthesized_project, rank):
    """SIGKILL one rank while it trains: the stage fails naming it, with no checkpoint (nor a
    temporary one) and no MLflow run left RUNNING (rank 0's closed by the launcher)."""
    cwd, env = synthesized_project
    uri = synthesized_project.uri
    set_param(cwd, "project.devices", 2)
    set_param(cwd, "seeds.train.epochs", 1000)
    launcher = subprocess.Popen([sys.executable, "-m", "pipeline.train_classifier"], cwd=cwd, env=env,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.time() + 300
        while not [r for r in stage_runs(uri, "train_classifier") if r.info.status == "RUNNING"]:
            assert launcher.poll() is None and time.time() < deadline, launcher.communicate()
            time.sleep(1)
        time.sleep(3)  # into the training steps
        victim = _rank_process(psutil.Process(launcher.pid), rank)
        os.kill(victim.pid, signal.SIGKILL)
        out, err = launcher.communicate(timeout=300)
    finally:
        if launcher.poll() is None:
            launcher.kill()
    assert launcher.returncode == 2, err
    assert f"error: train_classifier: rank {rank} of 2 failed (killed by signal SIGKILL); " \
           "no checkpoint was written" in err
    assert not (cwd / CLASSIFIER).exists()
    folder = cwd / "artifacts/seeds"
    assert not folder.exists() or not list(folder.glob(".*.tmp*"))
    runs = stage_runs(uri, "train_classifier")
    assert len(runs) == 1 and runs[0].info.status in ("FAILED", "KILLED")
    assert not all_runs(uri, "attributes.status = 'RUNNING'")
