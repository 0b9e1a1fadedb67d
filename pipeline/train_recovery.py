"""DVC stage `train_recovery` (dvc.yaml): wsss.stages.train_recovery."""

from wsss.stages.common import main
from wsss.stages.train_recovery import train_recovery

if __name__ == "__main__":
    main("train_recovery", lambda stage, p: train_recovery(stage, p.project, p.dataset, p.seeds.backbone,
                                                           p.ptrecl.recovery))
