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

from wsss.core.device import resolve_device
from wsss.core.io import read_label_png, save_state_dict
from wsss.core.params import (
    BackboneParams,
    DatasetParams,
    DeeplabParams,
    ProjectParams,
    PrototypeParams,
)
from wsss.core.progress import progress_bar
from wsss.data.registry import open_split
from wsss.data.transforms import to_tensor
from wsss.methods.ptrecl import PrototypeBank, build_prototypes, prototypes_to_state
from wsss.models.deeplab import condition_on_labels
from wsss.stages.common import Stage
from wsss.stages.networks import recovery_network


def prototype_labels(model, features: torch.Tensor, class_ids: np.ndarray, source: str, pseudo_mask: str):
    """The labels (h x w on the feature grid, 255 = ignore) that split a class's pixels into its
    foreground and background sets: the recovery head's label-conditioned argmax on the
    features, or the refine stage's mask (the file ``pseudo_mask``) resized to the grid."""
    if source == "recovered":
        logits = model.head(features[None])[0]
        return condition_on_labels(logits, torch.from_numpy(class_ids)).argmax(dim=0)
    mask = torch.from_numpy(read_label_png(pseudo_mask).astype(np.int64))
    return F.interpolate(mask[None, None].float(), size=features.shape[-2:], mode="nearest")[0, 0].long()


@torch.no_grad()
def ptrecl_prototypes(stage: Stage, project: ProjectParams, dataset_cfg: DatasetParams, backbone: BackboneParams,
                      recovery: DeeplabParams, cfg: PrototypeParams) -> None:
    paths = stage.paths
    device = resolve_device(project.device)
    dataset = open_split(dataset_cfg, dataset_cfg.train_split)
    model = recovery_network(backbone, recovery, paths, dataset.num_classes, device)
    with stage.tracked() as run:
        bank = PrototypeBank(cfg.pixels_per_image, cfg.capacity, generator=project.seed, device=device)
        for image_id in progress_bar(project.progress, dataset.ids, desc="ptrecl_prototypes", unit="image"):
            class_ids = dataset.labels(image_id)
            features = model.features(to_tensor(dataset.load_image(image_id)).to(device)[None])[0]
            labels = prototype_labels(model, features, class_ids, cfg.masks, f"{paths.pseudo_masks}/{image_id}.png")
            bank.add(features, labels.to(device), class_ids.tolist())
        prototypes = build_prototypes(bank, cfg.k, cfg.kmeans_iters, generator=project.seed,
                                      classes=range(1, dataset.num_classes))
        save_state_dict(paths.prototypes, prototypes_to_state(prototypes))
        run.log_metrics({f"prototypes.{dataset.class_names[c]}.{kind}": len(getattr(p, kind))
                         for c, p in prototypes.items() for kind in ("foreground", "background")})
        run.log_metrics({"num_images": len(dataset.ids), "bank_bytes": bank.nbytes()})
        print(f"ptrecl_prototypes: up to {cfg.k} foreground and background prototypes for "
              f"{len(prototypes)} classes from {len(dataset.ids)} images (bank {bank.nbytes() / 1e6:.1f} MB)")
