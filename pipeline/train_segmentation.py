"""Stage `train_segmentation`: the final DeepLab (docs/methods.md §9), trained on the pseudo masks that
`segment.masks` names (PtReCl's or the refine stage's)."""

from pipeline.train_recovery import train_deeplab
from wsss.layout import SEGMENT_LABELS, SEGMENTER_WEIGHTS
from wsss.stage import load_params, run_main


def main() -> None:
    params = load_params()
    train_deeplab(params, "train_segmentation", "segment", SEGMENT_LABELS[params["segment"]["masks"]], SEGMENTER_WEIGHTS)


if __name__ == "__main__":
    run_main(main)
