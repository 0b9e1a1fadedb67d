"""DVC stage `seeds` (dvc.yaml): wsss.stages.seeds."""

from wsss.stages.common import main
from wsss.stages.seeds import seeds

if __name__ == "__main__":
    main("seeds", lambda stage, p: seeds(stage, p.project, p.dataset, p.seeds, p.tracking))
