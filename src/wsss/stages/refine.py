"""Stage `refine`: seed maps to pseudo masks by the method `refine.method` chooses
(wsss.stages.refiners): irn (random walk on IRN's stored boundary map), crf (dense CRF), pamr, or
none (the seeds with their background). One palette PNG per training image. Sharded over
`project.devices` processes, resumable (wsss.train.sharding).
"""

from dataclasses import dataclass

import torch

from wsss.core.dvcfile import ArtifactPaths
from wsss.core.io import load_image_scores, read_label_png, write_palette_png
from wsss.core.params import DatasetParams, ProjectParams, RefineParams, TrackingParams
from wsss.data.registry import open_split
from wsss.evaluation.visualize import gallery, overlay_panels
from wsss.stages.common import Stage
from wsss.stages.per_image import sharded
from wsss.stages.refiners import refiner


@dataclass(frozen=True)
class WorkerConfig:
    refine: RefineParams
    paths: ArtifactPaths


def make_worker(config: WorkerConfig, device: torch.device, dataset):
    """(image id, [masks folder]) -> that image's pseudo mask, written."""
    refine = refiner(config.refine, config.refine.method, config.paths, device)

    def worker(image_id, folders):
        image = dataset.load_image(image_id)
        scores, class_ids, background = load_image_scores(config.paths.seed_maps, image_id, image.shape[:2])
        write_palette_png(folders[0] / f"{image_id}.png", refine(image_id, image, scores, class_ids, background))
    return worker


def refine(stage: Stage, project: ProjectParams, dataset_cfg: DatasetParams, refine_cfg: RefineParams,
           tracking: TrackingParams) -> None:
    out, seed_maps = stage.paths.pseudo_masks, stage.paths.seed_maps
    dataset = open_split(dataset_cfg, dataset_cfg.train_split)
    runner = sharded(stage, project, dataset, {out: ".png"}, make_worker, WorkerConfig(refine_cfg, stage.paths))
    with stage.tracked() as run:
        run.set_tag("wsss.refine_method", refine_cfg.method)
        runner.run()
        examples = []
        for image_id in dataset.ids[:tracking.num_overlays]:
            image = dataset.load_image(image_id)
            scores = load_image_scores(seed_maps, image_id, image.shape[:2]).scores
            mask = read_label_png(f"{out}/{image_id}.png")
            examples.append(overlay_panels(image, scores, mask, dataset.load_mask(image_id)))
        if examples:
            run.log_image(gallery(examples), "pseudo_masks.png")
        run.log_metrics({"num_images": len(dataset.ids)})
        print(f"refine: {refine_cfg.method} wrote {len(dataset.ids)} pseudo masks to {out}")
