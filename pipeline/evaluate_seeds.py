"""DVC stage `evaluate_seeds` (dvc.yaml): wsss.stages.evaluate_seeds."""

from wsss.stages.common import main
from wsss.stages.evaluate_seeds import evaluate_seeds

if __name__ == "__main__":
    main("evaluate_seeds", lambda stage, p: evaluate_seeds(stage, p.project, p.dataset, p.seeds.method, p.evaluate,
                                                           p.refine.crf, p.tracking))
