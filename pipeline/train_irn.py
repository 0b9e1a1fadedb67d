"""Stage `train_irn`: train IRN's boundary and displacement heads on the relation labels."""

import torch
from torch.utils.data import DataLoader

from wsss.layout import CLASSIFIER, IRN_WEIGHTS, RELATION_LABELS, TRAIN_LOSSES, load_stage_checkpoint
from wsss.data.transforms import RelationLabelDataset
from wsss.device import resolve_device
from wsss.io import save_state_dict
from wsss.models.backbones import build_backbone, check_pretrained_source
from wsss.models.irn import IRN
from wsss.plot_files import LossLog
from wsss.progress import progress_bar
from wsss.stage import load_params, open_split, run_main
from wsss.tracking import stage_run
from wsss.training import make_sgd, train_irn

SECTIONS = ["project", "dataset", "seeds.backbone", "refine.irn.backbone", "refine.irn.image_scale",
            "refine.irn.train"]


def irn_backbone(params: dict, for_training: bool):
    """The frozen backbone IRN reads: the CAM classifier's, or ImageNet-pretrained."""
    cfg = params["seeds"]["backbone"]
    source = params["refine"]["irn"]["backbone"]
    if not for_training:  # the IRN checkpoint holds the backbone's weights
        return build_backbone(dict(cfg, pretrained=False, checkpoint=None))
    if source == "pretrained":
        check_pretrained_source(cfg, "refine.irn.backbone")
        return build_backbone(cfg)
    backbone = build_backbone(dict(cfg, pretrained=False, checkpoint=None))
    state = load_stage_checkpoint(CLASSIFIER)
    backbone.load_state_dict({k[len("backbone."):]: v for k, v in state.items() if k.startswith("backbone.")})
    return backbone


def main() -> None:
    params = load_params()
    cfg = params["refine"]["irn"]["train"]
    torch.manual_seed(params["project"]["seed"])
    device = resolve_device(params["project"]["device"])
    dataset = open_split(params, params["dataset"]["train_split"])
    model = IRN(irn_backbone(params, for_training=True), displacement=cfg["displacement"]).to(device)
    loader = DataLoader(
        RelationLabelDataset(dataset, RELATION_LABELS, cfg["crop_size"],
                             tuple(params["refine"]["irn"]["image_scale"] * s for s in cfg["scale_range"]),
                             cfg["hflip"], seed=params["project"]["seed"]),
        batch_size=cfg["batch_size"], shuffle=True, drop_last=len(dataset) > cfg["batch_size"],
        num_workers=params["project"]["num_workers"],
        generator=torch.Generator().manual_seed(params["project"]["seed"]),
    )
    heads = [p for module in model.heads() for p in module.parameters()]
    optimizer = make_sgd([(heads, 1.0)], cfg["lr"], cfg["momentum"], cfg["weight_decay"])
    with stage_run("train_irn", params, SECTIONS) as run:
        bar = progress_bar(params, total=cfg["epochs"] * len(loader), desc="train_irn")
        losses = LossLog(TRAIN_LOSSES.format(stage="train_irn"))

        def on_step(step: int, metrics: dict) -> None:
            bar.update(1)
            bar.set_postfix(loss=f"{metrics['loss']:.4f}")
            run.log_step({f"train.{k}": v for k, v in metrics.items()}, step)
            losses.record(step, metrics)

        summary = train_irn(model, loader, cfg["epochs"], optimizer, device, cfg["radius"], on_step)
        bar.close()
        run.log_metrics({"train.final_epoch_loss": summary["final_epoch_loss"]})
        losses.write()
        save_state_dict(IRN_WEIGHTS, model.state_dict())
        print(f"train_irn: final epoch loss {summary['final_epoch_loss']:.4f}, saved {IRN_WEIGHTS}")


if __name__ == "__main__":
    run_main(main)
