"""Per class, what SIPE's structure analysis sees inside the ground-truth objects.

Reads params.yaml (or WSSS_PARAMS) and the trained SIPE / AE-SIPE classifier of the workspace
(artifacts/seeds/classifier.pt, or --checkpoint), runs the model's inference forward at scale 1
on the first --images training images with their labels, and prints per class the means over
the images holding it:
  area       object share of the IS-CAM grid
  cam_in     the normalised CAM inside the object (cam_out: outside it)
  cam_share  share of the class's CAM mass that lies inside the object
  iou_c      structure-analysis IoU of the class inside the object (iou_bg: the background's)
  seeded     share of the object's positions seeded with the class
  seed_prec  share of the class's seeds that lie inside the object

For an experiment: `dvc exp apply NAME`, then `python scripts/diagnose_sipe.py`.
See results/sipe-vs-cam.md.
"""

from __future__ import annotations

import argparse

import numpy as np
import torch
import torch.nn.functional as F

from wsss.core.dvcfile import load_stage_weights, pipeline
from wsss.data.registry import open_split
from wsss.data.transforms import to_tensor
from wsss.methods.seed_methods import build_seed_model
from wsss.models.backbones import build_backbone, untrained
from wsss.stages.common import load_params, run_main


@torch.no_grad()
def object_statistics(model, image: torch.Tensor, class_ids: np.ndarray, mask: np.ndarray) -> dict[int, dict]:
    labels = torch.zeros(1, model.num_foreground)
    labels[0, torch.as_tensor(class_ids) - 1] = 1.0
    levels = model.backbone(image[None])
    hierarchical = model.hierarchical_features(levels)
    out = model.explore(image[None], labels, model.classifier(levels[-1]), hierarchical, hierarchical)
    grid = out["cam"].shape[-2:]
    gt = F.interpolate(torch.as_tensor(mask)[None, None].float(), size=grid, mode="nearest")[0, 0].long()
    cam, iou, seeds = out["cam"][0], out["seed_iou"][0], out["seeds"][0]
    stats = {}
    for c in class_ids.tolist():
        inside = gt == c
        if not inside.any():
            continue
        seeded_c = seeds == c
        stats[c] = {
            "area": inside.float().mean().item(),
            "cam_in": cam[c][inside].mean().item(),
            "cam_out": cam[c][~inside].mean().item() if (~inside).any() else 0.0,
            "cam_share": (cam[c][inside].sum() / cam[c].sum().clamp_min(1e-6)).item(),
            "iou_c": iou[c][inside].mean().item(),
            "iou_bg": iou[0][inside].mean().item(),
            "seeded": seeded_c[inside].float().mean().item(),
            "seed_prec": (seeded_c & inside).sum().item() / max(1, seeded_c.sum().item()),
        }
    return stats


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint", default=pipeline().paths.classifier)
    parser.add_argument("--images", type=int, default=200)
    args = parser.parse_args()
    params = load_params()
    if params.seeds.method not in ("sipe", "ae_sipe"):
        raise SystemExit(f"seeds.method is {params.seeds.method!r}: this diagnosis needs sipe or ae_sipe")
    dataset = open_split(params.dataset, params.dataset.eval_split)
    model = build_seed_model(params.seeds, build_backbone(untrained(params.seeds.backbone)), dataset.num_classes - 1)
    load_stage_weights(model, args.checkpoint)
    model.eval()
    rows: dict[int, list[dict]] = {}
    for image_id in dataset.ids[: args.images]:
        stats = object_statistics(model, to_tensor(dataset.load_image(image_id)), dataset.labels(image_id),
                                  dataset.load_mask(image_id))
        for c, row in stats.items():
            rows.setdefault(c, []).append(row)
    keys = ("area", "cam_in", "cam_out", "cam_share", "iou_c", "iou_bg", "seeded", "seed_prec")
    print("| class | images | " + " | ".join(keys) + " |")
    print("|---" * (len(keys) + 2) + "|")
    for c in sorted(rows):
        means = [np.mean([r[k] for r in rows[c]]) for k in keys]
        print(f"| {dataset.class_names[c]} | {len(rows[c])} | " + " | ".join(f"{v:.3f}" for v in means) + " |")


if __name__ == "__main__":
    run_main(main)
