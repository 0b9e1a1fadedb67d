"""Where the stages put their outputs, relative to the project (mirrored by the outs in dvc.yaml),
and how a stage reads another's checkpoint: a broken one names its file and the stage that remakes
it. The stages, `wsss predict` and the model registry all find the pipeline's files here."""

SYNTHETIC_ROOT = "data/synthetic/VOCdevkit/VOC2012"
CLASSIFIER = "artifacts/seeds/classifier.pt"
SEED_MAPS = "artifacts/seeds/maps"
SEEDS_METRICS = "metrics/seeds.json"
RELATION_LABELS = "artifacts/irn/relation_labels"
IRN_WEIGHTS = "artifacts/irn/irn.pt"
IRN_BOUNDARIES = "artifacts/irn/boundaries"
PSEUDO_MASKS = "artifacts/refine/masks"
REFINE_METRICS = "metrics/refine.json"
RECOVERY_WEIGHTS = "artifacts/ptrecl/recovery.pt"
PROTOTYPES = "artifacts/ptrecl/prototypes.pt"
RECLASSIFICATION_MAPS = "artifacts/ptrecl/maps"
PTRECL_MASKS = "artifacts/ptrecl/masks"
PTRECL_METRICS = "metrics/ptrecl.json"
PTRECL_MAP_METRICS = "metrics/ptrecl_map.json"
SEGMENTER_WEIGHTS = "artifacts/segment/deeplab.pt"
SEGMENT_LABELS = {"ptrecl": PTRECL_MASKS, "refine": PSEUDO_MASKS}  # segment.masks -> what it trains on
SEGMENT_PREDICTIONS = "artifacts/segment/predictions"
SEGMENT_METRICS = "metrics/segment.json"
TRAIN_LOSSES = "plots/train/{stage}.tsv"  # each training stage's per-step losses (DVC plots)
GALLERY = "results/gallery"  # index.html (the page) and gallery.png (the same grid)

DVC_FILE = "dvc.yaml"


def writer_of(path: str) -> str | None:
    """The dvc.yaml stage whose outs hold ``path`` (None if no stage writes it)."""
    import yaml

    try:
        stages = yaml.safe_load(open(DVC_FILE))["stages"]
    except (OSError, TypeError, KeyError, yaml.YAMLError):
        return None
    for name, stage in stages.items():
        for out in stage.get("outs", []):
            out = next(iter(out)) if isinstance(out, dict) else out
            if path == out or path.startswith(out.rstrip("/") + "/"):
                return name
    return None


def rerun_hint(path: str) -> str:
    """How to remake a broken stage output: the stage that writes it, by name."""
    stage = writer_of(path)
    if stage is None:
        return "re-run the stage that writes it"
    return f"re-run the stage that writes it: dvc repro --force --single-item {stage}"


def load_stage_weights(module, path: str) -> None:
    """Load a stage output checkpoint into ``module``; a clear error naming the file and its stage."""
    from wsss.io import load_weights

    load_weights(module, path, rerun_hint(path))


def load_stage_checkpoint(path: str) -> dict:
    from wsss.io import load_checkpoint

    return load_checkpoint(path, rerun_hint(path))
