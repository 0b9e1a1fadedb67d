"""DVC stage `evaluate_refine` (dvc.yaml): wsss.stages.evaluate_refine."""

from wsss.stages.common import main
from wsss.stages.evaluate_refine import evaluate_refine

if __name__ == "__main__":
    main("evaluate_refine", lambda stage, p: evaluate_refine(stage, p.project, p.dataset, p.seeds.method,
                                                             p.refine.method, p.evaluate, p.tracking))
