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


def test_a_table_over_seeds_shows_intervals_and_paired_differences_to_its_first_row():
    from wsss.evaluation.statistics import over_seeds, paired_over_seeds
    from wsss.sweep.ablation import markdown

    table = TABLES["eps-tau"]
    headline = table.columns[0].header
    rows = [{"row": "tau=0.3", **{c.header: [0.40, 0.42, 0.44] for c in table.columns}},
            {"row": "tau=0.4", **{c.header: [0.45, 0.48, 0.50] for c in table.columns}},
            {"row": "tau=0.5", **{c.header: [0.41, 0.40, 0.45] for c in table.columns}}]
    text = markdown("eps-tau", table, rows, replicates=3)
    lines = {line.split("|")[1].strip(): line for line in text.splitlines() if line.startswith("| tau=")}
    assert f"| {over_seeds([0.40, 0.42, 0.44]).format()} " in lines["tau=0.3"] and "| reference" in lines["tau=0.3"]
    gain, tie = paired_over_seeds([0.40, 0.42, 0.44], [0.45, 0.48, 0.50]), paired_over_seeds(
        [0.40, 0.42, 0.44], [0.41, 0.40, 0.45])
    assert gain.excludes_zero and not tie.excludes_zero
    assert lines["tau=0.4"].endswith(f"| +{gain.estimate:.4f} ± {gain.half_width:.4f} *      |")
    assert lines["tau=0.5"].endswith(f"| {tie.estimate:+.4f} ± {tie.half_width:.4f}        |")
    assert f"Δ {headline} vs tau=0.3" in text and "`wsss ablate eps-tau --replicates 3`" in text
    single = markdown("eps-tau", table, [{"row": "tau=0.3", **{c.header: 0.4 for c in table.columns}}])
    assert "Single run" in single and "±" not in single


def test_a_tables_claims_are_judged_by_their_paired_interval():
    from wsss.evaluation.statistics import paired_over_seeds
    from wsss.sweep.ablation import claim_rows, markdown

    table = TABLES["methods"]
    figures = {"cam": ([0.44, 0.47, 0.45], [0.80, 0.70, 0.75]), "sipe": ([0.30, 0.28, 0.33], [1.4, 1.5, 1.6]),
               "ae_sipe": ([0.39, 0.36, 0.37], [1.2, 1.3, 1.1]), "eps": ([0.53, 0.50, 0.56], [0.75, 0.72, 0.80])}
    rows = [{"row": name, **{c.header: [0.5, 0.5, 0.5] for c in table.columns},
             "seeds mIoU": miou, "seeds co-occurrence": cooc} for name, (miou, cooc) in figures.items()]
    claims = {row["claim"].split(" (")[0]: row for row in claim_rows(table, rows)}
    assert claims["SIPE's seeds above CAM's"]["verdict"] == "reversed"  # lower on every seed
    assert claims["AE-SIPE's seeds above SIPE's"]["verdict"] == "holds"
    eps = claims["EPS lowers the co-occurrence confusion of CAM"]
    assert eps["verdict"] == "not resolved"  # the difference changes sign between seeds
    difference = paired_over_seeds([0.80, 0.70, 0.75], [0.75, 0.72, 0.80])
    assert eps["95% CI"] == f"{difference.low:+.4f} to {difference.high:+.4f}"
    assert "| verdict" in markdown("methods", table, rows, replicates=3)


@pytest.mark.parametrize("table_name", sorted(TABLES))
def test_every_claim_names_a_row_and_a_column_of_its_table(table_name):
    table = TABLES[table_name]
    rows = {name for name, _ in table.rows}
    columns = {column.header for column in table.columns}
    for claim in table.claims:
        assert {claim.reference, claim.other} <= rows, claim
        assert claim.column in columns, claim
