"""auth0-importd --sandbox through the real binary: the emulator starts as a
child, becomes tenant "default" whatever AUTH0_* say (with a warning), keeps
its state dir emptied at start, is restarted if it dies, and stops with the
daemon."""
import json
import os
import signal
import stat
import tempfile
import unittest

from harness import Daemon, http_request, run_to_exit, wait_for

FAST = {"IMPORTD_SANDBOX_ARGS": "--rate 20 --burst 20 --ms-per-user 0.1"}


def children(pid):
    out = []
    for tid in os.listdir(f"/proc/{pid}/task"):
        with open(f"/proc/{pid}/task/{tid}/children") as f:
            out += [int(x) for x in f.read().split()]
    return out


def emulator_answers(base):
    try:
        return http_request(base[len("http://"):], "GET", "/__sandbox/stats", timeout=2).status == 200
    except OSError:
        return False


class SandboxFlag(unittest.TestCase):
    def test_emulator_is_tenant_default(self):
        env = dict(FAST, AUTH0_DOMAIN="example.eu.auth0.com", AUTH0_CLIENT_ID="real-client",
                   AUTH0_CLIENT_SECRET="real-secret-value")
        d = Daemon(args=["--sandbox"], env=env)
        sdir = os.path.join(d.state_dir, "sandbox")
        os.makedirs(sdir)
        with open(os.path.join(sdir, "stale"), "w") as f:
            f.write("left over")
        with d:
            status = d.get("/v1/status").json()
            self.assertTrue(status["sandbox"])
            [tenant] = [t for t in status["tenants"] if t["name"] == "default"]
            base = tenant["base_url"]
            self.assertRegex(base, r"^http://127\.0\.0\.1:\d+$")
            self.assertNotEqual(base, d.base_url)
            self.assertIsNone(tenant["audience"])
            self.assertTrue(tenant["credentials_configured"])
            self.assertNotIn("real-secret-value", json.dumps(status))
            self.assertTrue(emulator_answers(base))
            # its state dir was emptied at start, and is private
            self.assertEqual(os.listdir(sdir), [])
            self.assertEqual(stat.S_IMODE(os.stat(sdir).st_mode), 0o700)
            text = d.stderr()
            self.assertIn("AUTH0_DOMAIN", text)
            self.assertIn("AUTH0_CLIENT_SECRET", text)
            self.assertNotIn("real-secret-value", text)

            # it dies: the daemon restarts it on the same base URL
            [child] = children(d.proc.pid)
            os.kill(child, signal.SIGKILL)
            wait_for(lambda: children(d.proc.pid) not in ([], [child]) and emulator_answers(base),
                     15, what="the emulator's restart")
            self.assertIn("restarting", d.stderr())
            self.assertEqual(d.get("/v1/status").json()["tenants"][0]["base_url"], base)
        # the daemon stopped with exit 0 (checked by Daemon), and took the emulator along
        self.assertFalse(emulator_answers(base))

    def test_emulator_gets_none_of_the_daemons_secrets(self):
        env = dict(FAST, AUTH0_DOMAIN="example.eu.auth0.com", AUTH0_CLIENT_ID="real-client",
                   AUTH0_CLIENT_SECRET="supersecret")
        with Daemon(args=["--sandbox"], env=env, token="api-token-supersecret") as d:
            self.assertEqual(d.get("/v1/status").status, 200)
            [child] = children(d.proc.pid)
            with open(f"/proc/{child}/environ", "rb") as f:
                environ = f.read().split(b"\0")
            names = [kv.split(b"=", 1)[0] for kv in environ if kv]
            self.assertFalse([n for n in names if n.startswith((b"AUTH0_", b"IMPORTD_"))], names)
            self.assertNotIn(b"supersecret", b"\0".join(environ))
            # what it does need: the client secret the daemon chose for it
            self.assertIn(b"SANDBOX_CLIENT_SECRET", names)
            self.assertIn(b"PATH", names)

    def test_config_tenant_is_ignored_and_reload_keeps_the_emulator(self):
        config = ("[tenant.default]\ndomain = real-tenant.eu.auth0.com\nclient_id = abc\n"
                  "client_secret = config-secret-value\n"
                  "[tenant.source]\ndomain = old-tenant.eu.auth0.com\n")
        with Daemon(args=["--sandbox"], env=FAST, config=config) as d:
            tenants = {t["name"]: t for t in d.get("/v1/status").json()["tenants"]}
            base = tenants["default"]["base_url"]
            self.assertTrue(base.startswith("http://127.0.0.1:"))
            self.assertEqual(tenants["source"]["base_url"], "https://old-tenant.eu.auth0.com")
            self.assertIn("[tenant.default] of " + d.config_path, d.stderr())
            d.signal(signal.SIGHUP)
            wait_for(lambda: "configuration reloaded" in d.stderr(), 10, what="the reload")
            tenants = {t["name"]: t for t in d.get("/v1/status").json()["tenants"]}
            self.assertEqual(tenants["default"]["base_url"], base)
            self.assertNotIn("config-secret-value", d.stderr())

    def test_an_emulator_that_cannot_start_fails_clearly(self):
        with tempfile.TemporaryDirectory() as state:
            code, err = run_to_exit(["--sandbox", "--listen", "127.0.0.1:0", "--state-dir", state],
                                    env={"SANDBOX_BIN": "/bin/false"}, timeout=20)
        self.assertEqual(code, 1, err)
        self.assertIn("/bin/false", err)
        self.assertIn("before it was ready", err)


if __name__ == "__main__":
    unittest.main()
