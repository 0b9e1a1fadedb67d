"""End to end: `wsss repro` (dvc repro) on a tiny synthetic set with a real MLflow database.

The session's one run of the whole tiny pipeline (conftest: tiny_run) is what the first test
checks; the others start from a copy of it (finished_project) or from a fresh copy of the project
(tiny_project) and run only the stages they are about. Slow (minutes on 2 cores): marked `slow`,
run by scripts/test.sh and CI.
"""

import io
import json
import os
import re
import shutil
import subprocess
import urllib.request
from pathlib import Path

import mlflow
import numpy as np
import pytest
import torch
import yaml
from PIL import Image

from tests.helpers.background import background_job
from tests.helpers.mlflow_runs import all_runs, model_versions, pipeline_runs
from tests.helpers.plots import ABLATION_PLOTS, assert_every_plot_drawn
from tests.helpers.project import (
    AFTER_PTRECL,
    AFTER_REFINE,
    AFTER_SEEDS,
    ROOT,
    STAGES,
    SYNTHETIC_ROOT,
    TINY,
    TINY_STEPS,
    TINY_TRAIN_IMAGES,
    Project,
    commit,
    copy_project,
    make_project,
    run,
    run_stage,
    set_param,
    stages_run,
    update_params,
)
from tests.helpers.servers import free_port, running_server
from wsss import cli

OVERLAYS = {"synthesize": "examples.png", "seeds": "cams.png", "evaluate_seeds": "overlays.png",
            "irn_labels": "relation_labels.png", "refine": "pseudo_masks.png", "evaluate_refine": "overlays.png",
            "ptrecl": "reclassification.png", "evaluate_ptrecl": "overlays.png",
            "evaluate_segmentation": "predictions.png", "gallery": "gallery.png"}


def _thresholds(cwd: Path) -> list[float]:
    return yaml.safe_load((cwd / "params.yaml").read_text())["evaluate"]["bg_thresholds"]


@pytest.mark.slow
def test_the_tiny_pipeline_logs_nested_runs_registers_and_serves_its_network(tiny_run, finished_project):
    """What the session's `wsss repro` of the whole tiny pipeline printed, wrote and logged (the
    checks read a copy of it); its registered network predicts and serves."""
    cwd, env = finished_project
    uri = finished_project.uri
    first = tiny_run.output
    assert "| stage" in first and "seeds" in first and "all background" in first
    _assert_mixed_sizes(cwd / SYNTHETIC_ROOT)

    metrics = json.loads((cwd / "metrics/seeds.json").read_text())
    assert metrics["stage"] == "seeds" and metrics["method"] == "cam" and metrics["num_images"] == TINY_TRAIN_IMAGES
    assert 0.0 <= metrics["miou"] <= 1.0 and metrics["bg_threshold"] in _thresholds(cwd)
    assert set(metrics["baselines"]) == {"all_background", "labelled_class"}
    assert "pairs_mean" in metrics["cooccurrence"] and "f1" in metrics["boundary"]
    refined = json.loads((cwd / "metrics/refine.json").read_text())
    assert refined["stage"] == "refine" and refined["method"] == "cam+irn" and refined["num_images"] == 24
    # IRN against the seeds it refines, paired on the same 24 images; the table shows it
    vs = refined["vs_input"]
    assert vs["reference"] == "seeds" and vs["n_images"] == 24 and vs["ci_low"] <= vs["difference"] <= vs["ci_high"]
    assert vs["difference"] == pytest.approx(refined["miou"] - metrics["miou"])
    assert f"{vs['difference']:+.4f} vs seeds" in first
    assert len(list((cwd / "artifacts/refine/masks").glob("*.png"))) == 24
    assert "refine" in first and "cam+irn" in first
    score_files = sorted((cwd / "artifacts/seeds/maps").glob("*.npz"))
    assert len(score_files) == 24
    assert any(np.load(f)["scores"].max() > 0 for f in score_files)  # a classifier that learnt something

    client, parents, children = pipeline_runs(uri)
    assert len(parents) == 1
    parent = parents[0]
    assert parent.info.status == "FINISHED" and parent.data.tags["wsss.git_commit"] != "unknown"
    assert parent.data.metrics["seeds.cam.miou"] == pytest.approx(metrics["miou"])
    runs = {r.info.run_name: r for r in children[parent.info.run_id]}
    assert sorted(runs) == sorted(STAGES)
    assert all(r.info.status == "FINISHED" for r in runs.values())
    assert not any(r.data.tags.get("wsss.restored") for r in runs.values())  # every stage ran
    train = runs["train_classifier"]
    assert train.data.params["seeds.train.epochs"] == "6"
    history = client.get_metric_history(train.info.run_id, "train.loss")
    assert len(history) == TINY_STEPS  # one loss per step
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
    assert set(reclassified_details["sweep"]) == {f"{t:.2f}" for t in _thresholds(cwd)}
    assert "sweep" not in reclassified  # DVC's metrics files keep the headline figures only
    assert "cam+irn+ptrecl" in first and "reclassification" in first
    assert len(list((cwd / "artifacts/ptrecl/masks").glob("*.png"))) == 24
    assert parent.data.metrics["ptrecl.miou"] == pytest.approx(ptrecl["miou"])
    assert runs["ptrecl_prototypes"].data.metrics["prototypes.boat.foreground"] <= 4
    assert len(list((cwd / "artifacts/irn/boundaries").glob("*.npz"))) == 24
    assert client.get_metric_history(runs["train_recovery"].info.run_id, "train.loss")
    segment = json.loads((cwd / "metrics/segment.json").read_text())
    assert segment["split"] == "val" and segment["num_images"] == 6 and segment["method"] == "cam+irn+ptrecl+deeplabv2"
    assert 0.0 <= segment["miou"] <= 1.0 and "cam+irn+ptrecl+deeplabv2" in first
    assert parent.data.metrics["segment.val_miou"] == pytest.approx(segment["miou"])
    weights = torch.load(cwd / "artifacts/segment/deeplab.pt", weights_only=True)
    assert any(key.startswith("head.") for key in weights)  # a plain state dict
    assert [str(v.version) for v in model_versions(uri)] == ["1"]
    _assert_registered(cwd, uri, "1", segment)
    _assert_predict_reproduces_evaluation(cwd, env)
    _assert_served_model_answers_as_predict(cwd, dict(env, MLFLOW_TRACKING_URI=uri))


@pytest.mark.slow
def test_repro_reruns_only_what_changed_and_records_the_rest(finished_project):
    """From the finished tiny pipeline: nothing changed, no stage runs and every stage gets a
    restored run; a params change re-runs its stage and what follows it, nothing upstream,
    grouped under one parent run also with a plain `dvc repro`, and a retrained network is a new
    registered version."""
    cwd, env = finished_project
    uri = finished_project.uri
    [first_version] = model_versions(uri)

    # Nothing changed: no stage runs; the new parent run records every stage from its outputs.
    second = run(["wsss", "repro"], cwd, env)
    assert not stages_run(second.stdout)
    _, parents, children = pipeline_runs(uri)
    assert len(parents) == 2
    restored = children[parents[-1].info.run_id]
    assert sorted(r.info.run_name for r in restored) == sorted(STAGES)
    assert all(r.data.tags.get("wsss.restored") == "true" for r in restored)
    assert len(model_versions(uri)) == 1  # the same network: no new version
    # Every DVC plot is drawn from the stages' outputs; committed, they are what `dvc plots diff` compares.
    assert_every_plot_drawn(cwd, env, absent=ABLATION_PLOTS)
    losses = (cwd / "plots/train/train_classifier.tsv").read_text().splitlines()
    assert losses[0] == "step\tepoch\tloss" and len(losses) == 1 + TINY_STEPS
    commit(cwd, env, "run")

    # A reclassification parameter re-runs PtReCl and what learns from it, not its recovery network
    # nor its prototypes; plain `dvc repro` (no wsss wrapper) still groups its stages under one
    # parent run.
    set_param(cwd, "ptrecl.reclassify.top_m", 3)
    assert sorted(stages_run(run(["dvc", "repro"], cwd, env).stdout)) == sorted(AFTER_PTRECL)
    _, parents, children = pipeline_runs(uri)
    assert len(parents) == 3
    assert sorted(r.info.run_name for r in children[parents[-1].info.run_id]) == sorted(AFTER_PTRECL)
    assert_every_plot_drawn(cwd, env, "HEAD", absent=ABLATION_PLOTS)  # the committed run against this one
    versions = model_versions(uri)
    assert len({v.tags["wsss.weights_md5"] for v in versions}) == len(versions) == 2  # one version per network
    assert versions[-1].tags["wsss.pseudo_masks_md5"] != first_version.tags["wsss.pseudo_masks_md5"]

    # A seeds-stage parameter re-runs that stage and what follows, not the classifier (up to
    # evaluate_seeds: the changes above and in the test below cover the stages after it).
    set_param(cwd, "seeds.infer.scales", [1.0])
    ran = stages_run(run(["dvc", "repro", "evaluate_seeds"], cwd, env).stdout)
    assert ran[:2] == ["seeds", "evaluate_seeds"] and set(ran) <= set(AFTER_SEEDS)
    _, parents, children = pipeline_runs(uri)
    assert len(parents) == 4
    assert sorted(r.info.run_name for r in children[parents[-1].info.run_id]) == sorted(ran)

    # The results table now marks the figures the new seeds have not reached (issue 27: it showed
    # them as current); the full run's table above marked none.
    assert "NOT UP TO DATE" not in second.stdout
    table = run(["wsss", "results"], cwd, env).stdout
    rows = {line.split("|")[1].strip(): line for line in table.splitlines() if line.startswith("| ")}
    assert "NOT UP TO DATE" not in rows["seeds"]
    assert all("NOT UP TO DATE" in rows[stage] for stage in ("refine", "ptrecl", "segment"))
    assert "the stage, or one upstream of it, changed" in table


@pytest.mark.slow
def test_seeds_below_the_trivial_baselines_are_flagged_by_the_stage(finished_project):
    """Seed maps that localise nothing (every class everywhere at full score: at any background
    threshold, every pixel is a labelled class) make evaluate_seeds warn, and flag its metrics
    file and MLflow run."""
    from wsss.core.io import load_score_map, save_score_map

    cwd, env = finished_project
    maps = sorted((cwd / "artifacts/seeds/maps").glob("*.npz"))
    for path in maps:
        seeds = load_score_map(path)
        save_score_map(path, np.ones_like(seeds.scores), seeds.class_ids, seeds.background)
    result = run_stage(cwd, env, "evaluate_seeds")
    assert re.search(r"evaluate_seeds: WARNING: seeds cam: mIoU [0-9.]+ is below the trivial baseline", result.stderr)
    metrics = json.loads((cwd / "metrics/seeds.json").read_text())
    assert set(metrics["flags"]) == {"below_baseline"}
    newest = all_runs(finished_project.uri, "attributes.run_name = 'evaluate_seeds'")[-1]
    assert newest.data.tags["wsss.flags.seeds"] == "below_baseline"


@background_job(after=("tiny_run",))
def crf_refinement(job) -> tuple[Project, subprocess.CompletedProcess]:
    """A copy of the session's finished tiny project, committed, in which `dvc repro` ran after
    refine.method was switched to crf (in the background)."""
    project = copy_project(job.result("tiny_run").path, job.folder / "project", job.environ)
    commit(project.path, project.env, "run")
    set_param(project.path, "refine.method", "crf")
    return project, job.run(["dvc", "repro"], project.path, project.env)


@pytest.mark.slow
def test_switching_the_refinement_reruns_refine_and_registers_the_new_lineage(crf_refinement):
    """Switching the refinement method re-runs refine and what follows it, not the IRN training;
    the retrained network is registered, its lineage naming the new refinement and pseudo masks."""
    project, done = crf_refinement
    assert sorted(stages_run(done.stdout)) == sorted(AFTER_REFINE)
    refined = json.loads((project.path / "metrics/refine.json").read_text())
    assert refined["method"] == "cam+crf" and 0.0 <= refined["miou"] <= 1.0
    _, parents, children = pipeline_runs(project.uri)
    assert len(parents) == 2 and sorted(r.info.run_name for r in children[parents[-1].info.run_id]) == sorted(
        AFTER_REFINE)
    versions = model_versions(project.uri)
    first_version, newest = versions[0], versions[-1]
    assert len({v.tags["wsss.weights_md5"] for v in versions}) == len(versions) == 2  # one version per network
    _assert_registered(project.path, project.uri, newest.version,
                       json.loads((project.path / "metrics/segment.json").read_text()))
    assert newest.tags["wsss.refine_method"] == "crf" and first_version.tags["wsss.refine_method"] == "irn"
    assert newest.tags["wsss.pseudo_masks_md5"] != first_version.tags["wsss.pseudo_masks_md5"]
    assert newest.tags["wsss.weights_md5"] != first_version.tags["wsss.weights_md5"]


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
    run_ = client.get_run(stored.run_id)
    assert run_.data.tags["wsss.stage"] == "evaluate_segmentation"
    assert run_.data.tags["wsss.registered_model"] == f"wsss-segmenter/{version}"
    return stored


def _val_images(cwd: Path, count: int = 3) -> list[Path]:
    root = cwd / SYNTHETIC_ROOT
    ids = (root / "ImageSets/Segmentation/val.txt").read_text().split()[:count]
    return [root / "JPEGImages" / f"{i}.jpg" for i in ids]


def _assert_predict_reproduces_evaluation(cwd: Path, env: dict) -> None:
    """`wsss predict` with the registered model writes evaluate_segmentation's label maps."""
    images = _val_images(cwd)
    run(["wsss", "predict", *map(str, images), "--model", "models:/wsss-segmenter/latest", "--out", "predicted",
         "--overlay"], cwd, env)
    for image in images:
        ours = (cwd / "predicted" / f"{image.stem}.png").read_bytes()
        assert ours == (cwd / "artifacts/segment/predictions" / f"{image.stem}.png").read_bytes(), image.stem
        assert (cwd / "predicted" / f"{image.stem}_overlay.png").exists()


def _assert_served_model_answers_as_predict(cwd: Path, env: dict) -> None:
    """`wsss serve` on a loopback port answers a JSON request and an encoded image with the label
    map that `wsss predict` wrote; the server is stopped by its process id."""
    port = free_port()
    command = ["wsss", "serve", "--model", "models:/wsss-segmenter/1", "--port", str(port)]
    with running_server(command, port, cwd, env, cwd / "serve.log"):
        image = _val_images(cwd, 1)[0]
        expected = np.array(Image.open(cwd / "predicted" / f"{image.stem}.png"))
        pixels = np.array(Image.open(image).convert("RGB"))
        body = json.dumps({"inputs": {"image": pixels.tolist()}}).encode()
        request = urllib.request.Request(f"http://127.0.0.1:{port}/invocations", body,
                                         {"Content-Type": "application/json"})
        answer = json.load(urllib.request.urlopen(request, timeout=120))
        assert np.array_equal(np.array(answer["predictions"], dtype=np.uint8), expected)
        request = urllib.request.Request(f"http://127.0.0.1:{port}/invocations", image.read_bytes(),
                                         {"Content-Type": "image/jpeg", "Accept": "image/png"})
        with urllib.request.urlopen(request, timeout=120) as response:
            assert np.array_equal(np.array(Image.open(io.BytesIO(response.read()))), expected)


def _assert_mixed_sizes(root: Path) -> None:
    """The tiny set holds what real data sets do: landscape and portrait images, images smaller
    than the training crops, and sizes that differ among the first overlays of each split."""
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


@pytest.mark.slow
def test_failed_stage_names_the_culprit_and_repro_resumes(tiny_project):
    """A corrupt image in a data set the user brought (not a DVC output, which DVC would
    restore from its cache) fails the first stage that reads it, names the image, leaves no
    half-written output; once the image is fixed, `dvc repro` carries on (up to evaluate_seeds:
    the stages after it read the image as the classifier did)."""
    cwd, env = tiny_project
    update_params(cwd, {"seeds": {"train": {"epochs": 1}, "infer": {"scales": [1.0]}}})  # what resumes: quickly
    run(["dvc", "repro", "synthesize"], cwd, env)
    external = cwd / "data/external/VOC2012"
    shutil.copytree(cwd / SYNTHETIC_ROOT, external)
    set_param(cwd, "dataset.root", "data/external/VOC2012")
    victim = sorted((external / "JPEGImages").glob("*.jpg"))[3]
    good_bytes = victim.read_bytes()
    victim.write_bytes(b"corrupt")
    failed = run(["dvc", "repro"], cwd, env, check=False)
    assert failed.returncode != 0
    assert stages_run(failed.stdout) == ["train_classifier"]  # the first stage that reads the data set
    assert victim.stem in failed.stderr + failed.stdout
    assert not (cwd / "artifacts/seeds/classifier.pt").exists()
    assert not list((cwd / "artifacts/seeds").glob("*.tmp*"))
    victim.write_bytes(good_bytes)
    resumed = run(["dvc", "repro", "evaluate_seeds"], cwd, env)
    assert "train_classifier" in stages_run(resumed.stdout)
    assert (cwd / "metrics/seeds.json").exists()


def test_unknown_params_key_fails_before_any_stage(tmp_path, mlflow_db, capsys):
    cwd = make_project(tmp_path / "project").path
    set_param(cwd, "seeds.train.learning_rate", 0.1)
    assert cli.main(["--project", str(cwd), "repro"]) == 2
    assert "seeds.train.learning_rate" in capsys.readouterr().err
    assert not (cwd / "data/synthetic").exists() and not (cwd / "dvc.lock").exists()
    assert all_runs(mlflow_db) == []  # not even the parent run


# What a test needs of the classifier's stages when it retrains them anyway (every stage from
# train_classifier on depends on `dataset`): the first 8 images, 2 epochs of one step, one scale.
QUICK_SEEDS = {"dataset": {"max_images": 8}, "seeds": {"train": {"epochs": 2}, "infer": {"scales": [1.0]}}}
QUICK_STEPS = 2 * (8 // TINY["seeds"]["train"]["batch_size"])


def _seeds_run(job, params: dict, targets: list[str]) -> tuple[Project, subprocess.CompletedProcess]:
    project = copy_project(job.result("tiny_run").path, job.folder / "project", job.environ)
    update_params(project.path, QUICK_SEEDS)
    update_params(project.path, params)
    return project, job.run(["dvc", "repro", *targets], project.path, project.env)


@background_job(after=("tiny_run",))
def eps_seeds(job) -> tuple[Project, subprocess.CompletedProcess]:
    """`dvc repro evaluate_seeds` with seeds.method eps in a copy of the finished tiny project."""
    return _seeds_run(job, {"seeds": {"method": "eps"}}, ["evaluate_seeds"])


@background_job(after=("tiny_run",))
def ae_sipe_seeds(job) -> tuple[Project, subprocess.CompletedProcess]:
    """`dvc repro evaluate_seeds evaluate_refine` with seeds.method ae_sipe, the crf refinement and
    the +CRF column, in a copy of the finished tiny project."""
    return _seeds_run(job, {"seeds": {"method": "ae_sipe"}, "refine": {"method": "crf"},
                            "evaluate": {"seeds_crf": True}}, ["evaluate_seeds", "evaluate_refine"])


@pytest.mark.slow
def test_seed_methods_log_their_losses_and_feed_refinement(eps_seeds, ae_sipe_seeds):
    """EPS trains on saliency and logs each loss term per step; AE-SIPE stores its own background
    map, which the headline seeds score, the +CRF column and the crf refinement all use."""
    eps, eps_run = eps_seeds
    assert stages_run(eps_run.stdout) == ["train_classifier", "seeds", "evaluate_seeds"]
    metrics = json.loads((eps.path / "metrics/seeds.json").read_text())
    assert metrics["method"] == "eps" and metrics["background"] == "threshold" and "crf" not in metrics
    client, parents, children = pipeline_runs(eps.uri)
    train = next(r for r in children[parents[-1].info.run_id] if r.info.run_name == "train_classifier")
    assert train.data.tags["wsss.seed_method"] == "eps" and train.data.params["seeds.eps.tau"] == "0.4"
    for key in ("train.loss", "train.cls", "train.sal"):
        assert len(client.get_metric_history(train.info.run_id, key)) == QUICK_STEPS

    sipe, _ = ae_sipe_seeds
    with np.load(sorted((sipe.path / "artifacts/seeds/maps").glob("*.npz"))[0]) as data:
        assert data["background"].shape == data["scores"].shape[1:]
    metrics = json.loads((sipe.path / "metrics/seeds.json").read_text())
    assert metrics["method"] == "ae_sipe" and metrics["background"] == "map"
    assert 0.0 <= metrics["crf"]["miou"] <= 1.0
    refined = json.loads((sipe.path / "metrics/refine.json").read_text())
    assert refined["method"] == "ae_sipe+crf"
    client, parents, children = pipeline_runs(sipe.uri)
    train = next(r for r in children[parents[-1].info.run_id] if r.info.run_name == "train_classifier")
    assert client.get_metric_history(train.info.run_id, "train.gsc")


@background_job(after=("tiny_run",))
def eps_tau_ablation(job) -> tuple[Project, subprocess.CompletedProcess]:
    """`wsss ablate eps-tau --replicates 2` in a copy of the finished tiny project (the classifier's
    stages on QUICK_SEEDS, committed: the experiments' baseline). Its seeds run as `wsss repro
    --replicates` runs them (`--jobs`, DVC's queue, is the replicate study's test)."""
    project = copy_project(job.result("tiny_run").path, job.folder / "project", job.environ)
    update_params(project.path, QUICK_SEEDS)
    commit(project.path, project.env, "quick seeds")
    return project, job.run(["wsss", "ablate", "eps-tau", "--replicates", "2"], project.path, project.env)


@pytest.mark.slow
def test_ablate_runs_each_row_as_an_experiment_with_one_mlflow_run(eps_tau_ablation):
    (cwd, env), done = eps_tau_ablation
    table = (cwd / "results/ablations/eps-tau.md").read_text()
    assert table.strip() in done.stdout
    lines = [line for line in table.splitlines() if line.startswith("| tau=")]
    assert [line.split("|")[1].strip() for line in lines] == ["tau=0.3", "tau=0.4", "tau=0.5"]
    assert all(re.search(r"\| 0\.\d{4} ± 0\.\d{4} \(n=2\) ", line) for line in lines)  # over 2 seeds
    assert "reference" in lines[0] and all(re.search(r"\| [+-]0\.\d{4} ± 0\.\d{4}", line) for line in lines[1:])

    runs = all_runs(eps_tau_ablation[0].uri)
    ablations = [r for r in runs if r.data.tags.get("wsss.kind") == "ablation"]
    assert len(ablations) == 1 and ablations[0].info.status == "FINISHED"
    rows = [r for r in runs if r.data.tags.get("mlflow.parentRunId") == ablations[0].info.run_id]
    assert sorted(r.info.run_name for r in rows) == ["eps-tau: tau=0.3", "eps-tau: tau=0.4", "eps-tau: tau=0.5"]
    assert all(r.data.tags["wsss.kind"] == "ablation-row" and "seeds_mIoU" in r.data.metrics for r in rows)
    first = next(r for r in rows if r.info.run_name.endswith("0.3"))
    assert first.data.params["seeds.eps.tau"] == "0.3" and first.data.params["seeds.method"] == "eps"
    seeds = [r for r in runs if r.data.tags.get("mlflow.parentRunId") == first.info.run_id]
    assert sorted(r.info.run_name for r in seeds) == ["eps-tau-tau_0.3 seed 0", "eps-tau-tau_0.3 seed 1"]
    assert all(r.data.tags["wsss.kind"] == "replicate" and r.info.status == "FINISHED" for r in seeds)
    for seed in seeds:  # each seed's stages nest under its replicate run
        stages = [r.info.run_name for r in runs if r.data.tags.get("mlflow.parentRunId") == seed.info.run_id]
        assert {"train_classifier", "seeds", "evaluate_seeds"} <= set(stages)
    shown = run(["dvc", "exp", "show", "--no-pager", "--json"], cwd, env).stdout
    assert "eps-tau-tau_0.3-seed-0" in shown and "eps-tau-tau_0.3-seed-1" in shown
    assert yaml.safe_load((cwd / "params.yaml").read_text())["seeds"]["method"] == "cam"  # workspace untouched


def test_ablate_rejects_an_unknown_table_before_running_anything(tmp_path, mlflow_db, capsys):
    cwd = make_project(tmp_path / "project").path
    assert cli.main(["--project", str(cwd), "ablate", "eps-gamma"]) == 2
    err = capsys.readouterr().err
    assert "eps-gamma" in err and "eps-strategies" in err
    assert all_runs(mlflow_db) == [] and not (cwd / "results").exists()


def test_helpers_copy_the_pipeline_files_and_the_tiny_params(tmp_path):
    """make_project's copy: the pipeline's files from this checkout (DVC's page template among
    them), the tiny params over params.yaml, committed; none of this checkout's outputs."""
    project = make_project(tmp_path / "project", {"seeds": {"method": "eps"}})
    params = yaml.safe_load((project.path / "params.yaml").read_text())
    assert params["data"]["synthetic"]["num_train"] == TINY_TRAIN_IMAGES and params["seeds"]["method"] == "eps"
    assert params["seeds"]["train"]["lr"] == yaml.safe_load((ROOT / "params.yaml").read_text())["seeds"]["train"]["lr"]
    for name in ("dvc.yaml", ".dvc/config", ".dvc/plots_page.html", "pipeline/seeds.py", "src/wsss/cli.py",
                 ".gitignore"):
        assert (project.path / name).read_bytes() == (ROOT / name).read_bytes(), name
    assert not any((project.path / name).exists() for name in ("artifacts", "mlflow.db", ".dvc/cache", "dvc.lock"))
    status = subprocess.run(["git", "status", "--porcelain"], cwd=project.path, capture_output=True, text=True)
    assert status.stdout == ""
    assert "MLFLOW_TRACKING_URI" not in project.env and project.uri == f"sqlite:///{project.path / 'mlflow.db'}"
    assert project.env["PYTHONPATH"].split(os.pathsep)[0] == str(project.path / "src")
