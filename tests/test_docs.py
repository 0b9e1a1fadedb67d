"""docs/methods.md, the project's method specification: its § references and params keys stay valid."""

import re
from pathlib import Path

from wsss.core import params

ROOT = Path(__file__).resolve().parents[1]
METHODS = ROOT / "docs" / "methods.md"
SECTIONS = ("project", "data", "dataset", "seeds", "evaluate", "refine", "ptrecl", "segment", "tracking")


def _project_texts():
    for pattern in ("src/**/*.py", "pipeline/*.py", "tests/*.py", "benchmarks/*.py", "README.md", "params.yaml",
                    "dvc.yaml"):
        for path in ROOT.glob(pattern):
            yield path, path.read_text(encoding="utf-8")


def test_every_section_reference_names_an_existing_section():
    numbers = set(re.findall(r"^## (\d+)\. ", METHODS.read_text(encoding="utf-8"), flags=re.M))
    cited = []
    for path, text in _project_texts():
        for first, last in re.findall(r"docs/methods\.md §(\d+)(?:[–-]§(\d+))?", text):
            cited += [(path.name, n) for n in (first, last) if n]
    assert cited, "no file cites docs/methods.md"
    assert [c for c in cited if c[1] not in numbers] == []


def test_no_reference_to_the_spec_outside_the_project():
    outside = "METHODS" + ".md"  # the spec this page replaces; spelt in two parts so this file is not a hit
    assert [p.name for p, text in _project_texts() if outside in text] == []


def test_every_params_key_the_page_names_exists():
    defaults = params.validate({})
    keys = set(re.findall(rf"`((?:{'|'.join(SECTIONS)})(?:\.[a-z_0-9]+)+)`", METHODS.read_text(encoding="utf-8")))
    assert len(keys) > 30
    missing = []
    for key in sorted(keys):
        node = defaults
        for part in key.split("."):
            if not isinstance(node, dict) or part not in node:
                missing.append(key)
                break
            node = node[part]
    assert missing == []
