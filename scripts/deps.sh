#!/usr/bin/env bash
# Installs the Debian 12 packages needed to build, run and test auth0-importd.
# Run as root (or it uses sudo). Safe to run again.
set -euo pipefail
SUDO=""
[ "$(id -u)" = 0 ] || SUDO=sudo
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends \
  build-essential meson ninja-build pkg-config libmicrohttpd-dev libuv1-dev libjson-c-dev \
  libcurl4-openssl-dev libsqlite3-dev sqlite3 libsystemd-dev zlib1g-dev libinih-dev libjq-dev \
  libcmocka-dev clang libclang-rt-14-dev jq wrk hyperfine systemd prometheus python3 curl \
  valgrind ca-certificates git >/dev/null
# tests/ops: groff renders the man page; man(1) lets systemd-analyze verify
# check the unit's Documentation=.
$SUDO apt-get install -y -qq --no-install-recommends groff-base man-db >/dev/null
# Node.js is preinstalled on the build machines; Debian's npm conflicts with it.
if ! command -v npm >/dev/null 2>&1; then
  $SUDO apt-get install -y -qq --no-install-recommends nodejs npm >/dev/null
fi
echo "deps: ok"
