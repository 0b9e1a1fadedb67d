"""DVC stage `evaluate_ptrecl` (dvc.yaml): wsss.stages.evaluate_ptrecl."""

from wsss.stages.common import main
from wsss.stages.evaluate_ptrecl import evaluate_ptrecl

if __name__ == "__main__":
    main("evaluate_ptrecl", lambda stage, p: evaluate_ptrecl(stage, p.project, p.dataset, p.seeds.method,
                                                             p.refine.method, p.ptrecl.reclassify, p.evaluate,
                                                             p.tracking))
