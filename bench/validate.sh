#!/usr/bin/env bash
# Validate-and-split benchmark of daemon/users against Node.js + ajv on the
# same file and the same rules, element by element.
#
#   bench/validate.sh [BUILD_DIR]        (default build/)
#   N=1000000 bench/validate.sh          (users; default 1000000, ~400 MB)
#   WORK=/tmp/bench bench/validate.sh    (where the file and chunks go)
#
# Prints MB/s, users/s and peak RSS (/usr/bin/time -v) for:
#   check     auth0-importd check FILE (validate only)
#   check-csv the same users as CSV (gen_users.py --csv): reading, row
#             conversion and validation
#   split     users-bench FILE DIR (validate + write chunk files, like intake)
#   node+ajv  bench/node/validate.js FILE (ajv installed here with npm)
# Everything runs under nice. Goal: >= 2x ajv's throughput, peak RSS < 32 MB.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
build=${1:-$here/../build}
N=${N:-1000000}
WORK=${WORK:-${TMPDIR:-/tmp}/auth0-importd-bench}
mkdir -p "$WORK"
file="$WORK/users-$N.json"

if [ ! -s "$file" ]; then
  echo "generating $N users into $file"
  nice python3 "$here/gen_users.py" "$N" "$file.tmp" && mv "$file.tmp" "$file"
fi
size=$(stat -c %s "$file")
echo "file: $file, $N users, $size bytes"
cat "$file" > /dev/null   # warm the page cache for every contender alike

if [ ! -d "$here/node/node_modules/ajv" ]; then
  (cd "$here/node" && npm install --no-audit --no-fund --silent >/dev/null)
fi

measure() { # name, command...
  local name=$1; shift
  local log="$WORK/$name.time"
  local out
  out=$(nice /usr/bin/time -v "$@" 2>"$log") || true
  python3 - "$name" "$size" "$N" "$log" <<'PY'
import sys
name, size, n, log = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
t = {}
for line in open(log):
    k, _, v = line.strip().rpartition(": ")
    t[k] = v
wall = sum(float(x) * 60 ** i for i, x in enumerate(reversed(t["Elapsed (wall clock) time (h:mm:ss or m:ss)"].split(":"))))
cpu = float(t["User time (seconds)"]) + float(t["System time (seconds)"])
rss = int(t["Maximum resident set size (kbytes)"]) / 1024
# The machine is shared: CPU time (user+sys) is the fairer figure.
print(f"{name:9s} wall {size/1e6/wall:7.1f} MB/s {n/wall:9.0f} users/s ({wall:6.2f} s) | "
      f"cpu {size/1e6/cpu:7.1f} MB/s {n/cpu:9.0f} users/s ({cpu:6.2f} s) | peak RSS {rss:6.1f} MiB")
PY
  echo "          $out" | tail -1
}

measure check "$build/auth0-importd" check "$file"
csvfile="$WORK/users-$N.csv"
if [ ! -s "$csvfile" ]; then
  nice python3 "$here/gen_users.py" "$N" "$csvfile.tmp" --csv && mv "$csvfile.tmp" "$csvfile"
fi
jsonsize=$size
size=$(stat -c %s "$csvfile")
cat "$csvfile" > /dev/null
measure check-csv "$build/auth0-importd" check "$csvfile"
size=$jsonsize
rm -rf "$WORK/chunks"; mkdir -p "$WORK/chunks"
measure split "$build/bench/users-bench" "$file" "$WORK/chunks"
echo "           chunks: $(ls "$WORK/chunks" | wc -l) files, $(du -sm "$WORK/chunks" | cut -f1) MB"
rm -rf "$WORK/chunks"
measure node+ajv node "$here/node/validate.js" "$file"
