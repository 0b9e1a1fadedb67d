"""DVC stage `ptrecl` (dvc.yaml): wsss.stages.ptrecl."""

from wsss.stages.common import main
from wsss.stages.ptrecl import ptrecl

if __name__ == "__main__":
    main("ptrecl", lambda stage, p: ptrecl(stage, p.project, p.dataset, p.seeds.backbone, p.ptrecl, p.refine.irn.walk,
                                           p.tracking))
