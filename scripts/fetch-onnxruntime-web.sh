#!/usr/bin/env bash
# Put onnxruntime-web's runtime (for the catalog's in-browser inference) into site/vendor/ before
# ModelKB is installed, so the wheel ships it. Fetched from the npm registry and pinned by sha256
# here (scripts/npm-vendor.sh); not committed (the wasm is 14 MB). Without npm it warns and exits 0:
# the catalog then builds without in-browser inference.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/npm-vendor.sh
npm_vendor onnxruntime-web 1.30.0 site/vendor/onnxruntime-web \
  "e13f7f94fc51b4ca72b12faeb1ee95f4ace6dfbc8939bc718aabdc0a27c4299b  ort-wasm-simd-threaded.mjs
3398c10d07d229bd91b364548e130e0e51a8e5704b88c7c083ebbeb78842dee2  ort-wasm-simd-threaded.wasm
faece07e84faa9001f5104bbe4e5c70861d06cb2376a0dea1fa0ad33a67adc81  ort.wasm.min.js" \
  dist/ort-wasm-simd-threaded.mjs dist/ort-wasm-simd-threaded.wasm dist/ort.wasm.min.js
