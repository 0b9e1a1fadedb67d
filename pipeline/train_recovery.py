"""Stage `train_recovery`: PtReCl's pseudo-mask recovery network, a DeepLab trained on the refine
stage's pseudo masks (docs/methods.md §8, step 2). `train_deeplab` also serves `train_segmentation`."""

import torch
from torch.utils.data import DataLoader

from wsss.layout import CLASSIFIER, PSEUDO_MASKS, RECOVERY_WEIGHTS, TRAIN_LOSSES, load_stage_checkpoint
from wsss.data.transforms import LabelMapDataset
from wsss.device import resolve_device
from wsss.io import save_state_dict
from wsss.models.backbones import build_backbone, check_pretrained_source
from wsss.models.deeplab import DeepLab, segmentation_loss
from wsss.params import get_key
from wsss.plot_files import LossLog
from wsss.progress import progress_bar
from wsss.stage import load_params, open_split, run_main
from wsss.tracking import stage_run
from wsss.training import make_sgd, train_loop

def deeplab_network(params: dict, section: str, num_classes: int, for_training: bool) -> DeepLab:
    """The DeepLab of params section `section` (head, rates, backbone) on `seeds.backbone`. For
    training its backbone starts from the seeds classifier's weights (a from-scratch backbone has
    nothing else to start from) or from ImageNet (`backbone: pretrained`)."""
    cfg, backbone_cfg = get_key(params, section), params["seeds"]["backbone"]
    if for_training and cfg["backbone"] == "pretrained":
        check_pretrained_source(backbone_cfg, f"{section}.backbone")
        backbone = build_backbone(backbone_cfg)
    else:
        backbone = build_backbone(dict(backbone_cfg, pretrained=False, checkpoint=None))
        if for_training:
            state = load_stage_checkpoint(CLASSIFIER)
            backbone.load_state_dict({k[len("backbone."):]: v for k, v in state.items() if k.startswith("backbone.")})
    return DeepLab(backbone, num_classes, cfg["head"], cfg["rates"])


def train_deeplab(params: dict, stage: str, section: str, label_dir: str, weights: str) -> None:
    """Train the DeepLab of `section` on the training split's label maps in `label_dir`, log the
    stage to MLflow, save the state dict to `weights`."""
    cfg = get_key(params, f"{section}.train")
    torch.manual_seed(params["project"]["seed"])
    device = resolve_device(params["project"]["device"])
    dataset = open_split(params, params["dataset"]["train_split"])
    model = deeplab_network(params, section, dataset.num_classes, for_training=True).to(device)
    loader = DataLoader(
        LabelMapDataset(dataset, label_dir, cfg["crop_size"], tuple(cfg["scale_range"]), cfg["hflip"],
                        seed=params["project"]["seed"]),
        batch_size=cfg["batch_size"], shuffle=True, drop_last=len(dataset) > cfg["batch_size"],
        num_workers=params["project"]["num_workers"],
        generator=torch.Generator().manual_seed(params["project"]["seed"]),
    )
    backbone, head = model.parameter_groups()
    optimizer = make_sgd([(backbone, 1.0), (head, cfg["head_lr_mult"])], cfg["lr"], cfg["momentum"],
                         cfg["weight_decay"])
    sections = ["project", "dataset", "seeds.backbone", section]
    with stage_run(stage, params, sections) as run:
        run.set_tag("wsss.labels", label_dir)
        bar = progress_bar(params, total=cfg["epochs"] * len(loader), desc=stage)
        losses = LossLog(TRAIN_LOSSES.format(stage=stage))

        def on_step(step: int, metrics: dict) -> None:
            bar.update(1)
            bar.set_postfix(loss=f"{metrics['loss']:.4f}")
            run.log_step({f"train.{k}": v for k, v in metrics.items() if k != "epoch"}, step)
            losses.record(step, metrics)

        summary = train_loop(model, loader, cfg["epochs"], optimizer, device, segmentation_loss,
                             f"{section}.train.lr", on_step)
        bar.close()
        run.log_metrics({"train.final_epoch_loss": summary["final_epoch_loss"]})
        losses.write()
        save_state_dict(weights, model.state_dict())
        print(f"{stage}: final epoch loss {summary['final_epoch_loss']:.4f} on {label_dir}, saved {weights}")


def main() -> None:
    train_deeplab(load_params(), "train_recovery", "ptrecl.recovery", PSEUDO_MASKS, RECOVERY_WEIGHTS)


if __name__ == "__main__":
    run_main(main)
