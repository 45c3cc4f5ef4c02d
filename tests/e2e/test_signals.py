"""SIGTERM stops promptly even with a slow client holding a connection;
SIGHUP reloads config and secrets (a bad file keeps the old config, a
listen change needs a restart); READY=1/STOPPING=1 reach NOTIFY_SOCKET;
unix socket listening."""
import os
import signal
import socket
import tempfile
import time
import unittest

from harness import Daemon, wait_for, http_request


class Signals(unittest.TestCase):
    def test_sigterm_with_slow_client(self):
        d = Daemon()
        try:
            d.start()
            slow = socket.create_connection(("127.0.0.1", d.port))
            slow.sendall(b"POST /v1/status HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\nabc")
            # the daemon has the partial request; now stop it
            self.assertEqual(d.get("/healthz").status, 200)
            t0 = time.monotonic()
            d.stop(timeout=5)
            self.assertLess(time.monotonic() - t0, 5)
            slow.close()
        finally:
            d.cleanup()

    def test_sighup_reload(self):
        conf = ("[daemon]\nlisten = 127.0.0.1:0\nlog_level = info\n"
                "[tenant.one]\ndomain = one.auth0.com\n")
        with Daemon(config=conf, listen=None) as d:
            names = [t["name"] for t in d.get("/v1/status").json()["tenants"]]
            self.assertEqual(names, ["one"])
            with open(d.config_path, "w") as f:
                f.write(conf + "[tenant.two]\ndomain = http://127.0.0.1:9\n")
            d.signal(signal.SIGHUP)
            wait_for(lambda: len(d.get("/v1/status").json()["tenants"]) == 2, 5, what="reload")
            # a bad file keeps the old config
            with open(d.config_path, "w") as f:
                f.write("[daemon]\nbogus = 1\n")
            d.signal(signal.SIGHUP)
            wait_for(lambda: "keeping the old config" in d.stderr(), 5, what="reload error")
            self.assertIn(":2:", d.stderr())
            self.assertEqual(len(d.get("/v1/status").json()["tenants"]), 2)
            # listen changes need a restart
            with open(d.config_path, "w") as f:
                f.write("[daemon]\nlisten = 127.0.0.1:1\n")
            d.signal(signal.SIGHUP)
            wait_for(lambda: "needs a restart" in d.stderr(), 5, what="restart notice")
            self.assertEqual(d.get("/healthz").status, 200)
            self.assertEqual(d.get("/v1/status").json()["tenants"], [])

    def test_notify_socket(self):
        with tempfile.TemporaryDirectory() as tmp:
            path = os.path.join(tmp, "notify.sock")
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
            sock.bind(path)
            sock.settimeout(10)
            try:
                d = Daemon(notify_socket=path, env={"WATCHDOG_USEC": "200000"})
                try:
                    d.start()
                    msgs = []
                    while not any("READY=1" in m for m in msgs):
                        msgs.append(sock.recv(4096).decode())
                    # READY only once serving: /readyz answers by now
                    self.assertEqual(d.get("/readyz").status, 200)
                    # the watchdog pings at half of WATCHDOG_USEC
                    while not any("WATCHDOG=1" in m for m in msgs):
                        msgs.append(sock.recv(4096).decode())
                    d.stop()
                    while not any("STOPPING=1" in m for m in msgs):
                        msgs.append(sock.recv(4096).decode())
                finally:
                    d.cleanup()
            finally:
                sock.close()

    def test_unix_socket(self):
        with tempfile.TemporaryDirectory() as tmp:
            path = os.path.join(tmp, "api.sock")
            with Daemon(listen="unix:" + path) as d:
                self.assertEqual(d.address, "unix:" + path)
                r = http_request(d.address, "GET", "/healthz")
                self.assertEqual(r.status, 200)
                self.assertEqual(d.get("/v1/status").status, 200)
            self.assertFalse(os.path.exists(path))


if __name__ == "__main__":
    unittest.main()
