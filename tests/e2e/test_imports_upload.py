"""POST /v1/imports in both forms and every answer API.md lists, plus the
reads of an import: GET one, list with paging, /errors, /failed-users, and
DELETE. Runs against the real daemon (also in the sanitizer build)."""
import glob
import json
import os
import signal
import sys
import threading
import time
import unittest

from imports_helpers import (CONNECTION, QUEUED, Daemon, check_invariant, gz, post_form, post_raw,
                             user, users_array, users_ndjson)


class ImportsUpload(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.d = Daemon(extra_args=["--max-upload-bytes", "300000"],
                       env={"IMPORTD_MAX_USERS": "500"}).start()

    @classmethod
    def tearDownClass(cls):
        try:
            cls.d.stop()
        finally:
            cls.d.cleanup()

    def test_multipart_json_array_queued(self):
        status, hdrs, o = post_form(self.d, users_array(30), {"external_id": "batch-1"})
        self.assertEqual(status, 202, o)
        self.assertIn(o["state"], QUEUED)
        self.assertTrue(o["id"].startswith("imp_") and len(o["id"]) == 20)
        self.assertEqual(hdrs["location"], "/v1/imports/" + o["id"])
        self.assertEqual(o["users"]["total"], 30)
        self.assertEqual(o["users"]["pending"], 30)
        self.assertEqual(o["chunks"]["total"], 1)
        self.assertEqual(o["external_id"], "batch-1")
        self.assertEqual(o["jobs"], [])
        check_invariant(o)
        status, jobs = self.d.get_json("/v1/imports/%s/jobs" % o["id"])
        self.assertEqual(status, 200, jobs)
        self.assertEqual(jobs, {"jobs": [], "next_cursor": None})
        status, again = self.d.get_json("/v1/imports/" + o["id"])
        self.assertEqual(status, 200)
        self.assertIn(again["state"], QUEUED)
        self.assertEqual(again["connection_id"], CONNECTION)

    def test_raw_ndjson_and_gzip(self):
        status, _, o = post_raw(self.d, users_ndjson(12), ctype="application/x-ndjson")
        self.assertEqual(status, 202, o)
        self.assertEqual(o["users"]["total"], 12)
        status, _, o = post_raw(self.d, gz(users_array(7)), ctype="application/octet-stream")
        self.assertEqual(status, 202, o)
        self.assertEqual(o["users"]["total"], 7)
        status, _, o = post_form(self.d, gz(users_ndjson(5)), filename="users.ndjson.gz")
        self.assertEqual(status, 202, o)
        self.assertEqual(o["users"]["total"], 5)

    def test_wait_zero_answers_validating(self):
        status, _, o = post_raw(self.d, users_array(10), query="wait=0")
        self.assertEqual(status, 202, o)
        self.assertIn(o["state"], ("validating",) + QUEUED)
        done = self.d.wait_state(o["id"], QUEUED)
        check_invariant(done)

    def invalid_file(self):
        users = [user(0), {"email": "not-an-email", "emial": "x"}, user(2),
                 {"email": "c@example.com", "user_id": "auth0|abc"}, user(4)]
        return json.dumps(users).encode()

    def test_invalid_rejected_422_and_errors(self):
        status, hdrs, p = post_form(self.d, self.invalid_file(), {"max_errors": "1"})
        self.assertEqual(status, 422, p)
        self.assertEqual(hdrs["content-type"], "application/problem+json")
        self.assertEqual(p["type"], "/problems/invalid-users")
        self.assertEqual(p["errors_total"], 2)
        self.assertTrue(p["truncated"])
        self.assertTrue(all(e["index"] == 1 for e in p["errors"]), p["errors"])
        codes = {e["code"] for e in p["errors"]}
        self.assertIn("UNKNOWN_PROPERTY", codes)
        self.assertIn("warnings", p)
        imp = hdrs["location"].rsplit("/", 1)[1]
        status, o = self.d.get_json("/v1/imports/" + imp)
        self.assertEqual(o["state"], "rejected")
        self.assertEqual(o["users"]["invalid"], 2)
        self.assertEqual(o["users"]["not_submitted"], 3)
        check_invariant(o)

        status, e = self.d.get_json("/v1/imports/%s/errors" % imp)
        self.assertEqual(status, 200)
        self.assertEqual([x["index"] for x in e["errors"]], [1, 3])
        self.assertEqual(e["errors"][0]["source"], "validation")
        self.assertEqual(e["errors"][1]["user"], {"email": "c@example.com", "user_id": "auth0|abc"})
        hint = [p for p in e["errors"][0]["errors"] if p["code"] == "UNKNOWN_PROPERTY"][0]
        self.assertIn("email", hint["hint"])

        status, hdrs, data = self.d.call("GET", "/v1/imports/%s/errors?format=ndjson" % imp)
        self.assertEqual(status, 200)
        lines = [json.loads(x) for x in data.decode().splitlines()]
        self.assertEqual([x["index"] for x in lines], [1, 3])

        status, w = self.d.get_json("/v1/imports/%s/errors?severity=warning" % imp)
        self.assertEqual(status, 200)
        self.assertEqual(w, {"import_id": imp, "errors": []})

        # the failed users come back byte for byte (whitespace aside), ready to fix
        status, hdrs, data = self.d.call("GET", "/v1/imports/%s/failed-users" % imp)
        self.assertEqual(status, 200, data)
        back = json.loads(data)
        self.assertEqual(back, [{"email": "not-an-email", "emial": "x"},
                                {"email": "c@example.com", "user_id": "auth0|abc"}])

    def test_skip_invalid_queues_the_rest(self):
        status, _, o = post_form(self.d, self.invalid_file(), {"on_invalid": "skip"})
        self.assertEqual(status, 202, o)
        self.assertIn(o["state"], QUEUED)
        self.assertEqual(o["users"]["invalid"], 2)
        self.assertEqual(o["users"]["pending"], 3)
        check_invariant(o)

    def test_dry_run(self):
        status, _, o = post_form(self.d, users_array(4), {"dry_run": "true"})
        self.assertEqual(status, 200, o)
        self.assertEqual(o["state"], "validated")
        self.assertEqual(o["users"]["not_submitted"], 4)
        check_invariant(o)
        status, _, p = post_form(self.d, self.invalid_file(), {"dry_run": "true"})
        self.assertEqual(status, 422, p)
        self.assertEqual(p["errors_total"], 2)

    def test_bad_files(self):
        body = b'[{"email": "a@example.com"},\n  {"email" "b@example.com"}]'
        status, _, p = post_raw(self.d, body)
        self.assertEqual(status, 400, p)
        self.assertEqual(p["type"], "/problems/malformed-file")
        self.assertEqual(p["line"], 2)
        self.assertGreater(p["column"], 1)
        self.assertIn("offset", p)
        status, _, p = post_raw(self.d, b"[]")
        self.assertEqual(status, 400, p)
        self.assertEqual(p["type"], "/problems/empty-file")
        status, _, p = post_raw(self.d, b"")
        self.assertEqual(status, 400, p)
        self.assertEqual(p["type"], "/problems/empty-file")
        status, _, p = post_raw(self.d, b'"users"')
        self.assertEqual(status, 400, p)
        self.assertEqual(p["type"], "/problems/not-an-array")

    def test_limits(self):
        status, _, p = post_raw(self.d, b"[" + b" " * 400000 + b"]")
        self.assertEqual(status, 413, p)
        self.assertEqual(p["type"], "/problems/upload-too-large")
        status, _, p = post_raw(self.d, users_ndjson(501))
        self.assertEqual(status, 413, p)
        self.assertEqual(p["type"], "/problems/too-many-users")
        # nothing is left behind in the spool
        spool = os.path.join(self.d.state_dir, "spool")
        self.assertEqual([f for f in os.listdir(spool) if f.endswith(".part")], [])

    def test_bad_fields(self):
        status, _, p = post_raw(self.d, users_array(1), query="tenant=nope")
        self.assertEqual(status, 400, p)
        self.assertEqual(p["type"], "/problems/unknown-tenant")
        for q in ("upsert=maybe", "on_invalid=ignore", "max_errors=100001", "wait=-1",
                  "notify_url=http://example.com/hook"):
            status, _, p = post_raw(self.d, users_array(1), query=q)
            self.assertEqual(status, 400, (q, p))
            self.assertEqual(p["type"], "/problems/bad-field")
        status, hdrs, data = self.d.call(
            "POST", "/v1/imports", body=users_array(1), headers={"Content-Type": "application/json"})
        self.assertEqual(status, 400)
        self.assertIn("connection_id", json.loads(data)["detail"])

    def test_idempotency_key(self):
        body = users_array(3, start=100)
        h = {"Idempotency-Key": "e2e-key-1"}
        s1, _, first = post_raw(self.d, body, headers=h)
        self.assertEqual(s1, 202, first)
        s2, hdrs, again = post_raw(self.d, body, headers=h)
        self.assertEqual(s2, 202, again)
        self.assertEqual(again["id"], first["id"])
        s3, _, p = post_raw(self.d, users_array(4, start=100), headers=h)
        self.assertEqual(s3, 409, p)
        self.assertEqual(p["type"], "/problems/conflict")
        status, lst = self.d.get_json("/v1/imports?limit=500")
        self.assertEqual(sum(1 for i in lst["imports"] if i["id"] == first["id"]), 1)

    def test_idempotency_key_covers_the_fields(self):
        body = users_array(3, start=150)
        h = {"Idempotency-Key": "e2e-key-fields"}
        s1, _, first = post_raw(self.d, body, headers=h)
        self.assertEqual(s1, 202, first)
        # the same request, in the other form and with the defaults spelt
        # out (and another wait, which changes only when the answer comes)
        s2, _, again = post_form(self.d, body, {"upsert": "false", "tenant": "default", "wait": "5"},
                                 headers=h)
        self.assertEqual(s2, 202, again)
        self.assertEqual(again["id"], first["id"])
        # the same file with any field changed is another request
        for fields in ({"upsert": "true"}, {"connection_id": "con_OtherConnection01"},
                       {"external_id": "other"}, {"on_invalid": "skip"}, {"dry_run": "true"},
                       {"max_errors": "5"}, {"send_completion_email": "true"}):
            s3, _, p = post_form(self.d, body, fields, headers=h)
            self.assertEqual(s3, 409, (fields, p))
            self.assertEqual(p["type"], "/problems/conflict")
            self.assertIn(first["id"], p["detail"])
        status, lst = self.d.get_json("/v1/imports?limit=500")
        self.assertEqual(sum(1 for i in lst["imports"] if i["id"] == first["id"]), 1)

    def test_status_shows_queue_depth(self):
        status, _, o = post_raw(self.d, users_array(2, start=400))
        self.assertEqual(status, 202, o)
        status, st = self.d.get_json("/v1/status")
        self.assertEqual(status, 200, st)
        q = st["queue"]
        self.assertEqual(sorted(q["imports"]), ["cancelling", "queued", "running", "validating"])
        self.assertTrue(all(isinstance(v, int) and v >= 0 for v in q["imports"].values()), q)
        # nothing reaches Auth0 here: the import waits, queued or between retries
        self.assertGreaterEqual(q["imports"]["queued"] + q["imports"]["running"], 1, q)
        self.assertIsInstance(q["chunks_queued"], int)
        self.assertFalse(q["capped"])

    def test_list_paging_and_filters(self):
        ids = []
        for n in range(5):
            status, _, o = post_raw(self.d, users_array(1, start=200 + n), query="external_id=page-test")
            self.assertEqual(status, 202, o)
            ids.append(o["id"])
        seen, cursor = [], None
        while True:
            q = "/v1/imports?external_id=page-test&limit=2" + ("&cursor=" + cursor if cursor else "")
            status, page = self.d.get_json(q)
            self.assertEqual(status, 200, page)
            self.assertLessEqual(len(page["imports"]), 2)
            for i in page["imports"]:
                self.assertNotIn("jobs", i)
            seen += [i["id"] for i in page["imports"]]
            cursor = page["next_cursor"]
            if cursor is None:
                break
        self.assertEqual(seen, list(reversed(ids)))
        status, page = self.d.get_json("/v1/imports?state=rejected&limit=500")
        self.assertTrue(all(i["state"] == "rejected" for i in page["imports"]))
        for q in ("limit=0", "limit=501", "state=bogus", "cursor=abc"):
            status, p = self.d.get_json("/v1/imports?" + q)
            self.assertEqual(status, 400, (q, p))

    def test_cancel(self):
        status, _, o = post_raw(self.d, users_array(3, start=300))
        self.assertEqual(status, 202, o)
        status, hdrs, data = self.d.call("DELETE", "/v1/imports/" + o["id"])
        self.assertEqual(status, 202, data)
        c = json.loads(data)
        self.assertIn(c["state"], ("cancelling", "cancelled"))
        if c["state"] == "cancelled":
            self.assertEqual(c["users"]["not_submitted"], 3)
            self.assertEqual(c["chunks"]["cancelled"], 1)
        check_invariant(c)
        if c["state"] == "cancelled":
            status, _, data = self.d.call("DELETE", "/v1/imports/" + o["id"])
            self.assertEqual(status, 200, data)
        status, _, p = post_raw(self.d, users_array(1, start=400), query="dry_run=true")
        status, _, data = self.d.call("DELETE", "/v1/imports/" + p["id"])
        self.assertEqual(status, 409, data)
        status, _, data = self.d.call("DELETE", "/v1/imports/imp_0000000000000000")
        self.assertEqual(status, 404, data)

    def test_metrics(self):
        post_form(self.d, users_array(2, start=500))
        status, _, data = self.d.call("GET", "/metrics")
        self.assertEqual(status, 200)
        text = data.decode()
        self.assertIn('importd_imports{state="queued"}', text)
        self.assertIn('importd_users{outcome="pending"}', text)
        self.assertIn('importd_users{outcome="invalid"}', text)

    def test_not_found(self):
        for path in ("/v1/imports/imp_0000000000000000", "/v1/imports/imp_0000000000000000/errors",
                     "/v1/imports/imp_0000000000000000/failed-users"):
            status, p = self.d.get_json(path)
            self.assertEqual(status, 404, (path, p))


class StopDuringCommit(unittest.TestCase):
    """SIGTERM while a big upload is being made durable (fsync and rename in
    a worker): the request's upload must outlive the connection that the
    stop completes. Exit 0, no sanitizer report."""

    def test_sigterm_while_the_upload_is_committed(self):
        one = b'{"email":"stop@example.com","user_metadata":{"pad":"' + b"x" * 200 + b'"}},'
        body = b"[" + one * 80000 + one[:-1] + b"]"   # ~20 MB
        d = Daemon()
        try:
            d.start()
            outcome = []

            def post():
                try:
                    outcome.append(post_raw(d, body, query="wait=30")[0])
                except Exception as e:  # the stop may close the connection
                    outcome.append(repr(e))

            th = threading.Thread(target=post)
            th.start()

            def spooled():
                # the whole body is in the spool: the commit starts now
                for p in glob.glob(os.path.join(d.state_dir, "spool", "*.part")):
                    try:
                        if os.path.getsize(p) == len(body):
                            return True
                    except OSError:
                        pass
                return bool(glob.glob(os.path.join(d.state_dir, "imports", "*", "upload")))

            deadline = time.monotonic() + 60
            while not spooled():
                self.assertLess(time.monotonic(), deadline, "the upload never spooled")
                time.sleep(0.001)
            d.signal(signal.SIGTERM)
            self.assertEqual(d.wait_exit(30), 0, d.stderr()[-2000:])
            th.join(60)
            self.assertFalse(th.is_alive())
            self.assertEqual(len(outcome), 1)
            d.stop()  # already exited: checks stderr for sanitizer reports
        finally:
            d.cleanup()


if __name__ == "__main__":
    unittest.main(argv=sys.argv[:1], verbosity=2)
