#!/usr/bin/env bash
# Developer set-up (README "Develop weft"; .ci/run runs it): installs what
# this machine lacks to build weft from source and run its tests and lint: the
# Debian packages the native bridge is compiled against (Ruby's and Python's
# headers, a C++ toolchain), Chromium, which the dashboard's browser tests
# drive (test/e2e; no browser is ever downloaded from elsewhere), and
# clang-format (npm run lint). Quick and silent when everything is already
# there; safe to run again. Never run by the package's install: users get
# none of this (scripts/install.mjs only checks and reports).
set -euo pipefail

if [[ "${WEFT_SKIP_SYSTEM_DEPS:-}" == 1 ]]; then
  echo "setup: WEFT_SKIP_SYSTEM_DEPS=1, not checking Debian packages (ruby-dev python3-dev g++ make chromium clang-format)"
  exit 0
fi

need=()
have_pkg() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q "install ok installed"; }
if command -v dpkg-query >/dev/null; then
  for pkg in ruby-dev python3-dev g++ make chromium clang-format; do
    have_pkg "$pkg" || need+=("$pkg")
  done
else
  echo "setup: not a Debian system (no dpkg); install Ruby and Python with their headers, g++, make, Chromium and clang-format yourself, then run npm ci with WEFT_SKIP_SYSTEM_DEPS=1" >&2
  exit 1
fi

if ((${#need[@]})); then
  echo "setup: missing Debian packages: ${need[*]} (the native bridge is compiled with g++ and make against ruby-dev and python3-dev, the browser tests need chromium, npm run lint clang-format)"
  if [[ $(id -u) -ne 0 ]] || ! command -v apt-get >/dev/null; then
    echo "setup: not installing them (not root, or no apt-get). Run:  sudo apt-get install -y --no-install-recommends ${need[*]}" >&2
    echo "setup: then run it again (or set WEFT_SKIP_SYSTEM_DEPS=1 to skip this check)" >&2
    exit 1
  fi
  echo "setup: installing them with apt-get (as root)"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
  echo "setup: installed ${need[*]}"
fi

echo "setup: ok (ruby $(ruby -e 'print RUBY_VERSION'), python $(python3 -c 'import sys; print(sys.version.split()[0])'))"
