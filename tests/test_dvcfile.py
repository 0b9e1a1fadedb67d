"""wsss.core.dvcfile: dvc.yaml read in one place, its artifact paths named once."""

import dataclasses
from pathlib import Path

import pytest
import yaml

from wsss.core import params as params_mod
from wsss.core.dvcfile import ArtifactPaths, pipeline
from wsss.core.errors import WsssError

ROOT = Path(__file__).resolve().parents[1]


def test_every_named_path_is_a_stage_output_of_the_project():
    dvc = pipeline(ROOT)
    named = dataclasses.asdict(dvc.paths)
    assert set(named) == {f.name for f in dataclasses.fields(ArtifactPaths)}
    unwritten = [name for name, path in named.items() if dvc.writer_of(path) is None]
    assert unwritten == ["train_losses"]  # a folder: each training stage writes its own table in it
    assert dvc.writer_of(dvc.paths.train_loss_table("train_irn")) == "train_irn"
    assert dvc.writer_of(f"{dvc.paths.seed_maps}/img.npz") == "seeds"
    assert dvc.paths.segment_labels("refine") == dvc.paths.pseudo_masks


def test_deps_fill_in_params_and_the_graph_follows_outputs():
    dvc = pipeline(ROOT)
    params = params_mod.validate({"dataset": {"root": "data/x"}})
    deps = dvc.deps("seeds", params)
    assert "artifacts/seeds/classifier.pt" in deps and "data/x" in deps and "pipeline/seeds.py" in deps
    upstream = dvc.upstream(params)
    assert upstream["synthesize"] == set() and {"seeds", "refine", "train_irn"} <= upstream["ptrecl"]
    assert dvc.covering(["evaluate_seeds"], params) == ["train_classifier", "seeds", "evaluate_seeds"]  # data/x
    assert dvc.covering(["evaluate_seeds"], params_mod.validate({}))[0] == "synthesize"  # the synthetic set
    assert dvc.metrics_files()["metrics/segment.json"] == "evaluate_segmentation"
    assert dvc.rerun_hint(dvc.paths.irn_weights).endswith("dvc repro --force --single-item train_irn")
    with pytest.raises(WsssError, match="no stage 'nope'"):
        dvc.stage("nope")


def test_a_missing_or_unknown_path_name_is_an_error(tmp_path):
    raw = yaml.safe_load((ROOT / "dvc.yaml").read_text())
    del raw["vars"][0]["paths"]["seed_maps"]
    (tmp_path / "dvc.yaml").write_text(yaml.safe_dump(raw))
    with pytest.raises(WsssError, match=r"stage evaluate_seeds: \$\{paths.seed_maps\} is not in vars 'paths'"):
        pipeline(tmp_path)
    # a dvc.yaml without the names (another project's) still says what its stages write
    (tmp_path / "dvc.yaml").write_text("stages:\n  s:\n    cmd: x\n    outs: [out]\n")
    assert pipeline(tmp_path).written_paths() == ["out"]
    with pytest.raises(WsssError, match="vars 'paths' names no path for synthetic, classifier, "):
        pipeline(tmp_path).paths
