"""The `wsss` command line: dvc's options pass through `wsss repro` untouched."""

import pytest

from wsss.cli import parse_args


def test_repro_passes_dvc_options_through():
    assert parse_args(["repro", "--force", "-s", "seeds"]).dvc_args == ["--force", "-s", "seeds"]
    assert parse_args(["repro"]).dvc_args == []
    assert parse_args(["--project", "p", "repro", "--dry"]).project == "p"


def test_other_commands_refuse_unknown_options():
    with pytest.raises(SystemExit):
        parse_args(["results", "--force"])
