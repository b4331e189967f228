# Sourced by the scripts/fetch-*.sh scripts: put files of a pinned npm package into site/vendor/.
# Usage: npm_vendor PACKAGE VERSION DEST PINNED FILE...
#   PINNED: "sha256  basename" lines (sha256sum's format) for every FILE;
#   FILE:   a path inside the package (dist/echarts.min.js), copied to DEST/<basename>.
# Fetched with `npm pack` (which checks the registry's integrity hash), then checked against PINNED.
# Idempotent: files already in place with the pinned hashes are kept. Without npm (and no root to
# apt-get it) it warns and returns 0: the catalog then builds without that package.
npm_vendor() {
  local package="$1" version="$2" dest="$3" pinned="$4"
  shift 4
  if (cd "$dest" 2>/dev/null && echo "$pinned" | sha256sum --check --status 2>/dev/null); then
    return 0
  fi
  if ! command -v npm >/dev/null; then
    # shellcheck source=scripts/apt-missing.sh
    . scripts/apt-missing.sh
    # shellcheck disable=SC2046  # node_packages prints word-split TOOL:PACKAGE pairs
    apt_install_missing $(node_packages)
  fi
  if ! command -v npm >/dev/null; then
    echo "warning: npm is missing: the catalog will build without $package" >&2
    return 0
  fi
  local tmp file
  tmp=$(mktemp -d)
  (cd "$tmp" && npm pack --silent "$package@$version" >/dev/null)
  tar -xzf "$tmp/$(basename "$package")-$version.tgz" -C "$tmp" "${@/#/package/}"
  mkdir -p "$tmp/flat" "$dest"
  for file in "$@"; do cp "$tmp/package/$file" "$tmp/flat/"; done
  if ! (cd "$tmp/flat" && echo "$pinned" | sha256sum --check --quiet); then
    rm -rf "$tmp"
    echo "error: $package@$version from npm does not match the pinned sha256" >&2
    return 1
  fi
  cp "$tmp/flat/"* "$dest/"
  rm -rf "$tmp"
}
