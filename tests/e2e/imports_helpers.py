"""Helpers for the imports end-to-end tests, on top of harness.py: a daemon
with a tenant, users files, the two upload forms, the invariants.

Python standard library only.
"""
import gzip
import http.client
import json
import time
import uuid

import harness

CONNECTION = "con_A1b2C3d4E5f6G7h8"
# Waiting for Auth0. Once the submit pipeline runs, it tries the tenant (a
# closed port here) and a queued import shows as running between retries.
QUEUED = ("queued", "running")


class Daemon(harness.Daemon):
    """harness.Daemon with tenant "default" pointing at a closed loopback
    port: nothing is ever submitted while the intake is tested."""

    def __init__(self, extra_args=(), env=None, **kw):
        e = {"AUTH0_DOMAIN": "http://127.0.0.1:9", "AUTH0_CLIENT_ID": "e2e-client",
             "AUTH0_CLIENT_SECRET": "e2e-secret"}
        e.update(env or {})
        self.extra_env = e
        self.extra_args = list(extra_args)
        super().__init__(args=list(extra_args) + ["--log-level", "info"], env=e, **kw)

    def log(self):
        return self.stderr()

    def pid(self):
        return self.proc.pid

    def conn(self, timeout=60):
        host, _, port = self.address.rpartition(":")
        return http.client.HTTPConnection(host, int(port), timeout=timeout)

    def request(self, method, path, body=None, headers=None, timeout=60, **kw):
        """(status, lower-case headers, body bytes); get/post/delete keep the
        harness's Response."""
        r = harness.Daemon.request(self, method, path, body=body, headers=headers,
                                   timeout=timeout, **kw)
        return r.status, r.headers, r.body

    call = request

    def get(self, path, **kw):
        return harness.Daemon.request(self, "GET", path, **kw)

    def post(self, path, body=None, **kw):
        return harness.Daemon.request(self, "POST", path, body, **kw)

    def delete(self, path, **kw):
        return harness.Daemon.request(self, "DELETE", path, **kw)

    def get_json(self, path):
        status, headers, data = self.call("GET", path)
        return status, json.loads(data) if data else None

    def wait_state(self, imp_id, states, timeout=30):
        deadline = time.time() + timeout
        while time.time() < deadline:
            status, o = self.get_json("/v1/imports/" + imp_id)
            assert status == 200, o
            if o["state"] in states:
                return o
            time.sleep(0.05)
        raise AssertionError("import %s never reached %s: %s" % (imp_id, states, o))


def multipart(fields, filename="users.json", content=b"", ctype="application/octet-stream"):
    """A multipart/form-data body as curl -F sends it."""
    boundary = "----e2e" + uuid.uuid4().hex
    out = []
    for name, value in fields.items():
        out.append(("--%s\r\nContent-Disposition: form-data; name=\"%s\"\r\n\r\n%s\r\n"
                    % (boundary, name, value)).encode())
    if content is not None:
        out.append(("--%s\r\nContent-Disposition: form-data; name=\"users\"; filename=\"%s\"\r\n"
                    "Content-Type: %s\r\n\r\n" % (boundary, filename, ctype)).encode())
        out.append(content)
        out.append(b"\r\n")
    out.append(("--%s--\r\n" % boundary).encode())
    return b"".join(out), "multipart/form-data; boundary=" + boundary


def user(i, **extra):
    u = {"email": "user%d@example.com" % i, "email_verified": True,
         "given_name": "Given%d" % i, "family_name": "Family",
         "user_metadata": {"plan": "gold", "n": i}}
    u.update(extra)
    return u


def users_array(n, start=0):
    return json.dumps([user(i) for i in range(start, start + n)]).encode()


def users_ndjson(n, start=0):
    return b"".join(json.dumps(user(i)).encode() + b"\n" for i in range(start, start + n))


def gz(data):
    return gzip.compress(data)


def post_raw(d, body, query="", headers=None, ctype="application/json"):
    h = {"Content-Type": ctype}
    h.update(headers or {})
    sep = "&" if query else ""
    path = "/v1/imports?connection_id=%s%s%s" % (CONNECTION, sep, query)
    status, hdrs, data = d.call("POST", path, body=body, headers=h)
    return status, hdrs, json.loads(data) if data else None


def post_form(d, content, fields=None, headers=None, filename="users.json"):
    f = {"connection_id": CONNECTION}
    f.update(fields or {})
    body, ctype = multipart(f, filename=filename, content=content)
    h = {"Content-Type": ctype}
    h.update(headers or {})
    status, hdrs, data = d.call("POST", "/v1/imports", body=body, headers=h)
    return status, hdrs, json.loads(data) if data else None


def vm_hwm_kib(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    return 0


def check_invariant(o):
    u = o["users"]
    assert u["total"] == (u["invalid"] + u["inserted"] + u["updated"] + u["failed"]
                          + u["pending"] + u["not_submitted"]), u
    c = o["chunks"]
    assert c["total"] == sum(c[k] for k in ("queued", "submitting", "submitted", "completed",
                                            "failed", "cancelled")), c
