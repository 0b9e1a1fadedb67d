"""End to end: `wsss repro` (dvc repro) on a tiny synthetic set with a real MLflow database.

Slow (about a minute or two on 2 cores): marked `slow`, run by scripts/test.sh and CI.
"""

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import mlflow
import numpy as np
import pytest
import torch
import yaml

from tests.test_plot_files import ABLATION_PLOTS, assert_every_plot_drawn

ROOT = Path(__file__).resolve().parents[1]
STAGES = ["synthesize", "train_classifier", "seeds", "evaluate_seeds", "irn_labels", "train_irn", "irn_boundaries",
          "refine", "evaluate_refine", "train_recovery", "ptrecl_prototypes", "ptrecl", "evaluate_ptrecl",
          "train_segmentation", "evaluate_segmentation", "gallery"]
AFTER_PTRECL = ["ptrecl", "evaluate_ptrecl", "train_segmentation", "evaluate_segmentation", "gallery"]
AFTER_REFINE = ["refine", "evaluate_refine", "train_recovery", "ptrecl_prototypes", *AFTER_PTRECL]
AFTER_SEEDS = STAGES[2:]
# Images of mixed sizes, as in real VOC / COCO: landscape and portrait, odd sides, some smaller than
# the 64-px training crops; the first overlays of each split mix them (_assert_mixed_sizes).
TINY_SIZES = [[64, 80], [45, 61], [88, 56], [40, 52], [96, 72]]
TINY = {
    "data": {"synthetic": {"image_sizes": TINY_SIZES, "num_train": 24, "num_val": 6, "seed": 1}},
    "seeds": {"train": {"epochs": 6, "batch_size": 8, "resize_long": [64, 96], "crop_size": 64},
              "infer": {"scales": [1.0, 0.5]}},
    "refine": {"irn": {"train": {"epochs": 1, "batch_size": 8, "crop_size": 64}, "walk": {"exp_times": 5}}},
    "ptrecl": {"recovery": {"train": {"epochs": 2, "batch_size": 8, "crop_size": 64}},
               "prototypes": {"k": 4, "pixels_per_image": 16, "capacity": 200}},
    "segment": {"train": {"epochs": 2, "batch_size": 8, "crop_size": 64}},
    "project": {"progress": False},
}


def _deep_update(tree: dict, update: dict) -> None:
    for key, value in update.items():
        if isinstance(value, dict):
            _deep_update(tree.setdefault(key, {}), value)
        else:
            tree[key] = value


def _run(cmd, cwd, env, check=True):
    result = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=900)
    if check and result.returncode != 0:
        raise AssertionError(f"{cmd} failed ({result.returncode}):\n{result.stdout}\n{result.stderr}")
    return result


@pytest.fixture
def project(tmp_path, mlflow_db):
    """A copy of the project (pipeline, params, DVC config) in its own git repo."""
    dest = tmp_path / "project"
    dest.mkdir()
    for name in ["dvc.yaml", "params.yaml", "pipeline", "src", ".dvc", ".dvcignore", ".gitignore"]:
        source = ROOT / name
        if source.is_dir():
            shutil.copytree(source, dest / name, ignore=shutil.ignore_patterns("__pycache__", "tmp", "cache"))
        elif source.exists():
            shutil.copy(source, dest / name)
    params = yaml.safe_load((dest / "params.yaml").read_text())
    _deep_update(params, TINY)
    (dest / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    # the copy's own sources first: an editable install of another checkout must not shadow them
    env = dict(os.environ, MLFLOW_TRACKING_URI=mlflow_db, PYTHONPATH=os.pathsep.join([str(dest / "src"), str(dest)]),
               PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}")
    env.pop("WSSS_PARENT_RUN_ID", None)
    for cmd in (["git", "init", "-q"], ["git", "add", "-A"],
                ["git", "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "init"]):
        _run(cmd, dest, env)
    return dest, env


def _pipeline_runs(uri):
    client = mlflow.MlflowClient(tracking_uri=uri)
    experiment = client.get_experiment_by_name("wsss")
    runs = client.search_runs([experiment.experiment_id], order_by=["attributes.start_time ASC"])
    parents = [r for r in runs if r.data.tags.get("wsss.kind") == "pipeline"]
    children = {p.info.run_id: [r for r in runs if r.data.tags.get("mlflow.parentRunId") == p.info.run_id]
                for p in parents}
    return client, parents, children


def _set_param(project_dir: Path, dotted: str, value) -> None:
    params = yaml.safe_load((project_dir / "params.yaml").read_text())
    node = params
    *parents, leaf = dotted.split(".")
    for part in parents:
        node = node[part]
    node[leaf] = value
    (project_dir / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))


@pytest.mark.slow
def test_repro_logs_nested_runs_and_reruns_only_what_changed(project, mlflow_db):
    cwd, env = project
    first = _run(["wsss", "repro"], cwd, env)
    assert "| stage" in first.stdout and "seeds" in first.stdout and "all background" in first.stdout
    _assert_mixed_sizes(cwd / "data/synthetic/VOCdevkit/VOC2012")

    metrics = json.loads((cwd / "metrics/seeds.json").read_text())
    assert metrics["stage"] == "seeds" and metrics["method"] == "cam" and metrics["num_images"] == 24
    assert 0.0 <= metrics["miou"] <= 1.0 and metrics["bg_threshold"] in TINY_THRESHOLDS(cwd)
    assert set(metrics["baselines"]) == {"all_background", "labelled_class"}
    assert "pairs_mean" in metrics["cooccurrence"] and "f1" in metrics["boundary"]
    refined = json.loads((cwd / "metrics/refine.json").read_text())
    assert refined["stage"] == "refine" and refined["method"] == "cam+irn" and refined["num_images"] == 24
    assert len(list((cwd / "artifacts/refine/masks").glob("*.png"))) == 24
    assert "refine" in first.stdout and "cam+irn" in first.stdout
    score_files = sorted((cwd / "artifacts/seeds/maps").glob("*.npz"))
    assert len(score_files) == 24
    assert any(np.load(f)["scores"].max() > 0 for f in score_files)  # a classifier that learnt something

    client, parents, children = _pipeline_runs(mlflow_db)
    assert len(parents) == 1
    parent = parents[0]
    assert parent.info.status == "FINISHED" and parent.data.tags["wsss.git_commit"] != "unknown"
    assert parent.data.metrics["seeds.cam.miou"] == pytest.approx(metrics["miou"])
    runs = {r.info.run_name: r for r in children[parent.info.run_id]}
    assert sorted(runs) == sorted(STAGES)
    assert all(r.info.status == "FINISHED" for r in runs.values())
    train = runs["train_classifier"]
    assert train.data.params["seeds.train.epochs"] == "6"
    history = client.get_metric_history(train.info.run_id, "train.loss")
    assert len(history) == 6 * (24 // 8)  # one loss per step
    evaluate = runs["evaluate_seeds"]
    assert evaluate.data.metrics["miou"] == pytest.approx(metrics["miou"])
    assert "baselines.all_background.miou" in evaluate.data.metrics
    artifacts = {a.path for a in client.list_artifacts(evaluate.info.run_id)}
    assert {"overlays.png", "seeds.json"} <= artifacts
    for stage, picture in OVERLAYS.items():  # galleries of images of mixed sizes, one per stage
        assert picture in {a.path for a in client.list_artifacts(runs[stage].info.run_id)}, stage
    assert runs["train_irn"].data.params["refine.irn.train.epochs"] == "1"
    assert client.get_metric_history(runs["train_irn"].info.run_id, "train.affinity")
    assert parent.data.metrics["refine.irn.miou"] == pytest.approx(refined["miou"])
    ptrecl = json.loads((cwd / "metrics/ptrecl.json").read_text())
    reclassified = json.loads((cwd / "metrics/ptrecl_map.json").read_text())
    assert ptrecl["method"] == reclassified["method"] == "cam+irn+ptrecl" and ptrecl["num_images"] == 24
    assert 0.0 <= ptrecl["miou"] <= 1.0 and 0.0 <= reclassified["miou"] <= 1.0
    reclassified_details = json.loads((cwd / "metrics/details/ptrecl_map.json").read_text())
    assert reclassified["bg_threshold"] == reclassified["best_bg_threshold"]
    assert set(reclassified_details["sweep"]) == {f"{t:.2f}" for t in TINY_THRESHOLDS(cwd)}
    assert "sweep" not in reclassified  # DVC's metrics files keep the headline figures only
    assert "cam+irn+ptrecl" in first.stdout and "reclassification" in first.stdout
    assert len(list((cwd / "artifacts/ptrecl/masks").glob("*.png"))) == 24
    assert parent.data.metrics["ptrecl.miou"] == pytest.approx(ptrecl["miou"])
    assert runs["ptrecl_prototypes"].data.metrics["prototypes.boat.foreground"] <= 4
    assert len(list((cwd / "artifacts/irn/boundaries").glob("*.npz"))) == 24
    assert client.get_metric_history(runs["train_recovery"].info.run_id, "train.loss")
    segment = json.loads((cwd / "metrics/segment.json").read_text())
    assert segment["split"] == "val" and segment["num_images"] == 6 and segment["method"] == "cam+irn+ptrecl+deeplabv2"
    assert 0.0 <= segment["miou"] <= 1.0 and "cam+irn+ptrecl+deeplabv2" in first.stdout
    assert parent.data.metrics["segment.val_miou"] == pytest.approx(segment["miou"])
    weights = torch.load(cwd / "artifacts/segment/deeplab.pt", weights_only=True)
    assert any(key.startswith("head.") for key in weights)  # a plain state dict
    first_version = _assert_registered(cwd, mlflow_db, "1", segment)
    _assert_predict_reproduces_evaluation(cwd, env)
    _assert_served_model_answers_as_predict(cwd, env, mlflow_db)

    # Nothing changed: no stage runs; the new parent run records every stage from its outputs.
    second = _run(["wsss", "repro"], cwd, env)
    assert not _stages_run(second.stdout)
    _, parents, children = _pipeline_runs(mlflow_db)
    assert len(parents) == 2
    restored = children[parents[-1].info.run_id]
    assert sorted(r.info.run_name for r in restored) == sorted(STAGES)
    assert all(r.data.tags.get("wsss.restored") == "true" for r in restored)
    assert len(_versions(mlflow_db)) == 1  # the same network: no new version
    # Every DVC plot is drawn from the stages' outputs; committed, they are what `dvc plots diff` compares.
    assert_every_plot_drawn(cwd, env, absent=ABLATION_PLOTS)
    losses = (cwd / "plots/train/train_classifier.tsv").read_text().splitlines()
    assert losses[0] == "step\tepoch\tloss" and len(losses) == 1 + 6 * (24 // 8)
    for cmd in (["git", "add", "-A"], ["git", "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "run"]):
        _run(cmd, cwd, env)

    # A reclassification parameter re-runs PtReCl and what learns from it, not its recovery network
    # nor its prototypes.
    _set_param(cwd, "ptrecl.reclassify.top_m", 3)
    assert sorted(_stages_run(_run(["dvc", "repro"], cwd, env).stdout)) == sorted(AFTER_PTRECL)
    assert_every_plot_drawn(cwd, env, "HEAD", absent=ABLATION_PLOTS)  # the committed run against this one

    # A seeds-stage parameter re-runs that stage and what follows, not the classifier.
    _set_param(cwd, "seeds.infer.scales", [1.0])
    # Plain `dvc repro` (no wsss wrapper) still groups its stages under one parent run.
    third = _run(["dvc", "repro"], cwd, env)
    ran = _stages_run(third.stdout)
    assert ran[:2] == ["seeds", "evaluate_seeds"] and set(ran) <= set(AFTER_SEEDS)
    _, parents, children = _pipeline_runs(mlflow_db)
    assert len(parents) == 4
    assert sorted(r.info.run_name for r in children[parents[-1].info.run_id]) == sorted(ran)

    # Switching the refinement method re-runs refine and what follows it, not the IRN training.
    _set_param(cwd, "refine.method", "crf")
    fourth = _run(["dvc", "repro"], cwd, env)
    assert sorted(_stages_run(fourth.stdout)) == sorted(AFTER_REFINE)
    refined = json.loads((cwd / "metrics/refine.json").read_text())
    assert refined["method"] == "cam+crf" and 0.0 <= refined["miou"] <= 1.0
    # every retrained network was registered; the newest's lineage names the new pseudo masks
    versions = _versions(mlflow_db)
    newest = versions[-1]
    assert len({v.tags["wsss.weights_md5"] for v in versions}) == len(versions) >= 2  # one version per network
    _assert_registered(cwd, mlflow_db, newest.version, json.loads((cwd / "metrics/segment.json").read_text()))
    assert newest.tags["wsss.refine_method"] == "crf" and first_version.tags["wsss.refine_method"] == "irn"
    assert newest.tags["wsss.pseudo_masks_md5"] != first_version.tags["wsss.pseudo_masks_md5"]
    assert newest.tags["wsss.weights_md5"] != first_version.tags["wsss.weights_md5"]


def _versions(uri):
    client = mlflow.MlflowClient(tracking_uri=uri)
    return sorted(client.search_model_versions("name = 'wsss-segmenter'"), key=lambda v: int(v.version))


def _assert_registered(cwd: Path, uri: str, version: str, segment: dict):
    """The model version carries the lineage of the project's current state."""
    client = mlflow.MlflowClient(tracking_uri=uri)
    stored = client.get_model_version("wsss-segmenter", version)
    lock = yaml.safe_load((cwd / "dvc.lock").read_text())["stages"]
    masks = {d["path"]: d["md5"] for d in lock["train_segmentation"]["deps"]}["artifacts/ptrecl/masks"]
    head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=cwd, capture_output=True, text=True).stdout.strip()
    assert stored.tags["wsss.pseudo_masks_md5"] == masks and stored.tags["wsss.pseudo_masks"] == "artifacts/ptrecl/masks"
    assert stored.tags["wsss.git_commit"].startswith(head)
    assert stored.tags["wsss.seeds_method"] == "cam" and stored.tags["wsss.method"] == segment["method"]
    assert stored.tags["wsss.val_miou"] == f"{segment['miou']:.4f}"
    assert stored.tags["wsss.weights_md5"] == lock["train_segmentation"]["outs"][0]["md5"]
    run = client.get_run(stored.run_id)
    assert run.data.tags["wsss.stage"] == "evaluate_segmentation"
    assert run.data.tags["wsss.registered_model"] == f"wsss-segmenter/{version}"
    return stored


def _val_images(cwd: Path, count: int = 3) -> list[Path]:
    root = cwd / "data/synthetic/VOCdevkit/VOC2012"
    ids = (root / "ImageSets/Segmentation/val.txt").read_text().split()[:count]
    return [root / "JPEGImages" / f"{i}.jpg" for i in ids]


def _assert_predict_reproduces_evaluation(cwd: Path, env: dict) -> None:
    """`wsss predict` with the registered model writes evaluate_segmentation's label maps."""
    images = _val_images(cwd)
    _run(["wsss", "predict", *map(str, images), "--model", "models:/wsss-segmenter/latest", "--out", "predicted",
          "--overlay"], cwd, env)
    for image in images:
        ours = (cwd / "predicted" / f"{image.stem}.png").read_bytes()
        assert ours == (cwd / "artifacts/segment/predictions" / f"{image.stem}.png").read_bytes(), image.stem
        assert (cwd / "predicted" / f"{image.stem}_overlay.png").exists()


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _assert_served_model_answers_as_predict(cwd: Path, env: dict, uri: str) -> None:
    """`mlflow models serve` on a loopback port answers a real request with the label map that
    `wsss predict` wrote; the server is stopped by its process id."""
    import signal
    import time
    import urllib.request

    from PIL import Image

    port = _free_port()
    log = open(cwd / "serve.log", "wb")
    server = subprocess.Popen(["mlflow", "models", "serve", "-m", "models:/wsss-segmenter/1", "--env-manager", "local",
                               "--host", "127.0.0.1", "--port", str(port)], cwd=cwd, env=env, stdout=log,
                              stderr=subprocess.STDOUT, start_new_session=True)
    try:
        deadline = time.monotonic() + 180
        while True:
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/ping", timeout=2)
                break
            except OSError:
                assert server.poll() is None, (cwd / "serve.log").read_text()
                assert time.monotonic() < deadline, "the model server did not come up"
                time.sleep(1)
        image = _val_images(cwd, 1)[0]
        pixels = np.array(Image.open(image).convert("RGB"))
        body = json.dumps({"inputs": {"image": pixels.tolist()}}).encode()
        request = urllib.request.Request(f"http://127.0.0.1:{port}/invocations", body,
                                         {"Content-Type": "application/json"})
        answer = json.load(urllib.request.urlopen(request, timeout=120))
        labels = np.array(answer["predictions"], dtype=np.uint8)
        assert np.array_equal(labels, np.array(Image.open(cwd / "predicted" / f"{image.stem}.png")))
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
            server.wait()
        log.close()


OVERLAYS = {"synthesize": "examples.png", "seeds": "cams.png", "evaluate_seeds": "overlays.png",
            "irn_labels": "relation_labels.png", "refine": "pseudo_masks.png", "evaluate_refine": "overlays.png",
            "ptrecl": "reclassification.png", "evaluate_ptrecl": "overlays.png",
            "evaluate_segmentation": "predictions.png", "gallery": "gallery.png"}


def _assert_mixed_sizes(root: Path) -> None:
    """The tiny set holds what real data sets do: landscape and portrait images, images smaller
    than the training crops, and sizes that differ among the first overlays of each split."""
    from PIL import Image

    crop = TINY["seeds"]["train"]["crop_size"]
    sizes = {}
    for split in ("train", "val"):
        ids = (root / "ImageSets/Segmentation" / f"{split}.txt").read_text().split()
        sizes[split] = []
        for image_id in ids:
            with Image.open(root / "JPEGImages" / f"{image_id}.jpg") as image:
                sizes[split].append((image.height, image.width))
        assert len(set(sizes[split][:4])) > 1, split  # the overlays of tracking.num_overlays = 4
    every = sizes["train"] + sizes["val"]
    assert any(h > w for h, w in every) and any(h < w for h, w in every)
    assert any(h < crop and w < crop for h, w in sizes["train"])


def _stages_run(dvc_stdout: str) -> list[str]:
    return re.findall(r"Running stage '([^']+)'", dvc_stdout)


def TINY_THRESHOLDS(cwd):
    return yaml.safe_load((cwd / "params.yaml").read_text())["evaluate"]["bg_thresholds"]


@pytest.mark.slow
def test_failed_stage_names_the_culprit_and_repro_resumes(project, mlflow_db):
    """A corrupt image in a data set the user brought (not a DVC output, which DVC would
    restore from its cache) fails the first stage that reads it, names the image, leaves no
    half-written output; once the image is fixed, `dvc repro` carries on."""
    cwd, env = project
    _run(["dvc", "repro", "synthesize"], cwd, env)
    external = cwd / "data/external/VOC2012"
    shutil.copytree(cwd / "data/synthetic/VOCdevkit/VOC2012", external)
    _set_param(cwd, "dataset.root", "data/external/VOC2012")
    victim = sorted((external / "JPEGImages").glob("*.jpg"))[3]
    good_bytes = victim.read_bytes()
    victim.write_bytes(b"corrupt")
    failed = _run(["dvc", "repro"], cwd, env, check=False)
    assert failed.returncode != 0
    assert victim.stem in failed.stderr + failed.stdout
    assert not (cwd / "artifacts/seeds/classifier.pt").exists()
    assert not list((cwd / "artifacts/seeds").glob("*.tmp*"))
    victim.write_bytes(good_bytes)
    resumed = _run(["dvc", "repro"], cwd, env)
    assert "train_classifier" in _stages_run(resumed.stdout)
    assert (cwd / "metrics/seeds.json").exists()


@pytest.mark.slow
def test_unknown_params_key_fails_before_any_stage(project, mlflow_db):
    cwd, env = project
    _set_param(cwd, "seeds.train.learning_rate", 0.1)
    failed = _run(["wsss", "repro"], cwd, env, check=False)
    assert failed.returncode == 2
    assert "seeds.train.learning_rate" in failed.stderr
    assert not (cwd / "data/synthetic").exists()


@pytest.mark.slow
def test_seed_methods_log_their_losses_and_feed_refinement(project, mlflow_db):
    """EPS trains on saliency and logs each loss term per step; AE-SIPE stores its own background
    map, which the headline seeds score, the +CRF column and the crf refinement all use."""
    cwd, env = project
    _set_param(cwd, "seeds.method", "eps")
    _run(["dvc", "repro", "evaluate_seeds"], cwd, env)
    metrics = json.loads((cwd / "metrics/seeds.json").read_text())
    assert metrics["method"] == "eps" and metrics["background"] == "threshold" and "crf" not in metrics
    client, parents, children = _pipeline_runs(mlflow_db)
    train = next(r for r in children[parents[-1].info.run_id] if r.info.run_name == "train_classifier")
    assert train.data.tags["wsss.seed_method"] == "eps" and train.data.params["seeds.eps.tau"] == "0.4"
    for key in ("train.loss", "train.cls", "train.sal"):
        assert len(client.get_metric_history(train.info.run_id, key)) == 6 * (24 // 8)

    _set_param(cwd, "seeds.method", "ae_sipe")
    _set_param(cwd, "refine.method", "crf")
    _set_param(cwd, "evaluate.seeds_crf", True)
    _run(["dvc", "repro", "evaluate_seeds", "evaluate_refine"], cwd, env)
    with np.load(sorted((cwd / "artifacts/seeds/maps").glob("*.npz"))[0]) as data:
        assert data["background"].shape == data["scores"].shape[1:]
    metrics = json.loads((cwd / "metrics/seeds.json").read_text())
    assert metrics["method"] == "ae_sipe" and metrics["background"] == "map"
    assert 0.0 <= metrics["crf"]["miou"] <= 1.0
    refined = json.loads((cwd / "metrics/refine.json").read_text())
    assert refined["method"] == "ae_sipe+crf"
    client, parents, children = _pipeline_runs(mlflow_db)
    train = next(r for r in children[parents[-1].info.run_id] if r.info.run_name == "train_classifier")
    assert client.get_metric_history(train.info.run_id, "train.gsc")


@pytest.mark.slow
def test_ablate_runs_each_row_as_an_experiment_with_one_mlflow_run(project, mlflow_db):
    cwd, env = project
    done = _run(["wsss", "ablate", "eps-tau"], cwd, env)
    table = (cwd / "results/ablations/eps-tau.md").read_text()
    assert table.strip() in done.stdout
    lines = [line for line in table.splitlines() if line.startswith("| tau=")]
    assert [line.split("|")[1].strip() for line in lines] == ["tau=0.3", "tau=0.4", "tau=0.5"]
    assert all(re.search(r"\| 0\.\d{4} ", line) for line in lines)  # a seeds mIoU in every row

    client = mlflow.MlflowClient(tracking_uri=mlflow_db)
    experiment = client.get_experiment_by_name("wsss")
    runs = client.search_runs([experiment.experiment_id])
    ablations = [r for r in runs if r.data.tags.get("wsss.kind") == "ablation"]
    assert len(ablations) == 1 and ablations[0].info.status == "FINISHED"
    rows = [r for r in runs if r.data.tags.get("mlflow.parentRunId") == ablations[0].info.run_id]
    assert sorted(r.info.run_name for r in rows) == ["eps-tau: tau=0.3", "eps-tau: tau=0.4", "eps-tau: tau=0.5"]
    assert all(r.data.tags["wsss.kind"] == "ablation-row" and "seeds_mIoU" in r.data.metrics for r in rows)
    first = next(r for r in rows if r.info.run_name.endswith("0.3"))
    assert first.data.params["seeds.eps.tau"] == "0.3" and first.data.params["seeds.method"] == "eps"
    stages = [r.info.run_name for r in runs if r.data.tags.get("mlflow.parentRunId") == first.info.run_id]
    assert {"train_classifier", "seeds", "evaluate_seeds"} <= set(stages)  # the row's stages nest under it
    shown = _run(["dvc", "exp", "show", "--no-pager", "--json"], cwd, env).stdout
    assert "eps-tau-tau_0.3" in shown
    assert yaml.safe_load((cwd / "params.yaml").read_text())["seeds"]["method"] == "cam"  # workspace untouched


def test_ablate_rejects_an_unknown_table_before_running_anything(project, mlflow_db):
    cwd, env = project
    failed = _run(["wsss", "ablate", "eps-gamma"], cwd, env, check=False)
    assert failed.returncode == 2 and "eps-gamma" in failed.stderr and "eps-strategies" in failed.stderr
