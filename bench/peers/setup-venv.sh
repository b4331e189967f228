#!/usr/bin/env bash
# The peers' benchmark venv (.bench-venv): MLflow, DVCLive, TensorBoard, W&B and Aim installed
# apart from the project's venv, which it reuses for torch, TensorFlow, Keras and ModelKB (a .pth
# file adds .venv's site-packages after its own, so the peers' own dependencies come first).
# Usage: bash bench/peers/setup-venv.sh   (after bash scripts/setup-venv.sh all,test)
set -euo pipefail
cd "$(dirname "$0")/../.."
[ -x .venv/bin/python ] || { echo "run bash scripts/setup-venv.sh all,test first" >&2; exit 1; }
[ -x .bench-venv/bin/python ] || .venv/bin/python -m venv .bench-venv
main_site=$(.venv/bin/python -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
bench_site=$(.bench-venv/bin/python -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
# addsitedir: the project venv's own .pth files (ModelKB's editable install) are read too
echo "import site; site.addsitedir('$main_site')" > "$bench_site/zz-project-venv.pth"
.bench-venv/bin/pip install -q --disable-pip-version-check "mlflow>=3,<4" dvclive tensorboard wandb
# Aim has no wheel for every platform and Python; the table says when it did not install.
.bench-venv/bin/pip install -q --disable-pip-version-check aim || echo "aim did not install: left out" >&2
