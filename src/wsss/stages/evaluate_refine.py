"""Stage `evaluate_refine`: score the pseudo masks on the evaluation split.

mIoU with per-class IoU / precision / recall, boundary F1 and co-occurrence confusion, and the
difference to the seeds' mIoU on the same images (``vs_input``), as DVC metrics JSON and in MLflow.
"""

from wsss.core.errors import DataError
from wsss.core.params import (
    DatasetParams,
    EvaluateParams,
    ProjectParams,
    RefineMethod,
    SeedMethod,
    TrackingParams,
)
from wsss.data.registry import open_split
from wsss.evaluation import guards
from wsss.evaluation.masks import MaskEvaluation, difference_over_images, read_mask, with_ground_truth
from wsss.evaluation.metrics import format_cell
from wsss.evaluation.visualize import gallery, overlay_panels
from wsss.stages.common import Stage
from wsss.tracking import metrics_files


def evaluate_refine(stage: Stage, project: ProjectParams, dataset_cfg: DatasetParams, seed_method: SeedMethod,
                    method: RefineMethod, cfg: EvaluateParams, tracking: TrackingParams) -> None:
    masks, out = stage.paths.pseudo_masks, stage.paths.refine_metrics
    dataset = open_split(dataset_cfg, dataset_cfg.eval_split)
    with stage.tracked() as run:
        evaluation = MaskEvaluation(dataset, cfg.boundary_tolerance)
        examples = []
        for image_id, gt in with_ground_truth(dataset, project.progress, "evaluate_refine"):
            mask = read_mask(masks, image_id, gt)
            evaluation.update(gt, mask, dataset.load_context(image_id), image_id)
            if len(examples) < tracking.num_overlays:
                examples.append(overlay_panels(dataset.load_image(image_id), None, mask, gt))
        if evaluation.images == 0:
            raise DataError(f"split '{dataset_cfg.eval_split}' has no image with a ground-truth mask")
        result = {"stage": "refine", "method": f"{seed_method}+{method}", "split": dataset_cfg.eval_split,
                  **evaluation.result()}
        # The refinement against the seeds it refines, on the same images.
        result["vs_input"] = difference_over_images(metrics_files.read(stage.paths.seeds_metrics), result)
        guards.flag(result, "evaluate_refine")
        metrics_files.write(out, result)
        metrics_files.log(run, out, result)
        if examples:
            run.log_image(gallery(examples), "overlays.png")
        print(f"evaluate_refine: {result['method']} mIoU {result['miou']:.4f}, "
              f"boundary F1 {format_cell(result['boundary']['f1'])}")  # None: no boundary anywhere
