"""Segmenting an image of any size in bounded memory: `wsss predict` and `wsss serve`.

A network's activations grow with the image: the default DeepLab on CPU took about 1 GiB per
million pixels, so one 8000 x 8000 photo was enough to get a process killed. An image whose
longer side exceeds `max_side` is therefore segmented at a reduced size (PIL's antialiased
bilinear resize to `max_side` on the longer side, the scales and the CRF applied there), and the
class probabilities are brought back to the full size a band of rows at a time, each band's
bilinear values exactly those of one full-size interpolation (`grid_sample` at the output pixel
centres, `align_corners=False`). Memory: the network at `max_side`, the probabilities at the
reduced size, one band (`BAND_PIXELS` x classes) and the uint8 label map. Images within
`max_side` go through `Segmenter.segment` unchanged, so the label maps of VOC and COCO images
(at most 640 pixels on a side) are those `evaluate_segmentation` wrote, to the last pixel.
"""

from __future__ import annotations

import numpy as np

MAX_SIDE = 1024  # the default bound (`--max-side`); 0 or None: no bound
BAND_PIXELS = 1 << 20  # output pixels interpolated at once


def segment_bounded(segmenter, image: np.ndarray, settings=None, max_side: int | None = MAX_SIDE) -> np.ndarray:
    """The label map (H x W uint8) of `image` by `segmenter` (wsss.methods.segmenter.Segmenter),
    computed at most `max_side` pixels on the longer side."""
    import torch
    from PIL import Image

    from wsss.methods.segmenter import check_image

    image = check_image(image)
    height, width = image.shape[:2]
    if not max_side or max(height, width) <= max_side:
        return segmenter.segment(image, settings)
    factor = max_side / max(height, width)
    size = (max(1, round(width * factor)), max(1, round(height * factor)))
    small = np.asarray(Image.fromarray(image).resize(size, Image.BILINEAR))
    probabilities = torch.from_numpy(segmenter.probabilities(small, settings))
    return upsample_argmax(probabilities, height, width)


def upsample_argmax(probabilities, height: int, width: int) -> np.ndarray:
    """argmax over classes of `probabilities` (K x h x w) bilinearly resized to height x width,
    a band of rows at a time (what `F.interpolate(..., align_corners=False)` gives, without the
    K x height x width tensor)."""
    import torch
    import torch.nn.functional as F

    source = probabilities[None].float()
    # normalised coordinates of the output pixel centres (align_corners=False: -1 and 1 are the
    # outer edges of the source image)
    xs = (torch.arange(width, dtype=torch.float32) + 0.5) / width * 2 - 1
    ys = (torch.arange(height, dtype=torch.float32) + 0.5) / height * 2 - 1
    labels = np.empty((height, width), dtype=np.uint8)
    band = max(1, BAND_PIXELS // width)
    for top in range(0, height, band):
        rows = ys[top:top + band]
        grid = torch.stack(torch.meshgrid(rows, xs, indexing="ij")[::-1], dim=-1)[None]
        values = F.grid_sample(source, grid, mode="bilinear", padding_mode="border", align_corners=False)
        labels[top:top + len(rows)] = values[0].argmax(dim=0).to(torch.uint8).numpy()
    return labels
