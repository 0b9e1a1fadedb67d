"""The documentation stays true: the README is short and opens with the two commands, every docs
page is linked from it once, every relative link (and heading anchor) resolves, the params keys,
`wsss.*` modules and project files the pages name exist, and docs/methods.md (the method
specification) is cited by existing § numbers."""

import re
from pathlib import Path
from urllib.parse import unquote

from wsss.core import params
from wsss.core.errors import ParamsError

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
DOCS = ROOT / "docs"
METHODS = DOCS / "methods.md"
SECTIONS = ("project", "data", "dataset", "seeds", "evaluate", "refine", "ptrecl", "segment", "tracking")
README_MAX_LINES = 200
TWO_COMMANDS = (
    "bash scripts/main.sh     # set up if needed, dvc repro on the embedded synthetic data, results table\n"
    "bash scripts/test.sh     # set up if needed, run the whole test suite (slow end-to-end tests included)\n"
)
# [text](target) or ![image](target) outside code; a target with a scheme (https:, mailto:) is not relative
LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)")
FENCE = re.compile(r"^```.*?^```", flags=re.M | re.S)
CODE_SPAN = re.compile(r"`[^`\n]*`")


def _pages() -> list[Path]:
    return [README, *sorted(DOCS.glob("*.md"))]


def _prose(text: str) -> str:
    """The text without code blocks and code spans (a link inside code is not a link)."""
    return CODE_SPAN.sub("", FENCE.sub("", text))


def _links(page: Path) -> list[str]:
    return LINK.findall(_prose(page.read_text(encoding="utf-8")))


def _relative(target: str) -> bool:
    return not re.match(r"^[a-z][a-z0-9+.-]*:", target, flags=re.I)


def _anchors(page: Path) -> set[str]:
    """GitHub's heading anchors of a markdown page."""
    seen: dict[str, int] = {}
    anchors = set()
    for heading in re.findall(r"^#{1,6} +(.+?) *#*$", FENCE.sub("", page.read_text(encoding="utf-8")), flags=re.M):
        slug = re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")
        count = seen.get(slug, 0)
        seen[slug] = count + 1
        anchors.add(slug if count == 0 else f"{slug}-{count}")
    return anchors


def _project_texts():
    for pattern in ("src/**/*.py", "pipeline/*.py", "tests/*.py", "benchmarks/*.py", "README.md", "docs/*.md",
                    "params.yaml", "dvc.yaml"):
        for path in ROOT.glob(pattern):
            yield path, path.read_text(encoding="utf-8")


# -- the README -----------------------------------------------------------------------------------
def test_readme_is_short():
    lines = README.read_text(encoding="utf-8").splitlines()
    assert len(lines) <= README_MAX_LINES, f"README.md has {len(lines)} lines; move detail into docs/"


def test_readme_starts_with_the_two_commands():
    text = README.read_text(encoding="utf-8")
    title, rest = text.split("\n", 1)
    assert title.startswith("# ")
    expected = "```bash\n" + TWO_COMMANDS + "```\n"
    assert rest.lstrip("\n")[:len(expected)] == expected


def test_every_docs_page_is_linked_from_the_readme_once():
    targets = [unquote(t.split("#", 1)[0]) for t in _links(README) if _relative(t)]
    pages = sorted(p.relative_to(ROOT).as_posix() for p in DOCS.glob("*.md"))
    assert len(pages) >= 5
    assert {page: targets.count(page) for page in pages} == {page: 1 for page in pages}


def test_every_relative_link_points_to_an_existing_file_and_heading():
    broken = []
    for page in _pages():
        for target in _links(page):
            if not _relative(target):
                continue
            path, _, anchor = unquote(target).partition("#")
            file = (page.parent / path).resolve() if path else page
            if not file.exists():
                broken.append(f"{page.relative_to(ROOT)}: {target} (no such file)")
            elif anchor and file.suffix == ".md" and anchor not in _anchors(file):
                broken.append(f"{page.relative_to(ROOT)}: {target} (no such heading)")
    assert broken == []


def test_the_link_checks_see_links_and_skip_code():
    text = "[a](docs/x.md) `[b](docs/y.md)` ![pic](p.png) [c](https://e.org)\n```\n[d](docs/z.md)\n```\n"
    assert LINK.findall(_prose(text)) == ["docs/x.md", "p.png", "https://e.org"]
    page = DOCS / "pipeline.md"
    assert "where-artifacts-go" in _anchors(page)
    assert "ptrecl-segmentation-and-wsss-report" in _anchors(page)


def test_the_files_the_pages_name_exist():
    """A path in a code span (`src/...`, `tests/...`, `pipeline/...`) names a file or folder of the project;
    spans with a placeholder (<stage>, NAME, {a,b}, *) are patterns, not paths."""
    pattern = r"`((?:src|tests|scripts|benchmarks|pipeline|docs|sweeps|wheels)/[^`\s]*)"
    missing = []
    for page in _pages():
        for path in set(re.findall(pattern, page.read_text(encoding="utf-8"))):
            path = path.split("::")[0].rstrip(":,.")
            if re.search(r"[<>{}*]|\b[A-Z]+\b", path):
                continue
            if not (ROOT / path).exists():
                missing.append(f"{page.name}: {path}")
    assert missing == []


def _names_a_module_or_attribute(name: str) -> bool:
    """`wsss.a.b` names src/wsss/a/b.py (or a package), or `wsss.a.b.c` a top-level name c of it."""
    parts = name.split(".")
    base = ROOT / "src" / Path(*parts)
    if base.with_suffix(".py").exists() or (base / "__init__.py").exists():
        return True
    module = (ROOT / "src" / Path(*parts[:-1])).with_suffix(".py")
    return module.exists() and re.search(rf"^(?:def|class) {parts[-1]}\b|^{parts[-1]}\b",
                                         module.read_text(encoding="utf-8"), flags=re.M) is not None


def test_the_modules_the_pages_name_exist():
    """`wsss.<floor>...` in a code span names a module of the library (MLflow tags like `wsss.git_commit`
    are not modules: their second part is no floor)."""
    floors = "|".join(p.name for p in (ROOT / "src" / "wsss").iterdir() if (p / "__init__.py").exists())
    pattern = rf"`(wsss\.(?:{floors})(?:\.[a-z_0-9]+)*)"
    unknown = []
    for page in _pages():
        for name in set(re.findall(pattern, page.read_text(encoding="utf-8"))):
            if name.count(".") > 1 and not _names_a_module_or_attribute(name):
                unknown.append(f"{page.name}: {name}")
    assert unknown == []
    assert _names_a_module_or_attribute("wsss.train.loop.make_sgd")
    assert not _names_a_module_or_attribute("wsss.refine.random_walk")


# -- docs/methods.md ------------------------------------------------------------------------------
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


def _unknown_keys(keys) -> list[str]:
    """The dotted keys that name neither a value (params.is_value_key) nor a section of the model."""
    defaults = params.validate({})
    unknown = []
    for key in sorted(keys):
        if params.is_value_key(key):
            continue
        try:
            defaults.get(key)
        except ParamsError:
            unknown.append(key)
    return unknown


def test_every_params_key_the_page_names_exists():
    keys = set(re.findall(rf"`((?:{'|'.join(SECTIONS)})(?:\.[a-z_0-9]+)+)`", METHODS.read_text(encoding="utf-8")))
    assert len(keys) > 30
    assert _unknown_keys(keys) == []
    assert _unknown_keys(["seeds.train.lr", "refine.irn", "seeds.train.lr_x", "refine.irn.walks"]) == \
        ["refine.irn.walks", "seeds.train.lr_x"]


def test_the_docs_name_existing_params_keys():
    """Keys in backticks on every page (README, docs/): each names a value or a section of the model."""
    pattern = rf"`((?:{'|'.join(SECTIONS)})(?:\.[a-z_0-9]+)+)"
    unknown = [f"{page.name}: {key}" for page in _pages()
               for key in _unknown_keys(set(re.findall(pattern, page.read_text(encoding="utf-8"))))]
    assert unknown == []
