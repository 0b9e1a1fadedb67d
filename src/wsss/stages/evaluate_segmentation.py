"""Stage `evaluate_segmentation`: the trained DeepLab on the val split (docs/methods.md §9): mIoU,
boundary F1 and co-occurrence confusion, with `segment.infer`'s scales, flip and optional CRF.
Its label map of every val image goes to `artifacts/segment/predictions/<id>.png` (VOC palette):
what `wsss predict` and the served model reproduce pixel for pixel. The network is then
registered in MLflow's Model Registry with its lineage (wsss.tracking.registry, `tracking.registered_model`)."""

from pathlib import Path

from wsss.core.device import resolve_device
from wsss.core.dvcfile import pipeline
from wsss.core.errors import DataError
from wsss.core.io import atomic_dir, write_palette_png
from wsss.core.params import (
    BackboneParams,
    CrfParams,
    DatasetParams,
    EvaluateParams,
    ProjectParams,
    RefineMethod,
    SeedMethod,
    SegmentParams,
    TrackingParams,
)
from wsss.core.progress import progress_bar
from wsss.data.registry import open_split
from wsss.evaluation import guards
from wsss.evaluation.masks import MaskEvaluation
from wsss.evaluation.metrics import format_cell
from wsss.evaluation.visualize import gallery, overlay_panels
from wsss.methods.segmenter import Segmenter
from wsss.stages.common import Stage
from wsss.tracking import metrics_files


def evaluate_segmentation(stage: Stage, project: ProjectParams, dataset_cfg: DatasetParams, seed_method: SeedMethod,
                          refine_method: RefineMethod, backbone: BackboneParams, segment: SegmentParams,
                          crf: CrfParams, cfg: EvaluateParams, tracking: TrackingParams) -> None:
    paths = stage.paths
    device = resolve_device(project.device)
    dataset = open_split(dataset_cfg, dataset_cfg.val_split)
    segmenter = Segmenter.from_project(backbone, segment, crf, dataset.class_names, paths.segmenter_weights, device,
                                       pipeline().rerun_hint(paths.segmenter_weights))
    masks = f"{seed_method}+{refine_method}" + ("+ptrecl" if segment.masks == "ptrecl" else "")
    method = f"{masks}+deeplab{segment.head}"  # the pseudo masks it learnt from, then the network
    with stage.tracked() as run, atomic_dir(paths.segment_predictions) as out:
        evaluation = MaskEvaluation(dataset, cfg.boundary_tolerance)
        examples = []
        for image_id in progress_bar(project.progress, dataset.ids, desc="evaluate_segmentation", unit="image"):
            image = dataset.load_image(image_id)
            pred = segmenter.segment(image)
            write_palette_png(Path(out) / f"{image_id}.png", pred)
            gt = dataset.load_mask(image_id)
            if gt is None:
                continue
            evaluation.update(gt, pred, dataset.load_context(image_id), image_id)
            if len(examples) < tracking.num_overlays:
                examples.append(overlay_panels(image, None, pred, gt))
        if evaluation.images == 0:
            raise DataError(f"split '{dataset_cfg.val_split}' has no image with a ground-truth mask")
        result = {"stage": "segment", "method": method, "split": dataset_cfg.val_split, **evaluation.result(),
                  # pixels, rows = ground truth, columns = prediction, in per_class order: its DVC plot
                  "confusion": evaluation.confusion.matrix.tolist()}
        guards.flag(result, "evaluate_segmentation")
        metrics_files.write(paths.segment_metrics, result)
        metrics_files.log(run, paths.segment_metrics, result)
        if examples:
            run.log_image(gallery(examples), "predictions.png")
        stage.register_segmenter(run, segmenter.to("cpu"))
        # boundary F1 is None when neither prediction nor ground truth has a boundary
        print(f"evaluate_segmentation: {method} val mIoU {result['miou']:.4f}, boundary F1 "
              f"{format_cell(result['boundary']['f1'])}")
