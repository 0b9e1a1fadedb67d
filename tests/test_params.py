"""params.yaml's one model tree (wsss.core.params): defaults, ranges, docs and the errors it gives."""

import json
from pathlib import Path

import jsonschema
import pytest
import yaml

from wsss.core import params
from wsss.core.errors import ParamsError

ROOT = Path(__file__).resolve().parents[1]


def _fields(model=params.Params, prefix=""):
    """(dotted key, field) of every value of the tree."""
    for name, field in model.model_fields.items():
        key = f"{prefix}{field.alias or name}"
        section = params._section_type(field.annotation)
        if section is None:
            yield key, field
        else:
            yield from _fields(section, key + ".")


def test_defaults_fill_missing_sections():
    full = params.validate({})
    assert full.seeds.infer.scales == [1.0, 0.5, 1.5, 2.0]
    assert full.evaluate.cam_bg_threshold == 0.15
    assert full.project.device == "auto"
    assert full.seeds.ae_sipe.steps == "pr_is,pamr,pr_is" and full.seeds.sipe.steps == "pr_is"


def test_repo_params_file_is_valid():
    loaded = params.load(ROOT / "params.yaml")
    assert loaded.dataset.name == "synthetic"
    assert loaded.get("refine.irn.walk.exp_times") == 4


def test_every_key_has_a_one_line_doc():
    undocumented = [key for key, field in _fields() if not field.description or "\n" in field.description]
    assert undocumented == []
    assert len(list(_fields())) > 150


def test_the_schema_file_is_current_and_params_yaml_follows_it():
    """params.schema.json is what `wsss params schema` writes today, and the repo's params.yaml
    (whose first line names it for editors) validates against it."""
    schema = json.loads((ROOT / params.SCHEMA_FILE).read_text())
    assert schema == json.loads(json.dumps(params.json_schema())), "run `wsss params schema`"
    assert (ROOT / "params.yaml").read_text().startswith(f"# yaml-language-server: $schema={params.SCHEMA_FILE}")
    jsonschema.validate(yaml.safe_load((ROOT / "params.yaml").read_text()), schema)
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({"seeds": {"train": {"lr": "fast"}}}, schema)
    walk = schema["$defs"]["WalkParams"]["properties"]["radius"]
    assert walk["unit"] == "cells" and walk["minimum"] == 2 and walk["default"] == 5 and walk["description"]


@pytest.mark.parametrize(
    "raw, key",
    [
        ({"seeds": {"train": {"lr_x": 1}}}, "seeds.train.lr_x"),
        ({"sedes": {}}, "sedes"),
        ({"seeds": {"train": {"lr": -1}}}, "seeds.train.lr"),
        ({"seeds": {"train": {"lr": 0}}}, "seeds.train.lr"),  # trains nothing: issue 27
        ({"refine": {"irn": {"train": {"lr": 0.0}}}}, "refine.irn.train.lr"),
        ({"segment": {"train": {"lr": 0.0}}}, "segment.train.lr"),
        ({"refine": {"pamr": {"num_iter": 0}}}, "refine.pamr.num_iter"),  # a refinement that changes nothing
        ({"seeds": {"train": {"epochs": 2.5}}}, "seeds.train.epochs"),
        ({"seeds": {"train": {"epochs": True}}}, "seeds.train.epochs"),
        ({"seeds": {"backbone": {"name": "vgg"}}}, "seeds.backbone.name"),
        ({"seeds": {"infer": {"scales": [1.0, -0.5]}}}, "seeds.infer.scales"),
        ({"seeds": {"infer": {"scales": []}}}, "seeds.infer.scales"),
        ({"seeds": {"train": {"resize_long": [300, 200]}}}, "seeds.train.resize_long"),
        ({"evaluate": {"bg_thresholds": [0.1, 1.5]}}, "evaluate.bg_thresholds"),
        ({"project": {"device": "gpu"}}, "project.device"),
        ({"dataset": {"name": "cityscapes"}}, "dataset.name"),
        ({"dataset": {"root": None}}, "dataset.root"),
        ({"data": {"synthetic": {"num_train": 0}}}, "data.synthetic.num_train"),
        ({"data": {"synthetic": {"no_such_knob": 1}}}, "data.synthetic.no_such_knob"),
        ({"refine": {"method": "densecrf"}}, "refine.method"),
        ({"refine": {"bg_threshold": "best"}}, "refine.bg_threshold"),
        ({"refine": {"bg_threshold": 1.5}}, "refine.bg_threshold"),
        ({"refine": {"crf": {"gt_prob": 1.0}}}, "refine.crf.gt_prob"),
        ({"refine": {"irn": {"labels": {"crf": {"bilateral_srgb": 0}}}}}, "refine.irn.labels.crf.bilateral_srgb"),
        ({"refine": {"pamr": {"dilations": [1, 0]}}}, "refine.pamr.dilations"),
        ({"refine": {"pamr": {"sigma": "dilation2"}}}, "refine.pamr.sigma"),
        ({"seeds": {"ae_sipe": {"pamr_sigma": "all"}}}, "seeds.ae_sipe.pamr_sigma"),
        ({"seeds": {"sipe": {"pamr_sigma": None}}}, "seeds.sipe.pamr_sigma"),
        ({"refine": {"irn": {"walk": {"exp_times": -1}}}}, "refine.irn.walk.exp_times"),
        ({"seeds": {"backbone": {"dilate": "no"}}}, "seeds.backbone.dilate"),
        ({"seeds": {"infer": {"image_resize": "bicubic"}}}, "seeds.infer.image_resize"),
        ({"seeds": {"sipe": {"infer_argmax": "labeled"}}}, "seeds.sipe.infer_argmax"),
        ({"seeds": {"ae_sipe": {"scale_norm": "per_image"}}}, "seeds.ae_sipe.scale_norm"),
        ({"refine": {"irn": {"train": {"pair_sources": "window"}}}}, "refine.irn.train.pair_sources"),
    ],
)
def test_bad_values_name_the_key(raw, key):
    with pytest.raises(ParamsError) as info:
        params.validate(raw)
    assert key in str(info.value)


def test_pamr_sigma_defaults_to_the_reference_and_offers_what_pamr_accepts():
    from typing import get_args

    from wsss.methods.pamr import SIGMA_MODES

    full = params.validate({})
    assert get_args(params.PamrSigma) == SIGMA_MODES
    assert full.refine.pamr.sigma == full.seeds.ae_sipe.pamr_sigma == "all_dilations"
    with pytest.raises(ParamsError, match=r"'refine.pamr.sigma' should be 'all_dilations' or 'dilation1', got "):
        params.validate({"refine": {"pamr": {"sigma": "dilation2"}}})


def test_int_accepted_where_float_expected_but_no_other_conversion():
    assert params.validate({"seeds": {"train": {"lr": 1}}}).seeds.train.lr == 1.0
    with pytest.raises(ParamsError, match=r"'seeds.train.lr' should be a valid number, got '0.1'"):
        params.validate({"seeds": {"train": {"lr": "0.1"}}})


def test_a_typo_gets_the_nearest_key_and_an_unknown_one_the_known_keys():
    with pytest.raises(ParamsError, match=r"unknown key 'seeds.train.lrr' \(did you mean 'seeds.train.lr'\?\)"):
        params.validate({"seeds": {"train": {"lrr": 0.1}}})
    with pytest.raises(ParamsError, match=r"unknown key 'ptrecl.zzz' \(known keys under 'ptrecl': prototypes, "):
        params.validate({"ptrecl": {"zzz": 1}})
    with pytest.raises(ParamsError, match=r"'refine.bg_threshold' should be 'auto' or less than or equal to 1"):
        params.validate({"refine": {"bg_threshold": 2}})


def test_checks_across_keys_name_both():
    with pytest.raises(ParamsError, match=r"'segment.backbone' = pretrained .* \('seeds.backbone.name'\)"):
        params.validate({"segment": {"backbone": "pretrained"}})
    assert params.validate({"segment": {"backbone": "pretrained"}, "seeds": {"backbone": {"name": "resnet50"}}})


def test_sections_are_read_only_and_keys_resolve():
    full = params.validate({})
    with pytest.raises(ValueError):
        full.seeds.train.lr = 1.0
    assert full.get("refine.irn") is full.refine.irn and full.dump("refine.irn.walk")["radius"] == 5
    assert params.is_value_key("refine.irn.walk.radius") and not params.is_value_key("refine.irn.walk")
    assert not params.is_value_key("refine.irn.wlak") and "walk" in params.section_keys("refine.irn")
    with pytest.raises(ParamsError, match="no key 'refine.nope'"):
        full.get("refine.nope")


def test_load_with_overrides_and_errors(tmp_path):
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump({"seeds": {"train": {"epochs": 3}}}))
    loaded = params.load(path, overrides={"seeds.train.lr": 0.01})
    assert loaded.seeds.train.epochs == 3 and loaded.seeds.train.lr == 0.01
    with pytest.raises(ParamsError, match="not found"):
        params.load(tmp_path / "missing.yaml")
    path.write_text("seeds: [unclosed")
    with pytest.raises(ParamsError, match="not valid YAML"):
        params.load(path)


def test_section_hash_tracks_only_its_sections():
    a = params.validate({})
    b = params.validate({"evaluate": {"cam_bg_threshold": 0.3}})
    assert params.section_hash(a, ["seeds.train"]) == params.section_hash(b, ["seeds.train"])
    assert params.section_hash(a, ["evaluate"]) != params.section_hash(b, ["evaluate"])


def test_flatten():
    assert params.flatten({"a": {"b": 1, "c": [1, 2]}, "d": None}) == {"a.b": 1, "a.c": [1, 2], "d": None}
