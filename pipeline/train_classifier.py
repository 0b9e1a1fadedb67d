"""DVC stage `train_classifier` (dvc.yaml): wsss.stages.train_classifier."""

from wsss.stages.common import main
from wsss.stages.train_classifier import train_classifier

if __name__ == "__main__":
    main("train_classifier", lambda stage, p: train_classifier(stage, p.project, p.dataset, p.seeds))
