"""Stage `train_irn`: train IRN's boundary (and displacement) heads on the relation labels, on a
frozen backbone: the CAM classifier's or ImageNet's (`refine.irn.backbone`)."""

import torch

from wsss.core.params import BackboneParams, DatasetParams, IrnParams, ProjectParams
from wsss.core.precision import resolve_precision
from wsss.data.registry import open_split
from wsss.data.transforms import RelationLabelDataset
from wsss.methods.irn import IRN
from wsss.stages.common import Stage
from wsss.stages.networks import starting_backbone
from wsss.stages.training import run_training, train_stage, warn_small_images
from wsss.train.ddp import Ranks, prepare
from wsss.train.loop import make_sgd, train_loader
from wsss.train.loop import train_irn as train_heads


def train_irn(stage: Stage, project: ProjectParams, dataset_cfg: DatasetParams, backbone: BackboneParams,
              irn: IrnParams) -> None:
    checkpoint = stage.paths.irn_weights
    cfg = irn.train

    def train(ranks: Ranks) -> None:
        seed = project.seed_of(cfg.seed)
        torch.manual_seed(seed)
        device = ranks.device
        dataset = open_split(dataset_cfg, dataset_cfg.train_split)
        if ranks.main:
            warn_small_images(dataset, cfg.crop_size, "refine.irn.train.crop_size")
        model = IRN(starting_backbone(backbone, irn.backbone, stage.paths), displacement=cfg.displacement).to(device)
        items = RelationLabelDataset(dataset, stage.paths.relation_labels, cfg.crop_size,
                                     tuple(irn.image_scale * s for s in cfg.scale_range), cfg.hflip, seed=seed)
        loader = train_loader(items, cfg.batch_size, "refine.irn.train.batch_size", seed, project.num_workers,
                              ranks)
        heads = [p for module in model.heads() for p in module.parameters()]
        optimizer = make_sgd([(heads, 1.0)], cfg.lr, cfg.momentum, cfg.weight_decay)
        trained = prepare(model, ranks, sync_bn=True)  # the frozen backbone's BN is in eval mode: not synced
        precision = resolve_precision(project.precision, device)
        summary = run_training(
            stage, ranks, project, cfg.epochs * len(loader), model, checkpoint,
            lambda on_step: train_heads(trained, loader, cfg.epochs, optimizer, device, cfg.radius, on_step, precision,
                                        cfg.pair_sources),
            batch_size=cfg.batch_size)
        if ranks.main:
            print(f"train_irn: final epoch loss {summary['final_epoch_loss']:.4f}, saved {checkpoint}")

    train_stage(stage, project, checkpoint, ("refine.irn.train.batch_size", cfg.batch_size), train)
