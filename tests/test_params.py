import pytest
import yaml

from wsss.core import params
from wsss.core.errors import ParamsError


def test_defaults_fill_missing_sections():
    full = params.validate({})
    assert full["seeds"]["infer"]["scales"] == [1.0, 0.5, 1.5, 2.0]
    assert full["evaluate"]["cam_bg_threshold"] == 0.15
    assert full["project"]["device"] == "auto"


def test_repo_params_file_is_valid():
    from pathlib import Path

    loaded = params.load(Path(__file__).parents[1] / "params.yaml")
    assert loaded["dataset"]["name"] == "synthetic"


@pytest.mark.parametrize(
    "raw, key",
    [
        ({"seeds": {"train": {"lr_x": 1}}}, "seeds.train.lr_x"),
        ({"sedes": {}}, "sedes"),
        ({"seeds": {"train": {"lr": -1}}}, "seeds.train.lr"),
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
    ],
)
def test_bad_values_name_the_key(raw, key):
    with pytest.raises(ParamsError) as info:
        params.validate(raw)
    assert key in str(info.value)


def test_pamr_sigma_defaults_to_the_reference_and_offers_what_pamr_accepts():
    from wsss.methods.pamr import SIGMA_MODES

    full = params.validate({})
    assert params.PAMR_SIGMA == SIGMA_MODES
    assert full["refine"]["pamr"]["sigma"] == full["seeds"]["ae_sipe"]["pamr_sigma"] == "all_dilations"
    with pytest.raises(ParamsError, match=r"'refine.pamr.sigma' must be one of \['all_dilations', 'dilation1'\]"):
        params.validate({"refine": {"pamr": {"sigma": "dilation2"}}})


def test_int_accepted_where_float_expected():
    assert params.validate({"seeds": {"train": {"lr": 1}}})["seeds"]["train"]["lr"] == 1


def test_load_with_overrides_and_errors(tmp_path):
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump({"seeds": {"train": {"epochs": 3}}}))
    loaded = params.load(path, overrides={"seeds.train.lr": 0.01})
    assert loaded["seeds"]["train"]["epochs"] == 3 and loaded["seeds"]["train"]["lr"] == 0.01
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
