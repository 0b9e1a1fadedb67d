"""Stage `evaluate_ptrecl`: score PtReCl's reclassification map alone and its pseudo masks after
IRN's re-refinement on the evaluation split (docs/methods.md §8, steps 4-5).

The map alone is scored over the background-threshold sweep of `evaluate.bg_thresholds`, like
the seeds, and at `ptrecl.reclassify.bg_threshold` (auto: the sweep's best), the headline. Both
carry their difference to the refine stage's masks on the same images (``vs_input``).
"""

from wsss.core.errors import DataError
from wsss.core.io import load_image_scores
from wsss.core.params import (
    DatasetParams,
    EvaluateParams,
    ProjectParams,
    ReclassifyParams,
    RefineMethod,
    SeedMethod,
    TrackingParams,
)
from wsss.data.registry import open_split
from wsss.evaluation import guards
from wsss.evaluation import metrics as M
from wsss.evaluation.masks import MaskEvaluation, difference_over_images, read_mask, with_ground_truth
from wsss.evaluation.visualize import gallery, overlay_panels
from wsss.methods.pseudo_masks import threshold_mask
from wsss.stages.common import Stage
from wsss.tracking import metrics_files


def evaluate_ptrecl(stage: Stage, project: ProjectParams, dataset_cfg: DatasetParams, seed_method: SeedMethod,
                    refine_method: RefineMethod, reclassify: ReclassifyParams, cfg: EvaluateParams,
                    tracking: TrackingParams) -> None:
    paths = stage.paths
    dataset = open_split(dataset_cfg, dataset_cfg.eval_split)
    names = dataset.class_names
    method = f"{seed_method}+{refine_method}+ptrecl"

    def scored_images():
        """(image id, ground truth, reclassification scores, class ids) of every image with a mask."""
        for image_id, gt in with_ground_truth(dataset, project.progress, "evaluate_ptrecl"):
            scores, class_ids, _ = load_image_scores(paths.reclassification_maps, image_id, gt.shape)
            yield image_id, gt, scores, class_ids

    with stage.tracked() as run:
        # Pass 1: the re-refined masks and the map's background-threshold sweep.
        sweep = M.ThresholdSweep(dataset.num_classes, cfg.bg_thresholds)
        rerefined = MaskEvaluation(dataset, cfg.boundary_tolerance)
        examples = []
        for image_id, gt, scores, class_ids in scored_images():
            mask = read_mask(paths.ptrecl_masks, image_id, gt)
            sweep.update(gt, scores, class_ids)
            rerefined.update(gt, mask, dataset.load_context(image_id), image_id)
            if len(examples) < tracking.num_overlays:
                examples.append(overlay_panels(dataset.load_image(image_id), scores, mask, gt))
        if rerefined.images == 0:
            raise DataError(f"split '{dataset_cfg.eval_split}' has no image with a ground-truth mask")
        best = sweep.best(names)
        threshold = best["threshold"] if reclassify.bg_threshold == "auto" else float(reclassify.bg_threshold)
        # Pass 2: the map alone at its background threshold (boundary, co-occurrence).
        map_alone = MaskEvaluation(dataset, cfg.boundary_tolerance)
        for image_id, gt, scores, class_ids in scored_images():
            map_alone.update(gt, threshold_mask(scores, class_ids, threshold), dataset.load_context(image_id),
                             image_id)
        split = dataset_cfg.eval_split
        map_result = {"stage": "reclassification", "method": method, "split": split, **map_alone.result(),
                      "bg_threshold": threshold, "best_bg_threshold": best["threshold"], "best_miou": best["miou"],
                      "sweep": {f"{r['threshold']:.2f}": r["miou"] for r in sweep.results(names)}}
        result = {"stage": "ptrecl", "method": method, "split": split, **rerefined.result()}
        # Both against the pseudo masks PtReCl reclassifies, on the same images.
        refined = metrics_files.read(paths.refine_metrics)
        for scored in (map_result, result):
            scored["vs_input"] = difference_over_images(refined, scored)
            guards.flag(scored, "evaluate_ptrecl")
        metrics_files.write(paths.ptrecl_map_metrics, map_result)
        metrics_files.write(paths.ptrecl_metrics, result)
        metrics_files.log(run, paths.ptrecl_map_metrics, map_result)
        metrics_files.log(run, paths.ptrecl_metrics, result)
        if examples:
            run.log_image(gallery(examples), "overlays.png")
        print(f"evaluate_ptrecl: reclassification map mIoU {map_result['miou']:.4f} (bg {threshold}; best "
              f"{best['miou']:.4f} at {best['threshold']}), after IRN {result['miou']:.4f}")
