#!/usr/bin/env bash
# The whole test suite: set up, then ruff, mypy and pytest (unit and integration).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh dev
export PATH="$(pwd)/.venv/bin:$PATH"
echo "== ruff"
ruff check .
ruff format --check .
echo "== mypy"
mypy
echo "== pytest"
pytest "$@"
