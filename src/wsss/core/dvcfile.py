"""dvc.yaml, read in one place: the stages (their deps, params keys, outs, metrics) and the named
paths of the pipeline's artifacts.

dvc.yaml names every artifact path once, in its `vars` block (``paths: {seed_maps:
artifacts/seeds/maps, ...}``), and its stages refer to them as ``${paths.seed_maps}``; code asks
for ``pipeline().paths.seed_maps``. So a path is written in one place, DVC and the code agree on
it, and a stage's deps are what its fingerprint (wsss.train.sharding) and the deps test read.
"""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from wsss.core.errors import DataError, WsssError

DVC_FILE = "dvc.yaml"
PATHS_VAR = "paths"
_INTERPOLATION = re.compile(r"\$\{([^}]+)\}")


@dataclass(frozen=True)
class ArtifactPaths:
    """Where the stages write, relative to the project (dvc.yaml's ``vars: paths``)."""

    synthetic: str  # the synthetic data set (stage synthesize); its VOC root is synthetic_root
    classifier: str
    seed_maps: str
    seeds_metrics: str
    relation_labels: str
    irn_weights: str
    irn_boundaries: str
    pseudo_masks: str
    refine_metrics: str
    recovery_weights: str
    prototypes: str
    reclassification_maps: str
    ptrecl_masks: str
    ptrecl_map_metrics: str
    ptrecl_metrics: str
    segmenter_weights: str
    segment_predictions: str
    segment_metrics: str
    train_losses: str  # a folder: <stage>.tsv per training stage (DVC plots)
    gallery: str

    @property
    def synthetic_root(self) -> str:
        """The synthetic set's VOC2012 folder (what dataset.root names by default)."""
        return f"{self.synthetic}/VOCdevkit/VOC2012"

    def segment_labels(self, masks: str) -> str:
        """The pseudo masks `segment.masks` names: PtReCl's or the refine stage's."""
        return {"ptrecl": self.ptrecl_masks, "refine": self.pseudo_masks}[masks]

    def train_loss_table(self, stage: str) -> str:
        return f"{self.train_losses}/{stage}.tsv"


@dataclass(frozen=True)
class StageSpec:
    """One stage of dvc.yaml as written (``${paths.*}`` filled in, ``${<params key>}`` kept)."""

    name: str
    cmd: str
    deps: tuple[str, ...]
    params: tuple[str, ...]  # the params.yaml keys the stage lists
    outs: tuple[str, ...]
    metrics: tuple[str, ...]
    plots: tuple[str, ...]

    @property
    def written(self) -> tuple[str, ...]:
        """Every path the stage writes: outs, metrics and plots."""
        return self.outs + self.metrics + self.plots


class Pipeline:
    """A project's dvc.yaml."""

    def __init__(self, file: Path, raw: dict):
        self.file = file
        self._named = _named_paths(raw)
        stages = raw.get("stages") or {}
        if not isinstance(stages, dict):
            raise WsssError(f"{file}: 'stages' must be a mapping of stage names")
        self.stages = {name: _stage(file, name, body or {}, self._named) for name, body in stages.items()}
        # the top-level plot definitions' data files (`dvc plots show`)
        self.plots = [_fill_paths(file, "plots", next(iter(e)) if isinstance(e, dict) else e, self._named)
                      for e in raw.get("plots") or []]

    @property
    def paths(self) -> ArtifactPaths:
        """The artifact paths dvc.yaml names (an error naming the missing ones)."""
        wanted = [f.name for f in dataclasses.fields(ArtifactPaths)]
        missing = [name for name in wanted if name not in self._named]
        if missing:
            raise WsssError(f"{self.file}: vars '{PATHS_VAR}' names no path for {', '.join(missing)}")
        return ArtifactPaths(**{name: self._named[name] for name in wanted})

    def stage(self, name: str) -> StageSpec:
        try:
            return self.stages[name]
        except KeyError:
            raise WsssError(f"{self.file}: no stage {name!r} (stages: {', '.join(self.stages)})") from None

    def deps(self, name: str, params) -> list[str]:
        """The stage's deps with ``${<params key>}`` filled in from ``params`` (a wsss Params)."""
        return [resolve(dep, params) for dep in self.stage(name).deps]

    def writer_of(self, path: str) -> str | None:
        """The stage whose outputs hold ``path`` (None if no stage writes it)."""
        for name, stage in self.stages.items():
            if any(_inside(path, out) for out in stage.written):
                return name
        return None

    def metrics_files(self) -> dict[str, str]:
        """{metrics file: the stage that writes it}."""
        return {m: name for name, stage in self.stages.items() for m in stage.metrics}

    def written_paths(self) -> list[str]:
        return [out.rstrip("/") for stage in self.stages.values() for out in stage.written]

    def upstream(self, params) -> dict[str, set[str]]:
        """{stage: every stage upstream of it}: one whose output is, holds or lies inside one of
        its deps (``${...}`` resolved from ``params``)."""
        deps = {name: self.deps(name, params) for name in self.stages}
        direct = {name: {other for other, spec in self.stages.items() if other != name and
                         any(_inside(d, o) or _inside(o, d) for d in deps[name] for o in spec.written)}
                  for name in self.stages}
        closure = {}
        for name in self.stages:
            seen, todo = set(), list(direct[name])
            while todo:
                stage = todo.pop()
                if stage not in seen:
                    seen.add(stage)
                    todo.extend(direct[stage])
            closure[name] = seen
        return closure

    def covering(self, targets: list[str], params) -> list[str]:
        """The stages a `dvc repro <targets>` covers (the targets and everything upstream; every
        stage without targets, or with targets that are not stage names), in dvc.yaml order."""
        if not targets or any(t not in self.stages for t in targets):
            return list(self.stages)
        upstream = self.upstream(params)
        wanted = set(targets).union(*(upstream[t] for t in targets))
        return [s for s in self.stages if s in wanted]

    def rerun_hint(self, path: str) -> str:
        """How to remake a broken stage output: the stage that writes it, by name."""
        stage = self.writer_of(path)
        if stage is None:
            return "re-run the stage that writes it"
        return f"re-run the stage that writes it: dvc repro --force --single-item {stage}"


_cache: dict[tuple[Path, int], Pipeline] = {}


def pipeline(project: str | Path = ".") -> Pipeline:
    """The project's dvc.yaml (read once per file version)."""
    file = (Path(project) / DVC_FILE).resolve()
    try:
        key = (file, file.stat().st_mtime_ns)
    except FileNotFoundError:
        raise DataError(f"{file}: no dvc.yaml here; run wsss in the project folder (or pass --project)") from None
    if key not in _cache:
        try:
            raw = yaml.safe_load(file.read_text()) or {}
        except yaml.YAMLError as exc:
            raise WsssError(f"{file}: not valid YAML ({exc})") from None
        _cache[key] = Pipeline(file, raw)
    return _cache[key]


def resolve(text: str, params) -> str:
    """``text`` with every ``${<params key>}`` replaced by the value in ``params`` (a wsss Params)."""
    return _INTERPOLATION.sub(lambda m: str(params.dump(m[1])), text)


def load_stage_weights(module, path: str) -> None:
    """Load a stage output checkpoint into ``module``; a clear error naming the file and its stage."""
    from wsss.core.io import load_weights

    load_weights(module, path, pipeline().rerun_hint(path))


def load_stage_checkpoint(path: str) -> dict:
    from wsss.core.io import load_checkpoint

    return load_checkpoint(path, pipeline().rerun_hint(path))


def _named_paths(raw: dict) -> dict[str, str]:
    """dvc.yaml's ``vars: - paths: {name: path}``."""
    for entry in raw.get("vars") or []:
        if isinstance(entry, dict) and isinstance(entry.get(PATHS_VAR), dict):
            return {name: str(path) for name, path in entry[PATHS_VAR].items()}
    return {}


def _fill_paths(file: Path, where: str, text: Any, named: dict[str, str]) -> str:
    """``text`` with every ``${paths.<name>}`` filled in (``${<params key>}`` kept: Pipeline.deps)."""
    def value(match: re.Match) -> str:
        head, _, rest = match[1].partition(".")
        if head != PATHS_VAR:
            return match[0]
        if rest not in named:
            raise WsssError(f"{file}: {where}: ${{{match[1]}}} is not in vars '{PATHS_VAR}'")
        return named[rest]
    return _INTERPOLATION.sub(value, str(text))


def _stage(file: Path, name: str, body: dict, named: dict[str, str]) -> StageSpec:
    def entries(key: str) -> tuple[str, ...]:
        return tuple(_fill_paths(file, f"stage {name}", next(iter(e)) if isinstance(e, dict) else e, named)
                     for e in body.get(key) or [])

    params = tuple(p for p in body.get("params") or [] if isinstance(p, str))
    return StageSpec(name, _fill_paths(file, f"stage {name}", body.get("cmd", ""), named), entries("deps"), params,
                     entries("outs"), entries("metrics"), entries("plots"))


def _inside(path: str, folder: str) -> bool:
    path, folder = path.rstrip("/"), folder.rstrip("/")
    return path == folder or path.startswith(folder + "/")
