"""The checks of params.yaml that need more than the file: this machine, the data set on disk,
the backbone's weights. The stages make each of them when they get there; by then `dvc repro`
has removed the stage's outputs. `wsss repro` and `wsss check-params` make them all first, with
the functions the stages use. (Everything params.yaml alone decides: wsss.core.params.)
"""

from __future__ import annotations

from pathlib import Path

from wsss.core.params import DatasetParams, Params


def check_all(params: Params, project: str | Path = ".") -> None:
    """Raise the ParamsError / DataError a stage would raise on these params (relative paths are
    relative to ``project``)."""
    from wsss.core.device import resolve_device
    from wsss.data.saliency import check_saliency_spec
    from wsss.data.synthetic import check_names
    from wsss.models.backbones import build_backbone

    check_names(params.data.synthetic)
    dataset_cfg = params.dataset.model_copy(update={"root": _in_project(params.dataset.root, project)})
    check_saliency_spec(dataset_cfg.saliency)
    resolve_device(params.project.device)
    backbone = params.seeds.backbone
    if backbone.checkpoint is not None:
        backbone = backbone.model_copy(update={"checkpoint": _in_project(backbone.checkpoint, project)})
    build_backbone(backbone)
    _check_data_set(params, dataset_cfg)


def _in_project(path: str, project: str | Path) -> str:
    return path if Path(path).is_absolute() else str(Path(project) / path)


def _check_data_set(params: Params, cfg: DatasetParams) -> None:
    """Open every split the stages open, as they open it (saliency for EPS training), and check
    the class names params refer to. A synthetic set not generated yet (its stage comes first)
    is checked against the generator's class names only."""
    from wsss.data.registry import open_dataset
    from wsss.methods.seed_methods import needs_saliency, predefined_background_ids

    if not Path(cfg.root).is_dir() and cfg.name == "synthetic":
        from wsss.data.synthetic import CLASS_NAMES

        class_names = CLASS_NAMES
    else:
        splits = dict.fromkeys([cfg.train_split, cfg.eval_split, cfg.val_split], False)
        splits[cfg.train_split] = needs_saliency(params.seeds)
        for split, with_saliency in splits.items():
            opened = cfg if with_saliency else cfg.model_copy(update={"saliency": None})
            class_names = open_dataset(opened, split).class_names
    if params.seeds.method == "eps":
        predefined_background_ids(params.seeds.eps, class_names)
