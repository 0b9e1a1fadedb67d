"""How right IRN's relation labels would be at other thresholds, scored against the masks.

Reads params.yaml (or WSSS_PARAMS) and the workspace's seed maps (artifacts/seeds/maps, stage
`seeds`), makes the relation labels of the training split as stage `irn_labels` does (the same
function, with `refine.irn.labels.crf`) for each foreground / background threshold pair given,
and prints per pair the share of pixels labelled background and foreground and the share of
each that is right (background: a background pixel; foreground: a pixel of the labelled class).
Pixels the masks ignore (255) are left out. docs/presets.md holds the table for data/real.

    python scripts/score_relation_labels.py 0.30,0.05 0.80,0.40
"""

from __future__ import annotations

import argparse

import numpy as np

from wsss.core.dvcfile import pipeline
from wsss.core.io import load_image_scores
from wsss.core.params import CrfParams
from wsss.data.registry import open_split
from wsss.methods.crf import relation_labels
from wsss.stages.common import load_params, run_main


def threshold_pair(text: str) -> tuple[float, float]:
    try:
        fg, bg = (float(v) for v in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not FG,BG (e.g. 0.30,0.05)") from None
    return fg, bg


def label_counts(labels: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """[labelled bg, right bg, labelled fg, right fg, scored pixels] of one image."""
    scored = mask != 255
    background = (labels == 0) & scored
    foreground = (labels != 0) & (labels != 255) & scored
    return np.array([background.sum(), (background & (mask == 0)).sum(),
                     foreground.sum(), (foreground & (labels == mask)).sum(), scored.sum()])


def score(dataset, seed_maps: str, fg: float, bg: float, crf: CrfParams) -> np.ndarray:
    counts = np.zeros(5, dtype=np.int64)
    for image_id in dataset.ids:
        image = dataset.load_image(image_id)
        scores, class_ids, _ = load_image_scores(seed_maps, image_id, image.shape[:2])
        counts += label_counts(relation_labels(image, scores, class_ids, fg, bg, crf), dataset.load_mask(image_id))
    return counts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("pairs", nargs="+", type=threshold_pair, help="FG,BG threshold pairs")
    args = parser.parse_args()
    params = load_params()
    dataset = open_split(params.dataset, params.dataset.train_split)
    crf = params.refine.irn.labels.crf
    print("| fg / bg threshold | labelled background (precision) | labelled foreground (precision) |")
    print("|---|---|---|")
    for fg, bg in args.pairs:
        n_bg, right_bg, n_fg, right_fg, scored = score(dataset, pipeline().paths.seed_maps, fg, bg, crf)
        print(f"| {fg:.2f} / {bg:.2f} | {n_bg / scored:.1%} ({right_bg / max(n_bg, 1):.3f}) "
              f"| {n_fg / scored:.1%} ({right_fg / max(n_fg, 1):.3f}) |")


if __name__ == "__main__":
    run_main(main)
