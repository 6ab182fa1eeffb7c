#!/usr/bin/env bash
# Installs what this machine lacks to build, run and test weft: the Debian
# packages the native bridge needs (Ruby's headers and library, pkg-config)
# and Chromium, which the dashboard's browser tests drive (test/e2e; no
# browser is ever downloaded from elsewhere). Quick and silent when
# everything is already there; safe to run again.
set -euo pipefail

need=()
have_pkg() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q "install ok installed"; }
for pkg in ruby-dev pkg-config chromium; do
  have_pkg "$pkg" || need+=("$pkg")
done

if ((${#need[@]})); then
  if [[ $(id -u) -ne 0 ]]; then
    echo "setup: missing Debian packages: ${need[*]}; run as root or: sudo apt-get install -y ${need[*]}" >&2
    exit 1
  fi
  echo "setup: installing ${need[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi

# Python's embedding library (libpython3.11.so) ships with the machine's
# python3; say clearly if it does not.
if ! python3-config --embed --ldflags >/dev/null 2>&1; then
  echo "setup: python3-config --embed failed; install python3-dev (apt-get install python3-dev)" >&2
  exit 1
fi
echo "setup: ok (ruby $(ruby -e 'print RUBY_VERSION'), python $(python3 -c 'import sys; print(sys.version.split()[0])'))"
