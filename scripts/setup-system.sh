#!/usr/bin/env bash
# System tools the test suite drives for real (installed only when missing; needs root and apt):
#   chromium            the catalog's browser tests (Playwright drives Debian's Chromium)
#   nodejs              the query-language parity test runs the catalog's JS port under node
#   buildah podman ...  the Lambda container image is built and run without a Docker daemon
# and the AWS Lambda Runtime Interface Emulator, which ships inside the aws-sam-cli wheel
# (extracted, never pip-installed: aws-sam-cli pins an old click).
set -euo pipefail
cd "$(dirname "$0")/.."
missing=()
command -v chromium >/dev/null || missing+=(chromium)
command -v node >/dev/null || missing+=(nodejs)
for tool in buildah podman runc mmdebstrap; do command -v "$tool" >/dev/null || missing+=("$tool"); done
if [ ${#missing[@]} -gt 0 ]; then
  if command -v apt-get >/dev/null && [ "$(id -u)" = 0 ]; then
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
      chromium nodejs buildah podman runc mmdebstrap uidmap fuse-overlayfs slirp4netns >/dev/null
  else
    echo "warning: missing ${missing[*]} and cannot apt-get install them; the tests that need them will skip" >&2
  fi
fi
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
