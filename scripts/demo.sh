#!/usr/bin/env bash
# A rehearsal with nothing configured: builds auth0-importd, starts it with
# --sandbox on 127.0.0.1:8484 (the bundled Auth0 emulator becomes tenant
# "default"), shows /v1/status naming the emulator tenant, checks a generated
# file of DEMO_USERS users (default 5000, two of them broken) offline, dry-runs
# it, imports it into the emulator's database connection showing progress,
# and prints the final import and its per-user errors. On a
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

# A generated file of DEMO_USERS users, plus two broken ones so the
# validator has something to say.
DEMO_USERS=${DEMO_USERS:-5000}
python3 bench/gen_users.py "$DEMO_USERS" "$state/users.json" --seed 7 >/dev/null
python3 - "$state/users.json" <<'PY'
import json, sys
p = sys.argv[1]
users = json.load(open(p))
users.append({"Email": "typo@example.com", "given_name": "Typo"})
users.append({"email": "not-an-email", "user_id": "auth0|5f1a"})
json.dump(users, open(p, "w"))
PY

show() { python3 -m json.tool "$1" 2>/dev/null || cat "$1"; }
state_of() { python3 -c 'import json,sys; print(json.load(sys.stdin)["state"])'; }

echo "== auth0-importd check (offline, the same rules as the API)"
"$BUILD/auth0-importd" check "$state/users.json" --max-errors 5 || true

echo "== POST /v1/imports?dry_run=true (validate and plan only)"
curl -sS -o "$state/dry.json" -F "users=@$state/users.json" -F connection_id=con_SandboxUsers0001 \
  -F dry_run=true -F on_invalid=skip "$API/v1/imports"
python3 - "$state/dry.json" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
print(f"  state={d['state']} users={d['users']['total']} invalid={d['users']['invalid']} "
      f"(nothing queued)")
PY

echo "== POST /v1/imports ($DEMO_USERS users into con_SandboxUsers0001, on_invalid=skip)"
curl -sS -D "$state/headers" -o "$state/import.json" -F "users=@$state/users.json" \
  -F connection_id=con_SandboxUsers0001 -F on_invalid=skip -F wait=0 "$API/v1/imports"
grep -i '^location:' "$state/headers" || true
id=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["id"])' "$state/import.json")

echo "== progress (GET /v1/imports/$id)"
for _ in $(seq 1 600); do
  curl -fsS "$API/v1/imports/$id" >"$state/now.json"
  python3 - "$state/now.json" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
u, c = d["users"], d["chunks"]
print(f"  {d['state']:<22} inserted={u['inserted']:<6} pending={u['pending']:<6} "
      f"invalid={u['invalid']} failed={u['failed']}  chunks done {c['completed']}/{c['total']}  "
      f"progress={d.get('progress', 0):.2f} eta={d.get('eta_seconds')}")
PY
  st=$(state_of <"$state/now.json")
  case "$st" in completed|completed_with_errors|failed|rejected|cancelled) break ;; esac
  sleep 0.5
done
echo "== GET /v1/imports/$id (final)"
show "$state/now.json"
echo "== GET /v1/imports/$id/errors (the users to fix, in the file's own terms)"
curl -fsS "$API/v1/imports/$id/errors" | python3 -m json.tool
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
