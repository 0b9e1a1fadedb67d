"""Stage `evaluate_seeds`: score the seed maps as pseudo masks on the evaluation split.

Reports the background-threshold sweep (and its best threshold), the figure at the reference
threshold, boundary F1, co-occurrence confusion (when the data set has context masks) and the
two trivial baselines, as DVC metrics JSON and in MLflow.
"""

import numpy as np
from tqdm import tqdm

from pipeline.paths import SEED_MAPS, SEEDS_METRICS
from wsss import metrics as M
from wsss.errors import DataError
from wsss.io import load_score_map, write_json
from wsss.stage import load_params, open_split, run_main
from wsss.tracking import stage_run
from wsss.visualize import overlay_row

SECTIONS = ["dataset", "seeds.method", "evaluate"]


def threshold_prediction(scores: np.ndarray, class_ids: np.ndarray, threshold: float) -> np.ndarray:
    """Pseudo mask: the labelled class of highest score, background where all are <= threshold."""
    if len(class_ids) == 0:
        return np.zeros(scores.shape[1:], dtype=np.uint8)
    stacked = np.concatenate([np.full((1, *scores.shape[1:]), threshold, np.float32), scores])
    labels = np.concatenate([[0], class_ids])
    return labels[stacked.argmax(axis=0)].astype(np.uint8)


def main() -> None:
    params = load_params()
    cfg = params["evaluate"]
    dataset = open_split(params, params["dataset"]["eval_split"])
    names = dataset.class_names
    sweep = M.ThresholdSweep(dataset.num_classes, cfg["bg_thresholds"])
    at_default = M.ConfusionAccumulator(dataset.num_classes)
    boundary = M.BoundaryAccumulator(tolerance=cfg["boundary_tolerance"])
    baselines = {name: M.ConfusionAccumulator(dataset.num_classes) for name in ("all_background", "labelled_class")}
    context_names = getattr(dataset, "context_names", None)
    cooc = M.CooccurrenceAccumulator(dataset.num_classes, len(context_names)) if context_names else None
    with stage_run("evaluate_seeds", params, SECTIONS) as run:
        scored = 0
        for image_id in tqdm(dataset.ids, desc="evaluate_seeds", disable=not params["project"]["progress"]):
            gt = dataset.load_mask(image_id)
            if gt is None:
                continue  # no ground truth for this image (e.g. VOC train_aug without SBD mask)
            scores, class_ids = load_score_map(f"{SEED_MAPS}/{image_id}.npz")
            if scores.shape[1:] != gt.shape:
                raise DataError(f"{SEED_MAPS}/{image_id}.npz: score map size {scores.shape[1:]} "
                                f"differs from the mask of image {image_id} {gt.shape}")
            sweep.update(gt, scores, class_ids)
            pred = threshold_prediction(scores, class_ids, cfg["cam_bg_threshold"])
            at_default.update(gt, pred)
            boundary.update(gt, pred)
            if cooc is not None:
                cooc.update(dataset.load_context(image_id), gt, pred)
            baselines["all_background"].update(gt, M.all_background_prediction(gt.shape))
            baselines["labelled_class"].update(gt, M.labelled_class_prediction(gt.shape, class_ids))
            scored += 1
        if scored == 0:
            raise DataError(f"split '{params['dataset']['eval_split']}' has no image with a ground-truth mask")
        best = sweep.best(names)
        result = {
            "stage": "seeds",
            "method": params["seeds"]["method"],
            "split": params["dataset"]["eval_split"],
            "num_images": scored,
            "miou": best["miou"],
            "bg_threshold": best["threshold"],
            "sweep": {f"{r['threshold']:.2f}": r["miou"] for r in sweep.results(names)},
            "at_reference_threshold": {
                "bg_threshold": cfg["cam_bg_threshold"],
                **M.segmentation_scores(at_default.matrix, names),
            },
            "pixel_accuracy": best["scores"]["pixel_accuracy"],
            "per_class": best["scores"]["per_class"],  # IoU, precision, recall at the best threshold
            "boundary": boundary.result(),
            "baselines": {k: M.segmentation_scores(v.matrix, names) for k, v in baselines.items()},
        }
        if cooc is not None:
            result["cooccurrence"] = cooc.result(names, context_names)
        write_json(SEEDS_METRICS, result)
        run.log_metrics({k: v for k, v in result.items() if k not in ("stage", "method", "split")})
        run.log_headline({f"seeds.{result['method']}.miou": result["miou"],
                          "seeds.bg_threshold": result["bg_threshold"]})
        run.log_artifact(SEEDS_METRICS)
        _log_overlays(run, dataset, best["threshold"], params["tracking"]["num_overlays"])
        print(f"evaluate_seeds: CAM mIoU {best['miou']:.4f} at background threshold {best['threshold']}")


def _log_overlays(run, dataset, threshold: float, count: int) -> None:
    rows = []
    for image_id in dataset.ids[:count]:
        scores, class_ids = load_score_map(f"{SEED_MAPS}/{image_id}.npz")
        pred = threshold_prediction(scores, class_ids, threshold)
        rows.append(overlay_row(dataset.load_image(image_id), scores, pred, dataset.load_mask(image_id)))
    if rows:
        run.log_image(np.concatenate(rows, axis=0), "overlays.png")


if __name__ == "__main__":
    run_main(main)
