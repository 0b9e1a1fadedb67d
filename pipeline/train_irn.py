"""DVC stage `train_irn` (dvc.yaml): wsss.stages.train_irn."""

from wsss.stages.common import main
from wsss.stages.train_irn import train_irn

if __name__ == "__main__":
    main("train_irn", lambda stage, p: train_irn(stage, p.project, p.dataset, p.seeds.backbone, p.refine.irn))
