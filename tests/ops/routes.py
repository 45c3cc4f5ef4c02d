#!/usr/bin/env python3
"""Compares the daemon's route table with the paths of docs/openapi.yaml.

The route table is read from the source: every `struct api_route NAME[] =
{ ... };` table (api/router.h) in the daemon's C files (sandbox/, tests/ and
build folders excluded), rows `{ "METHOD", "/pattern", ... }`. Placeholder
names are not compared ("{id}" and "{import_id}" are the same segment).

- A route the code serves that the spec does not describe: always a failure.
- A spec operation the code does not serve: a failure too (STRICT_ROUTES=0
  only reports it, for work in progress on a branch).

Usage: routes.py [SOURCE_ROOT]   (default: $SOURCE_ROOT)
"""

import os
import re
import sys

EXCLUDED_DIRS = {"sandbox", "tests", "bench", "node_modules", ".git", "subprojects"}
METHODS = ("get", "put", "post", "delete", "patch", "head", "options", "trace")

TABLE = re.compile(r"\bstruct\s+api_route\s+\w+\s*\[[^\]]*\]\s*=\s*\{")
ROW = re.compile(r'\{\s*"([A-Z]+)"\s*,\s*"(/[^"]*)"')


def normalize(path):
    return re.sub(r"\{[^}/]*\}", "{}", path)


def spec_routes(spec_path):
    """(METHOD, path) of every operation under `paths:` in the OpenAPI file
    (the file's own layout: two-space indented paths, four-space methods)."""
    out = set()
    in_paths = False
    current = None
    for line in open(spec_path, encoding="utf-8"):
        line = line.rstrip("\n")
        if re.match(r"^\S", line):
            in_paths = line.startswith("paths:")
            current = None
            continue
        if not in_paths:
            continue
        m = re.match(r"^  (/[^:\s]*):\s*$", line)
        if m:
            current = m.group(1)
            continue
        m = re.match(r"^    ([a-z]+):\s*$", line)
        if m and current and m.group(1) in METHODS:
            out.add((m.group(1).upper(), current))
    return out


def strip_comments(c):
    c = re.sub(r"/\*.*?\*/", " ", c, flags=re.S)
    return re.sub(r"//[^\n]*", " ", c)


def code_routes(root):
    """{(METHOD, pattern): "file"} for every row of every api_route table."""
    out = {}
    for dirpath, dirnames, filenames in os.walk(root):
        if os.path.samefile(dirpath, root):
            dirnames[:] = [d for d in dirnames if d not in EXCLUDED_DIRS
                           and not d.startswith(("build", "."))]
        else:
            dirnames[:] = [d for d in dirnames
                           if d != "node_modules" and not d.startswith(".")]
        for name in filenames:
            if not name.endswith(".c"):
                continue
            path = os.path.join(dirpath, name)
            text = strip_comments(open(path, encoding="utf-8", errors="replace").read())
            for m in TABLE.finditer(text):
                depth = 1
                i = m.end()
                while i < len(text) and depth:
                    depth += {"{": 1, "}": -1}.get(text[i], 0)
                    i += 1
                for method, pattern in ROW.findall(text[m.end():i]):
                    out[(method, pattern)] = os.path.relpath(path, root)
    return out


def main():
    root = sys.argv[1] if len(sys.argv) > 1 else os.environ.get("SOURCE_ROOT")
    if not root:
        print("usage: routes.py SOURCE_ROOT", file=sys.stderr)
        return 2
    strict = os.environ.get("STRICT_ROUTES", "1") != "0"
    spec = spec_routes(os.path.join(root, "docs", "openapi.yaml"))
    code = code_routes(root)
    spec_n = {(m, normalize(p)): p for m, p in spec}
    code_n = {(m, normalize(p)): p for m, p in code}

    print(f"route table: {len(code)} routes; openapi.yaml: {len(spec)} operations")
    if not code and os.path.exists(os.path.join(root, "api", "router.c")):
        print("FAIL: the router exists but no `struct api_route NAME[] = {...}` table "
              "was found: has the table format changed?", file=sys.stderr)
        return 1
    for (m, p), f in sorted(code.items()):
        print(f"  code  {m:6} {p:40} {f}")

    failures = 0
    # HEAD is implied by GET in the router; the spec describes GET.
    undocumented = sorted(k for k in code_n if k not in spec_n
                          and not (k[0] == "HEAD" and ("GET", k[1]) in spec_n))
    for key in undocumented:
        print(f"FAIL: {key[0]} {code_n[key]} is served but not in openapi.yaml",
              file=sys.stderr)
        failures += 1

    unimplemented = sorted(k for k in spec_n if k not in code_n)
    for key in unimplemented:
        tag = "FAIL" if strict else "not yet implemented"
        print(f"{tag}: {key[0]} {spec_n[key]} is in openapi.yaml but not in the route table",
              file=sys.stderr if strict else sys.stdout)
    if strict:
        failures += len(unimplemented)
    elif unimplemented:
        print(f"{len(unimplemented)} spec operations not implemented yet "
              "(STRICT_ROUTES=0: reported only)")

    if failures:
        print(f"{failures} route mismatch(es)", file=sys.stderr)
        return 1
    print("routes: the route table and openapi.yaml agree"
          + (" (strict)" if strict else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
