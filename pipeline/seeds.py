"""Stage `seeds`: multi-scale + flip seed maps of the labelled classes (CAM, EPS, SIPE or AE-SIPE
as `seeds.method` says), one fp16 .npz per image, with the method's background map if it has one.
Sharded over `project.devices` processes, resumable (wsss.sharding)."""

import torch

from wsss.layout import CLASSIFIER, SEED_MAPS, load_stage_weights
from wsss.data.transforms import to_tensor
from wsss.io import load_score_map, save_score_map
from wsss.models.backbones import build_backbone
from wsss.models.seed_methods import build_seed_model, infer_seed_maps
from wsss.precision import autocast, resolve_precision
from wsss.sharding import ShardedStage, stage_deps
from wsss.stage import load_params, open_split, run_main
from wsss.tracking import stage_run
from wsss.visualize import gallery, overlay_panels

SECTIONS = ["project", "dataset", "seeds.method", "seeds.backbone", "seeds.infer", "seeds.sipe", "seeds.ae_sipe"]


def load_classifier(params: dict, num_classes: int, device) -> torch.nn.Module:
    backbone_cfg = dict(params["seeds"]["backbone"], pretrained=False, checkpoint=None)
    model = build_seed_model(params, build_backbone(backbone_cfg), num_classes - 1)
    load_stage_weights(model, CLASSIFIER)
    return model.to(device).eval()


def make_worker(params: dict, device: torch.device, dataset):
    """(image id, [maps folder]) -> that image's score map, written."""
    cfg = params["seeds"]["infer"]
    model = load_classifier(params, dataset.num_classes, device)
    dtype = resolve_precision(params["project"]["precision"], device)

    def worker(image_id, folders):
        class_ids = dataset.labels(image_id)
        with autocast(device, dtype):
            maps, background = infer_seed_maps(model, to_tensor(dataset.load_image(image_id)).to(device),
                                               torch.from_numpy(class_ids), cfg["scales"], cfg["hflip"])
        background = None if background is None else background.float().cpu().numpy()
        save_score_map(folders[0] / f"{image_id}.npz", maps.float().cpu().numpy(), class_ids, background)
    return worker


def main() -> None:
    params = load_params()
    dataset = open_split(params, params["dataset"]["train_split"])
    stage = ShardedStage("seeds", params, SECTIONS, dataset, dataset.ids, {SEED_MAPS: ".npz"}, make_worker,
                         stage_deps("seeds", params))
    with stage_run("seeds", params, SECTIONS) as run:
        computed = stage.run()
        examples = [overlay_panels(dataset.load_image(image_id), load_score_map(f"{SEED_MAPS}/{image_id}.npz").scores,
                                   None, None)
                    for image_id in dataset.ids[:params["tracking"]["num_overlays"]]]
        if examples:
            run.log_image(gallery(examples), "cams.png")
        run.log_metrics({"num_images": len(dataset.ids)})
        print(f"seeds: wrote {len(dataset.ids)} score maps to {SEED_MAPS} ({computed} computed in this run)")


if __name__ == "__main__":
    run_main(main)
