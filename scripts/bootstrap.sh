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

echo "bootstrap: installing wsss and its pinned dependencies into $venv (a few minutes, once)"
start=$(date +%s)
[ -x "$venv/bin/python" ] || "$python" -m venv "$venv"
# torch is pinned in constraints.txt: on a CPU machine that selects the CPU build; an unpinned
# torch would pull several GB of CUDA packages.
"$venv/bin/python" -m pip install -qq --disable-pip-version-check \
    -c constraints.txt -e ".[dev]"
echo "$want" > "$stamp"
echo "bootstrap: done in $(( $(date +%s) - start )) s"
