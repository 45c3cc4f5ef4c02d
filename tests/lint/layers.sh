#!/bin/sh
# Layers point one way (STYLE.md): fails when a source file includes what
# its layer must not see. Run from anywhere; $1 is the source root.
root=${1:-$(dirname "$0")/../..}
cd "$root" || exit 2
fail=0

# check DESCRIPTION FILES-GLOB... -- PATTERN
forbid() {
  desc=$1 pattern=$2; shift 2
  hits=$(grep -nE "^[[:space:]]*#[[:space:]]*include[[:space:]]*[<\"]($pattern)" "$@" 2>/dev/null)
  if [ -n "$hits" ]; then
    echo "layer violation: $desc" >&2
    echo "$hits" >&2
    fail=1
  fi
}

src() { # existing .c/.h files under the given dirs
  for d in "$@"; do
    [ -d "$d" ] && find "$d" -name '*.[ch]'
  done
}

# Only queue/ (and its unit tests) may include sqlite3.h.
files=$(src daemon api sandbox tests/fuzz)
[ -n "$files" ] && forbid "only queue/ includes sqlite3.h" 'sqlite3\.h' $files
# daemon/users is a pure library: no loop, no SQLite, no HTTP, no logging.
files=$(src daemon/users)
[ -n "$files" ] && forbid "daemon/users includes no uv.h, sqlite3.h, microhttpd.h, curl or daemon/log.h" \
  'uv\.h|sqlite3\.h|microhttpd\.h|curl/|daemon/log\.h' $files
# daemon/convert is a pure library too.
files=$(src daemon/convert)
[ -n "$files" ] && forbid "daemon/convert includes no uv.h, sqlite3.h, microhttpd.h, curl or daemon/log.h" \
  'uv\.h|sqlite3\.h|microhttpd\.h|curl/|daemon/log\.h' $files
# queue/ knows nothing of the control API.
files=$(src queue)
[ -n "$files" ] && forbid "queue/ never includes api/" 'api/' $files
# The emulator must not share Auth0 knowledge with the daemon.
files=$(src sandbox)
[ -n "$files" ] && forbid "sandbox/ never includes daemon/users or daemon/auth0" 'daemon/users/|daemon/auth0/' $files

[ "$fail" = 0 ] && echo "layers: ok"
exit $fail
