"""The segmentation network in MLflow's Model Registry, and `wsss predict`, against a real sqlite
MLflow store (fast: a tiny untrained network)."""

import shutil
from pathlib import Path

import mlflow
import numpy as np
import pytest
import torch
import yaml

from wsss.cli import main as wsss_main
from wsss.core.io import read_label_png, save_state_dict
from wsss.core.params import SyntheticParams
from wsss.data.synthetic import generate
from wsss.methods.segmenter import Segmenter
from wsss.serve.predict import image_files, load_segmenter, predict_files
from wsss.tracking import registry
from wsss.tracking import runs as tracking

from tests.helpers.segmenters import CLASSES, LINEAGE, random_image, register_tiny, tiny_segmenter

def test_a_registered_model_predicts_what_the_segmenter_predicts(mlflow_db, tmp_path):
    segmenter = tiny_segmenter()
    version, new, run = register_tiny(tmp_path, segmenter)
    assert (version, new) == ("1", True)
    client = mlflow.MlflowClient()
    stored = client.get_model_version("seg", "1")
    assert {k: stored.tags[k] for k in LINEAGE} == LINEAGE
    assert stored.tags[registry.KEY_TAG] and stored.run_id == run.run_id
    assert client.get_run(run.run_id).data.tags[tracking.REGISTERED_TAG] == "seg/1"

    image = random_image(1)
    model = mlflow.pyfunc.load_model("models:/seg/latest")
    assert model.metadata.metadata["class_names"] == CLASSES
    assert np.array_equal(model.predict(image), segmenter.segment(image))
    flipped = segmenter.settings.replace(scales=[1.0], hflip=True)
    answer = model.predict(image, params={"scales": [1.0], "hflip": True})
    assert np.array_equal(answer, segmenter.segment(image, flipped))
    assert answer.dtype == np.uint8 and answer.shape == image.shape[:2]
    # what a served request carries: the named tensor
    assert np.array_equal(model.predict({"image": image}), segmenter.segment(image))
    with pytest.raises(Exception, match=r"does not match expected shape \(-1, -1, 3\)"):
        model.predict(image[..., 0])


def test_the_same_network_registers_once_another_gets_a_new_version(mlflow_db, tmp_path):
    first = tiny_segmenter(0)
    assert register_tiny(tmp_path, first)[:2] == ("1", True)
    assert register_tiny(tmp_path, first)[:2] == ("1", False)  # same weights and settings: nothing new
    assert register_tiny(tmp_path, tiny_segmenter(1), lineage={**LINEAGE, "wsss.val_miou": "0.6"})[:2] == ("2", True)
    first.settings = first.settings.replace(hflip=True)  # same weights, other inference: another model
    assert register_tiny(tmp_path, first)[:2] == ("3", True)
    versions = mlflow.MlflowClient().search_model_versions("name = 'seg'")
    assert len({v.tags[registry.KEY_TAG] for v in versions}) == 3


def test_predict_loads_a_model_by_uri_run_id_or_checkpoint(mlflow_db, tmp_path):
    segmenter = tiny_segmenter()
    _, _, run = register_tiny(tmp_path, segmenter)
    image = random_image(2)
    for model in ("models:/seg/1", f"runs:/{run.run_id}/model", run.run_id):
        assert np.array_equal(load_segmenter(model, tmp_path, "cpu").segment(image), segmenter.segment(image)), model

    # a checkpoint: the project's params.yaml and data set say which network and classes
    root = tmp_path / "data"
    generate(root, SyntheticParams(image_height=32, image_width=40, num_train=2, num_val=2))
    params = {"dataset": {"root": "data"}, "segment": {"infer": {"scales": [1.0, 0.5]}}}
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    checkpoint = tmp_path / "deeplab.pt"
    from wsss.data.voc import VOCDataset

    classes = VOCDataset(root, "val").class_names
    network = Segmenter.build(segmenter.architecture, classes, segmenter.settings)
    save_state_dict(checkpoint, network.network.state_dict())
    assert np.array_equal(load_segmenter(str(checkpoint), tmp_path, "cpu").segment(image), network.segment(image))

    with pytest.raises(Exception, match="models:/seg/7: cannot load it from MLflow"):
        load_segmenter("models:/seg/7", tmp_path, "cpu")
    with pytest.raises(Exception, match="neither models:/"):
        load_segmenter("nothing.pt", tmp_path, "cpu")
    save_state_dict(checkpoint, {"weight": torch.zeros(1)})
    with pytest.raises(Exception, match="does not fit"):
        load_segmenter(str(checkpoint), tmp_path, "cpu")


def test_predict_writes_every_readable_image_and_names_the_others(tmp_path, capsys):
    from PIL import Image

    segmenter = tiny_segmenter()
    images = tmp_path / "images"
    images.mkdir()
    for i in range(2):
        Image.fromarray(random_image(i)).save(images / f"im{i}.png")
    (images / "broken.jpg").write_bytes(b"not a jpeg")
    files = image_files([str(images), str(tmp_path / "missing.png")])
    assert [f.name for f in files] == ["broken.jpg", "im0.png", "im1.png", "missing.png"]
    report = predict_files(segmenter, files, tmp_path / "out", overlay=True)
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["im0.png", "im0_overlay.png", "im1.png",
                                                                    "im1_overlay.png"]
    assert set(report.failed) == {str(images / "broken.jpg"), str(tmp_path / "missing.png")}
    err = capsys.readouterr().err
    assert "broken.jpg: cannot decode image" in err and "missing.png: image file not found" in err
    labels = read_label_png(tmp_path / "out" / "im1.png")
    assert np.array_equal(labels, segmenter.segment(random_image(1))) and labels.max() < len(CLASSES)

    other = tmp_path / "other"
    other.mkdir()
    shutil.copy(images / "im0.png", other / "im0.png")
    with pytest.raises(Exception, match="would both write im0.png"):
        image_files([str(images / "im0.png"), str(other / "im0.png")])


def test_wsss_predict_exit_status_says_an_image_failed(mlflow_db, tmp_path, monkeypatch, capsys):
    from PIL import Image

    segmenter = tiny_segmenter()
    register_tiny(tmp_path, segmenter)
    Image.fromarray(random_image(3)).save(tmp_path / "good.png")
    (tmp_path / "bad.png").write_bytes(b"")
    monkeypatch.chdir(tmp_path)
    argv = ["predict", "good.png", "bad.png", "--model", "models:/seg/latest", "--out", "out", "--hflip"]
    assert wsss_main(argv) == 1
    out = capsys.readouterr()
    assert "wrote 1 label map(s)" in out.out and "bad.png" in out.err
    expected = segmenter.segment(random_image(3), segmenter.settings.replace(hflip=True))
    assert np.array_equal(read_label_png(tmp_path / "out" / "good.png"), expected)
    assert wsss_main(["predict", "good.png", "--model", "models:/seg/1", "--scales", "0"]) == 2


def test_a_copied_project_loads_its_own_copy_of_the_model(tmp_path, monkeypatch):
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.delenv(tracking.PARENT_ENV, raising=False)
    original, copy = tmp_path / "original", tmp_path / "copy"
    original.mkdir()
    monkeypatch.chdir(original)
    segmenter = tiny_segmenter()
    register_tiny(original, segmenter)
    shutil.copytree(original, copy)
    monkeypatch.chdir(copy)
    shutil.rmtree(original)  # the copy must not need it
    image = random_image(4)
    assert np.array_equal(load_segmenter("models:/seg/1", copy, "cpu").segment(image), segmenter.segment(image))
    client = mlflow.MlflowClient(tracking_uri=tracking.tracking_uri(copy))
    assert Path(client.get_model_version_download_uri("seg", "1").removeprefix("file://")).is_relative_to(copy)
