#!/usr/bin/env bash
# The main job: install everything, then run the end-to-end demo (see README).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup-venv.sh all
exec .venv/bin/modelkb demo --store demo-output/store "$@"
