"""Stage `train_classifier`: train the seeds classifier of `seeds.method` on image-level labels
(CAM, EPS with saliency supervision, SIPE, AE-SIPE)."""

import torch

from wsss.layout import CLASSIFIER
from wsss.data.transforms import ClassificationDataset, SaliencyClassificationDataset
from wsss.distributed import Ranks, prepare, run_stage
from wsss.models.backbones import build_backbone
from wsss.models.seed_methods import build_seed_model, needs_saliency, seed_losses
from wsss.precision import resolve_precision
from wsss.stage import load_params, open_split, run_main
from wsss.training import make_sgd, train_loader, train_seed_classifier
from wsss.training_run import run_training

SECTIONS = ["project", "dataset", "seeds.method", "seeds.backbone", "seeds.train", "seeds.eps", "seeds.sipe",
            "seeds.ae_sipe"]


def main() -> None:
    run_stage(load_params(), "train_classifier", CLASSIFIER, "seeds.train.batch_size", train)


def train(params: dict, ranks: Ranks) -> None:
    cfg = params["seeds"]["train"]
    method = params["seeds"]["method"]
    seed = params["project"]["seed"]
    torch.manual_seed(seed)
    device = ranks.device
    saliency = needs_saliency(params)
    dataset = open_split(params, params["dataset"]["train_split"], with_saliency=saliency)
    dataset.validate()
    model = build_seed_model(params, build_backbone(params["seeds"]["backbone"]), dataset.num_classes - 1).to(device)
    items = (SaliencyClassificationDataset if saliency else ClassificationDataset)(
        dataset, tuple(cfg["resize_long"]), cfg["crop_size"], cfg["hflip"], seed=seed)
    loader = train_loader(items, cfg["batch_size"], "seeds.train.batch_size", seed, params["project"]["num_workers"],
                          ranks)
    backbone_params, new_params = model.parameter_groups()
    optimizer = make_sgd([(backbone_params, 1.0), (new_params, cfg["new_layer_lr_mult"])],
                         cfg["lr"], cfg["momentum"], cfg["weight_decay"])
    trained = prepare(model, ranks, sync_bn=not cfg["freeze_bn"])
    precision = resolve_precision(params["project"]["precision"], device)
    summary = run_training(
        ranks, params, "train_classifier", SECTIONS, cfg["epochs"] * len(loader), model, CLASSIFIER,
        lambda on_step: train_seed_classifier(trained, loader, cfg["epochs"], optimizer, device,
                                              seed_losses(params, dataset.class_names), cfg["freeze_bn"], on_step,
                                              precision),
        tags={"wsss.seed_method": method}, desc=f"train_classifier ({method})")
    if ranks.main:
        print(f"train_classifier: {method}, final epoch loss {summary['final_epoch_loss']:.4f}, saved {CLASSIFIER}")


if __name__ == "__main__":
    run_main(main)
