"""DVC stage `gallery` (dvc.yaml): wsss.stages.gallery."""

from wsss.stages.common import main
from wsss.stages.gallery import GallerySettings, gallery

if __name__ == "__main__":
    main("gallery", lambda stage, p: gallery(stage, GallerySettings(p.project, p.dataset, p.seeds, p.refine, p.segment,
                                                                    stage.paths), p.tracking.gallery))
