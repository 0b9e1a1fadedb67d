"""benchmarks/bench_scale.py: its machinery on a tiny setting (a stage run for real, its rate and
peak memory, the tables and the projection); the whole benchmark on a tiny set is a slow test."""

import json
import os
import sys
from pathlib import Path

import pytest

from tests.helpers.background import background_job

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))
import bench_scale as B  # noqa: E402

TINY_SET = {"data": {"synthetic": {"num_train": 6, "num_val": 2, "image_sizes": [[40, 52], [52, 40]]}},
            "project": {"progress": False}}


def test_a_stage_run_gives_its_time_peak_memory_and_rate(tmp_path, mlflow_db):
    project = B.Project(tmp_path / "project", TINY_SET, env={"MLFLOW_TRACKING_URI": mlflow_db})
    figures = project.run("synthesize")
    assert figures["wall_s"] > 0
    assert 50 < figures["peak_rss_mb"] < 4000  # a Python process with torch and MLflow loaded
    images = project.folder / "data/synthetic/VOCdevkit/VOC2012/JPEGImages"
    assert len(list(images.iterdir())) == 8
    assert B.file_rate(images, workers=1) > 0
    assert B.file_rate(images, workers=8) is None  # no file after each worker's first
    with pytest.raises(RuntimeError, match="stage no_such_stage failed"):
        project.run("no_such_stage")


def test_tables_and_projection():
    figures = {"wall_s": 10.0, "peak_rss_mb": 900.0}
    rows = [B.row("train_classifier", "train", 8, "", figures, 2.0),
            B.row("seeds", "train", 8, B.WORKERS[1], figures, 1.0, workers=1),
            B.row("seeds", "train", 8, B.WORKERS[2], figures, 1.6, workers=2),
            B.row("evaluate_seeds", "train", 8, "", figures, None),
            B.row("evaluate_segmentation", "val", 8, "", figures, 4.0),
            B.row("gallery", "train", 8, "", figures, None)]
    assert rows[0]["start_s"] == 6.0 and rows[1]["start_s"] == 2.0 and rows[3]["start_s"] is None
    defaults = {"seeds": {"train": {"epochs": 12, "batch_size": 16}}}
    plan = {r["stage"]: r for r in B.projection(rows, defaults, 10_582, 1_449)}
    assert list(plan) == ["train_classifier", "seeds", "evaluate_seeds", "evaluate_segmentation", "gallery"]  # 1 worker
    assert plan["train_classifier"]["work"] == "12 epochs x 661 steps x 16"
    assert plan["train_classifier"]["hours"] == round((6.0 + 12 * 661 * 16 / 2.0) / 3600, 2)
    assert plan["seeds"]["hours"] == round((2.0 + 10_582) / 3600, 2)
    assert plan["evaluate_segmentation"]["hours"] == round((8.0 + 1_449 / 4.0) / 3600, 2)
    assert plan["evaluate_seeds"]["hours"] is None
    assert plan["gallery"]["hours"] == round(10.0 / 3600, 2)  # a constant cost, as measured
    table = B.projection_table(list(plan.values()))
    assert "| seeds | 10582 images | 1.000 | 2.94 |" in table
    assert "(without evaluate_seeds)" in table.splitlines()[-1]
    assert "| seeds | 1.000 | 1.600 | 1.60 |" in B.workers_table(rows)
    assert B.throughput_table(rows).count("\n") == 1 + len(rows)
    memory = [{"stage": "seeds", "peak_rss_mb": {"100": 450.0, "1000": 459.0}, "wall_s": {"100": 5.0, "1000": 30.0},
               "ratio": 1.02}]
    assert "| seeds | 450 | 459 | 1.020 | 5.0 | 30.0 |" in B.memory_table(memory, [100, 1000])


def test_a_presets_throughput_runs_its_settings_one_epoch_and_projects_its_epochs():
    from wsss.core.params import validate
    from wsss.stages.presets import load_preset

    preset = load_preset("voc-resnet50", ROOT)
    data = {"name": "synthetic", "root": "data/scale/voc"}
    params = B.preset_params(data, 8, 2, preset)
    assert params["dataset"] == {**data, "max_images": 8}
    assert params["seeds"]["backbone"] == {"name": "resnet50", "output_stride": 16, "dilate": False, "pretrained": False}
    for section in B.TRAINING.values():
        train = B.lookup(params, section)
        assert (train["epochs"], train["batch_size"], train["lr"]) == (1, 2, 0.001)
        assert train["crop_size"] == preset[f"{section}.crop_size"]
    assert params["refine"]["irn"]["walk"] == {"exp_times": 8, "bg_score": 0.25}
    defaults = B.with_preset(B.read_raw(ROOT / "params.yaml"), preset)
    validate(defaults)
    assert B.lookup(defaults, "seeds.train")["epochs"] == 5 and B.lookup(defaults, "segment.train")["epochs"] == 19


@background_job(rank=1)
def scale_benchmark(job) -> dict:
    """`python benchmarks/bench_scale.py` on a tiny set (both parts), in the background after the
    session's tiny runs: what it wrote to its --out file."""
    out = job.folder / "scale.json"
    env = dict(job.environ, PYTHONPATH=os.pathsep.join([str(ROOT / "src"), str(ROOT)]),
               PATH=f"{Path(sys.executable).parent}{os.pathsep}{job.environ['PATH']}")
    job.run([sys.executable, str(ROOT / "benchmarks/bench_scale.py"), "--data-dir", str(job.folder / "data"), "--sizes",
             "48x64,64x48", "--num-train", "8", "--num-val", "4", "--images", "4", "--batch", "2", "--crop", "48",
             "--backbone", "tiny", "--mem-counts", "4,8", "--mem-size", "40x52", "--mem-train", "4", "--out", str(out)],
            ROOT, env)
    return json.loads(out.read_text())


@pytest.mark.slow
def test_the_whole_benchmark_on_a_tiny_set(scale_benchmark):
    result = scale_benchmark
    rows = result["throughput"]["rows"]
    stages = [r["stage"] for r in rows]
    assert set(stages) == set(B.PER_IMAGE_FILES) | set(B.TRAINING) | {
        "evaluate_seeds", "evaluate_refine", "ptrecl_prototypes", "evaluate_ptrecl", "gallery"}
    assert all(stages.count(s) == 2 for s in B.SHARDED)  # 1 and 2 workers
    assert all(r["peak_rss_mb"] > 50 and r["wall_s"] > 0 for r in rows)
    assert all(r["images_per_s"] > 0 for r in rows if r["stage"] in B.PER_IMAGE_FILES)
    # training and evaluation rates come from the difference of two runs, which on 4 tiny images
    # can drown in the start-up's noise: then no rate, never a negative one
    assert all(r["images_per_s"] is None or r["images_per_s"] > 0 for r in rows)
    assert [r["images_per_s"] for r in rows if r["stage"] in B.CONSTANT] == [None]
    assert result["projection"]["total_hours"] > 0
    memory = {r["stage"]: r for r in result["memory"]["rows"]}
    assert list(memory) == list(B.MEMORY_STAGES)
    assert all(0.5 < r["ratio"] < 2 and set(r["peak_rss_mb"]) == {"4", "8"} for r in memory.values())
    assert result["data"]["generated"] and result["memory"]["data"]["generated"]
