"""Stage `train_recovery`: PtReCl's pseudo-mask recovery network, a DeepLab trained on the refine
stage's pseudo masks (docs/methods.md §8, step 2). `train_deeplab` also serves `train_segmentation`."""

import torch

from wsss.layout import CLASSIFIER, PSEUDO_MASKS, RECOVERY_WEIGHTS, load_stage_checkpoint
from wsss.data.transforms import LabelMapDataset
from wsss.distributed import Ranks, prepare, run_stage
from wsss.models.backbones import build_backbone, check_pretrained_source
from wsss.models.deeplab import DeepLab, segmentation_loss
from wsss.params import get_key
from wsss.precision import resolve_precision
from wsss.stage import load_params, open_split, run_main
from wsss.training import make_sgd, train_loader, train_loop
from wsss.training_run import run_training

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
    stage to MLflow, save the state dict to `weights` (over `project.devices` processes)."""
    run_stage(params, stage, weights, f"{section}.train.batch_size",
              lambda params, ranks: _train(params, ranks, stage, section, label_dir, weights))


def _train(params: dict, ranks: Ranks, stage: str, section: str, label_dir: str, weights: str) -> None:
    cfg = get_key(params, f"{section}.train")
    seed = params["project"]["seed"]
    torch.manual_seed(seed)
    device = ranks.device
    dataset = open_split(params, params["dataset"]["train_split"])
    model = deeplab_network(params, section, dataset.num_classes, for_training=True).to(device)
    items = LabelMapDataset(dataset, label_dir, cfg["crop_size"], tuple(cfg["scale_range"]), cfg["hflip"], seed=seed)
    loader = train_loader(items, cfg["batch_size"], f"{section}.train.batch_size", seed,
                          params["project"]["num_workers"], ranks)
    backbone, head = model.parameter_groups()
    optimizer = make_sgd([(backbone, 1.0), (head, cfg["head_lr_mult"])], cfg["lr"], cfg["momentum"],
                         cfg["weight_decay"])
    trained = prepare(model, ranks, sync_bn=True)
    precision = resolve_precision(params["project"]["precision"], device)
    summary = run_training(
        ranks, params, stage, ["project", "dataset", "seeds.backbone", section], cfg["epochs"] * len(loader),
        model, weights,
        lambda on_step: train_loop(trained, loader, cfg["epochs"], optimizer, device, segmentation_loss,
                                   f"{section}.train.lr", on_step, precision=precision),
        tags={"wsss.labels": label_dir})
    if ranks.main:
        print(f"{stage}: final epoch loss {summary['final_epoch_loss']:.4f} on {label_dir}, saved {weights}")


def main() -> None:
    train_deeplab(load_params(), "train_recovery", "ptrecl.recovery", PSEUDO_MASKS, RECOVERY_WEIGHTS)


if __name__ == "__main__":
    run_main(main)
