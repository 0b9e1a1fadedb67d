"""Stage `train_segmentation`: the final DeepLab (docs/methods.md §9), trained on the pseudo masks that
`segment.masks` names (PtReCl's or the refine stage's)."""

from wsss.core.params import BackboneParams, DatasetParams, ProjectParams, SegmentParams
from wsss.stages.common import Stage
from wsss.stages.deeplab_training import train_deeplab


def train_segmentation(stage: Stage, project: ProjectParams, dataset: DatasetParams, backbone: BackboneParams,
                       segment: SegmentParams) -> None:
    train_deeplab(stage, project, dataset, backbone, segment, "segment", stage.paths.segment_labels(segment.masks),
                  stage.paths.segmenter_weights)
