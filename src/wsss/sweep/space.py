"""A sweep spec file: which params.yaml keys to search, over what, towards which metric.

```yaml
objective: {metric: metrics/ptrecl.json:miou, direction: maximize}
report: [metrics/ptrecl_map.json:miou]   # optional intermediate values, in pipeline order
budget: 20                               # finished (complete or pruned) trials
fixed: {refine.method: irn}              # optional overrides applied to every trial
seeds_per_trial: 1                       # optional: score a trial as its mean over project.seed 0..R-1
space:
  ptrecl.prototypes.k: {type: int, low: 2, high: 30}
  seeds.train.lr: {type: float, low: 0.001, high: 0.1, log: true}
  ptrecl.reclassify.formula: {type: categorical, choices: [fg_share, fg_margin, vote]}
```

A metric is ``<metrics file>:<key>`` (nested keys with dots, ``boundary.f1``); the file must be a
``metrics:`` output of a dvc.yaml stage, and that stage is what a trial reproduces to get it.
Everything is checked against params.yaml's model (wsss.core.params: each searched and fixed key
must name one value, and the range's ends and every choice must be valid values of it) and
dvc.yaml when the spec is loaded, so a bad spec fails before any trial runs, with an error naming
the spec file and the key.
"""

from __future__ import annotations

import copy
import difflib
import json
import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from wsss.core import params as params_mod
from wsss.core.dvcfile import pipeline
from wsss.core.errors import ParamsError, WsssError
from wsss.sweep.experiments import SEED_KEY
from wsss.tracking.metrics_files import headline_figures, is_headline_figure

TOP_LEVEL = ("objective", "report", "budget", "fixed", "space", "seeds_per_trial")
DIRECTIONS = ("maximize", "minimize")
TYPES = {"int": ("low", "high", "log"), "float": ("low", "high", "log"), "categorical": ("choices",)}
NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")


class SweepError(WsssError):
    """A sweep spec or a sweep's state is unusable (the message names the file and key)."""


@dataclass(frozen=True)
class Metric:
    """One figure of one metrics file, and the dvc.yaml stage that writes the file."""

    file: str
    key: str
    stage: str

    def __str__(self) -> str:
        return f"{self.file}:{self.key}"

    @property
    def name(self) -> str:
        """An MLflow metric name: ``metrics/ptrecl.json:boundary.f1`` -> ``ptrecl.boundary.f1``."""
        return f"{Path(self.file).stem}.{self.key}"

    def read(self, root: Path) -> float:
        path = Path(root) / self.file
        try:
            node: Any = json.loads(path.read_text())
        except (OSError, json.JSONDecodeError) as exc:
            raise WsssError(f"{path}: cannot read metrics ({exc})") from None
        for part in self.key.split("."):
            if not isinstance(node, dict) or part not in node:
                raise WsssError(f"{path}: no key '{self.key}'")
            node = node[part]
        if isinstance(node, bool) or not isinstance(node, (int, float)) or not math.isfinite(node):
            raise WsssError(f"{path}: '{self.key}' is {node!r}, not a finite number")
        return float(node)


@dataclass(frozen=True)
class Dimension:
    """One searched params.yaml key."""

    key: str
    type: str  # int | float | categorical
    low: float | None = None
    high: float | None = None
    log: bool = False
    choices: tuple = ()

    def describe(self) -> dict:
        if self.type == "categorical":
            return {"type": self.type, "choices": list(self.choices)}
        return {"type": self.type, "low": self.low, "high": self.high, "log": self.log}


@dataclass(frozen=True)
class Step:
    """One `dvc repro <stage>` of a trial and the reported metrics read after it."""

    stage: str
    reports: tuple[tuple[int, Metric], ...]  # (index in the spec's report list, metric)


@dataclass(frozen=True)
class SweepSpec:
    name: str
    path: Path
    objective: Metric
    direction: str
    budget: int
    space: tuple[Dimension, ...]
    report: tuple[Metric, ...] = ()
    fixed: dict = field(default_factory=dict)
    seeds_per_trial: int = 1  # a trial's objective: the mean over project.seed 0..R-1

    @property
    def steps(self) -> tuple[Step, ...]:
        """Each reported metric's stage, then the objective's, once each, in that order."""
        stages: list[str] = []
        for metric in (*self.report, self.objective):
            if metric.stage not in stages:
                stages.append(metric.stage)
        return tuple(
            Step(stage, tuple((i, m) for i, m in enumerate(self.report) if m.stage == stage))
            for stage in stages
        )

    def identity(self) -> dict:
        """What makes two runs of a sweep the same study: everything but the budget."""
        return {
            "objective": str(self.objective),
            "direction": self.direction,
            "report": [str(m) for m in self.report],
            "fixed": dict(self.fixed),
            "space": {d.key: d.describe() for d in self.space},
        } | ({"seeds_per_trial": self.seeds_per_trial} if self.seeds_per_trial > 1 else {})

    def flat_params(self) -> dict:
        """The spec as flat MLflow params (the budget, which a resume may raise, is left out)."""
        return params_mod.flatten(self.identity())


def _fail(path: Path, message: str):
    raise SweepError(f"{path}: {message}")


def load_spec(path: str | Path, project: str | Path = ".", name: str | None = None,
              budget: int | None = None) -> SweepSpec:
    """Read and validate a sweep spec against the project's params.yaml and dvc.yaml.

    ``name`` (default: the file's stem) names the sweep's state; ``budget`` overrides the file's.
    """
    path = Path(path)
    project = Path(project)
    try:
        raw = yaml.safe_load(path.read_text())
    except FileNotFoundError:
        raise SweepError(f"{path}: sweep spec not found") from None
    except yaml.YAMLError as exc:
        raise SweepError(f"{path}: not valid YAML ({exc})") from None
    if not isinstance(raw, dict):
        _fail(path, "a sweep spec must be a mapping with keys " + ", ".join(TOP_LEVEL))
    unknown = sorted(set(raw) - set(TOP_LEVEL))
    if unknown:
        _fail(path, f"unknown key '{unknown[0]}' (known: {', '.join(TOP_LEVEL)})")

    name = name if name is not None else path.stem
    if not NAME_PATTERN.match(name):
        _fail(path, f"sweep name {name!r} must be letters, digits, '.', '_' or '-'")

    raw_params = _read_params(project)
    dvc = pipeline(project)
    params = _validated(path, raw_params)
    metrics_files, upstream = dvc.metrics_files(), dvc.upstream(params)

    objective = raw.get("objective")
    if not isinstance(objective, dict) or set(objective) != {"metric", "direction"}:
        _fail(path, "'objective' must be {metric: <file>:<key>, direction: maximize|minimize}, "
                    f"got {objective!r}")
    if objective["direction"] not in DIRECTIONS:
        _fail(path, f"'objective.direction' must be maximize or minimize, got {objective['direction']!r}")
    target = _metric(path, "objective.metric", objective["metric"], metrics_files)

    report_raw = raw.get("report") or []
    if not isinstance(report_raw, list):
        _fail(path, f"'report' must be a list of <file>:<key>, got {report_raw!r}")
    report = tuple(_metric(path, f"report[{i}]", m, metrics_files) for i, m in enumerate(report_raw))
    _check_order(path, report, target, upstream)

    budget = raw.get("budget") if budget is None else budget
    if isinstance(budget, bool) or not isinstance(budget, int) or budget < 1:
        _fail(path, f"'budget' must be an integer >= 1 (finished trials), got {budget!r}")

    fixed = raw.get("fixed") or {}
    if not isinstance(fixed, dict):
        _fail(path, f"'fixed' must be a mapping of params.yaml keys to values, got {fixed!r}")
    for key in fixed:
        _check_key(path, f"fixed: '{key}'", key)
    base = copy.deepcopy(raw_params)
    for key, value in fixed.items():
        params_mod.set_key(base, key, value)
    _validated(path, base, "fixed")

    seeds_per_trial = raw.get("seeds_per_trial", 1)
    if isinstance(seeds_per_trial, bool) or not isinstance(seeds_per_trial, int) or seeds_per_trial < 1:
        _fail(path, f"'seeds_per_trial' must be an integer >= 1, got {seeds_per_trial!r}")
    if seeds_per_trial > 1 and (SEED_KEY in fixed or SEED_KEY in (raw.get("space") or {})):
        _fail(path, f"'{SEED_KEY}' is set by 'seeds_per_trial' ({seeds_per_trial}): leave it out of 'fixed' "
                    "and 'space'")

    space_raw = raw.get("space")
    if not isinstance(space_raw, dict) or not space_raw:
        _fail(path, "'space' must map at least one params.yaml key to its range")
    space = []
    for key, spec in space_raw.items():
        if key in fixed:
            _fail(path, f"space: '{key}' is also in 'fixed'")
        _check_key(path, f"space: '{key}'", key)
        dimension = _dimension(path, key, spec)
        for value in _probe_values(dimension):
            trial = copy.deepcopy(base)
            params_mod.set_key(trial, key, value)
            _validated(path, trial, f"space: '{key}' = {value!r}")
        space.append(dimension)
    return SweepSpec(name, path, target, objective["direction"], budget, tuple(space), report, dict(fixed),
                     seeds_per_trial)


def _read_params(project: Path) -> dict:
    file = project / params_mod.PARAMS_FILE
    params_mod.load(file)  # the project's own params must be valid first
    return params_mod.read_raw(file)


def _validated(path: Path, raw: dict, where: str = "") -> params_mod.Params:
    try:
        return params_mod.validate(copy.deepcopy(raw))
    except ParamsError as exc:
        _fail(path, f"{where + ': ' if where else ''}{exc}")


def _check_key(path: Path, where: str, key: str) -> None:
    if params_mod.is_value_key(key):
        return
    keys = params_mod.section_keys(key)
    if keys:
        _fail(path, f"{where} is a section of params.yaml, not a single value (its keys: {', '.join(keys)})")
    _fail(path, f"{where} is not a key of params.yaml")


def _dimension(path: Path, key: str, spec) -> Dimension:
    where = f"space: '{key}'"
    if not isinstance(spec, dict) or spec.get("type") not in TYPES:
        _fail(path, f"{where} needs a type: int, float or categorical, got {spec!r}")
    kind = spec["type"]
    unknown = sorted(set(spec) - {"type", *TYPES[kind]})
    if unknown:
        _fail(path, f"{where}: unknown field '{unknown[0]}' for type {kind} "
                    f"(known: type, {', '.join(TYPES[kind])})")
    if kind == "categorical":
        choices = spec.get("choices")
        if not isinstance(choices, list) or not choices:
            _fail(path, f"{where}: 'choices' must be a non-empty list, got {choices!r}")
        if any(isinstance(c, (dict, list)) for c in choices):
            _fail(path, f"{where}: choices must be single values (Optuna stores them as such)")
        if len({json.dumps(c) for c in choices}) != len(choices):
            _fail(path, f"{where}: choices repeat a value: {choices}")
        return Dimension(key, kind, choices=tuple(choices))
    number = int if kind == "int" else (int, float)
    low, high, log = spec.get("low"), spec.get("high"), spec.get("log", False)
    for bound, value in (("low", low), ("high", high)):
        if isinstance(value, bool) or not isinstance(value, number):
            _fail(path, f"{where}: '{bound}' must be {'an integer' if kind == 'int' else 'a number'}, got {value!r}")
    if not isinstance(log, bool):
        _fail(path, f"{where}: 'log' must be true or false, got {log!r}")
    if low >= high:
        _fail(path, f"{where}: empty range, low {low} must be below high {high}")
    if log and low <= 0:
        _fail(path, f"{where}: a log range needs low > 0, got {low}")
    if kind == "float":
        low, high = float(low), float(high)
    return Dimension(key, kind, low, high, log)


def _probe_values(dimension: Dimension) -> tuple:
    """Values whose validity stands for the whole range: its ends, or every choice."""
    if dimension.type == "categorical":
        return dimension.choices
    return (dimension.low, dimension.high)


def _metric(path: Path, where: str, text, metrics_files: dict[str, str]) -> Metric:
    if not isinstance(text, str) or ":" not in text:
        _fail(path, f"'{where}' must be <metrics file>:<key>, e.g. metrics/ptrecl.json:miou, got {text!r}")
    file, key = text.rsplit(":", 1)
    file = Path(file).as_posix()
    if not key:
        _fail(path, f"'{where}': no key after ':' in {text!r}")
    if file not in metrics_files:
        known = ", ".join(sorted(metrics_files)) or "none"
        _fail(path, f"'{where}': {file} is not a metrics output of any dvc.yaml stage (known: {known})")
    if not is_headline_figure(key):  # caught here, before a trial spends its stages on a key no file holds
        figures = headline_figures()
        near = difflib.get_close_matches(key.lower(), figures, n=1)
        hint = f"did you mean '{near[0]}'?" if near else f"known: {', '.join(figures)}"
        _fail(path, f"'{where}': an evaluate stage's metrics file holds no number '{key}' ({hint})")
    return Metric(file, key, metrics_files[file])


def _check_order(path: Path, report: tuple[Metric, ...], objective: Metric,
                 upstream: dict[str, set[str]]) -> None:
    """A reported value must come on the way to the objective (its stage needs no stage the
    objective does not), listed in pipeline order: a trial is pruned on what it has computed
    so far, and reporting never costs extra training."""
    needed = upstream[objective.stage] | {objective.stage}
    for i, metric in enumerate(report):
        extra = sorted(upstream[metric.stage] - needed)
        if extra:
            _fail(path, f"'report[{i}]' ({metric}) needs stage(s) {', '.join(extra)}, which the objective "
                        f"({objective}) does not; report metrics computed on the way to the objective")
    chain = [*report, objective]
    for i, (earlier, later) in enumerate(zip(chain, chain[1:])):
        if later.stage in upstream[earlier.stage]:
            after = f"report[{i + 1}]" if i + 1 < len(report) else "the objective"
            _fail(path, f"'report[{i}]' ({earlier}) comes from stage {earlier.stage}, which runs after "
                        f"{after}'s stage {later.stage}; list reported metrics in pipeline order")
