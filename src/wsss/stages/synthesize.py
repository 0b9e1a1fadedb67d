"""Stage `synthesize`: write the embedded synthetic data set in the VOC layout."""

import numpy as np

from wsss.core.params import ProjectParams, SyntheticParams
from wsss.core.progress import progress_enabled
from wsss.data.synthetic import generate
from wsss.stages.common import Stage


def synthesize(stage: Stage, project: ProjectParams, config: SyntheticParams) -> None:
    root = stage.paths.synthetic_root
    with stage.tracked() as run:
        generate(root, config, progress=progress_enabled(project.progress))
        run.log_metrics({"num_train": config.num_train, "num_val": config.num_val})
        run.log_artifact(f"{root}/synthetic_meta.json")
        run.log_image(_montage(root), "examples.png")
        print(f"synthesize: wrote {config.num_train} train + {config.num_val} val images to {root}")


def _montage(root: str, count: int = 4) -> np.ndarray:
    """A few training images beside their masks, saliency and context, for the MLflow UI."""
    from wsss.core.io import read_label_png
    from wsss.data.voc import VOCDataset
    from wsss.evaluation.visualize import colorize_mask, gallery, overlay_panels

    dataset = VOCDataset(root, "train")
    rows = []
    for image_id in dataset.ids[:count]:
        saliency = read_label_png(f"{root}/SaliencyMaps/{image_id}.png")
        rows.append([*overlay_panels(dataset.load_image(image_id), None, dataset.load_mask(image_id), None),
                     np.repeat(saliency[..., None], 3, axis=2), colorize_mask(dataset.load_context(image_id))])
    return gallery(rows)
