"""Stage `ptrecl`: PtReCl's reclassification maps and re-refined pseudo masks (docs/methods.md §8,
steps 4-5).

Every training image's deepest recovery-network features are scored against the stored
prototypes (stage ptrecl_prototypes) by the top m similarities (`ptrecl.reclassify`); the map
goes to artifacts/ptrecl/maps, as seeds do, and IRN's walk on the stored boundary map
(`refine.irn.walk`, against `ptrecl.walk_bg_score`) makes the masks in artifacts/ptrecl/masks.
Sharded over `project.devices` processes, resumable (wsss.sharding).
"""

import torch
import torch.nn.functional as F

from wsss.layout import PROTOTYPES, PTRECL_MASKS, RECLASSIFICATION_MAPS, load_stage_checkpoint, rerun_hint
from pipeline.ptrecl_prototypes import recovery_network
from pipeline.refine import irn_refiner
from wsss.data.transforms import to_tensor
from wsss.errors import DataError
from wsss.io import load_score_map, read_label_png, save_score_map, write_palette_png
from wsss.precision import autocast, resolve_precision
from wsss.refine.ptrecl import prototypes_from_state, reclassify
from wsss.sharding import ShardedStage, stage_deps
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


def make_worker(params: dict, device: torch.device, dataset):
    """(image id, [maps folder, masks folder]) -> that image's reclassification map and mask, written."""
    cfg = params["ptrecl"]
    model = recovery_network(params, dataset.num_classes, device)
    prototypes = load_prototypes()
    top_m, formula = cfg["reclassify"]["top_m"], cfg["reclassify"]["formula"]
    walk = irn_refiner(params, device, cfg["walk_bg_score"])
    dtype = resolve_precision(params["project"]["precision"], device)

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


def main() -> None:
    params = load_params()
    cfg = params["ptrecl"]
    dataset = open_split(params, params["dataset"]["train_split"])
    stage = ShardedStage("ptrecl", params, SECTIONS, dataset, dataset.ids,
                         {RECLASSIFICATION_MAPS: ".npz", PTRECL_MASKS: ".png"}, make_worker,
                         stage_deps("ptrecl", params))
    with stage_run("ptrecl", params, SECTIONS) as run:
        stage.run()
        examples = []
        for image_id in dataset.ids[:params["tracking"]["num_overlays"]]:
            scores = load_score_map(f"{RECLASSIFICATION_MAPS}/{image_id}.npz").scores
            mask = read_label_png(f"{PTRECL_MASKS}/{image_id}.png")
            examples.append(overlay_panels(dataset.load_image(image_id), scores, mask, dataset.load_mask(image_id)))
        if examples:
            run.log_image(gallery(examples), "reclassification.png")
        run.log_metrics({"num_images": len(dataset.ids)})
        print(f"ptrecl: {len(dataset.ids)} reclassification maps and re-refined masks "
              f"(m {cfg['reclassify']['top_m']}, {cfg['reclassify']['formula']})")


if __name__ == "__main__":
    run_main(main)
