"""A Ray head on the loopback with logical GPUs, as `ray start --head` on a GPU node would be
(test_sweep_gpus.py, test_sweep.py)."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from wsss.sweep.ray_engine import init_ray

from tests.helpers.servers import free_port

LOGICAL_GPUS = ("0", "1")


@contextlib.contextmanager
def ray_head(gpus: int = len(LOGICAL_GPUS), cpus: int = 4):
    """A Ray head on the loopback with `gpus` logical GPUs, as `ray start --head` on a GPU node;
    yields its address, the test process connected to it. Stopped by its process group only (other
    Ray instances on this machine are left alone)."""
    import ray

    port = free_port()
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


@contextlib.contextmanager
def ray_cluster(workers: int = 2, cpus_per_worker: int = 1):
    """A multi-node Ray cluster on the loopback (`ray.cluster_utils.Cluster`: a head with no CPU,
    so that every trial runs on a worker node, and `workers` worker nodes, each its own raylet and
    object store, as `ray start --address` on another machine would be); yields (cluster, worker
    nodes, address). The driver connects itself (`wsss sweep --address`). Everything is stopped
    at the end."""
    import ray
    from ray._private import ray_constants
    from ray.cluster_utils import Cluster

    auth, cluster_switch = os.environ.get("RAY_AUTH_MODE"), ray_constants.ENABLE_RAY_CLUSTER
    os.environ["RAY_AUTH_MODE"] = "disabled"
    ray_constants.ENABLE_RAY_CLUSTER = False  # keep the driver on the loopback (see ray_head)
    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 0, "include_dashboard": False,
                                                            "node_ip_address": "127.0.0.1"})
    try:
        nodes = [cluster.add_node(num_cpus=cpus_per_worker, node_ip_address="127.0.0.1") for _ in range(workers)]
        cluster.wait_for_nodes()
        yield cluster, nodes, cluster.address
    finally:
        ray.shutdown()
        cluster.shutdown()
        ray_constants.ENABLE_RAY_CLUSTER = cluster_switch
        if auth is None:
            os.environ.pop("RAY_AUTH_MODE", None)
        else:
            os.environ["RAY_AUTH_MODE"] = auth
