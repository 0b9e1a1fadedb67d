"""DVC stage `irn_labels` (dvc.yaml): wsss.stages.irn_labels."""

from wsss.stages.common import main
from wsss.stages.irn_labels import irn_labels

if __name__ == "__main__":
    main("irn_labels", lambda stage, p: irn_labels(stage, p.project, p.dataset, p.refine.irn.labels, p.tracking))
