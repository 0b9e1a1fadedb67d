"""Stage `refine`: seed maps to pseudo masks by the method `refine.method` chooses.

irn (random walk on IRN's stored boundary map, stage irn_boundaries), crf (dense CRF), pamr, or none (the seeds with their
background: the method's own map when the seeds carry one, else a constant score). One palette
PNG per training image. Sharded over `project.devices` processes, resumable (wsss.sharding).
"""

import torch

from wsss.layout import IRN_BOUNDARIES, PSEUDO_MASKS, SEED_MAPS, SEEDS_METRICS
from wsss.errors import DataError, ParamsError
from wsss.io import load_boundary_map, load_image_scores, read_json, read_label_png, write_palette_png
from wsss.refine import pseudo_masks
from wsss.refine.crf import CRFParams
from wsss.refine.pamr import PAMR
from wsss.sharding import ShardedStage, stage_deps
from wsss.stage import load_params, open_split, run_main
from wsss.tracking import stage_run
from wsss.visualize import gallery, overlay_panels

SECTIONS = ["project", "dataset", "refine.method", "refine.bg_threshold", "refine.crf", "refine.pamr",
            "refine.irn.walk"]


def seeds_threshold() -> float:
    """The background threshold evaluate_seeds chose (the best of its sweep, metrics/seeds.json)."""
    try:
        return float(read_json(SEEDS_METRICS)["bg_threshold"])
    except Exception as exc:
        raise DataError(f"{SEEDS_METRICS} has no best background threshold ({exc}); run evaluate_seeds") from exc


def background_threshold(params: dict) -> float:
    value = params["refine"]["bg_threshold"]
    if value != "auto":
        return float(value)
    try:
        return seeds_threshold()
    except DataError as exc:
        raise ParamsError(f"params.yaml: 'refine.bg_threshold' is auto but {SEEDS_METRICS} has no best "
                          f"threshold ({exc.__cause__}); run evaluate_seeds or give a number") from exc


def irn_refiner(params: dict, device: torch.device, bg_score: float):
    """(image id, scores, class ids) -> IRN's pseudo mask: the random walk of `refine.irn.walk` on
    the image's stored boundary map (stage irn_boundaries), against the constant background
    `bg_score`."""
    walk = params["refine"]["irn"]["walk"]

    def irn(image_id, scores, class_ids):
        boundary = torch.from_numpy(load_boundary_map(IRN_BOUNDARIES, image_id)).to(device)
        return pseudo_masks.irn_mask(boundary, scores, class_ids, walk["radius"], walk["beta"], walk["exp_times"],
                                     bg_score)
    return irn


def make_refiner(params: dict, device: torch.device):
    """A function (image id, image, scores, class ids, background map or None) -> mask for the
    configured method; crf / pamr / none use the seeds' background map where there is one."""
    cfg = params["refine"]
    method = cfg["method"]
    if method == "irn":
        irn = irn_refiner(params, device, cfg["irn"]["walk"]["bg_score"])
        return lambda image_id, _image, scores, class_ids, _background: irn(image_id, scores, class_ids)
    bg = background_threshold(params)
    if method == "crf":
        crf = CRFParams(**cfg["crf"])
        return lambda _id, image, scores, class_ids, own: pseudo_masks.crf_mask(
            image, scores, class_ids, bg if own is None else own, crf)
    if method == "pamr":
        pamr = PAMR(cfg["pamr"]["num_iter"], cfg["pamr"]["dilations"], cfg["pamr"]["sigma"]).to(device)
        return lambda _id, image, scores, class_ids, own: pseudo_masks.pamr_mask(
            image, scores, class_ids, bg if own is None else own, pamr, device)
    return lambda _id, _image, scores, class_ids, own: pseudo_masks.seeds_mask(scores, class_ids, own, bg)


def make_worker(params: dict, device: torch.device, dataset):
    """(image id, [masks folder]) -> that image's pseudo mask, written."""
    refine = make_refiner(params, device)

    def worker(image_id, folders):
        image = dataset.load_image(image_id)
        scores, class_ids, background = load_image_scores(SEED_MAPS, image_id, image.shape[:2])
        write_palette_png(folders[0] / f"{image_id}.png", refine(image_id, image, scores, class_ids, background))
    return worker


def main() -> None:
    params = load_params()
    dataset = open_split(params, params["dataset"]["train_split"])
    method = params["refine"]["method"]
    stage = ShardedStage("refine", params, SECTIONS, dataset, dataset.ids, {PSEUDO_MASKS: ".png"}, make_worker,
                         stage_deps("refine", params))
    with stage_run("refine", params, SECTIONS) as run:
        run.set_tag("wsss.refine_method", method)
        stage.run()
        examples = []
        for image_id in dataset.ids[:params["tracking"]["num_overlays"]]:
            image = dataset.load_image(image_id)
            scores = load_image_scores(SEED_MAPS, image_id, image.shape[:2]).scores
            mask = read_label_png(f"{PSEUDO_MASKS}/{image_id}.png")
            examples.append(overlay_panels(image, scores, mask, dataset.load_mask(image_id)))
        if examples:
            run.log_image(gallery(examples), "pseudo_masks.png")
        run.log_metrics({"num_images": len(dataset.ids)})
        print(f"refine: {method} wrote {len(dataset.ids)} pseudo masks to {PSEUDO_MASKS}")


if __name__ == "__main__":
    run_main(main)
