#!/usr/bin/env bash
# A rehearsal with nothing configured: builds auth0-importd, starts it with
# --sandbox on 127.0.0.1:8484 (the bundled Auth0 emulator becomes tenant
# "default"), shows /v1/status naming the emulator tenant, imports a few demo
# users into the emulator's database connection and shows the outcome. On a
# terminal it then keeps running in the foreground (Ctrl-C stops it, exit 0);
# otherwise it stops. Extra arguments go to the daemon.
#   curl http://127.0.0.1:8484/v1/status
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${BUILD:-build-demo}
PORT=${PORT:-8484}
API="http://127.0.0.1:$PORT"

if [ ! -d "$BUILD" ]; then
  meson setup "$BUILD" -Dbuildtype=debugoptimized >/dev/null
fi
ninja -C "$BUILD" >/dev/null

state=$(mktemp -d /tmp/auth0-importd-demo.XXXXXX)
log="$state/daemon.log"
cleanup() {
  if [ -n "${pid:-}" ] && kill -0 "$pid" 2>/dev/null; then
    kill -TERM "$pid"
    wait "$pid" || true
  fi
  rm -rf "$state"
}
trap cleanup EXIT

# Demo speed for the emulator (its defaults play a free tenant: 2 requests/s).
IMPORTD_SANDBOX_ARGS=${IMPORTD_SANDBOX_ARGS:-"--rate 20 --burst 20 --ms-per-user 0.1"} \
  "$BUILD/auth0-importd" --sandbox --listen "127.0.0.1:$PORT" --state-dir "$state" "$@" 2>"$log" &
pid=$!

for _ in $(seq 1 100); do
  curl -fsS "$API/readyz" >/dev/null 2>&1 && break
  kill -0 "$pid" 2>/dev/null || { cat "$log" >&2; exit 1; }
  sleep 0.1
done

echo "== GET /v1/status (tenant \"default\" is the emulator)"
curl -fsS "$API/v1/status" | python3 -m json.tool

cat >"$state/users.json" <<'JSON'
[
  {"email": "ada@example.com", "given_name": "Ada", "family_name": "Lovelace", "email_verified": true},
  {"email": "alan@example.com", "name": "Alan Turing", "user_metadata": {"plan": "gold"}},
  {"email": "grace@example.com", "username": "grace"}
]
JSON
echo "== POST /v1/imports (3 users into con_SandboxUsers0001)"
code=$(curl -sS -o "$state/import.json" -w '%{http_code}' \
  -F "users=@$state/users.json" -F connection_id=con_SandboxUsers0001 -F wait=10 "$API/v1/imports" || true)
if [ "$code" = "404" ] || [ "$code" = "405" ]; then
  echo "(imports are not part of this build yet)"
else
  python3 -m json.tool <"$state/import.json" || cat "$state/import.json"
  id=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1])).get("id",""))' "$state/import.json" 2>/dev/null || true)
  if [ -n "$id" ]; then
    for _ in $(seq 1 150); do
      st=$(curl -fsS "$API/v1/imports/$id" | python3 -c 'import json,sys; print(json.load(sys.stdin)["state"])')
      case "$st" in completed|completed_with_errors|failed|rejected|cancelled) break ;; esac
      sleep 0.2
    done
    echo "== GET /v1/imports/$id"
    curl -fsS "$API/v1/imports/$id" | python3 -m json.tool
  fi
fi
echo "== the daemon's log so far"
cat "$log"

if [ -t 0 ]; then
  echo "auth0-importd --sandbox on $API (state in $state); Ctrl-C to stop" >&2
  trap 'kill -TERM "$pid" 2>/dev/null || true' INT TERM
  tail -n 0 -f "$log" >&2 &
  tailpid=$!
  wait "$pid" || true
  kill "$tailpid" 2>/dev/null || true
fi
