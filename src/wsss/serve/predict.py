"""`wsss predict`: apply a trained segmentation network to image files.

The network comes from MLflow (`models:/<name>/<version|latest>`, `runs:/<run id>/model`, or a
bare run id: the model its `evaluate_segmentation` run logged) or from a checkpoint file, which
the project's params.yaml describes (`seeds.backbone`, `segment`). Each image's label map goes to
`<out>/<stem>.png` as a VOC palette PNG (class ids; 255 never written), with `--overlay` also
`<stem>_overlay.png`. Inference is `segment.infer`'s, as the model was evaluated, unless
`--scales`, `--hflip` or `--crf` say otherwise, and an image larger than `--max-side` on its
longer side is segmented at that size (wsss.serve.large_images). An image that cannot be read is
an error naming it; the other images are still done, and the exit status says some failed.
"""

from __future__ import annotations

import re
import sys
from dataclasses import dataclass, field
from pathlib import Path

from wsss.core.errors import DataError, WsssError
from wsss.serve.large_images import MAX_SIDE

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp")
RUN_ID = re.compile(r"[0-9a-f]{32}")


@dataclass
class PredictReport:
    written: list[Path] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)  # input -> why


def image_files(inputs: list[str]) -> list[Path]:
    """The image files named, folders expanded to the images directly in them (sorted). Two
    inputs with the same file stem would write the same output: an error naming both."""
    files: list[Path] = []
    for name in inputs:
        path = Path(name)
        if path.is_dir():
            found = sorted(p for p in path.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())
            if not found:
                raise WsssError(f"{path}: folder has no image ({', '.join(IMAGE_SUFFIXES)})")
            files += found
        else:
            files.append(path)  # a missing file is reported with the others, not here
    stems: dict[str, Path] = {}
    for path in files:
        if path.stem in stems and stems[path.stem] != path:
            raise WsssError(f"{stems[path.stem]} and {path} would both write {path.stem}.png; "
                            "predict them into separate --out folders")
        stems[path.stem] = path
    return list(dict.fromkeys(files))


def load_segmenter(model: str, project: Path, device: str):
    """The Segmenter that `model` names (see the module's docstring), on `device`."""
    from wsss.core.device import resolve_device

    target = resolve_device(device)
    if model.startswith(("models:/", "runs:/")) or RUN_ID.fullmatch(model):
        from wsss.tracking import registry
        from wsss.tracking import runs as tracking

        tracking.use_project_store(project)
        uri = model if ":/" in model else f"runs:/{model}/{registry.MODEL_DIR}"
        try:
            segmenter = registry.load(uri)
        except Exception as exc:  # MLflow raises its own exception types for unknown names/versions/runs
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise WsssError(f"model {model}: cannot load it from MLflow ({tracking.tracking_uri(project)}): {first}") from None
        return segmenter.to(target)
    path = Path(model)
    if not path.is_file():
        raise WsssError(f"model {model}: neither models:/..., runs:/..., a run id nor a checkpoint file")
    return _from_checkpoint(path, project, target)


def _from_checkpoint(path: Path, project: Path, device):
    """A checkpoint has only weights: the network and classes are the project's (params.yaml)."""
    from wsss.core import params as params_mod
    from wsss.data.registry import open_dataset
    from wsss.methods.segmenter import Segmenter

    params = params_mod.load(project / params_mod.PARAMS_FILE)
    cfg = params.dataset.model_copy(update={"saliency": None, "root": str(project / params.dataset.root)})
    class_names = open_dataset(cfg, params.dataset.val_split).class_names
    return Segmenter.from_project(params.seeds.backbone, params.segment, params.refine.crf, class_names, path, device,
                                  "is it a checkpoint of this project's segmentation stage (params.yaml's segment, "
                                  "seeds.backbone)?")


def inference_settings(segmenter, scales=None, hflip=None, crf=None, prefix: str = ""):
    """The segmenter's inference settings with those given (not None) changed, checked by the
    rules of params.yaml's `segment.infer`; a WsssError names each bad one (`prefix` + name)."""
    from pydantic import ValidationError

    from wsss.core.params import SegmentInferParams

    given = {"scales": scales, "hflip": hflip, "crf": crf}
    try:
        SegmentInferParams.model_validate({key: value for key, value in given.items() if value is not None})
    except ValidationError as exc:
        raise WsssError("; ".join(f"{prefix}{'.'.join(str(part) for part in error['loc'])}: {error['msg']}"
                                  for error in exc.errors())) from None
    return segmenter.settings.replace(scales, hflip, crf)


def predict_files(segmenter, files: list[Path], out: Path, settings=None, overlay: bool = False,
                  progress=None, max_side: int = MAX_SIDE) -> PredictReport:
    """Segment each file into `out` (at most `max_side` pixels on a side, 0: no bound); unreadable
    or failing images are reported, not raised."""
    from wsss.core.io import atomic_path, read_rgb, write_palette_png
    from wsss.evaluation.visualize import blend
    from wsss.serve.large_images import segment_bounded

    out.mkdir(parents=True, exist_ok=True)
    report = PredictReport()
    for path in files:
        try:
            image = read_rgb(path)
            labels = segment_bounded(segmenter, image, settings, max_side)
            target = out / f"{path.stem}.png"
            write_palette_png(target, labels)
            report.written.append(target)
            if overlay:
                from PIL import Image

                with atomic_path(out / f"{path.stem}_overlay.png") as tmp:
                    Image.fromarray(blend(image, labels)).save(tmp, format="PNG")
        except (DataError, ValueError) as exc:
            report.failed[str(path)] = str(exc)
            print(f"error: {exc}", file=sys.stderr)
        if progress is not None:
            progress.update(1)
    return report

