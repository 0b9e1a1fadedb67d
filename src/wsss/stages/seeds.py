"""Stage `seeds`: multi-scale + flip seed maps of the labelled classes (CAM, EPS, SIPE or AE-SIPE
as `seeds.method` says), one fp16 .npz per image, with the method's background map if it has one.
Sharded over `project.devices` processes, resumable (wsss.train.sharding)."""

from dataclasses import dataclass

import torch

from wsss.core.dvcfile import ArtifactPaths, load_stage_weights
from wsss.core.io import load_score_map, save_score_map
from wsss.core.params import DatasetParams, ProjectParams, SeedsParams, TrackingParams
from wsss.core.precision import autocast, resolve_precision
from wsss.data.registry import open_split
from wsss.data.transforms import to_tensor
from wsss.evaluation.visualize import gallery, overlay_panels
from wsss.methods.seed_methods import build_seed_model, infer_seed_maps
from wsss.models.backbones import build_backbone, untrained
from wsss.stages import collapse
from wsss.stages.common import Stage
from wsss.stages.per_image import sharded


@dataclass(frozen=True)
class WorkerConfig:
    project: ProjectParams
    seeds: SeedsParams
    paths: ArtifactPaths


def trained_classifier(seeds: SeedsParams, paths: ArtifactPaths, num_classes: int, device: torch.device):
    """The seeds classifier (stage train_classifier), in eval mode on ``device``."""
    model = build_seed_model(seeds, build_backbone(untrained(seeds.backbone)), num_classes - 1)
    load_stage_weights(model, paths.classifier)
    return model.to(device).eval()


def make_worker(config: WorkerConfig, device: torch.device, dataset):
    """(image id, [maps folder]) -> that image's score map, written."""
    infer = config.seeds.infer
    model = trained_classifier(config.seeds, config.paths, dataset.num_classes, device)
    dtype = resolve_precision(config.project.precision, device)

    def worker(image_id, folders):
        class_ids = dataset.labels(image_id)
        with autocast(device, dtype):
            maps, background = infer_seed_maps(model, to_tensor(dataset.load_image(image_id)).to(device),
                                               torch.from_numpy(class_ids), infer.scales, infer.hflip,
                                               infer.image_resize)
        background = None if background is None else background.float().cpu().numpy()
        save_score_map(folders[0] / f"{image_id}.npz", maps.float().cpu().numpy(), class_ids, background)
    return worker


def seeds(stage: Stage, project: ProjectParams, dataset_cfg: DatasetParams, seeds: SeedsParams,
          tracking: TrackingParams) -> None:
    out = stage.paths.seed_maps
    dataset = open_split(dataset_cfg, dataset_cfg.train_split)
    runner = sharded(stage, project, dataset, {out: ".npz"}, make_worker, WorkerConfig(project, seeds, stage.paths))
    with stage.tracked() as run:
        computed = runner.run()
        collapse.report(stage.name, run, collapse.score_map_findings(out, dataset.ids), project.on_collapse)
        examples = [overlay_panels(dataset.load_image(image_id), load_score_map(f"{out}/{image_id}.npz").scores,
                                   None, None)
                    for image_id in dataset.ids[:tracking.num_overlays]]
        if examples:
            run.log_image(gallery(examples), "cams.png")
        run.log_metrics({"num_images": len(dataset.ids)})
        print(f"seeds: wrote {len(dataset.ids)} score maps to {out} ({computed} computed in this run)")
