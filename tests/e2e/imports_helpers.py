"""Helpers for the imports end-to-end tests: start the real daemon on a free
loopback port with its own state dir, talk HTTP to it, stop it with SIGTERM.

Python standard library only.
"""
import gzip
import http.client
import json
import os
import signal
import socket
import subprocess
import tempfile
import time
import uuid

CONNECTION = "con_A1b2C3d4E5f6G7h8"
SANITIZER_MARKS = ("ERROR: AddressSanitizer", "runtime error:", "LeakSanitizer")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Daemon:
    """One auth0-importd process. Tenant "default" points at a closed
    loopback port: nothing is ever submitted while the intake is tested."""

    def __init__(self, state_dir=None, extra_args=(), env=None):
        self.tmp = tempfile.TemporaryDirectory(prefix="importd-e2e-")
        self.state_dir = state_dir or os.path.join(self.tmp.name, "state")
        self.extra_args = list(extra_args)
        self.extra_env = env or {}
        self.proc = None
        self.port = None
        self.stderr_path = os.path.join(self.tmp.name, "stderr.log")

    def start(self):
        self.port = free_port()
        env = dict(os.environ)
        env.update({
            "AUTH0_DOMAIN": "http://127.0.0.1:9",
            "AUTH0_CLIENT_ID": "e2e-client",
            "AUTH0_CLIENT_SECRET": "e2e-secret",
        })
        env.update(self.extra_env)
        args = [os.environ["IMPORTD_BIN"], "--state-dir", self.state_dir,
                "--listen", "127.0.0.1:%d" % self.port, "--log-level", "info"] + self.extra_args
        self.stderr = open(self.stderr_path, "ab")
        self.proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=self.stderr, env=env)
        deadline = time.time() + 30
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError("daemon exited with %d:\n%s" % (self.proc.returncode, self.log()))
            try:
                status, _, _ = self.request("GET", "/readyz", timeout=2)
                if status == 200:
                    return self
            except OSError:
                pass
            time.sleep(0.02)
        raise AssertionError("daemon not ready:\n" + self.log())

    def log(self):
        try:
            with open(self.stderr_path, "rb") as f:
                return f.read().decode("utf-8", "replace")
        except FileNotFoundError:
            return ""

    def check_log(self):
        text = self.log()
        for mark in SANITIZER_MARKS:
            assert mark not in text, "sanitizer report in stderr:\n" + text

    def stop(self):
        """SIGTERM, exit 0 in time, no sanitizer report."""
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            code = self.proc.wait(timeout=30)
            assert code == 0, "exit %d:\n%s" % (code, self.log())
        self.proc = None
        self.stderr.close()
        self.check_log()

    def kill(self):
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=10)
        self.proc = None
        self.stderr.close()

    def cleanup(self):
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self.tmp.cleanup()

    def pid(self):
        return self.proc.pid

    def conn(self, timeout=60):
        return http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)

    def request(self, method, path, body=None, headers=None, timeout=60):
        c = self.conn(timeout)
        try:
            c.request(method, path, body=body, headers=headers or {})
            r = c.getresponse()
            data = r.read()
            return r.status, dict((k.lower(), v) for k, v in r.getheaders()), data
        finally:
            c.close()

    def get_json(self, path):
        status, headers, data = self.request("GET", path)
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
    status, hdrs, data = d.request("POST", path, body=body, headers=h)
    return status, hdrs, json.loads(data) if data else None


def post_form(d, content, fields=None, headers=None, filename="users.json"):
    f = {"connection_id": CONNECTION}
    f.update(fields or {})
    body, ctype = multipart(f, filename=filename, content=content)
    h = {"Content-Type": ctype}
    h.update(headers or {})
    status, hdrs, data = d.request("POST", "/v1/imports", body=body, headers=h)
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
