"""Stage `gallery` (also `wsss gallery`): chosen images of the pseudo-mask split side by side with
every stage's label map, as one self-contained HTML page (results/gallery/index.html) and the same
grid as a picture (results/gallery/gallery.png, and in the stage's MLflow run).

Rows (wsss.serve.gallery.choose): the `tracking.gallery` worst and best images by the per-image IoU
of the final pseudo masks (the ones `segment.masks` names), found in one streaming pass that keeps
only the scores, and a sample seeded by `project.seed`; or the ids given to `wsss gallery`.
Columns: image | ground truth | seeds (against evaluate_seeds' best background threshold, or the
method's own background map) | IRN | CRF | PAMR | PtReCl | segmentation. The configured
`refine.method`'s panel is the refine stage's mask on disk; the other refinements are computed here
for the chosen images with the refine stage's own code (wsss.stages.refiners), IRN from the stored
boundary maps. A column whose inputs are missing is left out, and the page says why.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from wsss.core.device import resolve_device
from wsss.core.dvcfile import ArtifactPaths, pipeline
from wsss.core.errors import DataError, ParamsError
from wsss.core.io import atomic_dir, atomic_path, load_image_scores
from wsss.core.params import (
    DatasetParams,
    GalleryParams,
    ProjectParams,
    RefineMethod,
    RefineParams,
    SeedsParams,
    SegmentParams,
)
from wsss.core.progress import progress_bar
from wsss.data.registry import open_split
from wsss.evaluation.masks import read_mask, with_ground_truth
from wsss.evaluation.metrics import image_iou
from wsss.methods.pseudo_masks import seeds_mask
from wsss.methods.segmenter import Segmenter
from wsss.serve import gallery as G
from wsss.stages.common import Stage
from wsss.stages.refiners import background_threshold, refiner, seeds_threshold

REFINEMENTS: dict[RefineMethod, str] = {"irn": "IRN", "crf": "CRF", "pamr": "PAMR", "none": "no refinement"}
PAGE, PICTURE = "index.html", "gallery.png"


@dataclass(frozen=True)
class GallerySettings:
    """What the page shows and how: the params sections the gallery reads."""

    project: ProjectParams
    dataset: DatasetParams
    seeds: SeedsParams
    refine: RefineParams
    segment: SegmentParams
    paths: ArtifactPaths


def rank(settings: GallerySettings, dataset, folder: str) -> dict[str, float | None]:
    """Per-image IoU of the masks in `folder` over the images with a ground truth: one pass, one
    image at a time, only the scores kept."""
    return {image_id: image_iou(gt, read_mask(folder, image_id, gt, "mask"), dataset.num_classes)
            for image_id, gt in with_ground_truth(dataset, settings.project.progress, "gallery (ranking)")}


def columns(settings: GallerySettings, device) -> tuple[list[tuple[str, object]], list[str]]:
    """[(column title, function (image id, image, gt, seeds) -> label map)] of the mask columns whose
    inputs exist, and a note for each column left out or computed here."""
    found, notes = [], []
    paths, method = settings.paths, settings.refine.method
    have_seeds = Path(paths.seed_maps).is_dir()
    if not have_seeds:
        notes.append(f"seeds and the refinements computed here left out: no {paths.seed_maps} (stage seeds)")
    elif not Path(paths.seeds_metrics).is_file():
        notes.append(f"seeds left out: no {paths.seeds_metrics} with evaluate_seeds' best background threshold")
    else:
        threshold = seeds_threshold(paths)
        found.append((f"seeds ({settings.seeds.method})",
                      lambda _id, _image, _gt, s: seeds_mask(s.scores, s.class_ids, s.background, threshold)))
        notes.append(f"seeds: against evaluate_seeds' best background threshold {threshold:g} "
                     "(or the seed method's own background map)")
    computed = False
    for name in ["irn", "crf", "pamr", *([method] if method == "none" else [])]:  # `none`: its masks only
        title = f"{REFINEMENTS[name]} (refine stage)" if name == method else f"{REFINEMENTS[name]} (computed)"
        if name == method:
            if Path(paths.pseudo_masks).is_dir():
                found.append((title, lambda image_id, _image, gt, _s: read_mask(paths.pseudo_masks, image_id, gt,
                                                                                "mask")))
            else:
                notes.append(f"{title} left out: no {paths.pseudo_masks} (stage refine)")
            continue
        missing = _missing_refinement_inputs(settings, name, have_seeds)
        if missing:
            notes.append(f"{title} left out: {missing}")
            continue
        refine = refiner(settings.refine, name, paths, device)
        found.append((title, lambda image_id, image, _gt, s, refine=refine: refine(image_id, image, s.scores,
                                                                                   s.class_ids, s.background)))
        computed = True
    if computed:
        notes.append(f"refinements marked (computed) were run here on the shown images with the refine stage's "
                     f"code and params (refine.{{crf,pamr,irn.walk}}); refine.method is {method}")
    if Path(paths.ptrecl_masks).is_dir():
        found.append(("PtReCl", lambda image_id, _image, gt, _s: read_mask(paths.ptrecl_masks, image_id, gt, "mask")))
    else:
        notes.append(f"PtReCl left out: no {paths.ptrecl_masks} (stage ptrecl)")
    return found, notes


def _missing_refinement_inputs(settings: GallerySettings, name: str, have_seeds: bool) -> str | None:
    paths = settings.paths
    if not have_seeds:
        return f"no {paths.seed_maps}"
    if name == "irn":
        return None if Path(paths.irn_boundaries).is_dir() else f"no {paths.irn_boundaries} (stage irn_boundaries)"
    try:
        background_threshold(settings.refine, paths)
    except ParamsError as exc:
        return str(exc)
    return None


def choose_rows(settings: GallerySettings, dataset, ids: list[str] | None, counts: GalleryParams):
    """(rows as (image id, groups), the per-image scores or None, notes): the ids given, or
    tracking.gallery's (`counts`) worst, best and sample."""
    split = settings.dataset.eval_split
    final = settings.paths.segment_labels(settings.segment.masks)
    if ids is not None:
        known = set(dataset.ids)
        unknown = [i for i in ids if i not in known]
        if unknown:
            raise DataError(f"image id {unknown[0]!r} is not in split {split!r} (dataset.eval_split)")
        return [(i, ["chosen"]) for i in dict.fromkeys(ids)], None, []
    if not (counts.worst or counts.best or counts.sample):
        raise ParamsError("params.yaml: 'tracking.gallery' chooses no image (worst, best and sample are all 0)")
    notes = []
    scores = rank(settings, dataset, final) if Path(final).is_dir() else None
    if scores is None:
        notes.append(f"no worst / best rows: no {final} to rank the images by (segment.masks)")
    with_gt = list(scores) if scores is not None else [i for i in dataset.ids if dataset.load_mask(i) is not None]
    chosen = G.choose(with_gt, scores, counts.worst, counts.best, counts.sample, settings.project.seed)
    if not chosen:
        raise DataError(f"split {split!r} has no image with a ground-truth mask to show")
    return chosen, scores, notes


def build(settings: GallerySettings, ids: list[str] | None, counts: GalleryParams) -> tuple[str, np.ndarray, int]:
    """(the HTML page, the same grid as a picture, the number of rows)."""
    paths, dataset_cfg = settings.paths, settings.dataset
    split = dataset_cfg.eval_split
    dataset = open_split(dataset_cfg, split)
    chosen, scores, notes = choose_rows(settings, dataset, ids, counts)
    device = resolve_device(settings.project.device)
    masks, column_notes = columns(settings, device)
    notes += column_notes
    segmenter = None
    if Path(paths.segmenter_weights).is_file():
        segmenter = Segmenter.from_project(settings.seeds.backbone, settings.segment, settings.refine.crf,
                                           dataset.class_names, paths.segmenter_weights, device,
                                           pipeline().rerun_hint(paths.segmenter_weights))
    else:
        notes.append(f"segmentation left out: no {paths.segmenter_weights} (stage train_segmentation)")
    titles = ["image", "ground truth", *(title for title, _ in masks), *(["segmentation"] if segmenter else [])]
    rows = []
    for image_id, groups in progress_bar(settings.project.progress, chosen, desc="gallery (panels)", unit="image"):
        gt = dataset.load_mask(image_id)
        if gt is None:
            raise DataError(f"image {image_id} has no ground-truth mask: the gallery shows only images with one")
        image = dataset.load_image(image_id)
        seeds = load_image_scores(paths.seed_maps, image_id, gt.shape) if Path(paths.seed_maps).is_dir() else None
        row = G.Row(image_id, groups, {"image": G.Panel(image), "ground truth": G.mask_panel(gt)})
        predictions = [(title, make(image_id, image, gt, seeds)) for title, make in masks]
        if segmenter is not None:
            predictions.append(("segmentation", segmenter.segment(image)))
        for title, mask in predictions:
            row.panels[title] = G.mask_panel(mask, G.iou_caption(image_iou(gt, mask, dataset.num_classes)))
        if scores is not None:
            row.note = f"final masks ({settings.segment.masks}) {G.iou_caption(scores[image_id])}"
        rows.append(row)
    header = {"split": f"{split} ({dataset_cfg.name})", "seeds.method": settings.seeds.method,
              "refine.method": settings.refine.method, "segment.masks": settings.segment.masks,
              "rows": "the ids given" if ids is not None else
              f"worst {counts.worst}, best {counts.best} by per-image IoU of "
              f"{paths.segment_labels(settings.segment.masks)} "
              f"({len(scores or {})} images ranked), sample {counts.sample} (seed {settings.project.seed})",
              # no commit: the page is a DVC output and must be the same bytes whatever commit made it
              # (the stage's MLflow run carries the commit)
              "IoU": "per image: mean over the classes in its ground truth or prediction, 255 ignored"}
    return G.html_page(rows, titles, dataset.class_names, header, notes), G.picture(rows, titles), len(rows)


def gallery(stage: Stage, settings: GallerySettings, counts: GalleryParams) -> None:
    """The DVC stage: the page and the picture in results/gallery/, the grid logged to MLflow."""
    out_dir = settings.paths.gallery
    with stage.tracked() as run, atomic_dir(out_dir) as out:
        page, grid, count = build(settings, None, counts)
        (out / PAGE).write_text(page, encoding="utf-8")
        (out / PICTURE).write_bytes(G.png_bytes(grid))
        run.log_image(grid, PICTURE)
        run.log_artifact(out / PAGE)
        run.log_metrics({"rows": count})
    print(f"gallery: {count} rows in {out_dir}/{PAGE} (open it in a browser), the grid in {out_dir}/{PICTURE}")


def write_page(settings: GallerySettings, out: str, ids: list[str] | None, counts: GalleryParams) -> None:
    """`wsss gallery`: the page alone, at ``out``, with the rows asked for; nothing goes to MLflow."""
    page, _, count = build(settings, ids, counts)
    with atomic_path(out) as tmp:
        tmp.write_text(page, encoding="utf-8")
    print(f"gallery: {count} rows in {out} (open it in a browser: file://{os.path.abspath(out)})")
