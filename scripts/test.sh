#!/usr/bin/env bash
# Install the test dependencies and run the whole test suite (this is what CI runs).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup-venv.sh all,test
exec .venv/bin/pytest "$@"
