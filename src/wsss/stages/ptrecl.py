"""Stage `ptrecl`: PtReCl's reclassification maps and re-refined pseudo masks (docs/methods.md §8,
steps 4-5).

Every training image's deepest recovery-network features are scored against the stored
prototypes (stage ptrecl_prototypes) by the top m similarities (`ptrecl.reclassify`); the map
goes to artifacts/ptrecl/maps, as seeds do, and IRN's walk on the stored boundary map
(`refine.irn.walk`, against `ptrecl.walk_bg_score`) makes the masks in artifacts/ptrecl/masks.
Sharded over `project.devices` processes, resumable (wsss.train.sharding).
"""

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from wsss.core.dvcfile import ArtifactPaths, load_stage_checkpoint, pipeline
from wsss.core.errors import DataError
from wsss.core.io import (
    load_score_map,
    read_label_png,
    save_score_map,
    write_palette_png,
)
from wsss.core.params import (
    BackboneParams,
    DatasetParams,
    ProjectParams,
    PtreclParams,
    TrackingParams,
    WalkParams,
)
from wsss.core.precision import autocast, resolve_precision
from wsss.data.registry import open_split
from wsss.data.transforms import to_tensor
from wsss.evaluation.visualize import gallery, overlay_panels
from wsss.methods.ptrecl import prototypes_from_state, reclassify
from wsss.stages.common import Stage
from wsss.stages.networks import recovery_network
from wsss.stages.per_image import sharded
from wsss.stages.refiners import irn_walker


@dataclass(frozen=True)
class WorkerConfig:
    project: ProjectParams
    backbone: BackboneParams
    ptrecl: PtreclParams
    walk: WalkParams
    paths: ArtifactPaths


def stored_prototypes(paths: ArtifactPaths):
    """PtReCl's prototypes (stage ptrecl_prototypes)."""
    state = load_stage_checkpoint(paths.prototypes)
    try:
        return prototypes_from_state(state)
    except ValueError as exc:
        raise DataError(f"{paths.prototypes}: not PtReCl's prototypes ({exc}); "
                        f"{pipeline().rerun_hint(paths.prototypes)}") from None


def make_worker(config: WorkerConfig, device: torch.device, dataset):
    """(image id, [maps folder, masks folder]) -> that image's reclassification map and mask, written."""
    cfg = config.ptrecl
    model = recovery_network(config.backbone, cfg.recovery, config.paths, dataset.num_classes, device)
    prototypes = stored_prototypes(config.paths)
    top_m, formula = cfg.reclassify.top_m, cfg.reclassify.formula
    walk = irn_walker(config.walk, config.paths, device, cfg.walk_bg_score)
    dtype = resolve_precision(config.project.precision, device)

    @torch.no_grad()
    def worker(image_id, folders):
        image = dataset.load_image(image_id)
        class_ids = dataset.labels(image_id)
        with autocast(device, dtype):
            features = model.features(to_tensor(image).to(device)[None])[0]
        scores = reclassify(features.float(), class_ids.tolist(), prototypes, top_m, formula)
        scores = F.interpolate(scores[None], size=image.shape[:2], mode="bilinear", align_corners=False)[0]
        scores = scores.clamp(0.0, 1.0).cpu().numpy()
        save_score_map(folders[0] / f"{image_id}.npz", scores, class_ids)
        write_palette_png(folders[1] / f"{image_id}.png", walk(image_id, scores, class_ids))
    return worker


def ptrecl(stage: Stage, project: ProjectParams, dataset_cfg: DatasetParams, backbone: BackboneParams,
           cfg: PtreclParams, walk: WalkParams, tracking: TrackingParams) -> None:
    maps, masks = stage.paths.reclassification_maps, stage.paths.ptrecl_masks
    dataset = open_split(dataset_cfg, dataset_cfg.train_split)
    runner = sharded(stage, project, dataset, {maps: ".npz", masks: ".png"}, make_worker,
                            WorkerConfig(project, backbone, cfg, walk, stage.paths))
    with stage.tracked() as run:
        runner.run()
        examples = []
        for image_id in dataset.ids[:tracking.num_overlays]:
            scores = load_score_map(f"{maps}/{image_id}.npz").scores
            mask = read_label_png(f"{masks}/{image_id}.png")
            examples.append(overlay_panels(dataset.load_image(image_id), scores, mask, dataset.load_mask(image_id)))
        if examples:
            run.log_image(gallery(examples), "reclassification.png")
        run.log_metrics({"num_images": len(dataset.ids)})
        print(f"ptrecl: {len(dataset.ids)} reclassification maps and re-refined masks "
              f"(m {cfg.reclassify.top_m}, {cfg.reclassify.formula})")
