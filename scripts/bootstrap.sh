#!/usr/bin/env bash
# Create the project's virtual environment (.venv) and install wsss with its pinned
# dependencies. Does nothing when .venv already matches pyproject.toml + constraints.txt.
# Needs only Python 3.11 and pip. WSSS_VENV chooses another location; PYTHON another interpreter.
set -euo pipefail
cd "$(dirname "$0")/.."

venv="${WSSS_VENV:-.venv}"
python="${PYTHON:-python3}"
stamp="$venv/.wsss-installed"
want="$(cat pyproject.toml constraints.txt | sha256sum | cut -d' ' -f1)"

if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
    exit 0
fi

echo "bootstrap: installing wsss and its pinned dependencies into $venv (about 2 minutes, once)"
start=$(date +%s)
[ -x "$venv/bin/python" ] || "$python" -m venv "$venv"
# uv downloads, builds and unpacks in parallel: several times faster than pip here. pip brings
# it from PyPI, so the machine still needs only Python and pip. constraints.txt pins every package.
"$venv/bin/python" -m pip install -qq --disable-pip-version-check -c constraints.txt uv
# PyPI has only the source of pydensecrf2, whose C++ build took most of set-up's CPU time:
# wheels/ holds it built here from that source (identical CRF outputs). uv takes it where its
# platform tag fits and builds from source elsewhere. To rebuild it:
#   pip wheel --no-deps pydensecrf2==1.1 -w /tmp/w
#   auditwheel repair --strip --plat manylinux_2_31_x86_64 -w wheels /tmp/w/*.whl
# --compile-bytecode: every stage is a process of its own, and where PYTHONDONTWRITEBYTECODE is set
# (or site-packages is read-only) each would otherwise recompile torch's and MLflow's sources at
# import, ~10 s a stage. pip compiles by default; uv does not.
"$venv/bin/python" scripts/uv_install.py -q --compile-bytecode --find-links wheels -c constraints.txt -e ".[dev]"
echo "$want" > "$stamp"
echo "bootstrap: done in $(( $(date +%s) - start )) s"
