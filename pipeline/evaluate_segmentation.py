"""Stage `evaluate_segmentation`: the trained DeepLab on the val split (docs/methods.md §9): mIoU,
boundary F1 and co-occurrence confusion, with `segment.infer`'s scales, flip and optional CRF."""

import numpy as np

from pipeline.paths import SEGMENT_METRICS, SEGMENTER_WEIGHTS, load_stage_weights
from pipeline.train_recovery import deeplab_network
from wsss.data.transforms import to_tensor
from wsss.device import resolve_device
from wsss.errors import DataError
from wsss.evaluation import MaskEvaluation
from wsss import metrics_files
from wsss.metrics import format_cell
from wsss.models.deeplab import predict
from wsss.progress import progress_bar
from wsss.refine.crf import CRFParams, crf_from_probabilities
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
    model = deeplab_network(params, "segment", dataset.num_classes, for_training=False)
    load_stage_weights(model, SEGMENTER_WEIGHTS)
    model = model.to(device).eval()
    crf = CRFParams(**params["refine"]["crf"]) if cfg["infer"]["crf"] else None
    masks = f"{params['seeds']['method']}+{params['refine']['method']}" + ("+ptrecl" if cfg["masks"] == "ptrecl" else "")
    method = f"{masks}+deeplab{cfg['head']}"  # the pseudo masks it learnt from, then the network
    with stage_run("evaluate_segmentation", params, SECTIONS) as run:
        evaluation = MaskEvaluation(dataset, params["evaluate"]["boundary_tolerance"])
        examples = []
        for image_id in progress_bar(params, dataset.ids, desc="evaluate_segmentation"):
            gt = dataset.load_mask(image_id)
            if gt is None:
                continue
            image = dataset.load_image(image_id)
            probs = predict(model, to_tensor(image).to(device), cfg["infer"]["scales"], cfg["infer"]["hflip"])
            probs = probs.cpu().numpy()
            if crf is not None:
                probs = crf_from_probabilities(image, probs, crf)
            pred = probs.argmax(axis=0).astype(np.uint8)
            evaluation.update(gt, pred, dataset.load_context(image_id))
            if len(examples) < params["tracking"]["num_overlays"]:
                examples.append(overlay_panels(image, None, pred, gt))
        if evaluation.images == 0:
            raise DataError(f"split '{params['dataset']['val_split']}' has no image with a ground-truth mask")
        result = {"stage": "segment", "method": method, "split": params["dataset"]["val_split"], **evaluation.result()}
        metrics_files.write(SEGMENT_METRICS, result)
        metrics_files.log(run, SEGMENT_METRICS, result)
        if examples:
            run.log_image(gallery(examples), "predictions.png")
        # boundary F1 is None when neither prediction nor ground truth has a boundary
        print(f"evaluate_segmentation: {method} val mIoU {result['miou']:.4f}, boundary F1 "
              f"{format_cell(result['boundary']['f1'])}")


if __name__ == "__main__":
    run_main(main)
