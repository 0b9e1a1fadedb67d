"""A project's pipeline as files: what a copy needs to run `dvc repro` on its own (a sweep's trial
slots, a benchmark's scratch folder, a test's project), and a digest that says when they changed."""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path
from typing import Sequence

# The pipeline's code, params and DVC configuration (with its plot templates and the page
# `dvc plots show` fills, .dvc/config's plots.html_template); not the data, the outputs, DVC's
# cache or MLflow's store.
PIPELINE_FILES = ("dvc.yaml", "params.yaml", "pipeline", "src", ".dvc/config", ".dvc/plots", ".dvc/plots_page.html",
                  ".dvcignore")
_IGNORED_PARTS = ("__pycache__",)
_IGNORED_SUFFIXES = (".pyc",)


def _ignored(rel: Path) -> bool:
    return rel.suffix in _IGNORED_SUFFIXES or any(p in _IGNORED_PARTS or p.endswith(".egg-info") for p in rel.parts)


def pipeline_files(root: Path, extra: Sequence[str] = ()) -> list[Path]:
    """The files of PIPELINE_FILES (and ``extra``) under ``root``, relative to it, sorted."""
    found = []
    for name in (*PIPELINE_FILES, *extra):
        source = root / name
        files = source.rglob("*") if source.is_dir() else [source] if source.is_file() else []
        found += [p.relative_to(root) for p in files if p.is_file() and not _ignored(p.relative_to(root))]
    return sorted(found)


def copy_pipeline(root: Path, dest: Path, extra: Sequence[str] = ()) -> None:
    """Copy the pipeline's files (and ``extra`` ones) from the project at ``root`` into ``dest``,
    with their modification times."""
    for rel in pipeline_files(Path(root), extra):
        (dest / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(root / rel, dest / rel)


def pipeline_digest(root: Path) -> str:
    """A hash of the pipeline's files as they are under ``root``."""
    digest = hashlib.sha256()
    for rel in pipeline_files(Path(root)):
        digest.update(rel.as_posix().encode() + b"\0" + (root / rel).read_bytes() + b"\0")
    return digest.hexdigest()
