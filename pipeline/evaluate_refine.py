"""Stage `evaluate_refine`: score the pseudo masks on the evaluation split.

mIoU with per-class IoU / precision / recall, boundary F1 and co-occurrence confusion, as DVC
metrics JSON and in MLflow.
"""

from tqdm import tqdm

from pipeline.paths import PSEUDO_MASKS, REFINE_METRICS
from wsss.errors import DataError
from wsss.evaluation import MaskEvaluation
from wsss.io import read_label_png, write_json
from wsss.metrics import format_cell
from wsss.stage import load_params, open_split, run_main
from wsss.tracking import stage_run
from wsss.visualize import gallery, overlay_panels

SECTIONS = ["dataset", "seeds.method", "refine.method", "evaluate"]


def main() -> None:
    params = load_params()
    dataset = open_split(params, params["dataset"]["eval_split"])
    method = params["refine"]["method"]
    with stage_run("evaluate_refine", params, SECTIONS) as run:
        evaluation = MaskEvaluation(dataset, params["evaluate"]["boundary_tolerance"])
        examples = []
        for image_id in tqdm(dataset.ids, desc="evaluate_refine", disable=not params["project"]["progress"]):
            gt = dataset.load_mask(image_id)
            if gt is None:
                continue
            mask = read_label_png(f"{PSEUDO_MASKS}/{image_id}.png")
            if mask.shape != gt.shape:
                raise DataError(f"{PSEUDO_MASKS}/{image_id}.png: pseudo mask {mask.shape} differs from the "
                                f"ground truth of image {image_id} {gt.shape}")
            evaluation.update(gt, mask, dataset.load_context(image_id))
            if len(examples) < params["tracking"]["num_overlays"]:
                examples.append(overlay_panels(dataset.load_image(image_id), None, mask, gt))
        if evaluation.images == 0:
            raise DataError(f"split '{params['dataset']['eval_split']}' has no image with a ground-truth mask")
        result = {"stage": "refine", "method": f"{params['seeds']['method']}+{method}",
                  "split": params["dataset"]["eval_split"], **evaluation.result()}
        write_json(REFINE_METRICS, result)
        run.set_tag("wsss.method", result["method"])  # what `wsss report` groups by
        run.log_metrics({k: v for k, v in result.items() if k not in ("stage", "method", "split")})
        run.log_headline({f"refine.{method}.miou": result["miou"], "refine.boundary_f1": result["boundary"]["f1"]})
        run.log_artifact(REFINE_METRICS)
        if examples:
            run.log_image(gallery(examples), "overlays.png")
        print(f"evaluate_refine: {result['method']} mIoU {result['miou']:.4f}, "
              f"boundary F1 {format_cell(result['boundary']['f1'])}")  # None: no boundary anywhere


if __name__ == "__main__":
    run_main(main)
