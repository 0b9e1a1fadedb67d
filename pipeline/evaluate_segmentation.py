"""DVC stage `evaluate_segmentation` (dvc.yaml): wsss.stages.evaluate_segmentation."""

from wsss.stages.common import main
from wsss.stages.evaluate_segmentation import evaluate_segmentation

if __name__ == "__main__":
    main("evaluate_segmentation", lambda stage, p: evaluate_segmentation(
        stage, p.project, p.dataset, p.seeds.method, p.refine.method, p.seeds.backbone, p.segment, p.refine.crf,
        p.evaluate, p.tracking))
