"""The set's names: its object classes, its context ("stuff") classes, and the check that
params.yaml's ``data.synthetic`` uses only those (the params model cannot know them)."""

from __future__ import annotations

from wsss.core.errors import ParamsError
from wsss.core.params import SyntheticParams

CLASS_NAMES: list[str] = ["background", "aeroplane", "boat", "bottle", "car", "cow", "person", "train"]
CONTEXT_NAMES: list[str] = ["object", "sky", "water", "grass", "railroad", "road", "indoor", "clutter"]
SKY = CONTEXT_NAMES.index("sky")

_KEY = "data.synthetic"


def check_names(config: SyntheticParams) -> None:
    """The class and context names of ``data.synthetic`` are this set's (ParamsError otherwise)."""
    for i, pair in enumerate(config.cooccurrence):
        if pair.context not in CONTEXT_NAMES[1:]:
            raise ParamsError(f"{_KEY}.cooccurrence[{i}].context: unknown context {pair.context!r}; "
                              f"known: {CONTEXT_NAMES[1:]}")
        if pair.class_ not in CLASS_NAMES[1:]:
            raise ParamsError(f"{_KEY}.cooccurrence[{i}].class: unknown class {pair.class_!r}; "
                              f"known: {CLASS_NAMES[1:]}")
    for name in config.saliency_missed_classes:
        if name not in CLASS_NAMES[1:]:
            raise ParamsError(f"{_KEY}.saliency_missed_classes: unknown class {name!r}; known: {CLASS_NAMES[1:]}")


def cooccurrence_triples(config: SyntheticParams) -> list[tuple[str, str, float]]:
    """``data.synthetic.cooccurrence`` as (context, class, rate) triples."""
    return [(p.context, p.class_, p.rate) for p in config.cooccurrence]
