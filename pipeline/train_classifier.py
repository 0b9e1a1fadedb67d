"""Stage `train_classifier`: train the CAM classifier on image-level labels."""

import torch
from torch.utils.data import DataLoader
from tqdm import tqdm

from pipeline.paths import CLASSIFIER
from wsss.data.transforms import ClassificationDataset
from wsss.device import resolve_device
from wsss.io import save_state_dict
from wsss.models.backbones import build_backbone
from wsss.models.cam import CAMClassifier
from wsss.stage import load_params, open_split, run_main
from wsss.tracking import stage_run
from wsss.training import make_sgd, train_multilabel

SECTIONS = ["project", "dataset", "seeds.method", "seeds.backbone", "seeds.train"]


def main() -> None:
    params = load_params()
    cfg = params["seeds"]["train"]
    torch.manual_seed(params["project"]["seed"])
    device = resolve_device(params["project"]["device"])
    dataset = open_split(params, params["dataset"]["train_split"])
    dataset.validate()
    model = CAMClassifier(build_backbone(params["seeds"]["backbone"]), dataset.num_classes - 1).to(device)
    loader = DataLoader(
        ClassificationDataset(dataset, tuple(cfg["resize_long"]), cfg["crop_size"], cfg["hflip"],
                              seed=params["project"]["seed"]),
        batch_size=cfg["batch_size"],
        shuffle=True,
        drop_last=len(dataset) > cfg["batch_size"],
        num_workers=params["project"]["num_workers"],
        generator=torch.Generator().manual_seed(params["project"]["seed"]),
    )
    backbone_params, new_params = model.parameter_groups()
    optimizer = make_sgd([(backbone_params, 1.0), (new_params, cfg["new_layer_lr_mult"])],
                         cfg["lr"], cfg["momentum"], cfg["weight_decay"])
    with stage_run("train_classifier", params, SECTIONS) as run:
        bar = tqdm(total=cfg["epochs"] * len(loader), desc="train_classifier",
                   disable=not params["project"]["progress"])

        def on_step(step: int, metrics: dict) -> None:
            bar.update(1)
            bar.set_postfix(loss=f"{metrics['loss']:.4f}")
            run.log_metrics({"train.loss": metrics["loss"], "train.lr": metrics["lr"]}, step=step)

        summary = train_multilabel(model, loader, cfg["epochs"], optimizer, device,
                                   cfg["freeze_bn"], on_step)
        bar.close()
        run.log_metrics({"train.final_epoch_loss": summary["final_epoch_loss"]})
        save_state_dict(CLASSIFIER, model.state_dict())
        print(f"train_classifier: final epoch loss {summary['final_epoch_loss']:.4f}, saved {CLASSIFIER}")


if __name__ == "__main__":
    run_main(main)
