#!/usr/bin/env bash
# The whole test suite: set up, then ruff, mypy, import-linter and pytest (unit and integration).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh dev
export PATH="$(pwd)/.venv/bin:$PATH"
echo "== ruff"
ruff check .
ruff format --check .
echo "== mypy"
mypy
echo "== import-linter (the architecture: pyproject.toml [tool.importlinter])"
lint-imports --no-cache
echo "== pytest"
# Two processes (most tests wait on real servers, not the CPU); the fault and set-up
# tests stay serial within their groups (tests/conftest.py). KAMADO_TEST_PROCESSES=0
# runs everything in this one process.
pytest -n "${KAMADO_TEST_PROCESSES:-2}" --dist loadgroup "$@"
