"""benchmarks/bench_gpu.py in its CPU mode (`--device cpu --tiny`): every section runs for real on
the CPU, so the script a GPU machine runs cannot rot. The equality compares the CPU with itself
here (differences 0); what the rows and the projection hold is checked, not how fast the CPU is."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))
import bench_gpu as B  # noqa: E402


pytestmark = pytest.mark.slow  # it runs a training stage under torchrun in a scratch project


@pytest.fixture(scope="module")
def result(tmp_path_factory) -> dict:
    out = tmp_path_factory.mktemp("bench_gpu") / "gpu.json"
    # one thread: the tiny networks' many small operations are slower with two on a busy machine
    run = subprocess.run([sys.executable, str(ROOT / "benchmarks/bench_gpu.py"), "--device", "cpu", "--tiny",
                          "--threads", "1", "--out", str(out)], cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    assert "| cam_multiscale | 0 |" in run.stdout  # the printed tables
    return json.loads(out.read_text())


def test_it_records_the_device_and_the_sizes(result):
    assert result["device"]["type"] == "cpu" and result["device"]["name"]
    assert result["device"]["torch"] == B.torch.__version__
    assert result["sizes"]["tiny"] and result["sizes"]["backbone"] == "tiny"
    assert 0 < result["wall_s"] < result["time_budget_s"]


def test_every_core_agrees_within_its_tolerance(result):
    rows = {row["core"]: row for row in result["equality"]}
    assert list(rows) == list(B.CORES)
    for name, row in rows.items():
        assert row["tolerance"] == B.TOLERANCES[name]
        assert row["passed"] and 0 <= row["max_abs_diff"] <= row["tolerance"], row
        assert row["reference_max_abs"] > 0, f"{name}: an all-zero output compares nothing"


def test_every_network_and_inference_has_a_rate_and_the_compiled_rows_say_why_not(result):
    rows = result["throughput"]
    eager = [row for row in rows if not row["compiled"]]
    assert {(row["work"], row["precision"]) for row in eager} == \
        {(name, p) for name in B.TRAINING for p in ("fp32", "bf16")} | \
        {(name, p) for name, precisions in B.INFERENCE.items() for p in precisions}
    for row in eager:
        assert row["images_per_s"] > 0 and row["warmup_s"] > 0 and "peak_memory_mb" in row, row
    compiled = [row for row in rows if row["compiled"]]
    assert len(compiled) == 2 * len(B.TRAINING)
    assert all(row.get("images_per_s", 0) > 0 or "not on CPU unless --compile" in row["skipped"] for row in compiled)


def test_the_projection_stands_above_its_floor(result):
    plan = result["projection"]
    assert plan["precision"] == "fp32" and plan["missing"] == []
    stages = {s["stage"]: s for s in plan["stages"]}
    assert list(stages) == [stage for stage, *_ in B.STAGES]
    assert stages["train_classifier"]["images"] == 5 * 10_582 and stages["train_irn"]["images"] == 3 * 10_582
    assert stages["train_segmentation"]["images"] == 200_000
    floored = [s for s in stages.values() if s["floor_hours"] is not None]
    assert {s["work"] for s in floored} == set(B.TRAINING) | set(B.COUNTED_INFERENCE)
    assert all(s["ratio"] >= 1 for s in floored)
    assert plan["ratio"] >= 1 and plan["hours"] > plan["hours_with_floor"] > plan["floor_hours"] > 0


def test_the_training_stage_ran_under_torchrun(result):
    run = result["torchrun"]
    assert run["rc"] == 0 and run["backend"] == "gloo" and run["checkpoint_written"], run
    assert "--nproc_per_node 1" in run["command"] and run["wall_s"] > 0
