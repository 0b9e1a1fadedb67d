"""Which version of the data set a run used: the md5 DVC records for it, as MLflow tags.

A data set is versioned by DVC in one of three ways, looked up in this order: a `.dvc` file of
`dvc add` (its folder, or a folder above it), an output of a pipeline stage in dvc.lock (the
synthetic set is `synthesize`'s `data/synthetic`), or, for data DVC does not track, the md5 a
stage that read it recorded for it as a dependency. The tag names the path the md5 belongs to,
which may be a folder above `dataset.root`.
"""

from __future__ import annotations

from pathlib import Path

import yaml

DATA_TAG = "wsss.data"  # "<path> md5 <md5>": the version of the data set the run used
DATA_MD5_TAG = "wsss.data_md5"


def data_version(project: str | Path, root: str) -> tuple[str, str] | None:
    """(path, md5) of the DVC-tracked folder holding the data set `root` (relative to the
    project), or None when DVC records none (a first run, before any stage has read it)."""
    project = Path(project)
    root = Path(root).as_posix().rstrip("/")
    for path, md5 in _dvc_files(project, root) + _lock_outs(project) + _lock_deps(project):
        if md5 and (root == path or root.startswith(path + "/")):
            return path, md5
    return None


def data_tags(project: str | Path, root: str) -> dict[str, str]:
    found = data_version(project, root)
    if found is None:
        return {}
    path, md5 = found
    return {DATA_TAG: f"{path} md5 {md5}", DATA_MD5_TAG: md5}


def _read(path: Path) -> dict:
    try:
        return yaml.safe_load(path.read_text()) or {}
    except (OSError, yaml.YAMLError):
        return {}


def _dvc_files(project: Path, root: str) -> list[tuple[str, str]]:
    """The outs of `<folder>.dvc` files (`dvc add <folder>`) of `root` and the folders above it."""
    found = []
    parts = root.split("/")
    for depth in range(len(parts), 0, -1):
        file = project / ("/".join(parts[:depth]) + ".dvc")
        for out in _read(file).get("outs") or [] if file.is_file() else []:
            found.append(((file.parent.relative_to(project) / out.get("path", "")).as_posix().removeprefix("./"),
                          out.get("md5")))
    return found


def _lock_entries(project: Path, kind: str) -> list[tuple[str, str]]:
    stages = _read(project / "dvc.lock").get("stages") or {}
    return [(entry.get("path", "").rstrip("/"), entry.get("md5")) for stage in stages.values()
            for entry in stage.get(kind) or []]


def _lock_outs(project: Path) -> list[tuple[str, str]]:
    return _lock_entries(project, "outs")


def _lock_deps(project: Path) -> list[tuple[str, str]]:
    return _lock_entries(project, "deps")
