#!/usr/bin/env bash
# Installs what this machine lacks to build, run and test weft: the Debian
# packages the native bridge needs (Ruby's headers and library, pkg-config)
# and Chromium, which the dashboard's browser tests drive (test/e2e; no
# browser is ever downloaded from elsewhere). Quick and silent when
# everything is already there; safe to run again.
set -euo pipefail

if [[ "${WEFT_SKIP_SYSTEM_DEPS:-}" == 1 ]]; then
  echo "setup: WEFT_SKIP_SYSTEM_DEPS=1, not checking Debian packages (ruby-dev pkg-config chromium clang-format)"
  exit 0
fi

need=()
have_pkg() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q "install ok installed"; }
if command -v dpkg-query >/dev/null; then
  for pkg in ruby-dev pkg-config chromium clang-format; do
    have_pkg "$pkg" || need+=("$pkg")
  done
else
  echo "setup: not a Debian system (no dpkg); install Ruby 3.1 with its headers, pkg-config, Chromium and clang-format yourself, then run npm install with WEFT_SKIP_SYSTEM_DEPS=1" >&2
  exit 1
fi

if ((${#need[@]})); then
  echo "setup: missing Debian packages: ${need[*]} (the native bridge needs ruby-dev and pkg-config, the browser tests chromium, npm run lint clang-format)"
  if [[ $(id -u) -ne 0 ]] || ! command -v apt-get >/dev/null; then
    echo "setup: not installing them (not root, or no apt-get). Run:  sudo apt-get install -y --no-install-recommends ${need[*]}" >&2
    echo "setup: then npm install again (or set WEFT_SKIP_SYSTEM_DEPS=1 to skip this check)" >&2
    exit 1
  fi
  echo "setup: installing them with apt-get (as root)"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
  echo "setup: installed ${need[*]}"
fi

# Python's embedding library (libpython3.11.so) ships with the machine's
# python3; say clearly if it does not.
if ! python3-config --embed --ldflags >/dev/null 2>&1; then
  echo "setup: python3-config --embed failed; install python3-dev (apt-get install python3-dev)" >&2
  exit 1
fi
echo "setup: ok (ruby $(ruby -e 'print RUBY_VERSION'), python $(python3 -c 'import sys; print(sys.version.split()[0])'))"
