"""Stage `ptrecl_prototypes`: PtReCl's per-class foreground/background prototypes (docs/methods.md §8,
step 3).

One pass of the recovery network over the training split collects, per class, foreground and
background features of its deepest backbone level (bounded: `ptrecl.prototypes.pixels_per_image`
per image, `capacity` per set), split by the recovery network's label-conditioned prediction or
by the refine stage's masks (`ptrecl.prototypes.masks`); spherical K-means makes K prototypes of
each. They are stored as a state dict, so a change of m, the formula or the walk (stage `ptrecl`)
does not redo this pass.
"""

import numpy as np
import torch
import torch.nn.functional as F

from wsss.layout import PROTOTYPES, PSEUDO_MASKS, RECOVERY_WEIGHTS, load_stage_weights
from pipeline.train_recovery import deeplab_network
from wsss.data.transforms import to_tensor
from wsss.device import resolve_device
from wsss.io import read_label_png, save_state_dict
from wsss.models.deeplab import condition_on_labels
from wsss.progress import progress_bar
from wsss.refine.ptrecl import PrototypeBank, build_prototypes, prototypes_to_state
from wsss.stage import load_params, open_split, run_main
from wsss.tracking import stage_run

SECTIONS = ["project", "dataset", "seeds.backbone", "ptrecl.prototypes"]


def recovery_network(params: dict, num_classes: int, device: torch.device):
    """The trained recovery DeepLab (stage train_recovery), in eval mode on `device`."""
    model = deeplab_network(params, "ptrecl.recovery", num_classes, for_training=False)
    load_stage_weights(model, RECOVERY_WEIGHTS)
    return model.to(device).eval()


def prototype_labels(model, features: torch.Tensor, image_id: str, class_ids: np.ndarray, source: str):
    """The labels (h x w on the feature grid, 255 = ignore) that split a class's pixels into its
    foreground and background sets: the recovery head's label-conditioned argmax on the
    features, or the refine stage's mask resized to the grid."""
    if source == "recovered":
        logits = model.head(features[None])[0]
        return condition_on_labels(logits, torch.from_numpy(class_ids)).argmax(dim=0)
    mask = torch.from_numpy(read_label_png(f"{PSEUDO_MASKS}/{image_id}.png").astype(np.int64))
    return F.interpolate(mask[None, None].float(), size=features.shape[-2:], mode="nearest")[0, 0].long()


@torch.no_grad()
def main() -> None:
    params = load_params()
    cfg = params["ptrecl"]["prototypes"]
    device = resolve_device(params["project"]["device"])
    dataset = open_split(params, params["dataset"]["train_split"])
    model = recovery_network(params, dataset.num_classes, device)
    seed = params["project"]["seed"]
    with stage_run("ptrecl_prototypes", params, SECTIONS) as run:
        bank = PrototypeBank(cfg["pixels_per_image"], cfg["capacity"], generator=seed, device=device)
        for image_id in progress_bar(params, dataset.ids, desc="ptrecl_prototypes"):
            class_ids = dataset.labels(image_id)
            features = model.features(to_tensor(dataset.load_image(image_id)).to(device)[None])[0]
            labels = prototype_labels(model, features, image_id, class_ids, cfg["masks"])
            bank.add(features, labels.to(device), class_ids.tolist())
        prototypes = build_prototypes(bank, cfg["k"], cfg["kmeans_iters"], generator=seed,
                                      classes=range(1, dataset.num_classes))
        save_state_dict(PROTOTYPES, prototypes_to_state(prototypes))
        run.log_metrics({f"prototypes.{dataset.class_names[c]}.{kind}": len(getattr(p, kind))
                         for c, p in prototypes.items() for kind in ("foreground", "background")})
        run.log_metrics({"num_images": len(dataset.ids), "bank_bytes": bank.nbytes()})
        print(f"ptrecl_prototypes: up to {cfg['k']} foreground and background prototypes for "
              f"{len(prototypes)} classes from {len(dataset.ids)} images (bank {bank.nbytes() / 1e6:.1f} MB)")


if __name__ == "__main__":
    run_main(main)
