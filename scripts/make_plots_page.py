"""Write `.dvc/plots_page.html`: the page `dvc plots show` / `dvc plots diff` fill (`.dvc/config`:
`plots.html_template`), with Vega, Vega-Lite and vega-embed inlined.

DVC's own page loads these three from the jsdelivr CDN, so on a machine without internet (a
cluster node, this project's CI) it stays blank. The versions are the ones DVC 3.67's page asks
for; they come from the npm registry (`npm pack`), and each one's BSD-3-Clause licence is kept in
the page. Run it again (it needs npm) when DVC's versions change:

    python scripts/make_plots_page.py
"""

from __future__ import annotations

import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

PAGE = Path(__file__).resolve().parents[1] / ".dvc" / "plots_page.html"
# name -> (version, the minified build in its npm package): what DVC's page loads, in this order
LIBRARIES = {"vega": ("5.20.2", "build/vega.min.js"), "vega-lite": ("5.2.0", "build/vega-lite.min.js"),
             "vega-embed": ("6.18.2", "build/vega-embed.min.js")}
TEMPLATE = """<!DOCTYPE html>
<!-- `dvc plots show` page (written by scripts/make_plots_page.py): {versions} inlined, so that it
     draws without internet access. Their licences:
{licences}
-->
<html>
<head>
    {{refresh_tag}}
    <title>DVC Plot</title>
{scripts}
    <style>
        table {{
            border-spacing: 15px;
        }}
    </style>
</head>
<body>
    {{plot_divs}}
</body>
</html>
"""


def _package(name: str, version: str, folder: Path) -> Path:
    done = subprocess.run(["npm", "pack", f"{name}@{version}", "--silent"], cwd=folder, capture_output=True, text=True)
    if done.returncode != 0:
        sys.exit(f"npm pack {name}@{version} failed: {done.stderr.strip()}")
    return folder / done.stdout.strip().splitlines()[-1]


def _member(archive: Path, path: str) -> str:
    with tarfile.open(archive) as tar:
        return tar.extractfile(f"package/{path}").read().decode()


def main() -> None:
    scripts, licences = [], []
    with tempfile.TemporaryDirectory() as tmp:
        for name, (version, build) in LIBRARIES.items():
            archive = _package(name, version, Path(tmp))
            code = _member(archive, build)
            if "</script" in code.lower():
                sys.exit(f"{name}: its code holds '</script', which would end the inline script")
            scripts.append(f"    <script>/* {name} {version} */\n{code}\n    </script>")
            licences.append(f"{name} {version}:\n{_member(archive, 'LICENSE').replace('--', '- -')}")
    versions = ", ".join(f"{name} {version}" for name, (version, _) in LIBRARIES.items())
    PAGE.write_text(TEMPLATE.format(versions=versions, licences="\n".join(licences), scripts="\n".join(scripts)))
    print(f"wrote {PAGE} ({PAGE.stat().st_size // 1024} KiB)")


if __name__ == "__main__":
    main()
