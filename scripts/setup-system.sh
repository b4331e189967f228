#!/usr/bin/env bash
# System tools the test suite drives for real (installed only when missing; needs root and apt):
#   chromium            the catalog's browser tests (Playwright drives Debian's Chromium)
#   nodejs (if no node) the query-language parity test runs the catalog's JS port under node
#   buildah podman ...  the Lambda container image is built and run without a Docker daemon
#   s3rver (npm)        a real S3-compatible server that serves bucket websites
# and the AWS Lambda Runtime Interface Emulator, which ships inside the aws-sam-cli wheel
# (extracted, never pip-installed: aws-sam-cli pins an old click).
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/apt-missing.sh
. scripts/apt-missing.sh
# shellcheck disable=SC2046  # node_packages prints word-split TOOL:PACKAGE pairs
apt_install_missing chromium:chromium $(node_packages) \
  buildah:buildah podman:podman runc:runc mmdebstrap:mmdebstrap \
  newuidmap:uidmap fuse-overlayfs:fuse-overlayfs slirp4netns:slirp4netns
RIE="${XDG_CACHE_HOME:-$HOME/.cache}/modelkb/aws-lambda-rie-x86_64"
if [ ! -x "$RIE" ]; then
  tmp=$(mktemp -d)
  if .venv/bin/python -m pip download --no-deps --only-binary=:all: -q -d "$tmp" aws-sam-cli; then
    mkdir -p "$(dirname "$RIE")"
    .venv/bin/python - "$tmp" "$RIE" <<'PY'
import glob, sys, zipfile
wheel = zipfile.ZipFile(glob.glob(sys.argv[1] + "/aws_sam_cli-*.whl")[0])
open(sys.argv[2], "wb").write(wheel.read("samcli/local/rapid/aws-lambda-rie-x86_64"))
PY
    chmod 755 "$RIE"
  fi
  rm -rf "$tmp"
fi
S3RVER="${MODELKB_TEST_CACHE:-$HOME/.cache/modelkb-tests}/s3rver-3.7.1"
if command -v npm >/dev/null && [ ! -d "$S3RVER/node_modules/s3rver" ]; then
  npm install --prefix "$S3RVER" --no-audit --no-fund --silent s3rver@3.7.1 >/dev/null || echo "warning: s3rver not installed" >&2
fi
