"""A synthetic data set in the exact PASCAL VOC 2012 layout, built to exercise WSSS.

Why synthetic scenes: the failure modes that WSSS methods exist to fix must be present and
measurable, in a set small enough to train on a CPU in minutes.

- **Co-occurrence**: each object class usually sits on a context "stuff" class (boat on water,
  train on rails, aeroplane in sky, ...) at a configured rate; the stuff also appears without its
  object, so context is predictive but not a label. A full-scene context mask (stuff id where
  background, 0 under objects) lets m_{k,c} = FP_{k,c} / TP_c be measured.
- **Partial activation**: objects are procedural multi-part shapes with per-class colour and
  texture families, varied in size, so a classifier can rely on a discriminative part.
- **Boundaries**: labels and colours come from the same polygons (no anti-aliasing), and a
  contrast guard keeps each object visibly different from what surrounds it.
- **Saliency faults**: the saliency map imitates an off-the-shelf detector: it misses some classes,
  blurs boundaries and fires on background blobs (what EPS's map selection handles).

Layout under ``root`` (the ``VOC2012`` folder)::

    JPEGImages/<id>.jpg                 RGB, JPEG quality 95 (4:4:4, so colour edges stay put)
    SegmentationClass/<id>.png          palette PNG, 0..C, 255 on a thin band along boundaries
    SegmentationClassAug/<id>.png       the same masks without the 255 band (as SBD masks)
    SegmentationContext/<id>.png        palette PNG, 0 = object, 1..K = stuff
    SaliencyMaps/<id>.png               8-bit grayscale saliency
    Annotations/<id>.xml                VOC XML, one <object> per visible instance
    ImageSets/Segmentation/{train,val,train_aug}.txt
    classes.txt, context_classes.txt, synthetic_meta.json

The modules, in the order an image is made: `vocabulary` (names, the params' name check),
`styles` (how each class and stuff looks), `colour` and `textures` (colours and weight fields),
`scenes` (which stuff, where), `backgrounds` (painting the stuff), `shapes` and `placement`
(objects' outlines and where they stand), `appearance` (object colours, contrast guard),
`saliency` (the faulty detector), `render` (one image), `stats` and `writer` (the set on disk).
"""

from wsss.data.synthetic.render import ignore_band, render_sample
from wsss.data.synthetic.sample import SyntheticObject, SyntheticSample
from wsss.data.synthetic.vocabulary import CLASS_NAMES, CONTEXT_NAMES, check_names
from wsss.data.synthetic.writer import config_record, generate

__all__ = [
    "CLASS_NAMES",
    "CONTEXT_NAMES",
    "SyntheticObject",
    "SyntheticSample",
    "check_names",
    "config_record",
    "generate",
    "ignore_band",
    "render_sample",
]
