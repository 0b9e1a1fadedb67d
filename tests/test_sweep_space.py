"""Sweep specs are checked against params.yaml and dvc.yaml before any trial runs; the pieces of
a sweep that need no pipeline run (dvc output parsing, the best-params file)."""

import shutil
from pathlib import Path

import optuna
import pytest
import yaml

from wsss.cli import main
from wsss.sweep.best import best_params_text, dvc_exp_command
from wsss.sweep.space import SweepError, load_spec
from wsss.sweep.workspace import STATE_ROOT, stage_statuses

ROOT = Path(__file__).resolve().parents[1]
OBJECTIVE = {"metric": "metrics/refine.json:miou", "direction": "maximize"}
SPACE = {"refine.pamr.num_iter": {"type": "int", "low": 1, "high": 20}}


@pytest.fixture
def project(tmp_path):
    """The project's params.yaml and dvc.yaml: all that validation reads."""
    for name in ("params.yaml", "dvc.yaml"):
        shutil.copy(ROOT / name, tmp_path / name)
    return tmp_path


def write_spec(project: Path, name: str = "s", **spec) -> Path:
    spec.setdefault("objective", OBJECTIVE)
    spec.setdefault("budget", 4)
    spec.setdefault("space", SPACE)
    path = project / f"{name}.yaml"
    path.write_text(yaml.safe_dump({k: v for k, v in spec.items() if v is not None}, sort_keys=False))
    return path


def test_the_example_sweep_is_valid():
    spec = load_spec(ROOT / "sweeps/ptrecl.yaml", ROOT)
    assert spec.name == "ptrecl" and spec.budget == 20 and spec.direction == "maximize"
    assert [d.key for d in spec.space] == ["ptrecl.prototypes.k", "ptrecl.reclassify.top_m", "refine.pamr.num_iter"]
    assert [(d.low, d.high) for d in spec.space[:2]] == [(2, 30), (3, 30)]
    assert spec.space[2].choices == (5, 10, 20) and spec.fixed == {"refine.method": "pamr"}
    assert str(spec.objective) == "metrics/ptrecl.json:miou" and spec.objective.stage == "evaluate_ptrecl"
    assert [s.stage for s in spec.steps] == ["evaluate_refine", "evaluate_ptrecl"]  # PAMR's masks reported first


def test_every_kind_of_dimension_and_the_steps_in_pipeline_order(project):
    path = write_spec(
        project,
        objective={"metric": "metrics/ptrecl.json:boundary.f1", "direction": "minimize"},
        report=["metrics/seeds.json:miou", "metrics/refine.json:miou", "metrics/ptrecl_map.json:miou"],
        fixed={"refine.method": "irn"},
        space={
            "seeds.train.lr": {"type": "float", "low": 0.001, "high": 0.1, "log": True},
            "refine.pamr.num_iter": {"type": "int", "low": 1, "high": 20},
            "ptrecl.reclassify.formula": {"type": "categorical", "choices": ["fg_share", "vote"]},
        },
    )
    spec = load_spec(path, project, name="lr", budget=7)
    assert spec.name == "lr" and spec.budget == 7 and spec.direction == "minimize"
    assert spec.objective.key == "boundary.f1" and spec.objective.name == "ptrecl.boundary.f1"
    lr, iters, formula = spec.space
    assert (lr.type, lr.low, lr.high, lr.log) == ("float", 0.001, 0.1, True)
    assert (iters.type, iters.low, iters.high, iters.log) == ("int", 1, 20, False)
    assert formula.choices == ("fg_share", "vote")
    steps = spec.steps
    assert [s.stage for s in steps] == ["evaluate_seeds", "evaluate_refine", "evaluate_ptrecl"]
    assert [[i for i, _ in s.reports] for s in steps] == [[0], [1], [2]]
    assert spec.fixed == {"refine.method": "irn"}
    assert "budget" not in spec.flat_params() and spec.flat_params()["space.seeds.train.lr.log"] is True


BAD = [
    # (what, spec fields, words the error must hold)
    ("key not in params.yaml", {"space": {"ptrecl.prototypes.kk": {"type": "int", "low": 2, "high": 9}}},
     ["ptrecl.prototypes.kk", "not a key of params.yaml"]),
    ("a section, not a leaf", {"space": {"refine.pamr": {"type": "int", "low": 1, "high": 9}}},
     ["refine.pamr", "section"]),
    ("empty range", {"space": {"refine.pamr.num_iter": {"type": "int", "low": 5, "high": 5}}},
     ["refine.pamr.num_iter", "empty range"]),
    ("inverted range", {"space": {"seeds.train.lr": {"type": "float", "low": 0.1, "high": 0.01}}},
     ["seeds.train.lr", "empty range"]),
    ("log with low <= 0", {"space": {"seeds.train.lr": {"type": "float", "low": 0.0, "high": 0.1, "log": True}}},
     ["seeds.train.lr", "log", "low > 0"]),
    ("empty choices", {"space": {"refine.method": {"type": "categorical", "choices": []}}},
     ["refine.method", "non-empty"]),
    ("a choice the schema rejects", {"space": {"refine.method": {"type": "categorical", "choices": ["irn", "magic"]}}},
     ["refine.method", "magic", "should be 'irn', 'crf', 'pamr' or 'none'"]),
    ("float range on an int key", {"space": {"refine.pamr.num_iter": {"type": "float", "low": 1.0, "high": 9.0}}},
     ["refine.pamr.num_iter", "should be a valid integer"]),
    ("range beyond the schema", {"space": {"refine.pamr.num_iter": {"type": "int", "low": 1, "high": 500}}},
     ["refine.pamr.num_iter", "500", "should be less than or equal to 100"]),
    ("int range with a float bound", {"space": {"refine.pamr.num_iter": {"type": "int", "low": 1.5, "high": 9}}},
     ["refine.pamr.num_iter", "integer"]),
    ("unknown type", {"space": {"refine.pamr.num_iter": {"type": "uniform", "low": 1, "high": 9}}},
     ["refine.pamr.num_iter", "int, float or categorical"]),
    ("unknown field", {"space": {"refine.pamr.num_iter": {"type": "int", "low": 1, "high": 9, "step": 2}}},
     ["refine.pamr.num_iter", "step"]),
    ("metric file no stage writes", {"objective": {"metric": "metrics/nope.json:miou", "direction": "maximize"}},
     ["objective.metric", "metrics/nope.json", "not a metrics output"]),
    ("an output that is not a metric", {"objective": {"metric": "artifacts/irn/irn.pt:miou", "direction": "maximize"}},
     ["artifacts/irn/irn.pt", "not a metrics output"]),
    ("a key no metrics file holds (issue 27: every trial ran and failed)",
     {"objective": {"metric": "metrics/ptrecl.json:mIoU", "direction": "maximize"}},
     ["objective.metric", "no number 'mIoU'", "did you mean 'miou'?"]),
    ("a label, not a number", {"report": ["metrics/seeds.json:method"]}, ["report[0]", "no number 'method'"]),
    ("metric without a key", {"objective": {"metric": "metrics/refine.json", "direction": "maximize"}},
     ["objective.metric", "<metrics file>:<key>"]),
    ("bad direction", {"objective": {"metric": "metrics/refine.json:miou", "direction": "up"}},
     ["objective.direction", "'up'"]),
    ("unknown top-level key", {"trials": 5}, ["unknown key 'trials'"]),
    ("budget below 1", {"budget": 0}, ["'budget'", "got 0"]),
    ("report needing stages the objective does not", {"report": ["metrics/segment.json:miou"]},
     ["report[0]", "train_segmentation", "on the way to the objective"]),
    ("reports out of pipeline order", {"objective": {"metric": "metrics/ptrecl.json:miou", "direction": "maximize"},
                                       "report": ["metrics/ptrecl_map.json:miou", "metrics/seeds.json:miou"]},
     ["report[0]", "evaluate_ptrecl", "runs after report[1]'s stage evaluate_seeds", "pipeline order"]),
    ("report metric no stage writes", {"report": ["metrics/nope.json:miou"]}, ["report[0]", "metrics/nope.json"]),
    ("fixed key not in params.yaml", {"fixed": {"refine.metod": "crf"}}, ["fixed", "refine.metod"]),
    ("fixed value the schema rejects", {"fixed": {"refine.method": "magic"}}, ["fixed", "refine.method", "magic"]),
    ("a key both fixed and searched", {"fixed": {"refine.pamr.num_iter": 3}}, ["refine.pamr.num_iter", "fixed"]),
    ("no space", {"space": {}}, ["'space'"]),
]


@pytest.mark.parametrize("what, fields, words", BAD, ids=[b[0] for b in BAD])
def test_bad_specs_fail_naming_the_file_and_the_key(project, what, fields, words):
    path = write_spec(project, **fields)
    with pytest.raises(SweepError) as error:
        load_spec(path, project)
    message = str(error.value)
    assert message.startswith(f"{path}:")
    for word in words:
        assert word in message, f"{what}: {word!r} not in {message!r}"


def test_budget_and_name_overrides_are_checked_too(project):
    path = write_spec(project)
    with pytest.raises(SweepError, match="'budget'.*got 0"):
        load_spec(path, project, budget=0)
    with pytest.raises(SweepError, match="sweep name 'a/b'"):
        load_spec(path, project, name="a/b")
    with pytest.raises(SweepError, match="sweep spec not found"):
        load_spec(project / "missing.yaml", project)


def test_cli_rejects_an_unknown_engine_and_a_bad_spec_before_any_trial(project, capsys):
    path = write_spec(project)
    assert main(["--project", str(project), "sweep", str(path), "--engine", "hyperopt"]) == 2
    assert "error: unknown sweep engine 'hyperopt'; known: optuna, ray" in capsys.readouterr().err
    bad = write_spec(project, "bad", space={"refine.pamr.iters": {"type": "int", "low": 1, "high": 9}})
    assert main(["--project", str(project), "sweep", str(bad)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "refine.pamr.iters" in err and str(bad) in err
    assert not (project / STATE_ROOT).exists()  # nothing was set up, let alone run
    assert main(["--project", str(project), "sweep", str(path), "--gpus-per-trial", "1"]) == 2
    assert "--gpus-per-trial is an option of --engine ray" in capsys.readouterr().err


def test_stage_statuses_read_dvc_repro_output():
    # The lines dvc 3.67 prints (dvc/stage/run.py, dvc/stage/cache.py, dvc/stage/__init__.py).
    output = (
        "Stage 'synthesize' didn't change, skipping\n"
        "Stage 'train_classifier' is cached - skipping run, checking out outputs\n"
        "Updating lock file 'dvc.lock'\n\n"
        "Running stage 'ptrecl':\n> python -m pipeline.ptrecl\nptrecl: Running stage 'x' (a stage's own print)\n"
        "Running stage 'evaluate_ptrecl':\n"
    )
    assert stage_statuses(output) == {"synthesize": "unchanged", "train_classifier": "restored",
                                      "ptrecl": "ran", "evaluate_ptrecl": "ran"}


def test_best_params_file_is_a_params_fragment_with_its_dvc_command(project):
    path = write_spec(project, fixed={"refine.method": "crf"},
                      space={"refine.pamr.num_iter": {"type": "int", "low": 1, "high": 20},
                             "ptrecl.reclassify.formula": {"type": "categorical", "choices": ["fg_share", "vote"]}})
    spec = load_spec(path, project)
    trial = optuna.trial.create_trial(
        params={"refine.pamr.num_iter": 7, "ptrecl.reclassify.formula": "vote"},
        distributions={"refine.pamr.num_iter": optuna.distributions.IntDistribution(1, 20),
                       "ptrecl.reclassify.formula": optuna.distributions.CategoricalDistribution(["fg_share", "vote"])},
        value=0.5)
    text = best_params_text(spec, 3, trial.value, trial.params)
    assert text.startswith("# sweep ") and "best trial 3" in text.splitlines()[0]
    assert yaml.safe_load(text) == {"refine": {"method": "crf", "pamr": {"num_iter": 7}},
                                    "ptrecl": {"reclassify": {"formula": "vote"}}}
    command = dvc_exp_command(spec, trial.params)
    assert command == ("dvc exp run -S 'refine.method='\"'\"'crf'\"'\"'' -S refine.pamr.num_iter=7 "
                       "-S 'ptrecl.reclassify.formula='\"'\"'vote'\"'\"'' evaluate_refine")
    assert f"#   {command}" in text.splitlines()
