"""GPUs of Ray Tune trials (`wsss sweep --engine ray --gpus-per-trial G`), on a CPU machine.

A real Ray head (`ray start --head --num-gpus 2`) declares two logical GPUs; its node's
environment says CUDA_VISIBLE_DEVICES=0,1 as a GPU node's would. Trivial trials check what Ray
assigns them and what their `dvc repro` would see (wsss.sweep.workspace.trial_env): whole GPUs
are the trial's own, fractions share one, 0 hides them all, and `project.devices` follows.
The end-to-end sweep on such a head is in test_sweep.py.
"""

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from wsss.sweep.ray_engine import check_cluster_gpus, check_gpus_per_trial, init_ray, trial_placement
from wsss.sweep.space import Dimension, Metric, SweepError, SweepSpec
from wsss.sweep.workspace import Placement, trial_env, trial_overrides

LOGICAL_GPUS = ("0", "1")


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


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def ray_head(gpus: int = len(LOGICAL_GPUS), cpus: int = 4):
    """A Ray head on the loopback with `gpus` logical GPUs, as `ray start --head` on a GPU node;
    yields its address, the test process connected to it. Stopped by its process group only (other
    Ray instances on this machine are left alone)."""
    import ray

    port = _free_port()
    temp = tempfile.mkdtemp(prefix="ray")  # short: Ray's socket paths must fit in 107 bytes
    env = dict(os.environ, CUDA_VISIBLE_DEVICES=",".join(LOGICAL_GPUS[:gpus]), RAY_AUTH_MODE="disabled")
    env.pop("MLFLOW_TRACKING_URI", None)  # a node's environment is its own, not the driver's
    command = [str(Path(sys.executable).parent / "ray"), "start", "--head", "--block", "--port", str(port),
               "--node-ip-address", "127.0.0.1", "--num-cpus", str(cpus), "--num-gpus", str(gpus),
               "--include-dashboard", "false", "--disable-usage-stats", "--temp-dir", temp]
    with open(Path(temp) / "head.log", "wb") as log:
        head = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    address = f"127.0.0.1:{port}"
    # A driver given a loopback address swaps it for the IP the machine routes outwards
    # (ray._private.services.resolve_ip_for_localhost), where a head bound to 127.0.0.1 does not
    # answer: ray.init then retries for ever. Ray's own switch keeps this driver on the loopback.
    from ray._private import ray_constants

    cluster_switch = ray_constants.ENABLE_RAY_CLUSTER
    ray_constants.ENABLE_RAY_CLUSTER = False
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                init_ray(address)
                break
            except ConnectionError:
                if head.poll() is not None or time.monotonic() > deadline:
                    raise
                time.sleep(1)
        yield address
    finally:
        ray.shutdown()
        ray_constants.ENABLE_RAY_CLUSTER = cluster_switch
        os.killpg(head.pid, signal.SIGKILL)  # `ray start --block` takes long to honour SIGTERM
        head.wait()
        shutil.rmtree(temp, ignore_errors=True)


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
