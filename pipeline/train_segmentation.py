"""DVC stage `train_segmentation` (dvc.yaml): wsss.stages.train_segmentation."""

from wsss.stages.common import main
from wsss.stages.train_segmentation import train_segmentation

if __name__ == "__main__":
    main("train_segmentation", lambda stage, p: train_segmentation(stage, p.project, p.dataset, p.seeds.backbone,
                                                                   p.segment))
