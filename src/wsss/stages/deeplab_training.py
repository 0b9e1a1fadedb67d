"""Training a DeepLab on label maps: what the stages train_recovery (PtReCl's recovery network,
docs/methods.md §8) and train_segmentation (the final network, §9) share."""

import torch

from wsss.core.params import BackboneParams, DatasetParams, DeeplabParams, ProjectParams
from wsss.core.precision import resolve_precision
from wsss.data.registry import open_split
from wsss.data.transforms import LabelMapDataset
from wsss.models.deeplab import segmentation_loss
from wsss.stages.common import Stage
from wsss.stages.networks import deeplab
from wsss.stages.training import run_training, train_stage, warn_small_images
from wsss.train.ddp import Ranks, prepare
from wsss.train.loop import make_sgd, train_loader, train_loop


def train_deeplab(stage: Stage, project: ProjectParams, dataset_cfg: DatasetParams, backbone: BackboneParams,
                  cfg: DeeplabParams, section: str, labels: str, checkpoint: str) -> None:
    """Train the DeepLab of params section ``section`` (``cfg``) on the training split's label
    maps in the folder ``labels``; save its state dict to ``checkpoint`` (over ``project.devices``
    processes)."""
    train_cfg = cfg.train

    def train(ranks: Ranks) -> None:
        seed = project.seed_of(train_cfg.seed)
        torch.manual_seed(seed)
        device = ranks.device
        dataset = open_split(dataset_cfg, dataset_cfg.train_split)
        if ranks.main:
            warn_small_images(dataset, train_cfg.crop_size, f"{section}.train.crop_size")
        model = deeplab(backbone, cfg, dataset.num_classes, stage.paths).to(device)
        items = LabelMapDataset(dataset, labels, train_cfg.crop_size, tuple(train_cfg.scale_range), train_cfg.hflip,
                                seed=seed)
        loader = train_loader(items, train_cfg.batch_size, f"{section}.train.batch_size", seed,
                              project.num_workers, ranks)
        backbone_params, head_params = model.parameter_groups()
        optimizer = make_sgd([(backbone_params, 1.0), (head_params, train_cfg.head_lr_mult)], train_cfg.lr,
                             train_cfg.momentum, train_cfg.weight_decay)
        trained = prepare(model, ranks, sync_bn=True)
        precision = resolve_precision(project.precision, device)
        summary = run_training(
            stage, ranks, project, train_cfg.epochs * len(loader), model, checkpoint,
            lambda on_step: train_loop(trained, loader, train_cfg.epochs, optimizer, device, segmentation_loss,
                                       f"{section}.train.lr", on_step, precision=precision),
            tags={"wsss.labels": labels}, batch_size=train_cfg.batch_size)
        if ranks.main:
            print(f"{stage.name}: final epoch loss {summary['final_epoch_loss']:.4f} on {labels}, saved {checkpoint}")

    train_stage(stage, project, checkpoint, (f"{section}.train.batch_size", train_cfg.batch_size), train)
