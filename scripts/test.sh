#!/usr/bin/env bash
# Install the test dependencies, lint, and run the whole test suite (this is what CI runs).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup-venv.sh all,test
bash scripts/setup-system.sh
export MODELKB_RIE="${XDG_CACHE_HOME:-$HOME/.cache}/modelkb/aws-lambda-rie-x86_64"
# lint first (rules in pyproject.toml): a finding fails the command before the tests run
.venv/bin/ruff check .
.venv/bin/ruff format --check .
exec .venv/bin/pytest "$@"
