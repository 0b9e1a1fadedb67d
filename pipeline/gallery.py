"""Stage `gallery` (also `wsss gallery`): chosen images of the pseudo-mask split side by side with
every stage's label map, as one self-contained HTML page (results/gallery/index.html) and the same
grid as a picture (results/gallery/gallery.png, and in the stage's MLflow run).

Rows (wsss.gallery.choose): the `tracking.gallery` worst and best images by the per-image IoU of
the final pseudo masks (the ones `segment.masks` names), found in one streaming pass that keeps
only the scores, and a sample seeded by `project.seed`; or the ids given on the command line.
Columns: image | ground truth | seeds (against evaluate_seeds' best background threshold, or the
method's own background map) | IRN | CRF | PAMR | PtReCl | segmentation. The configured
`refine.method`'s panel is the refine stage's mask on disk; the other refinements are computed here
for the chosen images with the refine stage's own code (pipeline.refine.make_refiner), IRN from the
stored boundary maps. A column whose inputs are missing is left out, and the page says why.

    python -m pipeline.gallery                      # the stage: results/gallery/, logged to MLflow
    python -m pipeline.gallery --out page.html [--ids ID ...] [--worst N --best N --sample N]
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

import numpy as np

from pipeline.refine import background_threshold, make_refiner, seeds_threshold
from wsss.layout import (GALLERY, IRN_BOUNDARIES, PSEUDO_MASKS, PTRECL_MASKS, SEED_MAPS, SEEDS_METRICS, SEGMENT_LABELS,
                         SEGMENTER_WEIGHTS, rerun_hint)
from wsss import gallery as G
from wsss.errors import DataError, ParamsError
from wsss.io import atomic_dir, atomic_path, load_image_scores, read_label_png
from wsss.metrics import image_iou
from wsss.progress import progress_bar
from wsss.refine.pseudo_masks import seeds_mask
from wsss.stage import load_params, open_split, run_main

SECTIONS = ["project.seed", "project.device", "dataset", "seeds.method", "seeds.backbone", "refine.method",
            "refine.bg_threshold", "refine.crf", "refine.pamr", "refine.irn.walk", "segment.masks", "segment.head",
            "segment.rates", "segment.infer", "tracking.gallery"]
REFINEMENTS = {"irn": "IRN", "crf": "CRF", "pamr": "PAMR", "none": "no refinement"}  # refine.method -> title
PAGE, PICTURE = "index.html", "gallery.png"


def read_mask(folder: str, image_id: str, gt: np.ndarray) -> np.ndarray:
    path = f"{folder}/{image_id}.png"
    mask = read_label_png(path)
    if mask.shape != gt.shape:
        raise DataError(f"{path}: mask {mask.shape} differs from the ground truth of image {image_id} {gt.shape}")
    return mask


def rank(params: dict, dataset, folder: str) -> dict[str, float | None]:
    """Per-image IoU of the masks in `folder` over the images with a ground truth: one pass, one
    image at a time, only the scores kept."""
    scores = {}
    for image_id in progress_bar(params, dataset.ids, desc="gallery (ranking)"):
        gt = dataset.load_mask(image_id)
        if gt is not None:
            scores[image_id] = image_iou(gt, read_mask(folder, image_id, gt), dataset.num_classes)
    return scores


def columns(params: dict, device) -> tuple[list[tuple[str, object]], list[str]]:
    """[(column title, function (image id, image, gt, seeds) -> label map)] of the mask columns whose
    inputs exist, and a note for each column left out or computed here."""
    found, notes = [], []
    method = params["refine"]["method"]
    have_seeds = Path(SEED_MAPS).is_dir()
    if not have_seeds:
        notes.append(f"seeds and the refinements computed here left out: no {SEED_MAPS} (stage seeds)")
    elif not Path(SEEDS_METRICS).is_file():
        notes.append(f"seeds left out: no {SEEDS_METRICS} with evaluate_seeds' best background threshold")
    else:
        threshold = seeds_threshold()
        found.append((f"seeds ({params['seeds']['method']})",
                      lambda _id, _image, _gt, s: seeds_mask(s.scores, s.class_ids, s.background, threshold)))
        notes.append(f"seeds: against evaluate_seeds' best background threshold {threshold:g} "
                     "(or the seed method's own background map)")
    computed = False
    for name in ["irn", "crf", "pamr", *([method] if method == "none" else [])]:  # `none`: its masks only
        title = f"{REFINEMENTS[name]} (refine stage)" if name == method else f"{REFINEMENTS[name]} (computed)"
        if name == method:
            if Path(PSEUDO_MASKS).is_dir():
                found.append((title, lambda image_id, _image, gt, _s: read_mask(PSEUDO_MASKS, image_id, gt)))
            else:
                notes.append(f"{title} left out: no {PSEUDO_MASKS} (stage refine)")
            continue
        missing = _missing_refinement_inputs(params, name, have_seeds)
        if missing:
            notes.append(f"{title} left out: {missing}")
            continue
        refine = make_refiner(dict(params, refine=dict(params["refine"], method=name)), device)
        found.append((title, lambda image_id, image, _gt, s, refine=refine: refine(image_id, image, s.scores,
                                                                                   s.class_ids, s.background)))
        computed = True
    if computed:
        notes.append(f"refinements marked (computed) were run here on the shown images with the refine stage's "
                     f"code and params (refine.{{crf,pamr,irn.walk}}); refine.method is {method}")
    if Path(PTRECL_MASKS).is_dir():
        found.append(("PtReCl", lambda image_id, _image, gt, _s: read_mask(PTRECL_MASKS, image_id, gt)))
    else:
        notes.append(f"PtReCl left out: no {PTRECL_MASKS} (stage ptrecl)")
    return found, notes


def _missing_refinement_inputs(params: dict, name: str, have_seeds: bool) -> str | None:
    if not have_seeds:
        return f"no {SEED_MAPS}"
    if name == "irn":
        return None if Path(IRN_BOUNDARIES).is_dir() else f"no {IRN_BOUNDARIES} (stage irn_boundaries)"
    try:
        background_threshold(params)
    except ParamsError as exc:
        return str(exc)
    return None


def choose_rows(params: dict, dataset, ids: list[str] | None, counts: dict):
    """(rows as (image id, groups), the per-image scores or None, notes): the ids given, or
    tracking.gallery's (`counts`) worst, best and sample."""
    split, final = params["dataset"]["eval_split"], SEGMENT_LABELS[params["segment"]["masks"]]
    if ids is not None:
        known = set(dataset.ids)
        unknown = [i for i in ids if i not in known]
        if unknown:
            raise DataError(f"image id {unknown[0]!r} is not in split {split!r} (dataset.eval_split)")
        return [(i, ["chosen"]) for i in dict.fromkeys(ids)], None, []
    if not any(counts.values()):
        raise ParamsError("params.yaml: 'tracking.gallery' chooses no image (worst, best and sample are all 0)")
    notes = []
    scores = rank(params, dataset, final) if Path(final).is_dir() else None
    if scores is None:
        notes.append(f"no worst / best rows: no {final} to rank the images by (segment.masks)")
    with_gt = list(scores) if scores is not None else [i for i in dataset.ids if dataset.load_mask(i) is not None]
    chosen = G.choose(with_gt, scores, counts["worst"], counts["best"], counts["sample"], params["project"]["seed"])
    if not chosen:
        raise DataError(f"split {split!r} has no image with a ground-truth mask to show")
    return chosen, scores, notes


def build(params: dict, ids: list[str] | None, counts: dict) -> tuple[str, np.ndarray, int]:
    """(the HTML page, the same grid as a picture, the number of rows)."""
    from wsss.device import resolve_device
    from wsss.segmenter import Segmenter

    split = params["dataset"]["eval_split"]
    dataset = open_split(params, split)
    chosen, scores, notes = choose_rows(params, dataset, ids, counts)
    device = resolve_device(params["project"]["device"])
    masks, column_notes = columns(params, device)
    notes += column_notes
    segmenter = None
    if Path(SEGMENTER_WEIGHTS).is_file():
        segmenter = Segmenter.from_project(params, dataset.class_names, SEGMENTER_WEIGHTS, device,
                                           rerun_hint(SEGMENTER_WEIGHTS))
    else:
        notes.append(f"segmentation left out: no {SEGMENTER_WEIGHTS} (stage train_segmentation)")
    titles = ["image", "ground truth", *(title for title, _ in masks), *(["segmentation"] if segmenter else [])]
    rows = []
    for image_id, groups in progress_bar(params, chosen, desc="gallery (panels)"):
        gt = dataset.load_mask(image_id)
        if gt is None:
            raise DataError(f"image {image_id} has no ground-truth mask: the gallery shows only images with one")
        image = dataset.load_image(image_id)
        seeds = load_image_scores(SEED_MAPS, image_id, gt.shape) if Path(SEED_MAPS).is_dir() else None
        row = G.Row(image_id, groups, {"image": G.Panel(image), "ground truth": G.mask_panel(gt)})
        predictions = [(title, make(image_id, image, gt, seeds)) for title, make in masks]
        if segmenter is not None:
            predictions.append(("segmentation", segmenter.segment(image)))
        for title, mask in predictions:
            row.panels[title] = G.mask_panel(mask, G.iou_caption(image_iou(gt, mask, dataset.num_classes)))
        if scores is not None:
            row.note = f"final masks ({params['segment']['masks']}) {G.iou_caption(scores[image_id])}"
        rows.append(row)
    header = {"split": f"{split} ({params['dataset']['name']})", "seeds.method": params["seeds"]["method"],
              "refine.method": params["refine"]["method"], "segment.masks": params["segment"]["masks"],
              "rows": "the ids given" if ids is not None else
              f"worst {counts['worst']}, best {counts['best']} by per-image IoU of "
              f"{SEGMENT_LABELS[params['segment']['masks']]} "
              f"({len(scores or {})} images ranked), sample {counts['sample']} (seed {params['project']['seed']})",
              # no commit: the page is a DVC output and must be the same bytes whatever commit made it
              # (the stage's MLflow run carries the commit)
              "IoU": "per image: mean over the classes in its ground truth or prediction, 255 ignored"}
    return G.html_page(rows, titles, dataset.class_names, header, notes), G.picture(rows, titles), len(rows)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="the gallery page (stage gallery, `wsss gallery`)")
    parser.add_argument("--out", default=None, help=f"write the page here, without MLflow (default: the stage's "
                        f"{GALLERY}/{PAGE} and {PICTURE}, logged to MLflow)")
    parser.add_argument("--ids", nargs="+", default=None, help="show these image ids (of dataset.eval_split)")
    for group in ("worst", "best", "sample"):
        parser.add_argument(f"--{group}", type=int, default=None, help=f"overrides tracking.gallery.{group}")
    args = parser.parse_args(argv)
    params = load_params()
    counts = {g: getattr(args, g) if getattr(args, g) is not None else params["tracking"]["gallery"][g]
              for g in ("worst", "best", "sample")}
    if any(n < 0 for n in counts.values()):
        raise ParamsError(f"--worst, --best and --sample must not be negative, got {counts}")
    if args.out is not None:
        page, _, count = build(params, args.ids, counts)
        with atomic_path(args.out) as tmp:
            tmp.write_text(page, encoding="utf-8")
        print(f"gallery: {count} rows in {args.out} (open it in a browser: file://{os.path.abspath(args.out)})")
        return
    from wsss.tracking import stage_run

    with stage_run("gallery", params, SECTIONS) as run, atomic_dir(GALLERY) as out:
        page, grid, count = build(params, args.ids, counts)
        (out / PAGE).write_text(page, encoding="utf-8")
        (out / PICTURE).write_bytes(G.png_bytes(grid))
        run.log_image(grid, PICTURE)
        run.log_artifact(out / PAGE)
        run.log_metrics({"rows": count})
    print(f"gallery: {count} rows in {GALLERY}/{PAGE} (open it in a browser), the grid in {GALLERY}/{PICTURE}")


if __name__ == "__main__":
    run_main(main)
