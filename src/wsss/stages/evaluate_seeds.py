"""Stage `evaluate_seeds`: score the seed maps as pseudo masks on the evaluation split.

Reports the background-threshold sweep (and its best threshold), the figure at the reference
threshold, the headline mIoU (at the best threshold, or with the method's own background map
when the seeds carry one: SIPE, AE-SIPE), optionally the same masks after a dense CRF
(`evaluate.seeds_crf`, the "+CRF" column of the seed papers' tables), boundary F1,
co-occurrence confusion (when the data set has context masks) and the two trivial baselines,
as DVC metrics JSON and in MLflow.
"""


from wsss.core.errors import DataError
from wsss.core.io import load_image_scores, load_score_map
from wsss.core.params import (
    CrfParams,
    DatasetParams,
    EvaluateParams,
    ProjectParams,
    SeedMethod,
    TrackingParams,
)
from wsss.data.registry import open_split
from wsss.evaluation import guards
from wsss.evaluation import metrics as M
from wsss.evaluation.masks import MaskEvaluation, with_ground_truth
from wsss.evaluation.visualize import gallery, overlay_panels
from wsss.methods.pseudo_masks import crf_mask, seeds_mask, threshold_mask
from wsss.stages.common import Stage
from wsss.tracking import metrics_files


def _scored_images(dataset, maps: str, progress, desc: str):
    """(image id, ground truth, ScoreMap) of every image that has a mask."""
    for image_id, gt in with_ground_truth(dataset, progress, desc):
        yield image_id, gt, load_image_scores(maps, image_id, gt.shape)


def evaluate_seeds(stage: Stage, project: ProjectParams, dataset_cfg: DatasetParams, method: SeedMethod,
                   cfg: EvaluateParams, crf: CrfParams, tracking: TrackingParams) -> None:
    maps, out = stage.paths.seed_maps, stage.paths.seeds_metrics
    dataset = open_split(dataset_cfg, dataset_cfg.eval_split)
    names = dataset.class_names
    with stage.tracked() as run:
        # Pass 1: the background-threshold sweep.
        sweep = M.ThresholdSweep(dataset.num_classes, cfg.bg_thresholds)
        own_background = True  # every image's seeds carry the method's background map
        for _, gt, (scores, class_ids, background) in _scored_images(dataset, maps, project.progress,
                                                                    "evaluate_seeds (sweep)"):
            own_background &= background is not None
            sweep.update(gt, scores, class_ids)
        if sweep.results(names)[0]["miou"] is None:
            raise DataError(f"split '{dataset_cfg.eval_split}' has no image with a ground-truth mask")
        best = sweep.best(names)
        # Pass 2: the headline masks -- with the seeds' own background, else at the best threshold
        # (boundary, co-occurrence, the trivial baselines) -- and the masks at the reference's threshold.
        at_best = MaskEvaluation(dataset, cfg.boundary_tolerance)
        at_reference = M.ConfusionAccumulator(dataset.num_classes)
        with_crf = MaskEvaluation(dataset, cfg.boundary_tolerance) if cfg.seeds_crf else None
        for image_id, gt, (scores, class_ids, background) in _scored_images(dataset, maps, project.progress,
                                                                            "evaluate_seeds (masks)"):
            headline = background if own_background else best["threshold"]
            context = dataset.load_context(image_id)
            at_best.update(gt, threshold_mask(scores, class_ids, headline), context, image_id)
            if with_crf is not None:
                with_crf.update(gt, crf_mask(dataset.load_image(image_id), scores, class_ids, headline, crf), context)
            at_reference.update(gt, threshold_mask(scores, class_ids, cfg.cam_bg_threshold))
        result = {
            "stage": "seeds",
            "method": method,
            "split": dataset_cfg.eval_split,
            **at_best.result(),
            "background": "map" if own_background else "threshold",
            "bg_threshold": best["threshold"],  # the best constant, also for maps with their own background
            "sweep": {f"{r['threshold']:.2f}": r["miou"] for r in sweep.results(names)},
            "at_reference_threshold": {"bg_threshold": cfg.cam_bg_threshold,
                                       **M.segmentation_scores(at_reference.matrix, names)},
        }
        if with_crf is not None:
            result["crf"] = with_crf.result()
        guards.flag(result, "evaluate_seeds")
        metrics_files.write(out, result)
        metrics_files.log(run, out, result)
        _log_overlays(run, dataset, maps, best["threshold"], tracking.num_overlays)
        where = "with its own background map" if own_background else f"at background threshold {best['threshold']}"
        print(f"evaluate_seeds: {result['method']} mIoU {result['miou']:.4f} {where}")


def _log_overlays(run, dataset, maps: str, threshold: float, count: int) -> None:
    rows = []
    for image_id in dataset.ids[:count]:
        scores, class_ids, background = load_score_map(f"{maps}/{image_id}.npz")
        pred = seeds_mask(scores, class_ids, background, threshold)
        rows.append(overlay_panels(dataset.load_image(image_id), scores, pred, dataset.load_mask(image_id)))
    if rows:
        run.log_image(gallery(rows), "overlays.png")

