"""Real `dvc plots show` / `dvc plots diff` of a project's dvc.yaml plot definitions."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

from wsss.core.dvcfile import pipeline

ABLATION_PLOTS = ("results/ablations/ptrecl-k.json", "results/ablations/ptrecl-m.json")  # `wsss ablate` only


def plot_ids(project: Path) -> list[str]:
    """The top-level plot ids of a project's dvc.yaml (the data file paths, ``${paths.*}`` filled in)."""
    return pipeline(project).plots


def dvc_plots(project: Path, env: dict, *revisions: str, output: tuple = ("--json",)) -> str:
    """`dvc plots show` of the workspace, or `dvc plots diff REVS`, with the `output` options."""
    command = ["dvc", "plots", "diff", *revisions] if revisions else ["dvc", "plots", "show"]
    done = subprocess.run([*command, *output], cwd=project, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    return done.stdout


def assert_every_plot_drawn(project: Path, env: dict, *revisions: str, absent=()) -> dict:
    """Every dvc.yaml plot but `absent` is drawn without an error, with data from each revision
    compared (`dvc plots diff REVS`, one rev: against the workspace; none: `dvc plots show`), and
    in the one HTML page DVC writes. Returns the plots' Vega-Lite specs by plot id."""
    from dvc_render.base import Renderer

    shown = json.loads(dvc_plots(project, env, *revisions))
    expected = [plot for plot in plot_ids(project) if plot not in absent]
    errors = [e for e in shown.get("errors", []) if e.get("name") not in absent]
    assert not errors, errors
    specs = {}
    for plot_id, renders in shown["data"].items():
        if renders:  # none for an absent file
            (render,) = renders
            specs[plot_id.split("::")[-1]] = render["content"]
    compared = set(revisions) | ({"workspace"} if len(revisions) < 2 else set())
    for plot in expected:
        assert plot in specs, (plot, sorted(specs))
        revs = {point["rev"] for point in specs[plot]["data"]["values"]}
        assert revs == compared, (plot, revs)
    page = project / "dvc_plots_test"
    dvc_plots(project, env, *revisions, output=("-o", str(page)))
    html = (page / "index.html").read_text()
    for plot in expected:  # DVC leaves out the div of a plot without data
        assert f'div id = "{Renderer.remove_special_chars(plot)}"' in html, plot
    shutil.rmtree(page)
    return specs
