"""A training section's own `seed` (seeds.train, refine.irn.train, ptrecl.recovery.train,
segment.train): set, it replaces project.seed for that network alone, so the noise one network
adds can be measured with the others held fixed (docs/statistics.md)."""

from pathlib import Path

import pytest
import torch

from tests.helpers.project import run_stage, set_param
from wsss.core.params import PARAMS_FILE, ProjectParams, load
from wsss.sweep.replicates import OWN_SEED_KEYS, held_networks

CLASSIFIER = "artifacts/seeds/classifier.pt"
PROJECT_PARAMS = Path(__file__).resolve().parents[1] / PARAMS_FILE


def test_a_sections_seed_replaces_the_projects_only_where_set():
    project = ProjectParams(seed=4)
    assert project.seed_of(None) == 4
    assert project.seed_of(0) == 0 and project.seed_of(7) == 7


def test_every_training_sections_own_seed_is_known_to_the_replicates():
    def train_seeds(tree: dict, path: str = "") -> set[str]:
        found = {f"{path}seed" for key in tree if key == "seed" and path.endswith("train.")}
        return found | {k for key, value in tree.items() if isinstance(value, dict)
                        for k in train_seeds(value, f"{path}{key}.")}

    assert train_seeds(load(PROJECT_PARAMS).dump()) == set(OWN_SEED_KEYS)


def test_replicates_say_which_networks_a_set_seed_holds():
    assert held_networks(load(PROJECT_PARAMS)) == []
    held = load(PROJECT_PARAMS, {"refine.irn.train.seed": 0, "segment.train.seed": 3})
    assert held_networks(held) == ["refine.irn.train.seed=0", "segment.train.seed=3"]


@pytest.mark.slow
def test_the_classifier_trained_with_its_own_seed_is_the_one_project_seed_trains(synthesized_project):
    cwd, env = synthesized_project
    set_param(cwd, "seeds.train.epochs", 1)

    def trained(**params) -> dict:
        for key, value in params.items():
            set_param(cwd, key, value)
        run_stage(cwd, env, "train_classifier")
        return torch.load(cwd / CLASSIFIER)

    by_project = trained(**{"project.seed": 1, "seeds.train.seed": None})
    by_section = trained(**{"project.seed": 0, "seeds.train.seed": 1})
    project_0 = trained(**{"project.seed": 0, "seeds.train.seed": None})
    assert by_project.keys() == by_section.keys()
    assert all(torch.equal(by_project[key], by_section[key]) for key in by_project)
    assert not all(torch.equal(project_0[key], by_section[key]) for key in project_0)
