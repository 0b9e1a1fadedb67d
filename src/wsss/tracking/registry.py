"""The segmentation network in MLflow's Model Registry, with its lineage.

`evaluate_segmentation` logs the trained DeepLab as an MLflow `pyfunc` model in its run (an RGB
uint8 image in, a uint8 label map out; the class names in the model's metadata; `scales`, `hflip`
and `crf` as predict-time params defaulting to `segment.infer`) and registers it as a version of
the model `tracking.registered_model` names. Each version carries its lineage as tags: the git
commit, the dvc.lock md5 of the pseudo masks it was trained on, the seed and refine methods, the
val mIoU, and `wsss.model_key`, a hash of its weights and inference settings.

Registration is by content: a network whose key a version of the registered model already
carries is not registered again, so re-running a pipeline that changed nothing (or that DVC
restored from its run-cache: `wsss repro` calls this for a restored `evaluate_segmentation` too)
adds no version. Sweep trials never register (their params set `tracking.registered_model: null`).

The logged model carries the `wsss` package it was made with (MLflow `code_paths`), so serving it
applies the very code that scored it: `wsss serve --model models:/<name>/<version>` (with size
limits, wsss.serve.server), or `mlflow models serve ... --env-manager local` in this environment.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import tempfile
from pathlib import Path

import mlflow
import numpy as np

from wsss.core.params import Params
from wsss.methods.segmenter import Segmenter, check_image
from wsss.tracking.data_version import data_tags
from wsss.tracking.runs import REGISTERED_TAG

MODEL_DIR = "model"  # the model's name in its run
KEY_TAG = "wsss.model_key"
EXAMPLE_SIDE = 32  # the input example: the top-left corner of a val image, this many pixels square
DEVICE_ENV = "WSSS_DEVICE"  # where a loaded model runs: auto (CUDA when present) | cpu | cuda[:N]
# What the model's code imports, pinned to the versions installed here (`wsss` itself travels
# with the model as code).
REQUIREMENTS = ("torch", "torchvision", "numpy", "pillow", "pydensecrf2", "pyyaml")


class _Quiet(logging.Filter):
    """MLflow's advice that does not apply here: the model class is pickled by reference (its code
    travels with the model)."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not record.getMessage().startswith("Passing a Python object as `python_model`")


logging.getLogger("mlflow.pyfunc").addFilter(_Quiet())


class SegmenterModel(mlflow.pyfunc.PythonModel):
    """The pyfunc model: a `wsss.methods.segmenter.Segmenter` rebuilt from the model's artifacts
    (`segmenter.json`, `weights.pt`)."""

    def load_context(self, context) -> None:
        from wsss.core.device import resolve_device
        from wsss.core.io import load_weights

        config = json.loads(Path(context.artifacts["config"]).read_text())
        self.segmenter = Segmenter.from_config(config)
        load_weights(self.segmenter.network, context.artifacts["weights"], "log the model again")
        self.segmenter.to(resolve_device(os.environ.get(DEVICE_ENV, "auto")))

    # model_input's type hint is one MLflow infers no schema from: the signature below is the schema
    def predict(self, context, model_input: np.ndarray, params: dict | None = None) -> np.ndarray:
        """One RGB uint8 image (H x W x 3) -> its label map (H x W uint8, class ids)."""
        params = params or {}
        settings = self.segmenter.settings.replace(params.get("scales"), params.get("hflip"), params.get("crf"))
        return self.segmenter.segment(_as_image(model_input), settings)


def _as_image(model_input) -> np.ndarray:
    if isinstance(model_input, dict):  # a named tensor, as served: {"image": ...}
        if set(model_input) != {"image"}:
            raise ValueError(f"expected one input named 'image', got {sorted(model_input)}")
        model_input = model_input["image"]
    return check_image(model_input)


def signature(segmenter: Segmenter):
    from mlflow.models.signature import ModelSignature
    from mlflow.types.schema import ParamSchema, ParamSpec, Schema, TensorSpec

    settings = segmenter.settings
    return ModelSignature(
        inputs=Schema([TensorSpec(np.dtype(np.uint8), (-1, -1, 3), "image")]),
        outputs=Schema([TensorSpec(np.dtype(np.uint8), (-1, -1), "label_map")]),
        params=ParamSchema([
            ParamSpec("scales", "double", list(settings.scales), shape=(-1,)),
            ParamSpec("hflip", "boolean", settings.hflip),
            ParamSpec("crf", "boolean", settings.crf),
        ]),
    )


def model_key(segmenter: Segmenter, weights: str | Path) -> str:
    """What makes two logged models the same model: the weights' bytes and the inference settings."""
    blob = file_md5(weights) + json.dumps(segmenter.config(), sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def file_md5(path: str | Path) -> str:
    """A file's md5, as DVC records it in dvc.lock."""
    digest = hashlib.md5()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _requirements() -> list[str]:
    from importlib import metadata

    pins = []
    for name in REQUIREMENTS:
        try:
            pins.append(f"{name}=={metadata.version(name)}")
        except metadata.PackageNotFoundError:
            continue
    return pins


def find_version(name: str, key: str):
    """The newest version of registered model `name` whose model key is `key`, or None."""
    client = mlflow.MlflowClient()
    versions = client.search_model_versions(f"name = '{name}'")
    matching = [v for v in versions if v.tags.get(KEY_TAG) == key]
    return max(matching, key=lambda v: int(v.version), default=None)


def register(run, name: str, segmenter: Segmenter, weights: str | Path, example: np.ndarray,
             lineage: dict[str, str]) -> tuple[str, bool]:
    """Log `segmenter` (with `weights`) as a pyfunc model in `run` (a wsss.tracking.StageRun) and
    register it as a new version of `name` with `lineage` as its tags, unless a version with the
    same model key exists. Returns (version, whether it is new); tags the run with it."""
    import wsss

    key = model_key(segmenter, weights)
    existing = find_version(name, key)
    if existing is not None:
        run.set_tag(REGISTERED_TAG, f"{name}/{existing.version}")
        return str(existing.version), False
    client = mlflow.MlflowClient()
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")  # not in stage logs
    with tempfile.TemporaryDirectory() as tmp:
        config = Path(tmp) / "segmenter.json"
        config.write_text(json.dumps(segmenter.config(), indent=1, sort_keys=True))
        with mlflow.start_run(run_id=run.run_id):  # the stage's run: its status is the stage's to set
            info = mlflow.pyfunc.log_model(
                name=MODEL_DIR, python_model=SegmenterModel(),
                artifacts={"weights": str(weights), "config": str(config)},
                code_paths=[str(Path(wsss.__file__).parent)],
                signature=signature(segmenter), input_example=check_image(example),
                pip_requirements=_requirements(),
                metadata={"class_names": segmenter.class_names, "palette": "VOC", "ignore_index": 255},
            )
    _ensure_registered_model(client, name)
    version = client.create_model_version(
        name, source=info.model_uri, run_id=run.run_id, model_id=info.model_id,
        tags={**lineage, KEY_TAG: key}, description=_describe(lineage),
    )
    run.set_tag(REGISTERED_TAG, f"{name}/{version.version}")
    return str(version.version), True


def _ensure_registered_model(client, name: str) -> None:
    from mlflow.exceptions import MlflowException

    try:
        client.get_registered_model(name)
    except MlflowException:
        client.create_registered_model(
            name, description="DeepLab trained on wsss pseudo masks: an RGB uint8 image in, a label map out "
                              "(class names in the model's metadata). Registered by the wsss pipeline.")


def _describe(lineage: dict[str, str]) -> str:
    return (f"{lineage.get('wsss.method', '?')}: val mIoU {lineage.get('wsss.val_miou', '?')}, trained on "
            f"{lineage.get('wsss.pseudo_masks', '?')} (md5 {lineage.get('wsss.pseudo_masks_md5', '?')}), "
            f"commit {lineage.get('wsss.git_commit', '?')}")


def locked_md5(project: str | Path, stage: str, path: str) -> str | None:
    """The md5 dvc.lock records for dependency `path` of `stage`, or None."""
    import yaml

    try:
        lock = yaml.safe_load((Path(project) / "dvc.lock").read_text()) or {}
    except (OSError, yaml.YAMLError):
        return None
    for dep in ((lock.get("stages") or {}).get(stage) or {}).get("deps") or []:
        if dep.get("path", "").rstrip("/") == path.rstrip("/"):
            return dep.get("md5")
    return None


def register_segmentation_model(run, params: Params, project: str | Path = ".", segmenter: Segmenter | None = None,
                                name: str | None = None, extra_lineage: dict | None = None) -> str | None:
    """Register the segmentation stage's network of the project in `project` (its weights, its
    evaluation in metrics/segment.json) as a version of `name` (default `tracking.registered_model`),
    with its lineage (`extra_lineage` added). Returns "<name>/<version>", or None when
    registration is off."""
    from wsss.core.dvcfile import pipeline
    from wsss.data.registry import open_dataset
    from wsss.tracking import metrics_files
    from wsss.tracking import runs as tracking

    name = name or params.tracking.registered_model
    if not name:
        return None
    project = Path(project)
    dvc = pipeline(project)
    weights = project / dvc.paths.segmenter_weights
    result = metrics_files.read(dvc.paths.segment_metrics, project)
    dataset_cfg = params.dataset.model_copy(update={"saliency": None, "root": str(project / params.dataset.root)})
    dataset = open_dataset(dataset_cfg, params.dataset.val_split)
    if segmenter is None:
        segmenter = Segmenter.from_project(params.seeds.backbone, params.segment, params.refine.crf,
                                           dataset.class_names, weights, "cpu",
                                           dvc.rerun_hint(dvc.paths.segmenter_weights))
    masks = dvc.paths.segment_labels(params.segment.masks)
    masks_md5 = locked_md5(project, "train_segmentation", masks)
    if masks_md5 is None:
        print(f"registry: dvc.lock has no md5 of {masks} for train_segmentation (stage run outside DVC); "
              "the version's wsss.pseudo_masks_md5 says so")
    lineage = {
        "wsss.git_commit": tracking.git_commit(project),
        "wsss.pseudo_masks": masks,
        "wsss.pseudo_masks_md5": masks_md5 or "not in dvc.lock",
        "wsss.weights_md5": file_md5(weights),
        "wsss.seeds_method": params.seeds.method,
        "wsss.refine_method": params.refine.method,
        "wsss.segment_masks": params.segment.masks,
        "wsss.method": result["method"],
        "wsss.dataset": params.dataset.name,
        "wsss.val_split": result["split"],
        "wsss.val_miou": f"{result['miou']:.4f}",
        "wsss.pipeline_run": run.parent_id,
        **data_tags(project, params.dataset.root),
        **(extra_lineage or {}),
    }
    example = dataset.load_image(dataset.ids[0])[:EXAMPLE_SIDE, :EXAMPLE_SIDE]
    version, new = register(run, name, segmenter, weights, example, lineage)
    print(f"registry: {'registered' if new else 'already registered as'} models:/{name}/{version} "
          f"({result['method']}, val mIoU {result['miou']:.4f})")
    return f"{name}/{version}"


def load(model_uri: str) -> Segmenter:
    """The Segmenter of a logged model: `models:/<name>/<version|latest|@alias>` or `runs:/<run id>/model`."""
    model = mlflow.pyfunc.load_model(model_uri)
    return model.unwrap_python_model().segmenter

