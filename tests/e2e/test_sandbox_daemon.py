"""auth0-importd --sandbox through the real binary: the emulator starts as a
child, becomes tenant "default" whatever AUTH0_* say (with a warning), keeps
its state dir emptied at start, is restarted if it dies, and stops with the
daemon."""
import json
import os
import signal
import socket
import stat
import subprocess
import tempfile
import time
import unittest
import urllib.error
import urllib.request

IMPORTD_BIN = os.environ.get("IMPORTD_BIN", "build/auth0-importd")
SANITIZER_MARKS = ("ERROR: AddressSanitizer", "runtime error:", "LeakSanitizer")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def get(url, timeout=5):
    try:
        with urllib.request.urlopen(url, timeout=timeout) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


def wait_for(pred, timeout=15, what="condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            v = pred()
            if v:
                return v
        except OSError:
            pass
        time.sleep(0.05)
    raise AssertionError("timed out waiting for " + what)


def children(pid):
    out = []
    for tid in os.listdir(f"/proc/{pid}/task"):
        with open(f"/proc/{pid}/task/{tid}/children") as f:
            out += [int(x) for x in f.read().split()]
    return out


class SandboxFlag(unittest.TestCase):
    def start(self, env_extra, state):
        port = free_port()
        env = dict(os.environ)
        env.update(env_extra)
        self.err = tempfile.TemporaryFile()
        self.proc = subprocess.Popen([IMPORTD_BIN, "--sandbox", "--state-dir", state,
                                      "--listen", f"127.0.0.1:{port}"],
                                     stdout=subprocess.DEVNULL, stderr=self.err, env=env)
        return f"http://127.0.0.1:{port}"

    def stderr(self):
        self.err.seek(0)
        return self.err.read().decode(errors="replace")

    def stop(self):
        self.proc.send_signal(signal.SIGTERM)
        rc = self.proc.wait(20)
        text = self.stderr()
        self.err.close()
        for mark in SANITIZER_MARKS:
            self.assertNotIn(mark, text)
        return rc, text

    def test_emulator_is_tenant_default(self):
        with tempfile.TemporaryDirectory() as state:
            os.makedirs(os.path.join(state, "sandbox"))
            with open(os.path.join(state, "sandbox", "stale"), "w") as f:
                f.write("left over")
            api = self.start({"AUTH0_DOMAIN": "example.eu.auth0.com",
                              "AUTH0_CLIENT_ID": "real-client",
                              "AUTH0_CLIENT_SECRET": "real-secret-value",
                              "IMPORTD_SANDBOX_ARGS": "--rate 20 --burst 20 --ms-per-user 0.1"},
                             state)
            try:
                wait_for(lambda: get(api + "/readyz")[0] == 200, what="/readyz")
                status = json.loads(get(api + "/v1/status")[1])
                self.assertTrue(status["sandbox"])
                [tenant] = [t for t in status["tenants"] if t["name"] == "default"]
                base = tenant["base_url"]
                self.assertRegex(base, r"^http://127\.0\.0\.1:\d+$")
                self.assertIsNone(tenant["audience"])
                self.assertNotIn("real-secret-value", json.dumps(status))
                # the emulator answers there, with its admin API
                code, body = get(base + "/__sandbox/stats")
                self.assertEqual(code, 200)
                # its state dir was emptied at start, and is private
                sdir = os.path.join(state, "sandbox")
                self.assertEqual(os.listdir(sdir), [])
                self.assertEqual(stat.S_IMODE(os.stat(sdir).st_mode), 0o700)
                text = self.stderr()
                self.assertIn("AUTH0_DOMAIN", text)
                self.assertIn("AUTH0_CLIENT_SECRET", text)
                self.assertNotIn("real-secret-value", text)

                # it dies: the daemon restarts it on the same base URL
                [child] = children(self.proc.pid)
                os.kill(child, signal.SIGKILL)
                wait_for(lambda: children(self.proc.pid) and children(self.proc.pid) != [child]
                         and get(base + "/__sandbox/stats")[0] == 200, what="restart")
                self.assertIn("restarting", self.stderr())
                self.assertEqual(json.loads(get(api + "/v1/status")[1])["tenants"][0]["base_url"], base)
            finally:
                rc, text = self.stop()
            self.assertEqual(rc, 0, text)
            with self.assertRaises(OSError):
                get(base + "/__sandbox/stats", timeout=2)

    def test_an_emulator_that_cannot_start_fails_clearly(self):
        with tempfile.TemporaryDirectory() as state:
            self.start({"SANDBOX_BIN": "/bin/false"}, state)
            rc = self.proc.wait(20)
            text = self.stderr()
            self.err.close()
            self.assertEqual(rc, 1, text)
            self.assertIn("/bin/false", text)
            self.assertIn("before it was ready", text)


if __name__ == "__main__":
    unittest.main()
