"""Stage `irn_boundaries`: the trained IRN's class-boundary map of every training image
(docs/methods.md §2), computed once and stored, so the random walks of `refine` and of PtReCl's
re-refinement (and every sweep over their parameters) read it instead of running IRN again.

One fp32 map per image on IRN's grid: stride 4 of the image resized by `refine.irn.image_scale`.
"""

import cv2
import torch

from wsss.layout import IRN_BOUNDARIES, IRN_WEIGHTS, load_stage_weights
from pipeline.train_irn import irn_backbone
from wsss.data.transforms import to_tensor
from wsss.device import resolve_device
from wsss.io import atomic_dir, save_boundary_map
from wsss.models.irn import IRN
from wsss.progress import progress_bar
from wsss.stage import load_params, open_split, run_main
from wsss.tracking import stage_run

SECTIONS = ["project", "dataset", "seeds.backbone", "refine.irn.image_scale"]


@torch.no_grad()
def main() -> None:
    params = load_params()
    device = resolve_device(params["project"]["device"])
    dataset = open_split(params, params["dataset"]["train_split"])
    model = IRN(irn_backbone(params, for_training=False), displacement=False)  # the boundary head only
    load_stage_weights(model, IRN_WEIGHTS)
    model = model.to(device).eval()
    scale = params["refine"]["irn"]["image_scale"]  # IRN was trained on images resized by this factor
    with stage_run("irn_boundaries", params, SECTIONS) as run, atomic_dir(IRN_BOUNDARIES) as out:
        mean_boundary = 0.0
        for image_id in progress_bar(params, dataset.ids, desc="irn_boundaries"):
            image = dataset.load_image(image_id)
            if scale != 1.0:
                image = cv2.resize(image, None, fx=scale, fy=scale, interpolation=cv2.INTER_LINEAR)
            boundary = model.boundary(to_tensor(image).to(device)).cpu().numpy()
            save_boundary_map(out / f"{image_id}.npz", boundary)
            mean_boundary += float(boundary.mean()) / len(dataset.ids)
        run.log_metrics({"num_images": len(dataset.ids), "mean_boundary": mean_boundary})
        print(f"irn_boundaries: {len(dataset.ids)} boundary maps (mean {mean_boundary:.3f}) in {IRN_BOUNDARIES}")


if __name__ == "__main__":
    run_main(main)
