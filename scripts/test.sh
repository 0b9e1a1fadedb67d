#!/usr/bin/env bash
# The tests: set up if needed, then run the whole pytest suite, the slow end-to-end tests
# included, and the 15 slowest of them (what to slim when the suite grows). Extra arguments go
# to pytest (e.g. `-m "not slow"` for the fast part only).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/bootstrap.sh
venv="${WSSS_VENV:-.venv}"
export PATH="$PWD/$venv/bin:$PATH"
exec python -m pytest -m "slow or not slow" --durations=15 "$@"
