"""End-to-end harness: start the real auth0-importd (and auth0-sandbox) as a
black box, talk to it over HTTP, stop it and check how it ended.

Python standard library only. Typical use:

    from harness import Daemon

    with Daemon() as d:                      # own temp state dir, 127.0.0.1:0
        r = d.get("/healthz")
        assert r.status == 200 and r.text == "ok\\n"
        r = d.get("/nope")
        assert r.json()["type"] == "/problems/not-found"
    # leaving the block: SIGTERM, exit 0 within the timeout, stderr free of
    # sanitizer reports (AssertionError otherwise)

    code, err = run_to_exit(["--listen", "0.0.0.0:0"])   # exits by itself
    assert code == 2

Knobs: Daemon(args=[...], env={...}, config="ini text" | None, token="..."
(sets IMPORTD_API_TOKEN and sends it), listen="127.0.0.1:0" or "unix:..."
or None (no --listen), state_dir=path (shared between instances), ready=False
(do not wait for /readyz), notify_socket=path).

Binaries come from IMPORTD_BIN and SANDBOX_BIN (set by meson).
"""

import http.client
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import uuid

SANITIZER_MARKERS = ("ERROR: AddressSanitizer", "runtime error:", "LeakSanitizer")
# Text ("info  api: listening on http://…") and JSON log lines alike.
LISTEN_RE = re.compile(r"listening on (http://[^\s\"]+|unix:[^\s\"]+)")
START_TIMEOUT = float(os.environ.get("E2E_START_TIMEOUT", "20"))


def importd_bin():
    return os.environ.get("IMPORTD_BIN", "auth0-importd")


def clean_env(extra=None, home=None):
    """The environment a daemon under test gets: nothing of ours leaks in
    (no AUTH0_*, IMPORTD_*, NOTIFY_SOCKET, JOURNAL_STREAM)."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("AUTH0_", "IMPORTD_")) and k not in
           ("NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID", "JOURNAL_STREAM",
            "STATE_DIRECTORY", "XDG_STATE_HOME")}
    if home:
        env["HOME"] = home
    # Sanitizer builds: report, do not hang on a leak in a child.
    env.setdefault("ASAN_OPTIONS", "detect_leaks=1:abort_on_error=1")
    env.setdefault("UBSAN_OPTIONS", "halt_on_error=1:print_stacktrace=1")
    if extra:
        for k, v in extra.items():
            if v is None:
                env.pop(k, None)
            else:
                env[k] = v
    return env


def check_sanitizers(text):
    for marker in SANITIZER_MARKERS:
        assert marker not in text, "sanitizer report in stderr:\n" + text[-4000:]


def wait_for(predicate, timeout, interval=0.02, what="condition"):
    """Polls predicate() until it returns a true value; returns it."""
    deadline = time.monotonic() + timeout
    while True:
        v = predicate()
        if v:
            return v
        if time.monotonic() > deadline:
            raise AssertionError("timed out waiting for " + what)
        time.sleep(interval)


class Response:
    def __init__(self, status, headers, body):
        self.status = status
        self.headers = headers          # dict, lower-case names
        self.body = body                # bytes

    @property
    def text(self):
        return self.body.decode("utf-8", "replace")

    def json(self):
        return json.loads(self.body)

    def header(self, name):
        return self.headers.get(name.lower())

    def __repr__(self):
        return "<Response %d %r>" % (self.status, self.body[:200])


class UnixHTTPConnection(http.client.HTTPConnection):
    def __init__(self, path, timeout=10):
        super().__init__("localhost", timeout=timeout)
        self.unix_path = path

    def connect(self):
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(self.timeout)
        s.connect(self.unix_path)
        self.sock = s


def http_request(address, method, path, body=None, headers=None, timeout=10):
    """address: "127.0.0.1:PORT", "[::1]:PORT" or "unix:/path"."""
    if address.startswith("unix:"):
        conn = UnixHTTPConnection(address[5:], timeout=timeout)
    else:
        host, _, port = address.rpartition(":")
        conn = http.client.HTTPConnection(host.strip("[]"), int(port), timeout=timeout)
    try:
        if isinstance(body, (dict, list)):
            body = json.dumps(body).encode()
            headers = dict(headers or {})
            headers.setdefault("Content-Type", "application/json")
        elif isinstance(body, str):
            body = body.encode()
        conn.request(method, path, body=body, headers=headers or {})
        r = conn.getresponse()
        data = r.read()
        return Response(r.status, {k.lower(): v for k, v in r.getheaders()}, data)
    finally:
        conn.close()


def multipart(fields=None, files=None):
    """(body, content_type) for multipart/form-data. files: {name: (filename,
    bytes)}."""
    boundary = "----importd" + uuid.uuid4().hex
    out = []
    for k, v in (fields or {}).items():
        out.append(("--%s\r\nContent-Disposition: form-data; name=\"%s\"\r\n\r\n%s\r\n"
                    % (boundary, k, v)).encode())
    for k, (fn, data) in (files or {}).items():
        out.append(("--%s\r\nContent-Disposition: form-data; name=\"%s\"; filename=\"%s\"\r\n"
                    "Content-Type: application/octet-stream\r\n\r\n" % (boundary, k, fn)).encode())
        out.append(data)
        out.append(b"\r\n")
    out.append(("--%s--\r\n" % boundary).encode())
    return b"".join(out), "multipart/form-data; boundary=" + boundary


class Daemon:
    def __init__(self, args=(), env=None, config=None, token=None, listen="127.0.0.1:0",
                 state_dir=None, ready=True, notify_socket=None, binary=None):
        self.tmp = tempfile.mkdtemp(prefix="importd-e2e-")
        self.state_dir = state_dir or os.path.join(self.tmp, "state")
        self.token = token
        self.config_path = None
        self.args = [binary or importd_bin()]
        if config is not None:
            self.config_path = os.path.join(self.tmp, "importd.conf")
            with open(self.config_path, "w") as f:
                f.write(config)
            self.args += ["--config", self.config_path]
        if listen:
            self.args += ["--listen", listen]
        self.args += ["--state-dir", self.state_dir]
        self.args += list(args)
        extra = dict(env or {})
        if token is not None and "IMPORTD_API_TOKEN_FILE" not in extra:
            extra.setdefault("IMPORTD_API_TOKEN", token)
        if notify_socket:
            extra["NOTIFY_SOCKET"] = notify_socket
        self.env = clean_env(extra, home=self.tmp)
        self.wait_ready = ready
        self.proc = None
        self.address = None
        self.returncode = None
        self.stderr_path = os.path.join(self.tmp, "stderr.log")
        self.stdout_path = os.path.join(self.tmp, "stdout.log")

    # -- lifecycle --------------------------------------------------------

    def start(self):
        self._err = open(self.stderr_path, "wb")
        self._out = open(self.stdout_path, "wb")
        self.proc = subprocess.Popen(self.args, env=self.env, stdout=self._out, stderr=self._err,
                                     stdin=subprocess.DEVNULL)
        self.address = wait_for(self._bound_address, START_TIMEOUT, what="the listening line")
        if self.wait_ready:
            wait_for(self._ready, START_TIMEOUT, what="/readyz")
        return self

    def _bound_address(self):
        if self.proc.poll() is not None:
            raise AssertionError("daemon exited with %d before listening:\n%s"
                                 % (self.proc.returncode, self.stderr()))
        m = LISTEN_RE.search(self.stderr())
        if not m:
            return None
        a = m.group(1)
        return a[len("http://"):] if a.startswith("http://") else a

    def _ready(self):
        try:
            return self.get("/readyz", timeout=2).status == 200
        except OSError:
            return False

    @property
    def port(self):
        return int(self.address.rpartition(":")[2])

    @property
    def base_url(self):
        return "http://" + self.address

    def stderr(self):
        if getattr(self, "_final_stderr", None) is not None:
            return self._final_stderr
        with open(self.stderr_path, "rb") as f:
            return f.read().decode("utf-8", "replace")

    def wait_exit(self, timeout=10):
        try:
            self.returncode = self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise AssertionError("daemon did not exit within %ss:\n%s" % (timeout, self.stderr()))
        return self.returncode

    def signal(self, sig):
        self.proc.send_signal(sig)

    def stop(self, timeout=10, expect=0):
        """SIGTERM; asserts the exit status and a clean stderr."""
        if self.proc is None or self.proc.poll() is not None:
            code = self.proc.returncode if self.proc else None
        else:
            self.proc.send_signal(signal.SIGTERM)
            code = self.wait_exit(timeout)
        self._close_files()
        check_sanitizers(self.stderr())
        if expect is not None:
            assert code == expect, "exit %r, expected %r:\n%s" % (code, expect, self.stderr())
        return code

    def kill(self):
        """SIGKILL: a crash, nothing runs in the daemon."""
        self.proc.kill()
        self.returncode = self.proc.wait()
        self._close_files()
        return self.returncode

    def _close_files(self):
        for f in (getattr(self, "_err", None), getattr(self, "_out", None)):
            if f and not f.closed:
                f.close()

    def cleanup(self):
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self._close_files()
        if os.path.exists(self.stderr_path):
            self._final_stderr = self.stderr()
        shutil.rmtree(self.tmp, ignore_errors=True)

    def __enter__(self):
        try:
            return self.start()
        except BaseException:
            self.cleanup()
            raise

    def __exit__(self, exc_type, exc, tb):
        try:
            if exc_type is None:
                self.stop()
        finally:
            self.cleanup()
        return False

    # -- HTTP -------------------------------------------------------------

    def request(self, method, path, body=None, headers=None, token=..., timeout=10):
        """token=... uses the daemon's token; None sends none; a string
        sends that one."""
        headers = dict(headers or {})
        tok = self.token if token is ... else token
        if tok is not None:
            headers.setdefault("Authorization", "Bearer " + tok)
        return http_request(self.address, method, path, body, headers, timeout)

    def get(self, path, **kw):
        return self.request("GET", path, **kw)

    def post(self, path, body=None, **kw):
        return self.request("POST", path, body, **kw)

    def delete(self, path, **kw):
        return self.request("DELETE", path, **kw)

    def post_multipart(self, path, fields=None, files=None, **kw):
        body, ctype = multipart(fields, files)
        headers = dict(kw.pop("headers", None) or {})
        headers["Content-Type"] = ctype
        return self.request("POST", path, body, headers=headers, **kw)


def run_to_exit(args, env=None, timeout=10, home=None):
    """Runs the daemon with args until it exits by itself: (code, stderr)."""
    tmp = tempfile.mkdtemp(prefix="importd-e2e-")
    try:
        p = subprocess.run([importd_bin()] + list(args), env=clean_env(env, home=home or tmp),
                           stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, timeout=timeout)
        err = p.stderr.decode("utf-8", "replace")
        check_sanitizers(err)
        return p.returncode, err
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


class Sandbox:
    """auth0-sandbox from SANDBOX_BIN on a free port; .info is its startup
    JSON line (base_url, client_id, client_secret, connections)."""

    def __init__(self, args=("--rate", "20", "--burst", "20", "--ms-per-user", "0.1"), env=None):
        self.args = [os.environ["SANDBOX_BIN"]] + list(args)
        self.tmp = tempfile.mkdtemp(prefix="sandbox-e2e-")
        self.env = clean_env(env, home=self.tmp)
        self.proc = None
        self.info = None
        self.stderr_path = os.path.join(self.tmp, "stderr.log")

    def start(self):
        self._err = open(self.stderr_path, "wb")
        self.proc = subprocess.Popen(self.args, env=self.env, stdout=subprocess.PIPE,
                                     stderr=self._err, stdin=subprocess.DEVNULL)
        line = self.proc.stdout.readline()
        if not line:
            raise AssertionError("sandbox exited before its JSON line:\n" + self.stderr())
        self.info = json.loads(line)
        return self

    @property
    def base_url(self):
        return self.info["base_url"]

    @property
    def address(self):
        return self.base_url[len("http://"):]

    def tenant_env(self):
        """AUTH0_* variables pointing tenant 'default' at this sandbox."""
        return {"AUTH0_DOMAIN": self.base_url, "AUTH0_CLIENT_ID": self.info["client_id"],
                "AUTH0_CLIENT_SECRET": self.info["client_secret"]}

    def admin(self, method, path, body=None):
        return http_request(self.address, method, "/__sandbox/" + path.lstrip("/"), body)

    def stderr(self):
        with open(self.stderr_path, "rb") as f:
            return f.read().decode("utf-8", "replace")

    def stop(self, timeout=10):
        self.proc.send_signal(signal.SIGTERM)
        code = self.proc.wait(timeout=timeout)
        self.proc.stdout.close()
        self._err.close()
        check_sanitizers(self.stderr())
        assert code == 0, "sandbox exit %r:\n%s" % (code, self.stderr())

    def __enter__(self):
        return self.start()

    def __exit__(self, exc_type, exc, tb):
        try:
            if exc_type is None:
                self.stop()
        finally:
            if self.proc and self.proc.poll() is None:
                self.proc.kill()
                self.proc.wait()
            shutil.rmtree(self.tmp, ignore_errors=True)
        return False
