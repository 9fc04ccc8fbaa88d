#!/usr/bin/env bash
# The main job end to end on the embedded default: set up, then a generated 1080i
# recording goes through the embedded broker and a real worker to a verified MP4.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh runtime
exec .venv/bin/kamado demo "$@"
