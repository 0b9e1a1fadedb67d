"""GPUs of Ray Tune trials (`wsss sweep --engine ray --gpus-per-trial G`), on a CPU machine.

A real Ray head (`ray start --head --num-gpus 2`) declares two logical GPUs; its node's
environment says CUDA_VISIBLE_DEVICES=0,1 as a GPU node's would. Trivial trials check what Ray
assigns them and what their `dvc repro` would see (wsss.sweep.workspace.trial_env): whole GPUs
are the trial's own, fractions share one, 0 hides them all, and `project.devices` follows.
The end-to-end sweep on such a head is in test_sweep.py.
"""

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.helpers.ray_head import LOGICAL_GPUS, ray_head
from wsss.sweep.ray_engine import (
    check_cluster_gpus,
    check_gpus_per_trial,
    trial_placement,
)
from wsss.sweep.space import Dimension, Metric, SweepError, SweepSpec
from wsss.sweep.workspace import Placement, trial_env, trial_overrides


def _spec(**fixed) -> SweepSpec:
    return SweepSpec("s", Path("sweeps/s.yaml"), Metric("metrics/ptrecl.json", "miou", "evaluate_ptrecl"),
                     "maximize", 2, (Dimension("ptrecl.reclassify.top_m", "int", 2, 6),), fixed=fixed)


def test_gpus_per_trial_is_a_fraction_below_one_or_whole_gpus():
    for good in (0, 0.25, 0.5, 1, 2.0, 4):
        check_gpus_per_trial(good, _spec())
    for bad in (1.5, 2.25, -1):
        with pytest.raises(SweepError, match="--gpus-per-trial"):
            check_gpus_per_trial(bad, _spec())
    # a trial's GPUs set project.devices: the spec may not set it too, unless no GPU is asked for
    with pytest.raises(SweepError, match="'project.devices' is set by --gpus-per-trial"):
        check_gpus_per_trial(1, _spec(**{"project.devices": 2}))
    check_gpus_per_trial(0, _spec(**{"project.devices": 2}))


def test_a_placement_sets_the_trials_visible_gpus_and_processes(tmp_path, monkeypatch):
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "0,1")
    assert trial_env(tmp_path, tmp_path, None)["CUDA_VISIBLE_DEVICES"] == "0,1"  # no placement: as inherited
    two = Placement(("1", "0"), devices=2)
    assert trial_env(tmp_path, tmp_path, None, two)["CUDA_VISIBLE_DEVICES"] == "1,0"
    assert trial_overrides(_spec(), {"ptrecl.reclassify.top_m": 3}, two) == {
        "project.devices": 2, "ptrecl.reclassify.top_m": 3}
    hidden = Placement(gpus=())
    assert trial_env(tmp_path, tmp_path, None, hidden)["CUDA_VISIBLE_DEVICES"] == ""
    assert trial_overrides(_spec(**{"project.devices": 2}), {}, hidden) == {"project.devices": 2}


def _run_trials(gpus_per_trial: float, count: int, out: Path) -> list[dict]:
    """`count` trials at once, each asking for `gpus_per_trial` as `wsss sweep` asks for them;
    what each saw: Ray's CUDA_VISIBLE_DEVICES, its placement, and its `dvc repro`'s environment."""
    from ray import tune

    out = out / str(gpus_per_trial)
    out.mkdir()

    def trainable(config: dict) -> None:
        placement = trial_placement(gpus_per_trial)
        child = subprocess.run(
            [sys.executable, "-c", "import os; print(os.environ.get('CUDA_VISIBLE_DEVICES', 'unset'))"],
            env=trial_env(out, out, None, placement), capture_output=True, text=True, check=True)
        seen = {"ray": os.environ.get("CUDA_VISIBLE_DEVICES", "unset"), "gpus": list(placement.gpus),
                "devices": placement.devices, "params": placement.params(), "child": child.stdout.strip()}
        (out / f"{config['i']}.json").write_text(json.dumps(seen))
        deadline = time.monotonic() + 60  # every trial holds its GPUs until all have theirs
        while len(list(out.glob("*.json"))) < count and time.monotonic() < deadline:
            time.sleep(0.1)
        tune.report({"done": 1})

    tuner = tune.Tuner(tune.with_resources(trainable, {"cpu": 1, "gpu": gpus_per_trial}),
                       param_space={"i": tune.grid_search(list(range(count)))},
                       run_config=tune.RunConfig(storage_path=str(out / "ray"), verbose=0))
    results = tuner.fit()
    assert [r.error for r in results if r.error] == []
    return [json.loads(p.read_text()) for p in sorted(out.glob("*.json"))]


@pytest.mark.slow
def test_ray_trials_get_the_gpus_ray_assigns_them(tmp_path):
    with ray_head():
        check_cluster_gpus(2)
        with pytest.raises(SweepError, match="--gpus-per-trial 3: no node"):
            check_cluster_gpus(3)

        own = _run_trials(1, 2, tmp_path)  # one GPU each: two trials, two GPUs
        assert sorted(t["child"] for t in own) == list(LOGICAL_GPUS)
        assert all(t["ray"] == t["child"] == t["gpus"][0] and t["params"] == {"project.devices": 1} for t in own)

        shared = _run_trials(0.5, 2, tmp_path)  # half a GPU each: Ray packs both on one GPU
        assert shared[0]["child"] == shared[1]["child"] in LOGICAL_GPUS
        assert all(t["devices"] == 1 for t in shared)

        none = _run_trials(0, 2, tmp_path)  # Ray leaves the node's GPUs visible; the trial hides them
        assert all(t["ray"] == "0,1" and t["child"] == "" and t["params"] == {} for t in none)

        both = _run_trials(2, 1, tmp_path)  # two GPUs: the trial's stages run DDP over both
        [trial] = both
        assert sorted(trial["child"].split(",")) == list(LOGICAL_GPUS) and trial["child"] == trial["ray"]
        assert trial["params"] == {"project.devices": 2}
