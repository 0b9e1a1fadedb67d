"""Stage `train_classifier`: train the seeds classifier of `seeds.method` on image-level labels
(CAM, EPS with saliency supervision, SIPE, AE-SIPE)."""

import torch
from torch.utils.data import DataLoader

from wsss.layout import CLASSIFIER, TRAIN_LOSSES
from wsss.data.transforms import ClassificationDataset, SaliencyClassificationDataset
from wsss.device import resolve_device
from wsss.io import save_state_dict
from wsss.models.backbones import build_backbone
from wsss.models.seed_methods import build_seed_model, needs_saliency, seed_losses
from wsss.plot_files import LossLog
from wsss.progress import progress_bar
from wsss.stage import load_params, open_split, run_main
from wsss.tracking import stage_run
from wsss.training import make_sgd, train_seed_classifier

SECTIONS = ["project", "dataset", "seeds.method", "seeds.backbone", "seeds.train", "seeds.eps", "seeds.sipe",
            "seeds.ae_sipe"]


def main() -> None:
    params = load_params()
    cfg = params["seeds"]["train"]
    method = params["seeds"]["method"]
    torch.manual_seed(params["project"]["seed"])
    device = resolve_device(params["project"]["device"])
    saliency = needs_saliency(params)
    dataset = open_split(params, params["dataset"]["train_split"], with_saliency=saliency)
    dataset.validate()
    model = build_seed_model(params, build_backbone(params["seeds"]["backbone"]), dataset.num_classes - 1).to(device)
    items = (SaliencyClassificationDataset if saliency else ClassificationDataset)(
        dataset, tuple(cfg["resize_long"]), cfg["crop_size"], cfg["hflip"], seed=params["project"]["seed"])
    loader = DataLoader(
        items,
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
        run.set_tag("wsss.seed_method", method)
        bar = progress_bar(params, total=cfg["epochs"] * len(loader), desc=f"train_classifier ({method})")
        losses = LossLog(TRAIN_LOSSES.format(stage="train_classifier"))

        def on_step(step: int, metrics: dict) -> None:
            bar.update(1)
            bar.set_postfix(loss=f"{metrics['loss']:.4f}")
            # every loss term of the method (cls, sal for EPS, gsc for SIPE) and the lr
            run.log_step({f"train.{k}": v for k, v in metrics.items() if k != "epoch"}, step)
            losses.record(step, metrics)

        summary = train_seed_classifier(model, loader, cfg["epochs"], optimizer, device,
                                        seed_losses(params, dataset.class_names), cfg["freeze_bn"], on_step)
        bar.close()
        run.log_metrics({"train.final_epoch_loss": summary["final_epoch_loss"]})
        losses.write()
        save_state_dict(CLASSIFIER, model.state_dict())
        print(f"train_classifier: {method}, final epoch loss {summary['final_epoch_loss']:.4f}, saved {CLASSIFIER}")


if __name__ == "__main__":
    run_main(main)
