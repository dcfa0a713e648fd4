#!/usr/bin/env bash
# System packages from Debian, installed only when missing:
#   test:  headless Chromium and its driver (browser tests), redis-server (fleet tests on Redis);
#   bench: what building M2Crypto needs in the benchmarks' own venv (DIRAC imports it): swig,
#          libssl-dev, a C compiler and the Python headers; wrk, the HTTP load generator of
#          benchmarks/bench_pages.py's concurrent clients.
# Usage: scripts/system-deps.sh [test|bench|all] [more Debian packages ...]   (default: all)
# Needs root (CI and the project's machines run as root). Without root it says what to install
# and goes on: the tests that need a missing package skip with the reason. When another apt-get
# or dpkg holds the package locks it waits for them (minutes, and says so: scripts/apt-get-wait,
# APT_LOCK_WAIT seconds, default 900) instead of failing.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
group=all
case "${1:-}" in test|bench|all) group=$1; shift ;; esac
need=()
installed() { dpkg -s "$1" >/dev/null 2>&1; }
if [ "$group" != bench ]; then
  command -v chromium >/dev/null 2>&1 || need+=(chromium)
  command -v chromedriver >/dev/null 2>&1 || need+=(chromium-driver)
  command -v redis-server >/dev/null 2>&1 || need+=(redis-server)
fi
if [ "$group" != test ]; then
  command -v swig >/dev/null 2>&1 || need+=(swig)
  installed libssl-dev || need+=(libssl-dev)
  command -v gcc >/dev/null 2>&1 || need+=(gcc)
  command -v wrk >/dev/null 2>&1 || need+=(wrk)
  # Python.h of Debian's python3 (an interpreter of one's own, e.g. pyenv's, has its own headers).
  if [ -x /usr/bin/python3 ]; then
    inc=$(/usr/bin/python3 -c 'import sysconfig; print(sysconfig.get_paths()["include"])' 2>/dev/null || true)
    [ -e "$inc/Python.h" ] || need+=(python3-dev)
  fi
fi
for extra in "$@"; do
  installed "$extra" || need+=("$extra")
done
[ ${#need[@]} -eq 0 ] && exit 0
if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null 2>&1; then
  echo "system-deps: please install: ${need[*]} (the tests that need them will skip)" >&2
  exit 0
fi
echo "system-deps: installing ${need[*]}"
export DEBIAN_FRONTEND=noninteractive
"$here/apt-get-wait" update -qq
"$here/apt-get-wait" install -y -qq "${need[@]}" >/dev/null
