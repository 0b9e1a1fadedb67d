"""Stage `irn_boundaries`: the trained IRN's class-boundary map of every training image
(docs/methods.md §2), computed once and stored, so the random walks of `refine` and of PtReCl's
re-refinement (and every sweep over their parameters) read it instead of running IRN again.

One fp32 map per image on IRN's grid: stride 4 of the image resized by `refine.irn.image_scale`.
Sharded over `project.devices` processes, resumable (wsss.train.sharding).
"""

from dataclasses import dataclass

import cv2
import torch

from wsss.core.dvcfile import load_stage_weights
from wsss.core.io import load_boundary_map, save_boundary_map
from wsss.core.params import BackboneParams, DatasetParams, ProjectParams
from wsss.core.precision import autocast, resolve_precision
from wsss.data.registry import open_split
from wsss.data.transforms import to_tensor
from wsss.methods.irn import IRN
from wsss.models.backbones import build_backbone, untrained
from wsss.stages import collapse
from wsss.stages.common import Stage
from wsss.stages.per_image import sharded


@dataclass(frozen=True)
class WorkerConfig:
    project: ProjectParams
    backbone: BackboneParams
    image_scale: float  # IRN was trained on images resized by this factor
    weights: str


def make_worker(config: WorkerConfig, device: torch.device, dataset):
    """(image id, [boundaries folder]) -> that image's boundary map, written."""
    model = IRN(build_backbone(untrained(config.backbone)), displacement=False)  # the boundary head only
    load_stage_weights(model, config.weights)  # the IRN checkpoint holds the backbone's weights too
    model = model.to(device).eval()
    dtype = resolve_precision(config.project.precision, device)
    scale = config.image_scale

    @torch.no_grad()
    def worker(image_id, folders):
        image = dataset.load_image(image_id)
        if scale != 1.0:
            image = cv2.resize(image, None, fx=scale, fy=scale, interpolation=cv2.INTER_LINEAR)
        with autocast(device, dtype):
            boundary = model.boundary(to_tensor(image).to(device))
        save_boundary_map(folders[0] / f"{image_id}.npz", boundary.float().cpu().numpy())
    return worker


def irn_boundaries(stage: Stage, project: ProjectParams, dataset_cfg: DatasetParams, backbone: BackboneParams,
                   image_scale: float) -> None:
    out = stage.paths.irn_boundaries
    dataset = open_split(dataset_cfg, dataset_cfg.train_split)
    runner = sharded(stage, project, dataset, {out: ".npz"}, make_worker,
                            WorkerConfig(project, backbone, image_scale, stage.paths.irn_weights))
    with stage.tracked() as run:
        runner.run()
        collapse.report(stage.name, run, collapse.boundary_findings(out, dataset.ids), project.on_collapse)
        mean_boundary = 0.0  # from the files, in id order: a resumed run logs the same figure
        for image_id in dataset.ids:
            mean_boundary += float(load_boundary_map(out, image_id).mean()) / len(dataset.ids)
        run.log_metrics({"num_images": len(dataset.ids), "mean_boundary": mean_boundary})
        print(f"irn_boundaries: {len(dataset.ids)} boundary maps (mean {mean_boundary:.3f}) in {out}")
