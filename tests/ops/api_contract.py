#!/usr/bin/env python3
"""Checks the running daemon's answers against docs/openapi.yaml.

The daemon runs under the end-to-end harness (tests/e2e/harness.py) on
127.0.0.1:0 with a temporary state directory and a tenant
"default" whose Auth0 is a closed loopback port (only dry runs and rejected
imports are made, so nothing is ever sent to it). A fixed set of requests is
made, limited to the routes the route table has (tests/ops/routes.py), so the
check grows as the routes land. For each answer:

- the operation (method + path template) exists in the spec;
- its status code is one the operation documents;
- its Content-Type is one of that response's media types;
- a JSON body validates against the response's schema (a small JSON Schema
  validator for the keywords the spec uses: type, enum, const, required,
  properties, additionalProperties, items, allOf/anyOf/oneOf, bounds,
  lengths, pattern, date-time).

The spec is turned into dereferenced JSON by Redocly CLI (`bundle`), the
linter the openapi-lint test installs from the npm registry.
"""

import json
import os
import re
import sys
import tempfile
import uuid

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import opslib  # noqa: E402
import routes  # noqa: E402
from harness import Daemon  # noqa: E402  (tests/e2e/harness.py)
from openapi_lint import REDOCLY_VERSION  # noqa: E402

CONN = "con_A1b2C3d4E5f6G7h8"
RFC3339 = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$")


# --- a small JSON Schema validator ------------------------------------------

def type_ok(t, v):
    return {
        "null": v is None,
        "boolean": isinstance(v, bool),
        "integer": isinstance(v, int) and not isinstance(v, bool)
        or isinstance(v, float) and v.is_integer(),
        "number": isinstance(v, (int, float)) and not isinstance(v, bool),
        "string": isinstance(v, str),
        "array": isinstance(v, list),
        "object": isinstance(v, dict),
    }[t]


def validate(schema, v, where="$"):
    """A list of 'where: problem' strings (empty when v is valid)."""
    errs = []
    if not isinstance(schema, dict):
        return errs
    for sub in schema.get("allOf", []):
        errs += validate(sub, v, where)
    for key in ("anyOf", "oneOf"):
        if key in schema:
            results = [validate(sub, v, where) for sub in schema[key]]
            ok = sum(1 for r in results if not r)
            if ok == 0 or (key == "oneOf" and ok > 1):
                errs.append(f"{where}: matches {ok} of the {key} schemas")
    t = schema.get("type")
    if t is not None:
        types = t if isinstance(t, list) else [t]
        if not any(type_ok(x, v) for x in types):
            return errs + [f"{where}: {json.dumps(v)[:60]} is not {'/'.join(types)}"]
    if "const" in schema and v != schema["const"]:
        errs.append(f"{where}: {v!r} is not {schema['const']!r}")
    if "enum" in schema and v not in schema["enum"]:
        errs.append(f"{where}: {v!r} is not one of {schema['enum']}")
    if isinstance(v, str):
        if len(v) < schema.get("minLength", 0):
            errs.append(f"{where}: shorter than {schema['minLength']}")
        if "maxLength" in schema and len(v) > schema["maxLength"]:
            errs.append(f"{where}: longer than {schema['maxLength']}")
        if "pattern" in schema and not re.search(schema["pattern"], v):
            errs.append(f"{where}: {v!r} does not match {schema['pattern']}")
        if schema.get("format") == "date-time" and not RFC3339.match(v):
            errs.append(f"{where}: {v!r} is not an RFC 3339 time")
    if isinstance(v, (int, float)) and not isinstance(v, bool):
        if "minimum" in schema and v < schema["minimum"]:
            errs.append(f"{where}: {v} < {schema['minimum']}")
        if "maximum" in schema and v > schema["maximum"]:
            errs.append(f"{where}: {v} > {schema['maximum']}")
    if isinstance(v, list):
        if "maxItems" in schema and len(v) > schema["maxItems"]:
            errs.append(f"{where}: more than {schema['maxItems']} items")
        if "items" in schema:
            for i, item in enumerate(v):
                errs += validate(schema["items"], item, f"{where}[{i}]")
    if isinstance(v, dict):
        for key in schema.get("required", []):
            if key not in v:
                errs.append(f"{where}: missing required {key!r}")
        props = schema.get("properties", {})
        extra = schema.get("additionalProperties", True)
        for key, value in v.items():
            if key in props:
                errs += validate(props[key], value, f"{where}.{key}")
            elif extra is False:
                errs.append(f"{where}: unexpected property {key!r}")
            elif isinstance(extra, dict):
                errs += validate(extra, value, f"{where}.{key}")
    return errs


# --- the spec ------------------------------------------------------------------

def load_spec():
    redocly = opslib.npm_tool("@redocly/cli", REDOCLY_VERSION, "redocly")
    spec = os.path.join(opslib.env("SOURCE_ROOT"), "docs", "openapi.yaml")
    out = os.path.join(tempfile.mkdtemp(prefix="importd-ops-spec-"), "openapi.json")
    r = opslib.run([redocly, "bundle", spec, "--dereferenced", "--ext", "json", "-o", out])
    if r.returncode != 0 or not os.path.isfile(out):
        opslib.fail(f"redocly bundle failed:\n{r.stdout}\n{r.stderr}")
    with open(out) as f:
        return json.load(f)


def find_operation(spec, method, path):
    for template, item in spec["paths"].items():
        rx = "^" + re.sub(r"\\\{[^}]*\\\}", "[^/]+", re.escape(template)) + "$"
        if re.match(rx, path) and method.lower() in item:
            return template, item[method.lower()]
    return None, None


# --- requests --------------------------------------------------------------------

def multipart(fields, users):
    boundary = "ops" + uuid.uuid4().hex
    parts = []
    for name, value in fields.items():
        parts.append(f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"'
                     f"\r\n\r\n{value}\r\n".encode())
    parts.append(f'--{boundary}\r\nContent-Disposition: form-data; name="users"; '
                 f'filename="users.json"\r\nContent-Type: application/octet-stream\r\n\r\n'
                 .encode() + users + b"\r\n")
    parts.append(f"--{boundary}--\r\n".encode())
    return b"".join(parts), {"Content-Type": f"multipart/form-data; boundary={boundary}"}


def main():
    spec = load_spec()
    served = {(m, routes.normalize(p)) for m, p in routes.code_routes(opslib.env("SOURCE_ROOT"))}

    def has(method, template):
        return (method, routes.normalize(template)) in served

    folder = tempfile.mkdtemp(prefix="importd-ops-contract-")
    secret = os.path.join(folder, "client-secret")
    with open(secret, "w") as f:
        f.write("ops-test-secret\n")
    conf = os.path.join(folder, "auth0-importd.conf")
    with open(conf, "w") as f:
        f.write("[tenant.default]\ndomain = http://127.0.0.1:9\nclient_id = ops\n"
                "client_secret_file = client-secret\n")

    checked = []
    problems = []

    def call(method, path, template, body=None, headers=None, expect=None):
        """Makes the request when the route is served; checks the answer
        against the spec; returns (status, headers, parsed JSON or None)."""
        if not has(method, template):
            return None, {}, None
        try:
            r = d.request(method, path, body=body, headers=headers)
            status, hdrs, raw = r.status, r.headers, r.body
        except OSError as e:
            status, hdrs, raw = None, {}, str(e).encode()
        label = f"{method} {path.split('?')[0]}{'?' + path.split('?')[1][:40] if '?' in path else ''}"
        checked.append(f"{label} -> {status}")
        if status is None:
            problems.append(f"{label}: no answer")
            return None, {}, None
        if expect is not None and status not in expect:
            problems.append(f"{label}: answered {status}, expected {expect}: {raw[:200]!r}")
        tpl, op = find_operation(spec, method, path.split("?")[0])
        if op is None:
            problems.append(f"{label}: no such operation in openapi.yaml")
            return status, hdrs, None
        resp = op["responses"].get(str(status)) or op["responses"].get("default")
        if resp is None:
            problems.append(f"{label}: status {status} is not documented for {method} {tpl}")
            return status, hdrs, None
        ctype = hdrs.get("content-type", "")
        media = ctype.split(";")[0].strip()
        content = resp.get("content", {})
        if content and media not in content:
            problems.append(f"{label}: Content-Type {media!r} is not one of {sorted(content)}")
            return status, hdrs, None
        data = None
        if media.endswith("json") and raw:
            try:
                data = json.loads(raw)
            except json.JSONDecodeError as e:
                problems.append(f"{label}: invalid JSON ({e})")
                return status, hdrs, None
            errs = validate(content[media].get("schema", {}), data)
            problems.extend(f"{label} ({status}): {e}" for e in errs[:10])
        return status, hdrs, data

    d = Daemon(args=["--config", conf])
    try:
        d.start()
        call("GET", "/healthz", "/healthz", expect={200})
        call("GET", "/readyz", "/readyz", expect={200})
        call("GET", "/v1/status", "/v1/status", expect={200})
        call("GET", "/metrics", "/metrics", expect={200})
        call("GET", "/v1/imports/imp_0000000000000000", "/v1/imports/{id}", expect={404})
        call("GET", "/v1/imports", "/v1/imports", expect={200})
        call("GET", "/v1/imports?limit=0", "/v1/imports", expect={400})

        good = json.dumps([{"email": f"user{i}@example.com", "email_verified": True}
                           for i in range(5)]).encode()
        bad = json.dumps([{"email": "ok@example.com"}, {"emial": "typo@example.com"},
                          {"email": "not-an-email"}]).encode()
        jhdr = {"Content-Type": "application/json"}
        q = f"/v1/imports?connection_id={CONN}"
        call("POST", q + "&dry_run=true&wait=20", "/v1/imports", good, jhdr, expect={200})
        call("POST", q + "&dry_run=true&wait=20", "/v1/imports", bad, jhdr, expect={422})
        call("POST", q + "&wait=20", "/v1/imports", b"", jhdr, expect={400})
        call("POST", q + "&on_invalid=maybe", "/v1/imports", good, jhdr, expect={400})
        call("POST", q + "&tenant=nosuch", "/v1/imports", good, jhdr, expect={400})
        call("POST", q + "&wait=20", "/v1/imports", b"[{]", jhdr, expect={400})
        body, mhdr = multipart({"connection_id": CONN, "dry_run": "true", "wait": "20"}, good)
        call("POST", "/v1/imports", "/v1/imports", body, mhdr, expect={200})
        # A real (not dry) import with invalid users: rejected, nothing sent.
        body, mhdr = multipart({"connection_id": CONN, "wait": "20"}, bad)
        status, hdrs, data = call("POST", "/v1/imports", "/v1/imports", body, mhdr, expect={422})
        loc = hdrs.get("location")
        if status == 422 and not loc:
            problems.append("422 without a Location header")
        if loc:
            imp = loc.rsplit("/", 1)[-1]
            call("GET", loc, "/v1/imports/{id}", expect={200})
            call("GET", "/v1/imports?state=rejected", "/v1/imports", expect={200})
            call("GET", f"{loc}/errors", "/v1/imports/{id}/errors", expect={200})
            call("GET", f"{loc}/errors?severity=warning", "/v1/imports/{id}/errors",
                 expect={200})
            call("GET", f"{loc}/failed-users", "/v1/imports/{id}/failed-users",
                 expect={200})
            call("GET", f"{loc}/jobs", "/v1/imports/{id}/jobs", expect={200})
            call("POST", f"{loc}/retry", "/v1/imports/{id}/retry", expect={409})
            call("POST", f"{loc}/undo", "/v1/imports/{id}/undo",
                 json.dumps({"confirm": "imp_wrong"}).encode(), jhdr, expect={400, 409})
            call("DELETE", loc, "/v1/imports/{id}", expect={409})
            if imp not in loc:
                problems.append(f"Location {loc} does not end in the import id")
        call("POST", "/v1/exports", "/v1/exports",
             json.dumps({"tenant": "nosuch", "connection_id": CONN}).encode(), jhdr,
             expect={400})
        call("GET", "/v1/exports/exp_0000000000000000", "/v1/exports/{id}", expect={404})
        call("GET", "/v1/exports/exp_0000000000000000/file", "/v1/exports/{id}/file",
             expect={404})
        call("POST", "/v1/migrations", "/v1/migrations", b"{}", jhdr, expect={400})
        call("GET", "/v1/migrations/mig_0000000000000000", "/v1/migrations/{id}",
             expect={404})
        call("DELETE", "/v1/migrations/mig_0000000000000000", "/v1/migrations/{id}",
             expect={404})
        d.stop()
    finally:
        d.cleanup()

    for c in checked:
        print(f"  {c}")
    for p in problems:
        print(f"FAIL: {p}", file=sys.stderr)
    if problems:
        opslib.fail(f"{len(problems)} answer(s) disagree with openapi.yaml")
    print(f"api contract: {len(checked)} answers agree with openapi.yaml")


if __name__ == "__main__":
    main()
