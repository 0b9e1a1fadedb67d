"""Stage `seeds`: multi-scale + flip seed maps of the labelled classes (CAM, EPS, SIPE or AE-SIPE
as `seeds.method` says), one fp16 .npz per image, with the method's background map if it has one."""

import torch

from wsss.layout import CLASSIFIER, SEED_MAPS, load_stage_weights
from wsss.data.transforms import to_tensor
from wsss.device import resolve_device
from wsss.io import atomic_dir, save_score_map
from wsss.models.backbones import build_backbone
from wsss.models.seed_methods import build_seed_model, infer_seed_maps
from wsss.progress import progress_bar
from wsss.stage import load_params, open_split, run_main
from wsss.tracking import stage_run
from wsss.visualize import gallery, overlay_panels

SECTIONS = ["project", "dataset", "seeds.method", "seeds.backbone", "seeds.infer", "seeds.sipe", "seeds.ae_sipe"]


def load_classifier(params: dict, num_classes: int, device) -> torch.nn.Module:
    backbone_cfg = dict(params["seeds"]["backbone"], pretrained=False, checkpoint=None)
    model = build_seed_model(params, build_backbone(backbone_cfg), num_classes - 1)
    load_stage_weights(model, CLASSIFIER)
    return model.to(device).eval()


def main() -> None:
    params = load_params()
    cfg = params["seeds"]["infer"]
    device = resolve_device(params["project"]["device"])
    dataset = open_split(params, params["dataset"]["train_split"])
    model = load_classifier(params, dataset.num_classes, device)
    with stage_run("seeds", params, SECTIONS) as run, atomic_dir(SEED_MAPS) as out:
        examples = []
        for index, image_id in enumerate(progress_bar(params, dataset.ids, desc="seeds")):
            image = dataset.load_image(image_id)
            class_ids = dataset.labels(image_id)
            maps, background = infer_seed_maps(model, to_tensor(image).to(device), torch.from_numpy(class_ids),
                                               cfg["scales"], cfg["hflip"])
            maps = maps.cpu().numpy()
            background = None if background is None else background.cpu().numpy()
            save_score_map(out / f"{image_id}.npz", maps, class_ids, background)
            if index < params["tracking"]["num_overlays"]:
                examples.append(overlay_panels(image, maps, None, None))
        if examples:
            run.log_image(gallery(examples), "cams.png")
        run.log_metrics({"num_images": len(dataset.ids)})
        print(f"seeds: wrote {len(dataset.ids)} score maps to {SEED_MAPS}")


if __name__ == "__main__":
    run_main(main)
