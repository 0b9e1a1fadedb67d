"""Presets (presets/*.yaml, `wsss init --preset`): each composes into valid params, the committed
params.yaml is the synthetic one, switching back and forth is exact, and a real data set with the
synthetic preset's values is warned about by name."""

import re
import shutil
from pathlib import Path

import pytest

from wsss.cli import main
from wsss.core import params as params_mod
from wsss.core.errors import ParamsError
from wsss.stages.presets import (PRESET_DIR, SYNTHETIC, apply_preset, load_preset, preset_names,
                                 synthetic_values_kept, warn_synthetic_values)

ROOT = Path(__file__).resolve().parents[1]
PRESETS = preset_names(ROOT)


@pytest.fixture
def project(tmp_path):
    shutil.copytree(ROOT / PRESET_DIR, tmp_path / PRESET_DIR)
    shutil.copy(ROOT / params_mod.PARAMS_FILE, tmp_path / params_mod.PARAMS_FILE)
    return tmp_path


def test_the_papers_settings_and_the_synthetic_default_are_presets():
    assert {"synthetic", "voc-resnet50", "voc-lite0", "coco-resnet50", "coco-lite0", "small-real"} <= set(PRESETS)


def test_every_preset_names_the_same_keys():
    synthetic_keys = set(load_preset(SYNTHETIC, ROOT))
    for name in PRESETS:
        assert set(load_preset(name, ROOT)) == synthetic_keys, name


def test_the_committed_params_file_is_the_synthetic_preset():
    loaded = params_mod.load(ROOT / params_mod.PARAMS_FILE)
    for key, value in load_preset(SYNTHETIC, ROOT).items():
        assert loaded.dump(key) == value, key


@pytest.mark.parametrize("name", PRESETS)
def test_each_preset_writes_valid_params_and_switching_back_restores_the_file(project, name):
    original = (project / params_mod.PARAMS_FILE).read_text()
    apply_preset(name, project)
    loaded = params_mod.load(project / params_mod.PARAMS_FILE)
    for key, value in load_preset(name, project).items():
        assert loaded.dump(key) == value, key
    assert loaded.seeds.method == "cam" and loaded.project.seed == 0  # keys outside the presets stay
    apply_preset(SYNTHETIC, project)
    assert (project / params_mod.PARAMS_FILE).read_text() == original


def test_a_changed_value_gets_the_presets_comment(project):
    changed = apply_preset("voc-resnet50", project)
    assert "refine.irn.labels.fg_threshold" in changed and "seeds.train.hflip" not in changed
    text = (project / params_mod.PARAMS_FILE).read_text()
    assert re.search(r"^ {6}fg_threshold: 0\.30? +# preset voc-resnet50$", text, re.M)
    assert re.search(r"^ {2}root: data/VOCdevkit/VOC2012 +# preset voc-resnet50: JPEGImages", text, re.M)
    assert apply_preset("voc-resnet50", project) == []


def test_a_real_data_set_with_the_synthetic_values_is_warned_about_by_key(project):
    synthetic = params_mod.load(project / params_mod.PARAMS_FILE)
    assert synthetic_values_kept(synthetic, project) == []
    voc_only_by_name = params_mod.load(project / params_mod.PARAMS_FILE, {"dataset.name": "voc"})
    kept = synthetic_values_kept(voc_only_by_name, project)
    assert "seeds.train.crop_size=128" in kept and "refine.irn.labels.fg_threshold=0.7" in kept
    assert not any(k.startswith(("seeds.train.batch_size=", "seeds.train.weight_decay=")) for k in kept)  # shared
    assert "seeds.train.crop_size=128" in warn_synthetic_values(voc_only_by_name, project)
    apply_preset("voc-resnet50", project)
    assert synthetic_values_kept(params_mod.load(project / params_mod.PARAMS_FILE), project) == []


def test_no_warning_where_the_presets_are_not_there(tmp_path):
    voc = params_mod.load(ROOT / params_mod.PARAMS_FILE, {"dataset.name": "voc"})
    assert synthetic_values_kept(voc, tmp_path) == []


def test_an_unknown_preset_or_key_is_named(project):
    with pytest.raises(ParamsError, match=r"no preset 'voc'.*voc-resnet50"):
        apply_preset("voc", project)
    (project / PRESET_DIR / "typo.yaml").write_text("seeds.train.crop: 256\n")
    with pytest.raises(ParamsError, match=r"typo.yaml: 'seeds.train.crop' is not a params.yaml value key"):
        apply_preset("typo", project)


def test_a_preset_that_makes_params_invalid_writes_nothing(project):
    original = (project / params_mod.PARAMS_FILE).read_text()
    (project / PRESET_DIR / "bad.yaml").write_text("seeds.train.crop_size: 2\n")
    with pytest.raises(ParamsError, match="seeds.train.crop_size"):
        apply_preset("bad", project)
    assert (project / params_mod.PARAMS_FILE).read_text() == original


def test_wsss_init(project, capsys):
    assert main(["--project", str(project), "init", "--list"]) == 0
    assert "voc-resnet50    dataset voc, backbone resnet50" in capsys.readouterr().out
    assert main(["--project", str(project), "init", "--preset", "coco-lite0"]) == 0
    assert "preset coco-lite0, " in capsys.readouterr().out
    assert params_mod.load(project / params_mod.PARAMS_FILE).dataset.name == "coco"
    assert main(["--project", str(project), "init", "--preset", "nope"]) == 2
    assert "no preset 'nope'" in capsys.readouterr().err


def test_every_preset_key_and_preset_is_in_its_docs_page():
    page = (ROOT / "docs" / "presets.md").read_text()
    for key in load_preset(SYNTHETIC, ROOT):
        assert f"| `{key}` |" in page, key
    for name in PRESETS:
        assert f"`{name}`" in page, name
