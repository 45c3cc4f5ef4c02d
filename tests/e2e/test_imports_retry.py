"""POST /v1/imports/{id}/retry through the real daemon and the emulator.

A first daemon takes the imports while its tenant is unreachable; with it
stopped, the store is given the outcome of a run whose submits ran out of
attempts (chunks `failed`, `retryable`: what the pipeline records after
exhausting its retries, which takes minutes of backoff), or of chunks Auth0
rejected for good. A second daemon on the same state dir, with the emulator
as its tenant, is then asked to retry: only the transient failures go back,
every user reaches the emulator exactly once, and what cannot be retried
answers 409 (nothing transient) or 410 (chunk files swept)."""
import json
import os
import shutil
import sqlite3
import sys
import tempfile
import time
import unittest

from imports_helpers import Daemon, check_invariant, multipart, post_raw, user
from sandbox_harness import CONN, FAST, Sandbox


def post_users(d, n, start=0):
    body, ctype = multipart({"connection_id": CONN},
                            content=json.dumps([user(i) for i in range(start, start + n)]).encode())
    status, _, data = d.call("POST", "/v1/imports", body=body, headers={"Content-Type": ctype})
    o = json.loads(data)
    assert status == 202, (status, o)
    return o


class Retry(unittest.TestCase):
    def test_retry_requeues_transient_failures_only(self):
        tmp = tempfile.mkdtemp(prefix="importd-retry-")
        state = os.path.join(tmp, "state")
        env = {"IMPORTD_CHUNK_BYTES": "20000"}
        try:
            # 1. The imports, taken while Auth0 is unreachable.
            d = Daemon(env=env, state_dir=state).start()
            try:
                a = post_users(d, 300)
                b = post_users(d, 20, start=1000)
                c = post_users(d, 20, start=2000)
                status, _, rej = post_raw(d, json.dumps([{"email": "bad"}]).encode(),
                                          query="connection_id=" + CONN)
                self.assertEqual(status, 422, rej)
                self.assertGreaterEqual(a["chunks"]["total"], 3, a)
            finally:
                d.stop()
                d.cleanup()

            # 2. What a run that exhausted its retries leaves (a: chunk 0
            # completed, the others failed for transient reasons; b: the
            # same, chunk files since swept; c: Auth0 rejected its chunk).
            now = int(time.time())
            db = sqlite3.connect(os.path.join(state, "importd.db"))
            with db:
                db.execute("UPDATE chunks SET state = 'failed', retryable = 1, attempts = 8, "
                           "last_error = 'gave up after 8 attempts: connection refused', "
                           "completed_at = ?1, job_id = NULL WHERE import_id IN (?2, ?3)",
                           (now, a["id"], b["id"]))
                db.execute("UPDATE chunks SET state = 'completed', retryable = 0, summary_inserted = users, "
                           "job_id = 'job_earlier', completed_at = ?1 WHERE import_id = ?2 AND chunk_no = 0",
                           (now, a["id"]))
                db.execute("UPDATE chunks SET state = 'failed', retryable = 0, completed_at = ?1, "
                           "last_error = 'Auth0: the users file is invalid' WHERE import_id = ?2",
                           (now, c["id"]))
                db.execute("UPDATE imports SET state = 'completed_with_errors', finished_at = ?1 "
                           "WHERE id = ?2", (now, a["id"]))
                db.execute("UPDATE imports SET state = 'failed', finished_at = ?1 WHERE id IN (?2, ?3)",
                           (now, b["id"], c["id"]))
                chunk0 = db.execute("SELECT users FROM chunks WHERE import_id = ? AND chunk_no = 0",
                                    (a["id"],)).fetchone()[0]
            db.close()
            shutil.rmtree(os.path.join(state, "imports", b["id"], "chunks"))

            # 3. A daemon with the emulator as its tenant.
            with Sandbox(FAST, client_id="e2e-client", client_secret="e2e-secret") as sb:
                d = Daemon(env=dict(env, AUTH0_DOMAIN=sb.base, AUTH0_CLIENT_ID="e2e-client",
                                    AUTH0_CLIENT_SECRET="e2e-secret"), state_dir=state).start()
                try:
                    status, o = d.get_json("/v1/imports/" + a["id"])
                    self.assertEqual(o["state"], "completed_with_errors", o)
                    self.assertEqual(o["users"]["failed"], 300 - chunk0, o)
                    status, hdrs, body = d.call("POST", "/v1/imports/%s/retry" % a["id"])
                    o = json.loads(body)
                    self.assertEqual(status, 202, o)
                    self.assertEqual(hdrs["location"], "/v1/imports/" + a["id"])
                    self.assertEqual(o["state"], "queued", o)
                    self.assertEqual(o["users"]["pending"], 300 - chunk0, o)
                    self.assertEqual(o["users"]["failed"], 0, o)
                    self.assertEqual(o["users"]["inserted"], chunk0, o)
                    self.assertEqual(o["chunks"]["failed"], 0, o)
                    check_invariant(o)
                    # Not again while it runs.
                    status, _, body = d.call("POST", "/v1/imports/%s/retry" % a["id"])
                    self.assertEqual(status, 409, body)
                    o = d.wait_state(a["id"], ("completed", "completed_with_errors", "failed"), timeout=60)
                    self.assertEqual(o["state"], "completed", o)
                    self.assertEqual(o["users"]["inserted"], 300, o)
                    check_invariant(o)
                    s = sb.stats()
                    self.assertEqual(s["users"], 300 - chunk0, s)
                    self.assertEqual(s["users_inserted_more_than_once"], 0, s)
                    status, _, body = d.call("POST", "/v1/imports/%s/retry" % a["id"])
                    self.assertEqual(status, 409, body)

                    status, _, body = d.call("POST", "/v1/imports/%s/retry" % b["id"])
                    p = json.loads(body)
                    self.assertEqual(status, 410, p)
                    self.assertEqual(p["type"], "/problems/gone")
                    status, _, body = d.call("POST", "/v1/imports/%s/retry" % c["id"])
                    p = json.loads(body)
                    self.assertEqual(status, 409, p)
                    self.assertEqual(p["type"], "/problems/conflict")
                    self.assertIn("transient", p["detail"])
                    status, o = d.get_json("/v1/imports/" + c["id"])
                    self.assertEqual(o["state"], "failed", o)
                    status, _, body = d.call("POST", "/v1/imports/%s/retry" % rej["import_id"])
                    self.assertEqual(status, 409, body)
                    status, _, body = d.call("POST", "/v1/imports/imp_0000000000000000/retry")
                    self.assertEqual(status, 404, body)
                    status, _, body = d.call("GET", "/v1/imports/%s/retry" % a["id"])
                    self.assertEqual(status, 405, body)
                    self.assertEqual(s["users"], sb.stats()["users"])
                    d.stop()
                finally:
                    d.cleanup()
        finally:
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    unittest.main(argv=sys.argv[:1], verbosity=2)
