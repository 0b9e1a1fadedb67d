"""Stage `irn_labels`: IRN's inter-pixel relation labels from the seed maps (docs/methods.md §2).

Confident foreground (seeds >= fg_threshold) and confident background (all seeds <
bg_threshold), each cleaned with a dense CRF; everything else 255. One palette PNG per image.
The thresholds apply to the foreground maps of every seed method (a SIPE background map is not
used here), as in the IRN reference. Sharded over `project.devices` processes, resumable.
"""

from dataclasses import dataclass

import numpy as np

from wsss.core.io import load_image_scores, read_label_png, write_palette_png
from wsss.core.params import (
    DatasetParams,
    IrnLabelParams,
    ProjectParams,
    TrackingParams,
)
from wsss.data.registry import open_split
from wsss.evaluation.visualize import gallery, overlay_panels
from wsss.methods.crf import relation_labels
from wsss.stages.common import Stage
from wsss.stages.per_image import sharded


@dataclass(frozen=True)
class WorkerConfig:
    labels: IrnLabelParams
    seed_maps: str


def make_worker(config: WorkerConfig, _device, dataset):
    """(image id, [labels folder]) -> that image's relation labels, written."""
    cfg = config.labels

    def worker(image_id, folders):
        image = dataset.load_image(image_id)
        scores, class_ids, _ = load_image_scores(config.seed_maps, image_id, image.shape[:2])
        labels = relation_labels(image, scores, class_ids, cfg.fg_threshold, cfg.bg_threshold, cfg.crf)
        write_palette_png(folders[0] / f"{image_id}.png", labels)
    return worker


def irn_labels(stage: Stage, project: ProjectParams, dataset_cfg: DatasetParams, labels_cfg: IrnLabelParams,
               tracking: TrackingParams) -> None:
    out, seed_maps = stage.paths.relation_labels, stage.paths.seed_maps
    dataset = open_split(dataset_cfg, dataset_cfg.train_split)
    runner = sharded(stage, project, dataset, {out: ".png"}, make_worker, WorkerConfig(labels_cfg, seed_maps))
    with stage.tracked() as run:
        runner.run()
        counts = np.zeros(3, dtype=np.int64)  # background, foreground, ignored pixels: from the files
        examples = []
        for image_id in dataset.ids:
            labels = read_label_png(f"{out}/{image_id}.png")
            counts += [(labels == 0).sum(), ((labels != 0) & (labels != 255)).sum(), (labels == 255).sum()]
            if len(examples) < tracking.num_overlays:
                image = dataset.load_image(image_id)
                scores = load_image_scores(seed_maps, image_id, image.shape[:2]).scores
                examples.append(overlay_panels(image, scores, labels, dataset.load_mask(image_id)))
        shares = counts / max(counts.sum(), 1)
        run.log_metrics({"share.background": shares[0], "share.foreground": shares[1], "share.ignored": shares[2]})
        if examples:
            run.log_image(gallery(examples), "relation_labels.png")
        print(f"irn_labels: {len(dataset.ids)} label maps; pixels background {shares[0]:.1%}, "
              f"foreground {shares[1]:.1%}, ignored {shares[2]:.1%}")
