"""`wsss repro --replicates N` on the tiny project: one DVC experiment per seed (here from DVC's
queue, two at a time), the stages that do not read project.seed computed once, one MLflow group
run with a child per replicate and the aggregates, and the study's files."""

import json
import re

import pytest

from tests.helpers.mlflow_runs import all_runs
from tests.helpers.project import run
from wsss.core.io import write_json
from wsss.sweep.replicates import STUDY_METRICS, Replicate, summarise


@pytest.mark.slow
def test_replicates_run_each_seed_as_an_experiment_and_reuse_seed_independent_stages(replicate_study):
    (cwd, env), done = replicate_study
    assert "dvc queue start -j 2" in done.stdout
    shown = run(["dvc", "exp", "show", "--no-pager", "--json"], cwd, env).stdout
    assert "replicate-seed-0" in shown and "replicate-seed-1" in shown
    logs = {k: run(["dvc", "queue", "logs", f"replicate-seed-{k}"], cwd, env).stdout for k in (0, 1)}
    ran = {k: re.findall(r"Running stage '([^']+)'", log) for k, log in logs.items()}
    assert ran[0] == []  # seed 0 is the workspace's run: every stage from the run-cache
    # synthesize does not read project.seed: computed once, by the session's run; seed 1 trains
    assert ran[1] == ["train_classifier", "seeds", "evaluate_seeds"]

    study = json.loads((cwd / "metrics/replicates.json").read_text())
    assert study["seeds"] == [0, 1] and set(study["figures"]) == {"seeds"}
    cam = study["figures"]["seeds"]["miou"]
    committed = json.loads((cwd / "metrics/seeds.json").read_text())["miou"]
    assert cam["values"][0] == committed and cam["n"] == 2 and cam["ci_low"] <= cam["mean"] <= cam["ci_high"]
    table = (cwd / "results/replicates.md").read_text()
    assert table.strip() in done.stdout and "(n=2)" in table

    runs = all_runs(f"sqlite:///{cwd / 'mlflow.db'}")
    (group,) = [r for r in runs if r.data.tags.get("wsss.kind") == "replicates"]
    assert group.info.status == "FINISHED"
    assert group.data.metrics["seeds.miou_n"] == 2 and group.data.metrics["seeds.miou_mean"] == pytest.approx(cam["mean"])
    assert group.data.metrics["seeds.miou_ci_low"] == pytest.approx(cam["ci_low"])
    children = [r for r in runs if r.data.tags.get("mlflow.parentRunId") == group.info.run_id]
    assert sorted(r.info.run_name for r in children) == ["replicate seed 0", "replicate seed 1"]
    seed_1 = next(r for r in children if r.info.run_name.endswith("1"))
    assert seed_1.data.params["project.seed"] == "1" and seed_1.info.status == "FINISHED"
    stages = {r.info.run_name for r in runs if r.data.tags.get("mlflow.parentRunId") == seed_1.info.run_id}
    assert {"train_classifier", "seeds", "evaluate_seeds"} <= stages
    # Seed 0 came whole from the run-cache: its evaluation is a restored run with the ref's figures.
    seed_0 = next(r for r in children if r.info.run_name.endswith("0"))
    (evaluation,) = [r for r in runs if r.data.tags.get("mlflow.parentRunId") == seed_0.info.run_id]
    assert evaluation.info.run_name == "evaluate_seeds" and evaluation.data.tags["wsss.restored"] == "true"
    assert evaluation.data.metrics["miou"] == pytest.approx(committed)
    report = run(["wsss", "report"], cwd, env).stdout
    assert "2 seeds" in next(line for line in report.splitlines() if line.startswith("| cam "))


def test_one_replicate_is_refused_before_anything_runs(tiny_project, capsys):
    from wsss import cli

    assert cli.main(["--project", str(tiny_project.path), "repro", "--replicates", "1"]) == 2
    assert "--replicates needs 2 or more" in capsys.readouterr().err
    assert not (tiny_project.path / "metrics/replicates.json").exists()


def test_verify_checks_a_run_against_the_studys_prediction_intervals(tmp_path, capsys):
    from wsss import cli

    study = summarise([Replicate(k, f"replicate-seed-{k}", {"seeds": {"method": "cam", "miou": v}})
                       for k, v in enumerate([0.3957, 0.4239, 0.4814])])
    assert cli.main(["--project", str(tmp_path), "verify"]) == 2
    assert STUDY_METRICS in capsys.readouterr().err  # no study yet: the file is named
    write_json(tmp_path / STUDY_METRICS, study)
    low, high = study["figures"]["seeds"]["miou"]["prediction_low"], study["figures"]["seeds"]["miou"]["prediction_high"]
    write_json(tmp_path / "metrics/seeds.json", {"method": "cam", "miou": (low + high) / 2 + 0.01})
    assert cli.main(["--project", str(tmp_path), "verify"]) == 0
    assert "| yes" in capsys.readouterr().out
    write_json(tmp_path / "metrics/seeds.json", {"method": "cam", "miou": high + 0.01})
    assert cli.main(["--project", str(tmp_path), "verify"]) == 1
    out = capsys.readouterr().out
    assert "| NO" in out and "outside the 95% prediction interval" in out and "seeds mIoU" in out
