#!/usr/bin/env bash
# Create ./.venv (if missing) and install ModelKB into it, non-editable, with the given extras.
# Usage: scripts/setup-venv.sh all,test
set -euo pipefail
cd "$(dirname "$0")/.."
extras="${1:-all}"
if [ ! -x .venv/bin/python ]; then
  python3 -m venv .venv
fi
.venv/bin/python -m pip install --quiet --upgrade pip
# torch first, from the pinned local CPU wheel, so the extras' range resolves to it.
.venv/bin/python -m pip install --quiet -c scripts/constraints.txt torch==2.13.0
# the catalog's in-browser runtime and plot library must be in site/vendor/ before the wheel is built
bash scripts/fetch-onnxruntime-web.sh
bash scripts/fetch-echarts.sh
.venv/bin/python -m pip install --quiet -c scripts/constraints.txt ".[${extras}]"
