"""Stage `ptrecl`: PtReCl's reclassification maps and re-refined pseudo masks (docs/methods.md §8,
steps 4-5).

Every training image's deepest recovery-network features are scored against the stored
prototypes (stage ptrecl_prototypes) by the top m similarities (`ptrecl.reclassify`); the map
goes to artifacts/ptrecl/maps, as seeds do, and IRN's walk on the stored boundary map
(`refine.irn.walk`, against `ptrecl.walk_bg_score`) makes the masks in artifacts/ptrecl/masks.
"""

import torch
import torch.nn.functional as F

from wsss.layout import PROTOTYPES, PTRECL_MASKS, RECLASSIFICATION_MAPS, load_stage_checkpoint, rerun_hint
from pipeline.ptrecl_prototypes import recovery_network
from pipeline.refine import irn_refiner
from wsss.data.transforms import to_tensor
from wsss.device import resolve_device
from wsss.errors import DataError
from wsss.io import atomic_dir, save_score_map, write_palette_png
from wsss.progress import progress_bar
from wsss.refine.ptrecl import prototypes_from_state, reclassify
from wsss.stage import load_params, open_split, run_main
from wsss.tracking import stage_run
from wsss.visualize import gallery, overlay_panels

SECTIONS = ["project", "dataset", "seeds.backbone", "ptrecl.reclassify.top_m", "ptrecl.reclassify.formula",
            "ptrecl.walk_bg_score", "refine.irn.walk"]


def load_prototypes(path: str = PROTOTYPES):
    state = load_stage_checkpoint(path)
    try:
        return prototypes_from_state(state)
    except ValueError as exc:
        raise DataError(f"{path}: not PtReCl's prototypes ({exc}); {rerun_hint(path)}") from None


@torch.no_grad()
def main() -> None:
    params = load_params()
    cfg = params["ptrecl"]
    device = resolve_device(params["project"]["device"])
    dataset = open_split(params, params["dataset"]["train_split"])
    model = recovery_network(params, dataset.num_classes, device)
    prototypes = load_prototypes()
    top_m, formula = cfg["reclassify"]["top_m"], cfg["reclassify"]["formula"]
    with stage_run("ptrecl", params, SECTIONS) as run:
        walk = irn_refiner(params, device, cfg["walk_bg_score"])
        examples = []
        with atomic_dir(RECLASSIFICATION_MAPS) as maps_out, atomic_dir(PTRECL_MASKS) as masks_out:
            for image_id in progress_bar(params, dataset.ids, desc="ptrecl"):
                image = dataset.load_image(image_id)
                class_ids = dataset.labels(image_id)
                features = model.features(to_tensor(image).to(device)[None])[0]
                scores = reclassify(features, class_ids.tolist(), prototypes, top_m, formula)
                scores = F.interpolate(scores[None], size=image.shape[:2], mode="bilinear", align_corners=False)[0]
                scores = scores.clamp(0.0, 1.0).cpu().numpy()
                save_score_map(maps_out / f"{image_id}.npz", scores, class_ids)
                mask = walk(image_id, scores, class_ids)
                write_palette_png(masks_out / f"{image_id}.png", mask)
                if len(examples) < params["tracking"]["num_overlays"]:
                    examples.append(overlay_panels(image, scores, mask, dataset.load_mask(image_id)))
        if examples:
            run.log_image(gallery(examples), "reclassification.png")
        run.log_metrics({"num_images": len(dataset.ids)})
        print(f"ptrecl: {len(dataset.ids)} reclassification maps and re-refined masks (m {top_m}, {formula})")


if __name__ == "__main__":
    run_main(main)
