"""Stage `evaluate_segmentation`: the trained DeepLab on the val split (docs/methods.md §9): mIoU,
boundary F1 and co-occurrence confusion, with `segment.infer`'s scales, flip and optional CRF.
Its label map of every val image goes to `artifacts/segment/predictions/<id>.png` (VOC palette):
what `wsss predict` and the served model reproduce pixel for pixel. The network is then
registered in MLflow's Model Registry with its lineage (wsss.registry, `tracking.registered_model`)."""

from pathlib import Path

from wsss.layout import SEGMENT_METRICS, SEGMENT_PREDICTIONS, SEGMENTER_WEIGHTS, rerun_hint
from wsss.device import resolve_device
from wsss.errors import DataError
from wsss.evaluation import MaskEvaluation
from wsss import metrics_files
from wsss.io import atomic_dir, write_palette_png
from wsss.metrics import format_cell
from wsss.progress import progress_bar
from wsss.registry import register_segmentation_model
from wsss.segmenter import Segmenter
from wsss.stage import load_params, open_split, run_main
from wsss.tracking import stage_run
from wsss.visualize import gallery, overlay_panels

SECTIONS = ["project", "dataset", "seeds.method", "refine.method", "seeds.backbone", "segment", "refine.crf",
            "evaluate"]


def main() -> None:
    params = load_params()
    cfg = params["segment"]
    device = resolve_device(params["project"]["device"])
    dataset = open_split(params, params["dataset"]["val_split"])
    segmenter = Segmenter.from_project(params, dataset.class_names, SEGMENTER_WEIGHTS, device,
                                       rerun_hint(SEGMENTER_WEIGHTS))
    masks = f"{params['seeds']['method']}+{params['refine']['method']}" + ("+ptrecl" if cfg["masks"] == "ptrecl" else "")
    method = f"{masks}+deeplab{cfg['head']}"  # the pseudo masks it learnt from, then the network
    with stage_run("evaluate_segmentation", params, SECTIONS) as run, atomic_dir(SEGMENT_PREDICTIONS) as out:
        evaluation = MaskEvaluation(dataset, params["evaluate"]["boundary_tolerance"])
        examples = []
        for image_id in progress_bar(params, dataset.ids, desc="evaluate_segmentation"):
            image = dataset.load_image(image_id)
            pred = segmenter.segment(image)
            write_palette_png(Path(out) / f"{image_id}.png", pred)
            gt = dataset.load_mask(image_id)
            if gt is None:
                continue
            evaluation.update(gt, pred, dataset.load_context(image_id))
            if len(examples) < params["tracking"]["num_overlays"]:
                examples.append(overlay_panels(image, None, pred, gt))
        if evaluation.images == 0:
            raise DataError(f"split '{params['dataset']['val_split']}' has no image with a ground-truth mask")
        result = {"stage": "segment", "method": method, "split": params["dataset"]["val_split"], **evaluation.result(),
                  # pixels, rows = ground truth, columns = prediction, in per_class order: its DVC plot
                  "confusion": evaluation.confusion.matrix.tolist()}
        metrics_files.write(SEGMENT_METRICS, result)
        metrics_files.log(run, SEGMENT_METRICS, result)
        if examples:
            run.log_image(gallery(examples), "predictions.png")
        register_segmentation_model(run, params, segmenter=segmenter.to("cpu"))
        # boundary F1 is None when neither prediction nor ground truth has a boundary
        print(f"evaluate_segmentation: {method} val mIoU {result['miou']:.4f}, boundary F1 "
              f"{format_cell(result['boundary']['f1'])}")


if __name__ == "__main__":
    run_main(main)
