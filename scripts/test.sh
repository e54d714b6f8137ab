#!/usr/bin/env bash
# Set everything up (see scripts/setup.sh), then lint and run the whole test suite.
# Extra arguments go to pytest, e.g. `bash scripts/test.sh -x tests/test_color.py`.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh testing
export PYTHONUNBUFFERED=1
.venv/bin/ruff check .
.venv/bin/ruff format --check .
# pytest-xvfb starts a virtual X server for the napari widget tests
exec .venv/bin/python -m pytest "$@"
