"""Where the stages put their outputs (mirrored by the outs in dvc.yaml)."""

SYNTHETIC_ROOT = "data/synthetic/VOCdevkit/VOC2012"
CLASSIFIER = "artifacts/seeds/classifier.pt"
SEED_MAPS = "artifacts/seeds/maps"
SEEDS_METRICS = "metrics/seeds.json"
