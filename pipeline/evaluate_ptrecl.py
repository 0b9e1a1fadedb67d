"""Stage `evaluate_ptrecl`: score PtReCl's reclassification map alone and its pseudo masks after
IRN's re-refinement on the evaluation split (docs/methods.md §8, steps 4-5).

The map alone is scored over the background-threshold sweep of `evaluate.bg_thresholds`, like
the seeds, and at `ptrecl.reclassify.bg_threshold` (auto: the sweep's best), the headline.
"""


from wsss.layout import PTRECL_MAP_METRICS, PTRECL_MASKS, PTRECL_METRICS, RECLASSIFICATION_MAPS
from wsss import metrics as M
from wsss.errors import DataError
from wsss.evaluation import MaskEvaluation
from wsss import metrics_files
from wsss.io import load_image_scores, read_label_png
from wsss.progress import progress_bar
from wsss.refine.pseudo_masks import threshold_mask
from wsss.stage import load_params, open_split, run_main
from wsss.tracking import stage_run
from wsss.visualize import gallery, overlay_panels

SECTIONS = ["dataset", "seeds.method", "refine.method", "ptrecl.reclassify", "evaluate"]


def _scored_images(dataset, params: dict):
    """(image id, ground truth, reclassification scores, class ids) of every image with a mask."""
    for image_id in progress_bar(params, dataset.ids, desc="evaluate_ptrecl"):
        gt = dataset.load_mask(image_id)
        if gt is not None:
            scores, class_ids, _ = load_image_scores(RECLASSIFICATION_MAPS, image_id, gt.shape)
            yield image_id, gt, scores, class_ids


def main() -> None:
    params = load_params()
    cfg = params["evaluate"]
    dataset = open_split(params, params["dataset"]["eval_split"])
    names = dataset.class_names
    threshold = params["ptrecl"]["reclassify"]["bg_threshold"]
    method = f"{params['seeds']['method']}+{params['refine']['method']}+ptrecl"
    with stage_run("evaluate_ptrecl", params, SECTIONS) as run:
        # Pass 1: the re-refined masks and the map's background-threshold sweep.
        sweep = M.ThresholdSweep(dataset.num_classes, cfg["bg_thresholds"])
        rerefined = MaskEvaluation(dataset, cfg["boundary_tolerance"])
        examples = []
        for image_id, gt, scores, class_ids in _scored_images(dataset, params):
            mask = read_label_png(f"{PTRECL_MASKS}/{image_id}.png")
            if mask.shape != gt.shape:
                raise DataError(f"{PTRECL_MASKS}/{image_id}.png: pseudo mask {mask.shape} differs from the "
                                f"ground truth of image {image_id} {gt.shape}")
            sweep.update(gt, scores, class_ids)
            rerefined.update(gt, mask, dataset.load_context(image_id))
            if len(examples) < params["tracking"]["num_overlays"]:
                examples.append(overlay_panels(dataset.load_image(image_id), scores, mask, gt))
        if rerefined.images == 0:
            raise DataError(f"split '{params['dataset']['eval_split']}' has no image with a ground-truth mask")
        best = sweep.best(names)
        threshold = best["threshold"] if threshold == "auto" else float(threshold)
        # Pass 2: the map alone at its background threshold (boundary, co-occurrence).
        map_alone = MaskEvaluation(dataset, cfg["boundary_tolerance"])
        for image_id, gt, scores, class_ids in _scored_images(dataset, params):
            map_alone.update(gt, threshold_mask(scores, class_ids, threshold), dataset.load_context(image_id))
        split = params["dataset"]["eval_split"]
        map_result = {"stage": "reclassification", "method": method, "split": split, **map_alone.result(),
                      "bg_threshold": threshold, "best_bg_threshold": best["threshold"], "best_miou": best["miou"],
                      "sweep": {f"{r['threshold']:.2f}": r["miou"] for r in sweep.results(names)}}
        result = {"stage": "ptrecl", "method": method, "split": split, **rerefined.result()}
        metrics_files.write(PTRECL_MAP_METRICS, map_result)
        metrics_files.write(PTRECL_METRICS, result)
        metrics_files.log(run, PTRECL_MAP_METRICS, map_result)
        metrics_files.log(run, PTRECL_METRICS, result)
        if examples:
            run.log_image(gallery(examples), "overlays.png")
        print(f"evaluate_ptrecl: reclassification map mIoU {map_result['miou']:.4f} (bg {threshold}; best "
              f"{best['miou']:.4f} at {best['threshold']}), after IRN {result['miou']:.4f}")


if __name__ == "__main__":
    run_main(main)
