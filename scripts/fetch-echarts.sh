#!/usr/bin/env bash
# Put Apache ECharts (the project page's parallel coordinates and scatter plot) into site/vendor/
# before ModelKB is installed, so the wheel ships it. Fetched from the npm registry and pinned by
# sha256 here (scripts/npm-vendor.sh); not committed (1.1 MB minified; its LICENSE and NOTICE are).
# Without npm it warns and exits 0: the catalog then builds without the plots.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/npm-vendor.sh
npm_vendor echarts 6.1.0 site/vendor/echarts \
  "b66b25aeb4df84e33199dc21694014d336d222cbd9deb0e5a7c14bd6aa0d0fd0  echarts.min.js" \
  dist/echarts.min.js
