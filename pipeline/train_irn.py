"""Stage `train_irn`: train IRN's boundary and displacement heads on the relation labels."""

import torch

from wsss.layout import CLASSIFIER, IRN_WEIGHTS, RELATION_LABELS, load_stage_checkpoint
from wsss.data.transforms import RelationLabelDataset
from wsss.distributed import Ranks, prepare, run_stage
from wsss.models.backbones import build_backbone, check_pretrained_source
from wsss.models.irn import IRN
from wsss.precision import resolve_precision
from wsss.stage import load_params, open_split, run_main
from wsss.training import make_sgd, train_irn, train_loader
from wsss.training_run import run_training

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
    run_stage(load_params(), "train_irn", IRN_WEIGHTS, "refine.irn.train.batch_size", train)


def train(params: dict, ranks: Ranks) -> None:
    cfg = params["refine"]["irn"]["train"]
    seed = params["project"]["seed"]
    torch.manual_seed(seed)
    device = ranks.device
    dataset = open_split(params, params["dataset"]["train_split"])
    model = IRN(irn_backbone(params, for_training=True), displacement=cfg["displacement"]).to(device)
    items = RelationLabelDataset(dataset, RELATION_LABELS, cfg["crop_size"],
                                 tuple(params["refine"]["irn"]["image_scale"] * s for s in cfg["scale_range"]),
                                 cfg["hflip"], seed=seed)
    loader = train_loader(items, cfg["batch_size"], "refine.irn.train.batch_size", seed,
                          params["project"]["num_workers"], ranks)
    heads = [p for module in model.heads() for p in module.parameters()]
    optimizer = make_sgd([(heads, 1.0)], cfg["lr"], cfg["momentum"], cfg["weight_decay"])
    trained = prepare(model, ranks, sync_bn=True)  # the frozen backbone's BN is in eval mode: not synced
    precision = resolve_precision(params["project"]["precision"], device)
    summary = run_training(
        ranks, params, "train_irn", SECTIONS, cfg["epochs"] * len(loader), model, IRN_WEIGHTS,
        lambda on_step: train_irn(trained, loader, cfg["epochs"], optimizer, device, cfg["radius"], on_step,
                                  precision))
    if ranks.main:
        print(f"train_irn: final epoch loss {summary['final_epoch_loss']:.4f}, saved {IRN_WEIGHTS}")


if __name__ == "__main__":
    run_main(main)
