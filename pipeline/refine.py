"""DVC stage `refine` (dvc.yaml): wsss.stages.refine."""

from wsss.stages.common import main
from wsss.stages.refine import refine

if __name__ == "__main__":
    main("refine", lambda stage, p: refine(stage, p.project, p.dataset, p.refine, p.tracking))
