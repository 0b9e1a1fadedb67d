"""DVC stage `irn_boundaries` (dvc.yaml): wsss.stages.irn_boundaries."""

from wsss.stages.common import main
from wsss.stages.irn_boundaries import irn_boundaries

if __name__ == "__main__":
    main("irn_boundaries", lambda stage, p: irn_boundaries(stage, p.project, p.dataset, p.seeds.backbone,
                                                           p.refine.irn.image_scale))
