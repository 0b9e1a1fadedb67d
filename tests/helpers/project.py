"""Copies of the project for the end-to-end tests: the tiny params, a copy in its own git repo,
commands run in it, params edited in it.

A copy keeps its MLflow runs in its own store (``mlflow.db`` and ``mlruns/`` at its root, what
`wsss` uses when MLFLOW_TRACKING_URI is unset), so copying a project copies its runs;
``copy_project`` makes the copy's store point at the copy's own artifacts.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import NamedTuple

import yaml

from wsss.core.project import copy_pipeline
from wsss.tracking.runs import keep_artifacts_inside

ROOT = Path(__file__).resolve().parents[2]
STAGES = ["synthesize", "train_classifier", "seeds", "evaluate_seeds", "irn_labels", "train_irn", "irn_boundaries",
          "refine", "evaluate_refine", "train_recovery", "ptrecl_prototypes", "ptrecl", "evaluate_ptrecl",
          "train_segmentation", "evaluate_segmentation", "gallery"]
AFTER_PTRECL = ["ptrecl", "evaluate_ptrecl", "train_segmentation", "evaluate_segmentation", "gallery"]
AFTER_REFINE = ["refine", "evaluate_refine", "train_recovery", "ptrecl_prototypes", *AFTER_PTRECL]
AFTER_SEEDS = STAGES[2:]
# Images of mixed sizes, as in real VOC / COCO: landscape and portrait, odd sides, some smaller than
# the 64-px training crops; the first overlays of each split mix them (test_pipeline_e2e).
TINY_SIZES = [[64, 80], [45, 61], [88, 56], [40, 52], [96, 72]]
TINY = {
    "data": {"synthetic": {"image_sizes": TINY_SIZES, "num_train": 24, "num_val": 6, "seed": 1}},
    "seeds": {"train": {"epochs": 6, "batch_size": 8, "resize_long": [64, 96], "crop_size": 64},
              "infer": {"scales": [1.0, 0.5]}},
    "refine": {"irn": {"train": {"epochs": 1, "batch_size": 8, "crop_size": 64}, "walk": {"exp_times": 5}}},
    "ptrecl": {"recovery": {"train": {"epochs": 2, "batch_size": 8, "crop_size": 64}},
               "prototypes": {"k": 4, "pixels_per_image": 16, "capacity": 200}},
    "segment": {"train": {"epochs": 2, "batch_size": 8, "crop_size": 64}},
    "project": {"progress": False},
}
TINY_TRAIN_IMAGES = TINY["data"]["synthetic"]["num_train"]
TINY_STEPS = TINY["seeds"]["train"]["epochs"] * (TINY_TRAIN_IMAGES // TINY["seeds"]["train"]["batch_size"])
SYNTHETIC_ROOT = "data/synthetic/VOCdevkit/VOC2012"
GIT = ["git", "-c", "user.name=t", "-c", "user.email=t@t"]


class Project(NamedTuple):
    """A project copy and the environment its commands run with (``cwd, env = project``)."""

    path: Path
    env: dict

    @property
    def uri(self) -> str:
        """The copy's own MLflow store."""
        return f"sqlite:///{self.path / 'mlflow.db'}"


def deep_update(tree: dict, update: dict) -> None:
    for key, value in update.items():
        if isinstance(value, dict):
            deep_update(tree.setdefault(key, {}), value)
        else:
            tree[key] = value


def read_params(project_dir: Path) -> dict:
    return yaml.safe_load((project_dir / "params.yaml").read_text())


def update_params(project_dir: Path, update: dict) -> None:
    params = read_params(project_dir)
    deep_update(params, update)
    (project_dir / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))


def set_param(project_dir: Path, dotted: str, value) -> None:
    """params.yaml's ``dotted`` key (its sections exist) set to ``value``."""
    params = read_params(project_dir)
    node = params
    *parents, leaf = dotted.split(".")
    for part in parents:
        node = node[part]
    node[leaf] = value
    (project_dir / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))


def run(cmd, cwd: Path, env: dict, check: bool = True, timeout: float = 900) -> subprocess.CompletedProcess:
    """Run ``cmd`` in ``cwd``; with ``check``, a failure raises with its output."""
    result = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    if check and result.returncode != 0:
        raise AssertionError(f"{cmd} failed ({result.returncode}):\n{result.stdout[-6000:]}\n{result.stderr[-6000:]}")
    return result


def run_stage(cwd: Path, env: dict, stage: str, check: bool = True) -> subprocess.CompletedProcess:
    """``python -m pipeline.<stage>`` in the project, as DVC runs it."""
    return run([sys.executable, "-m", f"pipeline.{stage}"], cwd, env, check)


def stages_run(dvc_stdout: str) -> list[str]:
    """The stages `dvc repro` ran (not those it restored from its run-cache), in order."""
    return re.findall(r"Running stage '([^']+)'", dvc_stdout)


def commit(cwd: Path, env: dict, message: str) -> None:
    for cmd in (["git", "add", "-A"], [*GIT, "commit", "-qm", message]):
        run(cmd, cwd, env)


def project_env(project_dir: Path, base: dict | None = None, **extra: str) -> dict:
    """The environment of commands run in a copy: ``base`` (os.environ) with the copy's own
    sources first (an editable install of another checkout must not shadow them), this
    interpreter's `wsss` and `dvc` on the PATH, the copy's own MLflow store (no
    MLFLOW_TRACKING_URI) and no parent run."""
    base = dict(os.environ if base is None else base)
    env = dict(base, PYTHONPATH=os.pathsep.join([str(project_dir / "src"), str(project_dir)]),
               PATH=f"{Path(sys.executable).parent}{os.pathsep}{base['PATH']}", **extra)
    for name in ("MLFLOW_TRACKING_URI", "WSSS_PARENT_RUN_ID"):
        if name not in extra:
            env.pop(name, None)
    return env


def make_project(dest: Path, params: dict | None = None, store: Path | None = None,
                 environ: dict | None = None) -> Project:
    """A copy of this project's pipeline (wsss.core.project.copy_pipeline) with the tiny params
    (and ``params`` over them), committed in a git repo of its own; nothing run yet. ``store``:
    an empty, migrated MLflow database to start the project's own store from (creating one takes
    seconds, and a test that reads the store while a stage creates it would race the stage)."""
    dest.mkdir(parents=True, exist_ok=True)
    copy_pipeline(ROOT, dest, extra=(".gitignore",))
    if store is not None:
        shutil.copy(store, dest / "mlflow.db")
    update_params(dest, TINY)
    if params:
        update_params(dest, params)
    env = project_env(dest, environ)
    run(["git", "init", "-q"], dest, env)
    commit(dest, env, "init")
    return Project(dest, env)


def copy_project(source: Path, dest: Path, environ: dict | None = None) -> Project:
    """A copy of a project folder as it is: working tree with its outputs, .git, DVC's cache and
    run-cache, its MLflow store (whose artifact paths are moved to the copy's mlruns/)."""
    shutil.copytree(source, dest, symlinks=True, ignore=shutil.ignore_patterns("__pycache__"))
    keep_artifacts_inside(dest)
    return Project(dest, project_env(dest, environ))
