#!/usr/bin/env bash
# Builds auth0-importd and runs it in the foreground on 127.0.0.1:8484 with
# a throw-away state directory. Ctrl-C stops it (exit 0).
#   curl http://127.0.0.1:8484/healthz
#   curl http://127.0.0.1:8484/v1/status
set -euo pipefail
cd "$(dirname "$0")/.."
if [ ! -d build-demo ]; then
  meson setup build-demo -Dbuildtype=debugoptimized >/dev/null
fi
ninja -C build-demo >/dev/null
state=$(mktemp -d /tmp/auth0-importd-demo.XXXXXX)
trap 'rm -rf "$state"' EXIT
echo "auth0-importd on http://127.0.0.1:8484 (state in $state); Ctrl-C to stop" >&2
build-demo/auth0-importd --listen 127.0.0.1:8484 --state-dir "$state" "$@"
