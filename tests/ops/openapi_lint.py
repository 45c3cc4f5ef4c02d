#!/usr/bin/env python3
"""Lints docs/openapi.yaml with Redocly CLI (from the npm registry, installed
into tests/ops/node_modules by this test) under docs/redocly.yaml (the
recommended rules, warnings as errors), and checks that every endpoint of the
API contract is described."""

import os
import re
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import opslib  # noqa: E402
import routes  # noqa: E402

REDOCLY_VERSION = "2.77.0"

# Every endpoint of the API contract (API.md), as (method, path).
CONTRACT = {
    ("POST", "/v1/imports"),
    ("GET", "/v1/imports"),
    ("GET", "/v1/imports/{id}"),
    ("DELETE", "/v1/imports/{id}"),
    ("GET", "/v1/imports/{id}/jobs"),
    ("GET", "/v1/imports/{id}/errors"),
    ("GET", "/v1/imports/{id}/failed-users"),
    ("POST", "/v1/imports/{id}/retry"),
    ("POST", "/v1/imports/{id}/undo"),
    ("GET", "/v1/status"),
    ("GET", "/healthz"),
    ("GET", "/readyz"),
    ("GET", "/metrics"),
    ("POST", "/v1/exports"),
    ("GET", "/v1/exports/{id}"),
    ("GET", "/v1/exports/{id}/file"),
    ("POST", "/v1/migrations"),
    ("GET", "/v1/migrations/{id}"),
    ("DELETE", "/v1/migrations/{id}"),
}


def main():
    docs = os.path.join(opslib.env("SOURCE_ROOT"), "docs")
    spec = os.path.join(docs, "openapi.yaml")

    described = routes.spec_routes(spec)
    missing = sorted(CONTRACT - described)
    if missing:
        opslib.fail("endpoints of the contract missing from openapi.yaml: "
                    + ", ".join(f"{m} {p}" for m, p in missing))
    print(f"openapi.yaml describes all {len(CONTRACT)} endpoints of the contract "
          f"({len(described)} operations)")

    # info.version follows the project's version (auth0-importd --version).
    r = opslib.run([opslib.env("IMPORTD_BIN"), "--version"])
    version = r.stdout.split()[-1] if r.returncode == 0 and r.stdout.split() else None
    spec_version = re.search(r"^  version: (\S+)$", open(spec).read(), re.M)
    if version is None or spec_version is None or spec_version.group(1) != version:
        opslib.fail(f"openapi.yaml info.version "
                    f"{spec_version.group(1) if spec_version else None} is not the "
                    f"daemon's version {version}")

    redocly = opslib.npm_tool("@redocly/cli", REDOCLY_VERSION, "redocly")
    r = opslib.run([redocly, "lint", "--config", os.path.join(docs, "redocly.yaml"),
                    "--format", "stylish", spec], cwd=docs)
    print(r.stdout)
    print(r.stderr, file=sys.stderr)
    if r.returncode != 0:
        opslib.fail(f"redocly lint found problems (exit {r.returncode})")
    print("redocly lint: valid")


if __name__ == "__main__":
    main()
