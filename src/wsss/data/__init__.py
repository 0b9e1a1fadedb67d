"""Data sets: VOC and COCO readers, the synthetic generator, saliency sources."""
