"""Stage `irn_labels`: IRN's inter-pixel relation labels from the seed maps (docs/methods.md §2).

Confident foreground (seeds >= fg_threshold) and confident background (all seeds <
bg_threshold), each cleaned with a dense CRF; everything else 255. One palette PNG per image.
The thresholds apply to the foreground maps of every seed method (a SIPE background map is not
used here), as in the IRN reference.
"""

import numpy as np

from wsss.layout import RELATION_LABELS, SEED_MAPS
from wsss.io import load_image_scores, read_label_png, write_palette_png
from wsss.refine.crf import CRFParams, relation_labels
from wsss.sharding import ShardedStage, stage_deps
from wsss.stage import load_params, open_split, run_main
from wsss.tracking import stage_run
from wsss.visualize import gallery, overlay_panels

SECTIONS = ["project", "dataset", "refine.irn.labels"]


def make_worker(params: dict, _device, dataset):
    """(image id, [labels folder]) -> that image's relation labels, written."""
    cfg = params["refine"]["irn"]["labels"]
    crf = CRFParams(**cfg["crf"])

    def worker(image_id, folders):
        image = dataset.load_image(image_id)
        scores, class_ids, _ = load_image_scores(SEED_MAPS, image_id, image.shape[:2])
        labels = relation_labels(image, scores, class_ids, cfg["fg_threshold"], cfg["bg_threshold"], crf)
        write_palette_png(folders[0] / f"{image_id}.png", labels)
    return worker


def main() -> None:
    params = load_params()
    dataset = open_split(params, params["dataset"]["train_split"])
    stage = ShardedStage("irn_labels", params, SECTIONS, dataset, dataset.ids, {RELATION_LABELS: ".png"},
                         make_worker, stage_deps("irn_labels", params))
    with stage_run("irn_labels", params, SECTIONS) as run:
        stage.run()
        counts = np.zeros(3, dtype=np.int64)  # background, foreground, ignored pixels: from the files
        examples = []
        for image_id in dataset.ids:
            labels = read_label_png(f"{RELATION_LABELS}/{image_id}.png")
            counts += [(labels == 0).sum(), ((labels != 0) & (labels != 255)).sum(), (labels == 255).sum()]
            if len(examples) < params["tracking"]["num_overlays"]:
                image = dataset.load_image(image_id)
                scores = load_image_scores(SEED_MAPS, image_id, image.shape[:2]).scores
                examples.append(overlay_panels(image, scores, labels, dataset.load_mask(image_id)))
        shares = counts / max(counts.sum(), 1)
        run.log_metrics({"share.background": shares[0], "share.foreground": shares[1], "share.ignored": shares[2]})
        if examples:
            run.log_image(gallery(examples), "relation_labels.png")
        print(f"irn_labels: {len(dataset.ids)} label maps; pixels background {shares[0]:.1%}, "
              f"foreground {shares[1]:.1%}, ignored {shares[2]:.1%}")


if __name__ == "__main__":
    run_main(main)
