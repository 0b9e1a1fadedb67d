"""wsss.sweep.experiments on a real DVC repository of one toy stage: the queue path that
`wsss repro --replicates N --jobs J` takes, a failing experiment reported by name."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

from wsss.sweep import experiments

STAGE = """stages:
  s:
    cmd: python step.py ${seed}
    deps: [step.py]
    params: [seed]
    outs: [out.txt]
    metrics:
      - m.json:
          cache: false
"""
STEP = """import json, os, sys
seed = int(sys.argv[1])
if seed == 1:
    sys.exit("seed 1 fails on purpose")
open("out.txt", "w").write(str(seed))
json.dump({"v": seed, "name": os.environ.get("DVC_EXP_NAME")}, open("m.json", "w"))
"""


def _toy(root: Path) -> dict:
    env = dict(os.environ, PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}")
    for command in (["git", "init", "-q"], ["dvc", "init", "-q"]):
        subprocess.run(command, cwd=root, env=env, check=True)
    (root / "dvc.yaml").write_text(STAGE)
    (root / "step.py").write_text(STEP)
    (root / "params.yaml").write_text("seed: 0\n")
    for command in (["git", "add", "-A"], ["git", "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "toy"]):
        subprocess.run(command, cwd=root, env=env, check=True)
    return env


@pytest.mark.slow
def test_queued_experiments_run_j_at_a_time_and_a_failure_is_named(tmp_path):
    env = _toy(tmp_path)
    runs = [(f"toy-seed-{k}", {"seed": k}) for k in range(3)]
    logged = []
    failed = experiments.run_queued(tmp_path, env, runs, (), jobs=2, log=logged.append, poll_s=1.0)
    assert failed == ["toy-seed-1"]
    assert "dvc queue start -j 2" in logged
    head = experiments.head(tmp_path)
    for k in (0, 2):  # the others ran, each its own experiment with its metrics and DVC_EXP_NAME
        ref = experiments.experiment_ref(head, f"toy-seed-{k}")
        assert experiments.read_metrics(tmp_path, ref, "m.json") == {"v": k, "name": f"toy-seed-{k}"}
    assert experiments.read_metrics(tmp_path, experiments.experiment_ref(head, "toy-seed-1"), "m.json") is None
    # Queued again under the same names: the earlier experiments and tasks are replaced, not mixed in.
    assert experiments.run_queued(tmp_path, env, runs[:1], (), jobs=1, log=logged.append, poll_s=1.0) == []
