"""Stage `synthesize`: write the embedded synthetic data set in the VOC layout."""

import numpy as np

from wsss.layout import SYNTHETIC_ROOT
from wsss.data.synthetic import SyntheticConfig, generate
from wsss.progress import progress_enabled
from wsss.stage import load_params, run_main
from wsss.tracking import stage_run


def main() -> None:
    params = load_params()
    config = SyntheticConfig.from_dict(params["data"]["synthetic"])
    with stage_run("synthesize", params, ["data.synthetic"]) as run:
        meta = generate(SYNTHETIC_ROOT, config, progress=progress_enabled(params["project"]["progress"]))
        run.log_metrics({"num_train": config.num_train, "num_val": config.num_val})
        run.log_artifact(f"{SYNTHETIC_ROOT}/synthetic_meta.json")
        run.log_image(_montage(), "examples.png")
        print(f"synthesize: wrote {config.num_train} train + {config.num_val} val images to {SYNTHETIC_ROOT}")
        del meta


def _montage(count: int = 4) -> np.ndarray:
    """A few training images beside their masks, saliency and context, for the MLflow UI."""
    from wsss.data.voc import VOCDataset
    from wsss.io import read_label_png
    from wsss.visualize import colorize_mask, gallery, overlay_panels

    dataset = VOCDataset(SYNTHETIC_ROOT, "train")
    rows = []
    for image_id in dataset.ids[:count]:
        saliency = read_label_png(f"{SYNTHETIC_ROOT}/SaliencyMaps/{image_id}.png")
        rows.append([*overlay_panels(dataset.load_image(image_id), None, dataset.load_mask(image_id), None),
                     np.repeat(saliency[..., None], 3, axis=2), colorize_mask(dataset.load_context(image_id))])
    return gallery(rows)


if __name__ == "__main__":
    run_main(main)
