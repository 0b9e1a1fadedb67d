"""DVC stage `ptrecl_prototypes` (dvc.yaml): wsss.stages.ptrecl_prototypes."""

from wsss.stages.common import main
from wsss.stages.ptrecl_prototypes import ptrecl_prototypes

if __name__ == "__main__":
    main("ptrecl_prototypes", lambda stage, p: ptrecl_prototypes(stage, p.project, p.dataset, p.seeds.backbone,
                                                                 p.ptrecl.recovery, p.ptrecl.prototypes))
