# Sourced by the setup scripts: install Debian packages for the tools that are missing, and only those.
# Usage: apt_install_missing TOOL:PACKAGE ...   (a pair whose TOOL is already on the PATH is skipped)
#
# Node.js: machines of this kind ship Node.js 20 from NodeSource, whose `nodejs` package bundles
# npm and declares `Conflicts: npm`. Asking apt for Debian's `nodejs npm` there fails the whole
# install ("held broken packages", exit 100), so node_packages below never names them when a
# `node` is already on the PATH.
node_packages() {
  if command -v node >/dev/null; then
    command -v npm >/dev/null || echo "warning: node is installed but npm is not; install npm with your Node.js" >&2
    return 0
  fi
  echo "node:nodejs npm:npm"
}

apt_install_missing() {
  local pair tool package packages=()
  for pair in "$@"; do
    tool="${pair%%:*}"
    package="${pair#*:}"
    command -v "$tool" >/dev/null || packages+=("$package")
  done
  [ ${#packages[@]} -eq 0 ] && return 0
  if command -v apt-get >/dev/null && [ "$(id -u)" = 0 ]; then
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${packages[@]}" >/dev/null \
      || { echo "warning: apt-get could not install ${packages[*]}; the tests that need them will skip" >&2; return 0; }
  else
    echo "warning: missing ${packages[*]} and cannot apt-get install them; the tests that need them will skip" >&2
  fi
}
