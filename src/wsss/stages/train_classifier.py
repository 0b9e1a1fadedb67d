"""Stage `train_classifier`: train the seeds classifier of `seeds.method` on image-level labels
(CAM, EPS with saliency supervision, SIPE, AE-SIPE)."""

import torch

from wsss.core.params import DatasetParams, ProjectParams, SeedsParams
from wsss.core.precision import resolve_precision
from wsss.data.registry import open_split
from wsss.data.transforms import ClassificationDataset, SaliencyClassificationDataset
from wsss.methods.seed_methods import build_seed_model, needs_saliency, seed_losses
from wsss.models.backbones import build_backbone
from wsss.stages.common import Stage
from wsss.stages.training import run_training, train_stage, warn_small_images
from wsss.train.ddp import Ranks, prepare
from wsss.train.loop import make_sgd, train_loader, train_seed_classifier


def train_classifier(stage: Stage, project: ProjectParams, dataset_cfg: DatasetParams, seeds: SeedsParams) -> None:
    checkpoint = stage.paths.classifier
    cfg = seeds.train

    def train(ranks: Ranks) -> None:
        seed = project.seed_of(cfg.seed)
        torch.manual_seed(seed)
        device = ranks.device
        saliency = needs_saliency(seeds)
        dataset = open_split(dataset_cfg, dataset_cfg.train_split, with_saliency=saliency)
        dataset.validate()
        if ranks.main:
            warn_small_images(dataset, cfg.crop_size, "seeds.train.crop_size")
        model = build_seed_model(seeds, build_backbone(seeds.backbone), dataset.num_classes - 1).to(device)
        items = (SaliencyClassificationDataset if saliency else ClassificationDataset)(
            dataset, tuple(cfg.resize_long), cfg.crop_size, cfg.hflip, seed=seed)
        loader = train_loader(items, cfg.batch_size, "seeds.train.batch_size", seed, project.num_workers,
                              ranks)
        backbone_params, new_params = model.parameter_groups()
        optimizer = make_sgd([(backbone_params, 1.0), (new_params, cfg.new_layer_lr_mult)],
                             cfg.lr, cfg.momentum, cfg.weight_decay)
        trained = prepare(model, ranks, sync_bn=not cfg.freeze_bn)
        precision = resolve_precision(project.precision, device)
        losses = seed_losses(seeds, dataset.class_names)
        summary = run_training(
            stage, ranks, project, cfg.epochs * len(loader), model, checkpoint,
            lambda on_step: train_seed_classifier(trained, loader, cfg.epochs, optimizer, device, losses,
                                                  cfg.freeze_bn, on_step, precision),
            tags={"wsss.seed_method": seeds.method}, desc=f"train_classifier ({seeds.method})",
            batch_size=cfg.batch_size)
        if ranks.main:
            print(f"train_classifier: {seeds.method}, final epoch loss {summary['final_epoch_loss']:.4f}, "
                  f"saved {checkpoint}")

    train_stage(stage, project, checkpoint, ("seeds.train.batch_size", cfg.batch_size), train)
