"""Stage `irn_boundaries`: the trained IRN's class-boundary map of every training image
(docs/methods.md §2), computed once and stored, so the random walks of `refine` and of PtReCl's
re-refinement (and every sweep over their parameters) read it instead of running IRN again.

One fp32 map per image on IRN's grid: stride 4 of the image resized by `refine.irn.image_scale`.
Sharded over `project.devices` processes, resumable (wsss.sharding).
"""

import cv2
import torch

from wsss.layout import IRN_BOUNDARIES, IRN_WEIGHTS, load_stage_weights
from pipeline.train_irn import irn_backbone
from wsss.data.transforms import to_tensor
from wsss.io import load_boundary_map, save_boundary_map
from wsss.models.irn import IRN
from wsss.precision import autocast, resolve_precision
from wsss.sharding import ShardedStage, stage_deps
from wsss.stage import load_params, open_split, run_main
from wsss.tracking import stage_run

SECTIONS = ["project", "dataset", "seeds.backbone", "refine.irn.image_scale"]


def make_worker(params: dict, device: torch.device, dataset):
    """(image id, [boundaries folder]) -> that image's boundary map, written."""
    model = IRN(irn_backbone(params, for_training=False), displacement=False)  # the boundary head only
    load_stage_weights(model, IRN_WEIGHTS)
    model = model.to(device).eval()
    dtype = resolve_precision(params["project"]["precision"], device)
    scale = params["refine"]["irn"]["image_scale"]  # IRN was trained on images resized by this factor

    @torch.no_grad()
    def worker(image_id, folders):
        image = dataset.load_image(image_id)
        if scale != 1.0:
            image = cv2.resize(image, None, fx=scale, fy=scale, interpolation=cv2.INTER_LINEAR)
        with autocast(device, dtype):
            boundary = model.boundary(to_tensor(image).to(device))
        save_boundary_map(folders[0] / f"{image_id}.npz", boundary.float().cpu().numpy())
    return worker


def main() -> None:
    params = load_params()
    dataset = open_split(params, params["dataset"]["train_split"])
    stage = ShardedStage("irn_boundaries", params, SECTIONS, dataset, dataset.ids, {IRN_BOUNDARIES: ".npz"},
                         make_worker, stage_deps("irn_boundaries", params))
    with stage_run("irn_boundaries", params, SECTIONS) as run:
        stage.run()
        mean_boundary = 0.0  # from the files, in id order: a resumed run logs the same figure
        for image_id in dataset.ids:
            mean_boundary += float(load_boundary_map(IRN_BOUNDARIES, image_id).mean()) / len(dataset.ids)
        run.log_metrics({"num_images": len(dataset.ids), "mean_boundary": mean_boundary})
        print(f"irn_boundaries: {len(dataset.ids)} boundary maps (mean {mean_boundary:.3f}) in {IRN_BOUNDARIES}")


if __name__ == "__main__":
    run_main(main)
