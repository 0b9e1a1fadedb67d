"""DVC stage `synthesize` (dvc.yaml): wsss.stages.synthesize."""

from wsss.stages.common import main
from wsss.stages.synthesize import synthesize

if __name__ == "__main__":
    main("synthesize", lambda stage, p: synthesize(stage, p.project, p.data.synthetic))
