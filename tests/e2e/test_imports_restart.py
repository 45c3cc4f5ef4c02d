"""Crash rules of the intake: a daemon killed (SIGKILL) while an import is
validating re-validates it from its spool file at the next start, and it
ends queued; an upload that never completed is removed at start."""
import json
import os
import sys
import time
import unittest

from imports_helpers import QUEUED, Daemon, check_invariant, post_raw, user

USERS = 250000  # ~40 MB: validation takes long enough to be interrupted


def big_ndjson():
    return b"".join(json.dumps(user(i)).encode() + b"\n" for i in range(USERS))


class ImportsRestart(unittest.TestCase):
    def test_sigkill_while_validating(self):
        d = Daemon()
        try:
            d.start()
            status, _, o = post_raw(d, big_ndjson(), query="wait=0", ctype="application/x-ndjson")
            self.assertEqual(status, 202, o)
            self.assertEqual(o["state"], "validating")
            imp = o["id"]
            # Kill it in the middle of the validation, once progress shows.
            deadline = time.time() + 60
            while time.time() < deadline:
                status, cur = d.get_json("/v1/imports/" + imp)
                self.assertEqual(cur["state"], "validating", "validation ended before the kill")
                if cur["users"]["total"] > 0:
                    check_invariant(cur)
                    self.assertGreater(cur["progress"], 0)
                    break
                time.sleep(0.005)
            d.kill()

            # An upload cut short by the crash, left in the spool.
            part = os.path.join(d.state_dir, "spool", "0123456789abcdef.part")
            with open(part, "wb") as f:
                f.write(b'[{"email": "half')

            d.start()
            done = d.wait_state(imp, QUEUED + ("rejected", "failed"), timeout=120)
            self.assertIn(done["state"], QUEUED, done)
            self.assertEqual(done["users"]["total"], USERS)
            self.assertEqual(done["users"]["pending"], USERS)
            self.assertGreater(done["chunks"]["total"], 10)
            check_invariant(done)
            self.assertFalse(os.path.exists(part))
            self.assertIn("validating again after a restart", d.log())
            d.stop()

            # Still there after a clean restart, nothing re-done.
            d.start()
            status, again = d.get_json("/v1/imports/" + imp)
            self.assertIn(again["state"], QUEUED)
            self.assertEqual(again["chunks"]["total"], done["chunks"]["total"])
            d.stop()
        finally:
            d.cleanup()

    def test_idempotency_key_while_running(self):
        """The same key and body while the first is still validating: 409
        with Retry-After; once it ended: the first import."""
        d = Daemon()
        try:
            d.start()
            body = big_ndjson()
            h = {"Idempotency-Key": "restart-key"}
            status, _, first = post_raw(d, body, query="wait=0", headers=h, ctype="application/x-ndjson")
            self.assertEqual(status, 202, first)
            status, hdrs, p = post_raw(d, body, query="wait=0", headers=h, ctype="application/x-ndjson")
            if status == 409:
                self.assertEqual(p["type"], "/problems/conflict")
                self.assertIn("retry-after", hdrs)
            else:  # the machine validated 40 MB faster than it took to send it twice
                self.assertEqual(status, 202, p)
            d.wait_state(first["id"], QUEUED, timeout=120)
            status, _, again = post_raw(d, body, headers=h, ctype="application/x-ndjson")
            self.assertEqual(status, 202, again)
            self.assertEqual(again["id"], first["id"])
            d.stop()
        finally:
            d.cleanup()


if __name__ == "__main__":
    unittest.main(argv=sys.argv[:1], verbosity=2)
