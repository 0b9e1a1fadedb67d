"""The `-S` overrides `wsss ablate` hands to DVC must parse (Hydra syntax) to exactly the row's values."""

import pytest
from hydra.core.override_parser.overrides_parser import OverridesParser

from wsss.sweep.ablation import TABLES, dvc_command


def _parsed_overrides(command: list[str]) -> dict:
    parser = OverridesParser.create()
    values = [command[i + 1] for i, arg in enumerate(command) if arg == "-S"]
    parsed = parser.parse_overrides(values)
    assert not any(o.is_sweep_override() for o in parsed), values
    return {o.key_or_group: o.value() for o in parsed}


@pytest.mark.parametrize("table_name", sorted(TABLES))
def test_every_row_passes_its_values_unchanged(table_name):
    table = TABLES[table_name]
    for row, overrides in table.rows:
        expected = table.common | overrides
        assert _parsed_overrides(dvc_command(table, "x", overrides)) == expected, row


def test_comma_and_quote_in_a_string_stay_one_value():
    table = TABLES["ae-sipe"]
    command = dvc_command(table, "x", {"seeds.ae_sipe.steps": "pr_is,pamr,pr_is", "dataset.root": "it's/here"})
    values = _parsed_overrides(command)
    assert values["seeds.ae_sipe.steps"] == "pr_is,pamr,pr_is"
    assert values["dataset.root"] == "it's/here"


def test_curve_tables_plot_each_column_against_the_swept_value(tmp_path):
    from PIL import Image

    from wsss.core.params import validate
    from wsss.sweep.ablation import plot_curve

    table = TABLES["ptrecl-k"]
    for _, overrides in table.rows:  # every row is a valid params.yaml change
        tree: dict = {}
        for key, value in (table.common | overrides).items():
            node = tree
            *parents, leaf = key.split(".")
            for part in parents:
                node = node.setdefault(part, {})
            node[leaf] = value
        assert validate(tree).ptrecl.prototypes.k == overrides["ptrecl.prototypes.k"]
    rows = [{"row": name, **{c.header: 0.4 + 0.01 * i for c in table.columns}} for i, (name, _) in enumerate(table.rows)]
    plot_curve(table, rows, tmp_path / "curve.png")
    with Image.open(tmp_path / "curve.png") as image:
        assert image.format == "PNG" and image.size[0] > 300
    assert not list(tmp_path.glob("*.tmp*"))
