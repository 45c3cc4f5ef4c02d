"""The control-API token: 401 without or with a wrong token, /healthz stays
open, and a non-loopback listen address needs a token (exit 2)."""
import os
import tempfile
import unittest

from harness import Daemon, run_to_exit


class ApiAuth(unittest.TestCase):
    def test_token(self):
        with Daemon(token="t0ken-value") as d:
            for tok in (None, "wrong", "t0ken-valu", "t0ken-value2"):
                r = d.get("/v1/status", token=tok)
                self.assertEqual(r.status, 401, tok)
                self.assertEqual(r.header("content-type"), "application/problem+json")
                self.assertEqual(r.json()["type"], "/problems/unauthorized")
                self.assertEqual(r.header("www-authenticate"), "Bearer")
                self.assertNotIn("t0ken-value", r.text)
            self.assertEqual(d.get("/healthz", token=None).status, 200)
            self.assertEqual(d.get("/v1/status").status, 200)
            self.assertEqual(d.get("/metrics", token=None).status, 401)
            self.assertEqual(d.get("/metrics").status, 200)
            # unknown paths are 404 with or without the token
            self.assertEqual(d.get("/nope", token=None).status, 404)
        self.assertNotIn("t0ken-value", d.stderr())

    def test_token_file(self):
        with tempfile.NamedTemporaryFile("w", suffix=".token", delete=False) as f:
            f.write("from-a-file\n")
        try:
            with Daemon(env={"IMPORTD_API_TOKEN_FILE": f.name}, token="from-a-file") as d:
                self.assertEqual(d.get("/v1/status").status, 200)
                self.assertEqual(d.get("/v1/status", token="x").status, 401)
        finally:
            os.unlink(f.name)

    def test_non_loopback_needs_token(self):
        code, err = run_to_exit(["--listen", "0.0.0.0:0", "--state-dir", "/nonexistent/never"])
        self.assertEqual(code, 2, err)
        self.assertIn("token", err)
        self.assertEqual(len(err.strip().splitlines()), 1, err)
        # With a token it starts.
        with Daemon(listen="0.0.0.0:0", token="tok", ready=False) as d:
            d.address = "127.0.0.1:%d" % d.port
            self.assertEqual(d.get("/readyz").status, 200)


if __name__ == "__main__":
    unittest.main()
