"""auth0-sandbox helpers for the e2e tests, on top of harness.Sandbox:
a started emulator with known credentials, Auth0-side helpers (token,
submit an import, wait for a job) and admin helpers (stats, users)."""
import gzip
import json
import os
import shutil
import unittest
import urllib.parse

import harness

FAST = ["--rate", "20", "--burst", "20", "--ms-per-user", "0.1"]
# For tests about answers rather than limits: the bucket never runs dry.
FASTER = ["--rate", "1000", "--burst", "1000", "--ms-per-user", "0.1"]
CONN = "con_SandboxUsers0001"
SANDBOX_BIN = os.environ.get("SANDBOX_BIN", "auth0-sandbox")


def request(method, url, body=None, headers=None, timeout=10):
    """Any http:// URL (an export's location link, say)."""
    u = urllib.parse.urlsplit(url)
    path = u.path + ("?" + u.query if u.query else "")
    return harness.http_request(u.netloc, method, path, body, headers, timeout)


def multipart(fields, boundary="sbxBoundary7MA4YWxkTrZu0gW"):
    """fields: list of (name, value bytes/str, filename or None), in order
    and byte-exact (the 413 boundary test counts every byte)."""
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


class Sandbox(harness.Sandbox):
    """Started on construction; usable with `with` or stop()."""

    def __init__(self, args=None, client_id="test-client", client_secret="test-secret"):
        super().__init__(args=["--client-id", client_id, "--client-secret", client_secret]
                         + (FAST if args is None else list(args)))
        self.client_id = client_id
        self.client_secret = client_secret
        self._token = None
        self.start()

    @property
    def ready(self):
        return self.info

    @property
    def base(self):
        return self.base_url

    def __enter__(self):
        return self

    def stop(self, timeout=10):
        try:
            super().stop(timeout)
        finally:
            shutil.rmtree(self.tmp, ignore_errors=True)

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
        def done():
            r = self.api("GET", f"/api/v2/jobs/{job_id}", token=token)
            if r.status == 429:
                return None
            assert r.status == 200, (r.status, r.body)
            return r.json() if r.json()["status"] in ("completed", "failed") else None
        return harness.wait_for(done, timeout, what=f"job {job_id}")

    def import_users(self, users, **extra):
        r = self.submit(users, **extra)
        assert r.status == 202, (r.status, r.body)
        return self.wait_job(r.json()["id"])

    # --- the admin side
    def admin(self, method, what, body=None):
        r = super().admin(method, what, body)
        assert r.status == 200, (what, r.status, r.body)
        return r.json()

    def stats(self):
        return self.admin("GET", "stats")

    def users(self):
        return self.admin("GET", "users")["users"]


class SharedSandbox(unittest.TestCase):
    """One emulator (FASTER) for the whole class, reset before each test
    (tokens survive a reset)."""

    @classmethod
    def setUpClass(cls):
        cls.s = Sandbox(FASTER)

    @classmethod
    def tearDownClass(cls):
        cls.s.stop()

    def setUp(self):
        self.s.admin("POST", "reset", {})


def gunzip(data):
    return gzip.decompress(data).decode()
