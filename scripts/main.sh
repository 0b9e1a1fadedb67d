#!/usr/bin/env bash
# The main job: set up if needed, run the whole DVC pipeline on the embedded synthetic data
# set, print the results table and how to open the MLflow UI. Extra arguments go to dvc repro.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/bootstrap.sh
venv="${WSSS_VENV:-.venv}"
export PATH="$PWD/$venv/bin:$PATH"
if ! git rev-parse --git-dir >/dev/null 2>&1; then
    echo "main: not inside a git checkout; clone the repository to run the pipeline" >&2
    exit 2
fi
exec wsss repro "$@"
