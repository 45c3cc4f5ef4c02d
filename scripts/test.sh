#!/usr/bin/env bash
# Builds and runs the whole suite: a normal build (-Werror) with unit, e2e,
# lint and ops tests; the unit tests again under valgrind; an
# AddressSanitizer + UndefinedBehaviorSanitizer build running the unit tests
# and the e2e tests of the 'sanitize' suite; the libFuzzer targets (clang),
# FUZZ_SECONDS each. Prints one line per run and the total as the last line.
set -uo pipefail
cd "$(dirname "$0")/.."
FUZZ_SECONDS=${FUZZ_SECONDS:-60}
export FUZZ_SECONDS
jobs=$(nproc 2>/dev/null || echo 2)
summary=()
total_pass=0
total_fail=0

count() { # build-dir prefix [meson-test-exit-status [log-name]]
  local out
  out=$(/usr/bin/python3 - "$1/meson-logs/${4:-testlog.json}" "${3:-0}" <<'PY'
import json, sys
p = f = 0
try:
    for line in open(sys.argv[1]):
        r = json.loads(line)
        if r.get("result") in ("OK", "EXPECTEDFAIL", "SKIP"):
            p += 1
        else:
            f += 1
            print("FAILED:", r.get("name"), r.get("result"), file=sys.stderr)
except FileNotFoundError:
    # No log: meson ran no test (e.g. no fuzz target yet). That is only a
    # failure when meson itself failed.
    if sys.argv[2] != "0":
        f = 1
        print("no test log", file=sys.stderr)
print(p, f)
PY
)
  local p=${out% *} f=${out#* }
  summary+=("$2: $p passed, $f failed")
  total_pass=$((total_pass + p))
  total_fail=$((total_fail + f))
}

build() { # dir, meson args...
  local dir=$1; shift
  if [ ! -d "$dir" ]; then
    meson setup "$dir" "$@" >/dev/null || { echo "meson setup $dir failed" >&2; return 1; }
  fi
  ninja -C "$dir" || { echo "build $dir failed" >&2; return 1; }
}

runsuite() { # dir prefix meson-test-args...
  local dir=$1 prefix=$2 rc log=testlog.json; shift 2
  # `--setup NAME` makes meson write testlog-NAME.json instead.
  local prev=
  for a in "$@"; do
    [ "$prev" = --setup ] && log="testlog-$a.json"
    prev=$a
  done
  rm -f "$dir/meson-logs/$log"
  meson test -C "$dir" --print-errorlogs --num-processes "$jobs" "$@"
  rc=$?
  count "$dir" "$prefix" "$rc" "$log"
}

if build build-ci -Dwerror=true -Dbuildtype=debugoptimized; then
  runsuite build-ci normal --no-suite fuzz
  runsuite build-ci valgrind --setup valgrind --suite unit
else
  summary+=("normal: 0 passed, 1 failed"); total_fail=$((total_fail + 1))
fi

if build build-asan -Dwerror=true -Dbuildtype=debug -Db_sanitize=address,undefined -Db_lundef=false; then
  ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
    runsuite build-asan sanitize --suite unit --suite sanitize
else
  summary+=("sanitize: 0 passed, 1 failed"); total_fail=$((total_fail + 1))
fi

if CC=clang build build-fuzz -Dfuzzing=true -Dbuildtype=debugoptimized -Db_lundef=false; then
  runsuite build-fuzz fuzz --suite fuzz --num-processes 1
else
  summary+=("fuzz: 0 passed, 1 failed"); total_fail=$((total_fail + 1))
fi

echo
for line in "${summary[@]}"; do echo "$line"; done
echo "$total_pass passed, $total_fail failed"
[ "$total_fail" -eq 0 ]
