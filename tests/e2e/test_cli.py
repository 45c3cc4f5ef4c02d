"""Command line and config errors exit 2 with one line naming the culprit;
runtime failures exit 1 (locked state dir naming the pid, a store from a
newer version, a port in use)."""
import json
import os
import sqlite3
import socket
import tempfile
import unittest

from harness import Daemon, run_to_exit


class Cli(unittest.TestCase):
    def test_version_help(self):
        code, _ = run_to_exit(["--version"])
        self.assertEqual(code, 0)
        code, _ = run_to_exit(["--help"])
        self.assertEqual(code, 0)

    def test_bad_flags(self):
        for args, needle in ((["--lisen", "x"], "did you mean '--listen'"),
                             (["--max-upload-bytes=12Q"], "--max-upload-bytes"),
                             (["--log-level", "loud"], "loud"),
                             (["--listen"], "needs a value"),
                             (["--listen", "nowhere"], "listen"),
                             (["extra"], "extra")):
            code, err = run_to_exit(args)
            self.assertEqual(code, 2, (args, err))
            self.assertIn(needle, err)
            self.assertEqual(len(err.strip().splitlines()), 1, err)

    def test_bad_config(self):
        with tempfile.TemporaryDirectory() as tmp:
            path = os.path.join(tmp, "bad.conf")
            with open(path, "w") as f:
                f.write("[daemon]\nlisten = 127.0.0.1:0\nmax_uplod_bytes = 1M\n")
            code, err = run_to_exit(["--config", path])
            self.assertEqual(code, 2, err)
            self.assertIn(path + ":3:", err)
            self.assertIn("max_uplod_bytes", err)
            self.assertIn("did you mean 'max_upload_bytes'", err)

            with open(path, "w") as f:
                f.write("[tenant.default]\ndomain = t.auth0.com\nclient_secret_file = nope.secret\n")
            code, err = run_to_exit(["--config", path])
            self.assertEqual(code, 2, err)
            self.assertIn(":3:", err)
            self.assertIn("nope.secret", err)

            code, err = run_to_exit(["--config", os.path.join(tmp, "missing.conf")])
            self.assertEqual(code, 2, err)

            code, err = run_to_exit([], env={"AUTH0_DOMAIN": "http://example.com"})
            self.assertEqual(code, 2, err)
            self.assertIn("loopback", err)

    def test_json_logs(self):
        with Daemon(env={"IMPORTD_LOG_FORMAT": "json"}) as d:
            self.assertEqual(d.get("/healthz").status, 200)
        lines = [json.loads(l) for l in d.stderr().splitlines() if l.strip()]
        self.assertTrue(any(l["subsystem"] == "api" and l["message"].startswith("listening on http://")
                            for l in lines), lines)
        for l in lines:
            self.assertIn(l["level"], ("debug", "info", "warn", "error"))
            self.assertRegex(l["time"], r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")

    def test_locked_state_dir(self):
        with Daemon() as first:
            code, err = run_to_exit(["--listen", "127.0.0.1:0", "--state-dir", first.state_dir])
            self.assertEqual(code, 1, err)
            self.assertIn("pid %d" % first.proc.pid, err)
            self.assertEqual(first.get("/healthz").status, 200)

    def test_newer_store(self):
        with tempfile.TemporaryDirectory() as tmp:
            state = os.path.join(tmp, "state")
            os.mkdir(state, 0o700)
            db = sqlite3.connect(os.path.join(state, "importd.db"))
            db.execute("PRAGMA user_version = 999")
            db.close()
            code, err = run_to_exit(["--listen", "127.0.0.1:0", "--state-dir", state])
            self.assertEqual(code, 1, err)
            self.assertIn("newer", err)

    def test_port_in_use(self):
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        s.listen(1)
        try:
            with tempfile.TemporaryDirectory() as tmp:
                code, err = run_to_exit(["--listen", "127.0.0.1:%d" % s.getsockname()[1],
                                         "--state-dir", os.path.join(tmp, "st")])
                self.assertEqual(code, 1, err)
                self.assertIn("cannot listen", err)
        finally:
            s.close()

    def test_listen_ipv6_loopback(self):
        try:
            probe = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
            probe.bind(("::1", 0))
            probe.close()
        except OSError:
            self.skipTest("this machine has no ::1")
        with Daemon(listen="[::1]:0") as d:
            self.assertTrue(d.address.startswith("[::1]:"), d.address)
            r = d.get("/healthz")
            self.assertEqual(r.status, 200)
            self.assertEqual(d.get("/v1/status").status, 200)


if __name__ == "__main__":
    unittest.main()
