#!/usr/bin/env bash
# Put onnxruntime-web's runtime (for the catalog's in-browser inference) into site/vendor/ before
# ModelKB is installed, so the wheel ships it. Fetched from the npm registry (`npm pack`, which
# checks the registry's integrity hash) and pinned by sha256 here; not committed (the wasm is 14 MB).
# Without npm (and no root to apt-get it) it warns and exits 0: the catalog then builds without
# in-browser inference. Idempotent: files already in place with the pinned hashes are kept.
set -euo pipefail
cd "$(dirname "$0")/.."
VERSION=1.30.0
DEST=site/vendor/onnxruntime-web
PINNED="e13f7f94fc51b4ca72b12faeb1ee95f4ace6dfbc8939bc718aabdc0a27c4299b  ort-wasm-simd-threaded.mjs
3398c10d07d229bd91b364548e130e0e51a8e5704b88c7c083ebbeb78842dee2  ort-wasm-simd-threaded.wasm
faece07e84faa9001f5104bbe4e5c70861d06cb2376a0dea1fa0ad33a67adc81  ort.wasm.min.js"
if (cd "$DEST" && echo "$PINNED" | sha256sum --check --status 2>/dev/null); then
  exit 0
fi
if ! command -v npm >/dev/null; then
  # shellcheck source=scripts/apt-missing.sh
  . scripts/apt-missing.sh
  # shellcheck disable=SC2046  # node_packages prints word-split TOOL:PACKAGE pairs
  apt_install_missing $(node_packages)
fi
if ! command -v npm >/dev/null; then
  echo "warning: npm is missing: the catalog will build without in-browser inference (onnxruntime-web)" >&2
  exit 0
fi
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
(cd "$tmp" && npm pack --silent "onnxruntime-web@$VERSION" >/dev/null)
tar -xzf "$tmp/onnxruntime-web-$VERSION.tgz" -C "$tmp" \
  package/dist/ort-wasm-simd-threaded.mjs package/dist/ort-wasm-simd-threaded.wasm package/dist/ort.wasm.min.js
(cd "$tmp/package/dist" && echo "$PINNED" | sha256sum --check --quiet)
cp "$tmp/package/dist/ort-wasm-simd-threaded.mjs" "$tmp/package/dist/ort-wasm-simd-threaded.wasm" \
  "$tmp/package/dist/ort.wasm.min.js" "$DEST/"
