"""notify_url: the daemon POSTs the final import object to the URL an import
names on every entry into a terminal state, retries a failing receiver with
backoff, keeps undelivered notifications across a restart, and refuses
hosts notify_allowed_hosts does not allow. A small HTTP receiver on
loopback plays the client's endpoint. Runs against the real daemon (and the
emulator for a completed import)."""
import http.server
import json
import os
import shutil
import sqlite3
import sys
import tempfile
import threading
import time
import unittest

import harness
from imports_helpers import Daemon, multipart, post_raw, user, users_array
from sandbox_harness import CONN, FAST, Sandbox


class Receiver:
    """Records every POST; a path can be told to answer 500 to its first
    `n` requests (or to every request until told otherwise)."""

    def __init__(self):
        self.posts = []
        self.fail = {}
        self.cond = threading.Condition()
        rec = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self):
                n = int(self.headers.get("Content-Length", "0"))
                body = self.rfile.read(n)
                with rec.cond:
                    left = rec.fail.get(self.path, 0)
                    status = 500 if left else 204
                    if left and left > 0:
                        rec.fail[self.path] = left - 1
                    rec.posts.append({"path": self.path, "headers": dict(self.headers.items()),
                                      "body": body, "status": status, "time": time.monotonic()})
                    rec.cond.notify_all()
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def url(self, path):
        return "http://127.0.0.1:%d%s" % (self.server.server_address[1], path)

    def on(self, path):
        with self.cond:
            return [p for p in self.posts if p["path"] == path]

    def wait(self, path, pred, timeout):
        deadline = time.monotonic() + timeout
        with self.cond:
            while True:
                got = [p for p in self.posts if p["path"] == path]
                if pred(got):
                    return got
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError("receiver: %s never satisfied, got %r" % (path, got))
                self.cond.wait(left)

    def delivered(self, path, timeout=15):
        got = self.wait(path, lambda g: any(p["status"] == 204 for p in g), timeout)
        return got, json.loads(got[-1]["body"])

    def close(self):
        self.server.shutdown()
        self.server.server_close()


def check_post(test, post):
    h = {k.lower(): v for k, v in post["headers"].items()}
    test.assertEqual(h.get("content-type"), "application/json")
    test.assertNotIn("authorization", h)
    test.assertIn("importd-notification", h)
    return h


class Notify(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.rx = Receiver()
        cls.tmp = tempfile.mkdtemp(prefix="importd-notify-")
        cls.state = os.path.join(cls.tmp, "state")
        cls.d = Daemon(state_dir=cls.state).start()

    @classmethod
    def tearDownClass(cls):
        try:
            cls.d.stop()
        finally:
            cls.d.cleanup()
            cls.rx.close()
            shutil.rmtree(cls.tmp, ignore_errors=True)

    def test_rejected_import(self):
        body = json.dumps([{"email": "a@example.com"}, {"email": "nope"}]).encode()
        status, _, p = post_raw(self.d, body, query="notify_url=" + self.rx.url("/rejected"))
        self.assertEqual(status, 422, p)
        got, o = self.rx.delivered("/rejected")
        self.assertEqual(len(got), 1, got)
        check_post(self, got[0])
        self.assertEqual(o["id"], p["import_id"])
        self.assertEqual(o["state"], "rejected")
        self.assertEqual(o["users"]["total"], 2)
        self.assertEqual(o["users"]["invalid"], 1)
        status, same = self.d.get_json("/v1/imports/" + o["id"])
        self.assertEqual(same["state"], o["state"])
        self.assertEqual(same["users"], o["users"])

    def test_dry_run_validated(self):
        status, _, v = post_raw(self.d, users_array(5),
                                query="dry_run=true&notify_url=" + self.rx.url("/dry"))
        self.assertEqual(status, 200, v)
        got, o = self.rx.delivered("/dry")
        self.assertEqual(len(got), 1, got)
        self.assertEqual(o["id"], v["id"])
        self.assertEqual(o["state"], "validated")
        self.assertEqual(o["users"]["total"], 5)
        self.assertEqual(o["options"]["notify_url"], self.rx.url("/dry"))

    def test_cancelled_import(self):
        status, _, q = post_raw(self.d, users_array(5), query="notify_url=" + self.rx.url("/cancel"))
        self.assertEqual(status, 202, q)
        status, _, body = self.d.call("DELETE", "/v1/imports/" + q["id"])
        self.assertIn(status, (200, 202), body)
        got, o = self.rx.delivered("/cancel", timeout=20)
        self.assertEqual(len(got), 1, got)
        self.assertEqual(o["id"], q["id"])
        self.assertEqual(o["state"], "cancelled")
        self.assertEqual(o["users"]["not_submitted"] + o["users"]["failed"], 5, o)

    def test_hosts_not_allowed(self):
        for url in ("http://example.com/hook", "http://127.0.0.1:80@example.com/",
                    "http://user:secret@127.0.0.1/hook", "ftp://127.0.0.1/hook", "not a url"):
            status, _, p = post_raw(self.d, users_array(2), query="notify_url=" + url.replace(" ", "%20"))
            self.assertEqual(status, 400, (url, p))
            self.assertEqual(p["type"], "/problems/bad-field", p)
            self.assertIn("notify_url", p["detail"])

    def test_receiver_failing_twice(self):
        self.rx.fail["/flaky"] = 2
        status, _, p = post_raw(self.d, json.dumps([{"email": "x"}]).encode(),
                                query="notify_url=" + self.rx.url("/flaky"))
        self.assertEqual(status, 422, p)
        got, o = self.rx.delivered("/flaky", timeout=30)
        self.assertEqual([g["status"] for g in got], [500, 500, 204])
        self.assertEqual(o["id"], p["import_id"])
        self.assertEqual(o["state"], "rejected")
        ids = {check_post(self, g)["importd-notification"] for g in got}
        self.assertEqual(len(ids), 1, ids)  # one notification, three attempts
        # Backoff: about 2 s, then about 5 s (±20 %).
        self.assertGreater(got[1]["time"] - got[0]["time"], 1.4)
        self.assertGreater(got[2]["time"] - got[1]["time"], 3.5)


class NotifyAcrossRestart(unittest.TestCase):
    def test_undelivered_survives_restart_and_allowed_hosts(self):
        rx = Receiver()
        tmp = tempfile.mkdtemp(prefix="importd-notify-")
        state = os.path.join(tmp, "state")
        conf = "[daemon]\nnotify_allowed_hosts = localhost\n"
        try:
            rx.fail["/down"] = -1  # 500 until told otherwise
            url = rx.url("/down").replace("127.0.0.1", "localhost")
            with Daemon(state_dir=state, config=conf) as d:
                # The list replaces the loopback default.
                status, _, p = post_raw(d, users_array(2), query="notify_url=" + rx.url("/x"))
                self.assertEqual(status, 400, p)
                status, _, v = post_raw(d, users_array(3), query="dry_run=true&notify_url=" + url)
                self.assertEqual(status, 200, v)
                rx.wait("/down", lambda g: len(g) >= 1, 15)
                metrics = d.get("/metrics").body.decode()
                self.assertIn("\nimportd_notifications_pending 1\n", metrics)
            with rx.cond:
                rx.fail["/down"] = 0
            with Daemon(state_dir=state, config=conf) as d:
                got, o = rx.delivered("/down", timeout=20)
                self.assertEqual(o["id"], v["id"])
                self.assertEqual(o["state"], "validated")
                self.assertEqual(got[-1]["status"], 204)
                ids = {check_post(self, g)["importd-notification"] for g in got}
                self.assertEqual(len(ids), 1, ids)
                # The daemon saw the 2xx and dropped the row.
                harness.wait_for(lambda: "notification of validated delivered" in d.stderr(), 10,
                                 what="the delivery logged")
            db = sqlite3.connect(os.path.join(state, "importd.db"))
            left = db.execute("SELECT count(*) FROM notifications").fetchone()[0]
            db.close()
            self.assertEqual(left, 0)
        finally:
            rx.close()
            shutil.rmtree(tmp, ignore_errors=True)


class NotifyCompleted(unittest.TestCase):
    def test_completed_import(self):
        rx = Receiver()
        try:
            with Sandbox(FAST, client_id="e2e-client", client_secret="e2e-secret") as sb:
                env = {"AUTH0_DOMAIN": sb.base, "AUTH0_CLIENT_ID": "e2e-client",
                       "AUTH0_CLIENT_SECRET": "e2e-secret"}
                with Daemon(env=env) as d:
                    body, ctype = multipart({"connection_id": CONN, "notify_url": rx.url("/done")},
                                            content=json.dumps([user(i) for i in range(50)]).encode())
                    status, _, data = d.call("POST", "/v1/imports", body=body,
                                             headers={"Content-Type": ctype})
                    self.assertEqual(status, 202, data)
                    imp = json.loads(data)["id"]
                    got, o = rx.delivered("/done", timeout=60)
                    self.assertEqual(len(got), 1, got)
                    self.assertEqual(o["id"], imp)
                    self.assertEqual(o["state"], "completed")
                    self.assertEqual(o["users"]["inserted"], 50)
                    self.assertEqual(o["users"]["pending"], 0)
                    self.assertEqual(len(o["jobs"]), 1)
                    self.assertNotIn("e2e-secret", got[0]["body"].decode())
        finally:
            rx.close()


if __name__ == "__main__":
    unittest.main(argv=sys.argv[:1], verbosity=2)
