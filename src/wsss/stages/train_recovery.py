"""Stage `train_recovery`: PtReCl's pseudo-mask recovery network, a DeepLab trained on the refine
stage's pseudo masks (docs/methods.md §8, step 2)."""

from wsss.core.params import BackboneParams, DatasetParams, DeeplabParams, ProjectParams
from wsss.stages.common import Stage
from wsss.stages.deeplab_training import train_deeplab


def train_recovery(stage: Stage, project: ProjectParams, dataset: DatasetParams, backbone: BackboneParams,
                   recovery: DeeplabParams) -> None:
    train_deeplab(stage, project, dataset, backbone, recovery, "ptrecl.recovery", stage.paths.pseudo_masks,
                  stage.paths.recovery_weights)
