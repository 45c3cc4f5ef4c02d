"""Starts auth0-sandbox for the e2e tests and talks to it (stdlib only).

Sandbox(args) starts the binary (env SANDBOX_BIN) on a free loopback port,
reads its ready line, and on stop() sends SIGTERM, expects exit 0 and fails
on sanitizer reports in stderr.
"""
import gzip
import json
import os
import signal
import subprocess
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request

SANDBOX_BIN = os.environ.get("SANDBOX_BIN", "build/sandbox/auth0-sandbox")
FAST = ["--rate", "20", "--burst", "20", "--ms-per-user", "0.1"]
CONN = "con_SandboxUsers0001"
SANITIZER_MARKS = ("ERROR: AddressSanitizer", "runtime error:", "LeakSanitizer")


class Response:
    def __init__(self, status, headers, body):
        self.status = status
        self.headers = {k.lower(): v for k, v in headers.items()}
        self.body = body

    def json(self):
        return json.loads(self.body)


def request(method, url, body=None, headers=None, timeout=10):
    req = urllib.request.Request(url, data=body, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return Response(r.status, dict(r.headers), r.read())
    except urllib.error.HTTPError as e:
        return Response(e.code, dict(e.headers), e.read())


def multipart(fields, boundary="sbxBoundary7MA4YWxkTrZu0gW"):
    """fields: list of (name, value bytes/str, filename or None)."""
    out = b""
    for name, value, filename in fields:
        if isinstance(value, str):
            value = value.encode()
        disp = f'form-data; name="{name}"'
        if filename:
            disp += f'; filename="{filename}"'
        out += f"--{boundary}\r\nContent-Disposition: {disp}\r\n".encode()
        if filename:
            out += b"Content-Type: application/json\r\n"
        out += b"\r\n" + value + b"\r\n"
    out += f"--{boundary}--\r\n".encode()
    return out, f"multipart/form-data; boundary={boundary}"


class Sandbox:
    def __init__(self, args=None, client_id="test-client", client_secret="test-secret"):
        self.stderr = tempfile.TemporaryFile()
        cmd = [SANDBOX_BIN, "--client-id", client_id, "--client-secret", client_secret]
        cmd += FAST if args is None else args
        self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=self.stderr)
        line = self.proc.stdout.readline()
        if not line:
            self.proc.wait(5)
            raise AssertionError("no ready line: " + self.read_stderr())
        self.ready = json.loads(line)
        self.base = self.ready["base_url"]
        self.client_id = client_id
        self.client_secret = client_secret
        self._token = None

    def read_stderr(self):
        self.stderr.seek(0)
        return self.stderr.read().decode(errors="replace")

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        rc = self.proc.wait(15)
        err = self.read_stderr()
        self.proc.stdout.close()
        self.stderr.close()
        for mark in SANITIZER_MARKS:
            assert mark not in err, err
        assert rc == 0, f"exit {rc}: {err}"

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        if exc[0] is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
            self.proc.stdout.close()
            self.stderr.close()
            return False
        self.stop()
        return False

    # --- the Auth0 side
    def token_response(self, **over):
        fields = {"grant_type": "client_credentials", "client_id": self.client_id,
                  "client_secret": self.client_secret, "audience": self.base + "/api/v2/"}
        fields.update(over)
        fields = {k: v for k, v in fields.items() if v is not None}
        return request("POST", self.base + "/oauth/token",
                       urllib.parse.urlencode(fields).encode(),
                       {"Content-Type": "application/x-www-form-urlencoded"})

    def token(self, scope=None):
        if scope is None and self._token:
            return self._token
        r = self.token_response(scope=scope)
        assert r.status == 200, r.body
        tok = r.json()["access_token"]
        if scope is None:
            self._token = tok
        return tok

    def auth(self, token=None):
        return {"Authorization": "Bearer " + (token or self.token())}

    def api(self, method, path, body=None, headers=None, token=None):
        h = self.auth(token)
        if isinstance(body, (dict, list)):
            body = json.dumps(body).encode()
            h["Content-Type"] = "application/json"
        h.update(headers or {})
        return request(method, self.base + path, body, h)

    def submit(self, users, connection_id=CONN, token=None, **extra):
        data = users if isinstance(users, (bytes, str)) else json.dumps(users)
        fields = [("users", data, "users.json"), ("connection_id", connection_id, None)]
        fields += [(k, v, None) for k, v in extra.items()]
        body, ctype = multipart(fields)
        return self.api("POST", "/api/v2/jobs/users-imports", body, {"Content-Type": ctype},
                        token=token)

    def wait_job(self, job_id, timeout=10, token=None):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            r = self.api("GET", f"/api/v2/jobs/{job_id}", token=token)
            if r.status == 200 and r.json()["status"] in ("completed", "failed"):
                return r.json()
            if r.status == 429:
                time.sleep(0.05)
                continue
            assert r.status == 200, (r.status, r.body)
            time.sleep(0.02)
        raise AssertionError(f"job {job_id} did not finish")

    def import_users(self, users, **extra):
        r = self.submit(users, **extra)
        assert r.status == 202, (r.status, r.body)
        return self.wait_job(r.json()["id"])

    # --- the admin side
    def admin(self, method, what, body=None):
        data = json.dumps(body).encode() if body is not None else None
        r = request(method, self.base + "/__sandbox/" + what, data,
                    {"Content-Type": "application/json"} if data else {})
        assert r.status == 200, (what, r.status, r.body)
        return r.json()

    def stats(self):
        return self.admin("GET", "stats")

    def users(self):
        return self.admin("GET", "users")["users"]


def gunzip(data):
    return gzip.decompress(data).decode()
