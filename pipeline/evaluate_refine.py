"""Stage `evaluate_refine`: score the pseudo masks on the evaluation split.

mIoU with per-class IoU / precision / recall, boundary F1 and co-occurrence confusion, as DVC
metrics JSON and in MLflow.
"""


from wsss.layout import PSEUDO_MASKS, REFINE_METRICS
from wsss.errors import DataError
from wsss.evaluation import MaskEvaluation
from wsss import metrics_files
from wsss.io import read_label_png
from wsss.metrics import format_cell
from wsss.progress import progress_bar
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
        for image_id in progress_bar(params, dataset.ids, desc="evaluate_refine"):
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
        metrics_files.write(REFINE_METRICS, result)
        metrics_files.log(run, REFINE_METRICS, result)
        if examples:
            run.log_image(gallery(examples), "overlays.png")
        print(f"evaluate_refine: {result['method']} mIoU {result['miou']:.4f}, "
              f"boundary F1 {format_cell(result['boundary']['f1'])}")  # None: no boundary anywhere


if __name__ == "__main__":
    run_main(main)
