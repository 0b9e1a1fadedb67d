"""The checks of params.yaml that the schema (wsss.params) cannot make: those that combine keys
or need this machine and the data set. The stages make each of them when they get there; by
then `dvc repro` has removed the stage's outputs. `wsss repro` and `wsss check-params` make
them all first, with the functions the stages use.
"""

from __future__ import annotations

from pathlib import Path

from wsss.errors import ParamsError

# Keys naming where a network's backbone starts from: the seeds classifier or ImageNet.
PRETRAINED_SOURCES = ("refine.irn.backbone", "ptrecl.recovery.backbone", "segment.backbone")


def check_all(params: dict, project: str | Path = ".") -> None:
    """Raise the ParamsError / DataError a stage would raise on these params (``params`` as
    wsss.params.load returns them; relative paths are relative to ``project``)."""
    from wsss.data.registry import check_config
    from wsss.device import resolve_device
    from wsss.models.backbones import build_backbone, check_pretrained_source
    from wsss.params import get_key

    dataset_cfg = _in_project(params["dataset"], project)
    check_config(dataset_cfg)
    if params["seeds"]["method"] == "eps" and dataset_cfg["saliency"] in (None, "none"):
        raise ParamsError("params.yaml: 'seeds.method' = eps trains on saliency maps, but "
                          "'dataset.saliency' is null (name a folder of maps or opencv[:method])")
    for key in PRETRAINED_SOURCES:
        if get_key(params, key) == "pretrained":
            check_pretrained_source(params["seeds"]["backbone"], key)
    resolve_device(params["project"]["device"])
    build_backbone(_in_project(params["seeds"]["backbone"], project, key="checkpoint"))
    _check_data_set(params, dataset_cfg)


def _in_project(section: dict, project: str | Path, key: str = "root") -> dict:
    """The section with its relative path ``key`` resolved against the project folder."""
    value = section.get(key)
    if value is None or Path(value).is_absolute():
        return section
    return dict(section, **{key: str(Path(project) / value)})


def _check_data_set(params: dict, cfg: dict) -> None:
    """Open every split the stages open, as they open it (saliency for EPS training), and check
    the class names params refer to. A synthetic set not generated yet (its stage comes first)
    is checked against the generator's class names only."""
    from wsss.data.registry import open_dataset
    from wsss.models.seed_methods import needs_saliency, predefined_background_ids

    if not Path(cfg["root"]).is_dir() and cfg["name"] == "synthetic":
        from wsss.data.synthetic import CLASS_NAMES

        class_names = CLASS_NAMES
    else:
        splits = dict.fromkeys([cfg["train_split"], cfg["eval_split"], cfg["val_split"]], False)
        splits[cfg["train_split"]] = needs_saliency(params)
        for split, with_saliency in splits.items():
            class_names = open_dataset(cfg if with_saliency else dict(cfg, saliency=None), split).class_names
    if params["seeds"]["method"] == "eps":
        predefined_background_ids(params, class_names)
