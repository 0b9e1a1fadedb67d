"""Presets: the papers' settings, and the synthetic default, as named sets of params.yaml values.

A preset is `presets/<name>.yaml` in the project: dotted params keys with their values, every
preset naming the same keys (those that change with the data set and its scale). `wsss init
--preset NAME` writes them into params.yaml: every other key, and the file's comments, stay; a
changed value's comment becomes the preset's. The committed params.yaml is the `synthetic`
preset. Where each value comes from: docs/presets.md.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq

from wsss.core import params as params_mod
from wsss.core.errors import ParamsError
from wsss.core.io import atomic_path

PRESET_DIR = "presets"
SYNTHETIC = "synthetic"


def _yaml() -> YAML:
    """A round-trip YAML that writes params.yaml back as it was: nulls as `null`, lists as found."""
    yaml = YAML()
    yaml.width = 4096  # never re-wrap a comment or a flow list
    yaml.indent(mapping=2, sequence=4, offset=2)
    yaml.representer.add_representer(
        type(None), lambda rep, _: rep.represent_scalar("tag:yaml.org,2002:null", "null"))
    return yaml


def preset_names(project: str | Path = ".") -> list[str]:
    return sorted(p.stem for p in (Path(project) / PRESET_DIR).glob("*.yaml"))


def _preset_map(name: str, project: str | Path) -> CommentedMap:
    path = Path(project) / PRESET_DIR / f"{name}.yaml"
    if not path.is_file():
        known = ", ".join(preset_names(project)) or f"none: {Path(project) / PRESET_DIR} holds no *.yaml"
        raise ParamsError(f"no preset {name!r} (known: {known})")
    preset = _yaml().load(path.read_text())
    if not isinstance(preset, CommentedMap):
        raise ParamsError(f"{path}: expected a mapping of dotted params keys to values")
    for key in preset:
        if not params_mod.is_value_key(str(key)):
            raise ParamsError(f"{path}: {key!r} is not a params.yaml value key")
    return preset


def load_preset(name: str, project: str | Path = ".") -> dict[str, Any]:
    """{dotted key: value} of `presets/<name>.yaml`; ParamsError names the file and the key."""
    return {key: _plain(value) for key, value in _preset_map(name, project).items()}


def _plain(value: Any) -> Any:
    return list(value) if isinstance(value, list) else value


def _comment(preset: CommentedMap, key: str, name: str) -> str:
    """The preset's own end-of-line comment on ``key``, or where the value came from."""
    token = preset.ca.items.get(key, [None, None, None])[2]
    text = token.value.split("\n", 1)[0].strip().lstrip("#").strip() if token is not None else ""
    return f"preset {name}" + (f": {text}" if text else "")


def _set_comment(node: CommentedMap, key: str, text: str) -> None:
    """Replace ``key``'s end-of-line comment and its indented continuation lines (they explained
    the old value); blank lines and column-0 comments after it stay where they were."""
    kept = ""
    old = node.ca.items.pop(key, None)
    if old is not None and old[2] is not None:
        following = old[2].value.split("\n")[1:-1]  # the lines after the comment's own
        kept = "".join(line + "\n" for line in following if not line.strip() or line.startswith("#"))
    node.yaml_add_eol_comment(f"# {text}", key, column=26)
    node.ca.items[key][2].value = f"# {text}\n{kept}"


def _as_yaml(value: Any) -> Any:
    if isinstance(value, list):
        seq = CommentedSeq(value)
        seq.fa.set_flow_style()  # [a, b] on one line, as params.yaml writes its lists
        return seq
    return value


def apply_preset(name: str, project: str | Path = ".", params_file: str | Path | None = None) -> list[str]:
    """Write preset ``name``'s values into params.yaml (atomically, after validating the result).
    Returns the keys whose value changed."""
    preset = _preset_map(name, project)
    path = Path(project) / (params_file or params_mod.PARAMS_FILE)
    yaml = _yaml()
    try:
        document = yaml.load(path.read_text())
    except FileNotFoundError:
        raise ParamsError(f"{path}: params file not found") from None
    changed = []
    for key, value in preset.items():
        *parents, leaf = str(key).split(".")
        node = document
        for part in parents:
            node = node.setdefault(part, CommentedMap())
        if leaf in node and _plain(node[leaf]) == _plain(value):
            continue
        node[leaf] = _as_yaml(_plain(value))
        _set_comment(node, leaf, _comment(preset, key, name))
        changed.append(str(key))
    text = io.StringIO()
    yaml.dump(document, text)
    params_mod.validate(YAML(typ="safe").load(text.getvalue()))
    with atomic_path(path) as tmp:
        tmp.write_text(text.getvalue())
    return changed


def synthetic_values_kept(params: params_mod.Params, project: str | Path = ".") -> list[str]:
    """On a real data set, the preset keys that still hold the synthetic preset's value where
    every preset for that data set holds another ("key=value"); [] on the synthetic set or in a
    copy without presets (a sweep's trial slot)."""
    if params.dataset.name == SYNTHETIC or SYNTHETIC not in preset_names(project):
        return []
    synthetic = load_preset(SYNTHETIC, project)
    real = [p for p in (load_preset(n, project) for n in preset_names(project) if n != SYNTHETIC)
            if p.get("dataset.name") == params.dataset.name]
    kept = []
    for key, value in synthetic.items():
        current = params.dump(key)
        if current == value and real and all(p.get(key) != value for p in real):
            kept.append(f"{key}={current}")
    return kept


def warn_synthetic_values(params: params_mod.Params, project: str | Path = ".") -> str | None:
    """The warning for `synthetic_values_kept`, or None."""
    kept = synthetic_values_kept(params, project)
    if not kept:
        return None
    return (f"warning: dataset.name is {params.dataset.name} but {len(kept)} key(s) keep the synthetic "
            f"preset's values, scaled to 128x160 toy images: {', '.join(kept)}. "
            f"`wsss init --preset NAME` sets a real data set's ({', '.join(preset_names(project))}; "
            "docs/presets.md)")
