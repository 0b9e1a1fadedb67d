"""Stage `ptrecl`: PtReCl's prototypes, reclassification maps and re-refined pseudo masks
(METHODS.md §8, steps 3-5).

Pass 1 runs the recovery network over the training split and collects, per class, foreground and
background features of its deepest backbone level (bounded: `ptrecl.prototypes.pixels_per_image`
per image, `capacity` per set), split by the recovery network's label-conditioned prediction or
by the refine stage's masks (`ptrecl.prototypes.masks`); spherical K-means makes K prototypes
of each. Pass 2 reclassifies every image (the map goes to artifacts/ptrecl/maps, as seeds do)
and walks the map with IRN (`ptrecl.walk_bg_score`) into artifacts/ptrecl/masks.
"""

import numpy as np
import torch
import torch.nn.functional as F
from tqdm import tqdm

from pipeline.paths import PSEUDO_MASKS, PTRECL_MASKS, RECLASSIFICATION_MAPS, RECOVERY_WEIGHTS
from pipeline.refine import irn_refiner
from pipeline.train_recovery import deeplab_network
from wsss.data.transforms import to_tensor
from wsss.device import resolve_device
from wsss.io import atomic_dir, read_label_png, save_score_map, write_palette_png
from wsss.models.deeplab import condition_on_labels
from wsss.refine.ptrecl import PrototypeBank, build_prototypes, reclassify
from wsss.stage import load_params, open_split, run_main
from wsss.tracking import stage_run
from wsss.visualize import overlay_row

SECTIONS = ["project", "dataset", "seeds.backbone", "ptrecl", "refine.irn.image_scale", "refine.irn.walk"]


def prototype_labels(model, features_input: torch.Tensor, image_id: str, class_ids: np.ndarray, grid, source: str):
    """The labels (h x w on the feature grid, 255 = ignore) that split a class's pixels into its
    foreground and background sets."""
    if source == "recovered":
        logits = model(features_input[None])[0]
        return condition_on_labels(logits, torch.from_numpy(class_ids)).argmax(dim=0)
    mask = torch.from_numpy(read_label_png(f"{PSEUDO_MASKS}/{image_id}.png").astype(np.int64))
    return F.interpolate(mask[None, None].float(), size=grid, mode="nearest")[0, 0].long()


@torch.no_grad()
def main() -> None:
    params = load_params()
    cfg = params["ptrecl"]
    quiet = not params["project"]["progress"]
    device = resolve_device(params["project"]["device"])
    dataset = open_split(params, params["dataset"]["train_split"])
    model = deeplab_network(params, "ptrecl.recovery", dataset.num_classes, for_training=False)
    model.load_state_dict(torch.load(RECOVERY_WEIGHTS, map_location="cpu", weights_only=True))
    model = model.to(device).eval()
    seed = params["project"]["seed"]
    with stage_run("ptrecl", params, SECTIONS) as run:
        bank = PrototypeBank(cfg["prototypes"]["pixels_per_image"], cfg["prototypes"]["capacity"], generator=seed,
                             device=device)
        for image_id in tqdm(dataset.ids, desc="ptrecl (features)", disable=quiet):
            image = to_tensor(dataset.load_image(image_id)).to(device)
            class_ids = dataset.labels(image_id)
            features = model.features(image[None])[0]
            labels = prototype_labels(model, image, image_id, class_ids, features.shape[-2:],
                                      cfg["prototypes"]["masks"])
            bank.add(features, labels.to(device), class_ids.tolist())
        prototypes = build_prototypes(bank, cfg["prototypes"]["k"], cfg["prototypes"]["kmeans_iters"], generator=seed,
                                      classes=range(1, dataset.num_classes))
        run.log_metrics({f"prototypes.{dataset.class_names[c]}.{kind}": len(getattr(p, kind))
                         for c, p in prototypes.items() for kind in ("foreground", "background")})
        walk = irn_refiner(params, device, cfg["walk_bg_score"])
        examples = []
        with atomic_dir(RECLASSIFICATION_MAPS) as maps_out, atomic_dir(PTRECL_MASKS) as masks_out:
            for image_id in tqdm(dataset.ids, desc="ptrecl (reclassify + IRN)", disable=quiet):
                image = dataset.load_image(image_id)
                class_ids = dataset.labels(image_id)
                features = model.features(to_tensor(image).to(device)[None])[0]
                scores = reclassify(features, class_ids.tolist(), prototypes, cfg["reclassify"]["top_m"],
                                    cfg["reclassify"]["formula"])
                scores = F.interpolate(scores[None], size=image.shape[:2], mode="bilinear", align_corners=False)[0]
                scores = scores.clamp(0.0, 1.0).cpu().numpy()
                save_score_map(maps_out / f"{image_id}.npz", scores, class_ids)
                mask = walk(image, scores, class_ids)
                write_palette_png(masks_out / f"{image_id}.png", mask)
                if len(examples) < params["tracking"]["num_overlays"]:
                    examples.append(overlay_row(image, scores, mask, dataset.load_mask(image_id)))
        if examples:
            run.log_image(np.concatenate(examples, axis=0), "reclassification.png")
        run.log_metrics({"num_images": len(dataset.ids), "bank_bytes": bank.nbytes()})
        print(f"ptrecl: {len(dataset.ids)} reclassification maps and re-refined masks "
              f"(K {cfg['prototypes']['k']}, m {cfg['reclassify']['top_m']}, {cfg['reclassify']['formula']})")


if __name__ == "__main__":
    run_main(main)
