#!/usr/bin/env bash
# A rehearsal with nothing configured: builds auth0-importd, starts it with
# --sandbox (the bundled Auth0 emulator becomes tenant "default"), shows
# /v1/status naming the emulator tenant, imports a few demo users into the
# emulator's database connection, shows the outcome, and stops cleanly.
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${BUILD:-build}
PORT=${PORT:-18484}
API="http://127.0.0.1:$PORT"

if [ ! -d "$BUILD" ]; then
  meson setup "$BUILD" >/dev/null
fi
ninja -C "$BUILD" >/dev/null

STATE=$(mktemp -d)
LOG="$STATE/daemon.log"
cleanup() {
  if [ -n "${PID:-}" ] && kill -0 "$PID" 2>/dev/null; then
    kill -TERM "$PID"
    wait "$PID" || true
  fi
  rm -rf "$STATE"
}
trap cleanup EXIT

# Demo speed for the emulator (the defaults play a free tenant: 2 req/s).
IMPORTD_SANDBOX_ARGS=${IMPORTD_SANDBOX_ARGS:-"--rate 20 --burst 20 --ms-per-user 0.1"} \
  "$BUILD/auth0-importd" --sandbox --state-dir "$STATE" --listen "127.0.0.1:$PORT" 2>"$LOG" &
PID=$!

for _ in $(seq 1 100); do
  curl -fsS "$API/readyz" >/dev/null 2>&1 && break
  kill -0 "$PID" 2>/dev/null || { cat "$LOG"; exit 1; }
  sleep 0.1
done

echo "== GET /v1/status (tenant \"default\" is the emulator)"
curl -fsS "$API/v1/status" | python3 -m json.tool

cat >"$STATE/users.json" <<'JSON'
[
  {"email": "ada@example.com", "given_name": "Ada", "family_name": "Lovelace", "email_verified": true},
  {"email": "alan@example.com", "name": "Alan Turing", "user_metadata": {"plan": "gold"}},
  {"email": "grace@example.com", "username": "grace"}
]
JSON
echo "== POST /v1/imports (3 users into con_SandboxUsers0001)"
code=$(curl -sS -o "$STATE/import.json" -w '%{http_code}' \
  -F "users=@$STATE/users.json" -F connection_id=con_SandboxUsers0001 -F wait=10 "$API/v1/imports" || true)
if [ "$code" = "404" ] || [ "$code" = "405" ]; then
  echo "(imports are not part of this build yet)"
else
  python3 -m json.tool <"$STATE/import.json" || cat "$STATE/import.json"
  id=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1])).get("id",""))' "$STATE/import.json" 2>/dev/null || true)
  if [ -n "$id" ]; then
    for _ in $(seq 1 100); do
      state=$(curl -fsS "$API/v1/imports/$id" | python3 -c 'import json,sys; print(json.load(sys.stdin)["state"])')
      case "$state" in completed|completed_with_errors|failed|rejected|cancelled) break ;; esac
      sleep 0.2
    done
    echo "== GET /v1/imports/$id"
    curl -fsS "$API/v1/imports/$id" | python3 -m json.tool
  fi
fi
echo "== the daemon's log"
cat "$LOG"
