"""Crash rules: SIGKILL at chosen points, restart on the same state dir; no
user lost, none imported twice, submitted jobs polled again and never
resubmitted, chunks left submitting resubmitted with duplicates counted as
assumed. Also: cancel with DELETE."""
import json
import os
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(__file__))
from imports_helpers import Daemon  # noqa: E402
from pipeline_harness import Pipeline, TEST_SPEED, check_truth, make_users  # noqa: E402


def restart(p):
    """SIGKILL the daemon and start another on the same state dir."""
    old = p.d
    old.kill()
    d = Daemon(state_dir=old.state_dir, env=old.extra_env)
    d.start()
    p.old = old
    p.d = d


class PipelineCrash(unittest.TestCase):
    def tearDown(self):
        pass

    def test_kill_while_a_submit_is_in_flight(self):
        with Pipeline() as p:
            try:
                # The second submit hangs 2 s at the emulator, which then
                # creates the job anyway: the daemon dies meanwhile.
                p.faults(endpoint="users-imports", skip=1, next=1, action="slow", seconds=2)
                imp = p.post_users(make_users(12000))
                p.wait(imp, pred=lambda o: o["chunks"]["submitting"] > 0
                       and o["chunks"]["submitted"] + o["chunks"]["completed"] > 0, timeout=60)
                restart(p)
                o = p.wait(imp, timeout=120)
                self.assertEqual(o["state"], "completed", json.dumps(o)[:1500])
                check_truth(p, imp, o, 12000)
                self.assertIn("resubmitting", p.d.log())
            finally:
                if hasattr(p, "old"):
                    p.old.cleanup()

    def test_sigterm_lets_the_call_in_flight_finish(self):
        with Pipeline() as p:
            try:
                p.faults(endpoint="users-imports", next=1, action="slow", seconds=2)
                imp = p.post_users(make_users(3000))
                p.wait(imp, pred=lambda o: o["chunks"]["submitting"] > 0, timeout=60)
                old = p.d
                old.stop()  # SIGTERM: exit 0 once the slow submit has answered
                self.assertIn("letting the Auth0 calls in flight finish", old.log())
                d = Daemon(state_dir=old.state_dir, env=old.extra_env)
                d.start()
                p.old, p.d = old, d
                o = p.wait(imp, timeout=60)
                self.assertEqual(o["state"], "completed", json.dumps(o)[:1500])
                s = check_truth(p, imp, o, 3000)
                # The answer was kept: polled after the restart, not resubmitted.
                self.assertEqual(s["import_jobs"], 1, s)
                self.assertEqual(o["users"]["assumed"], 0, o)
            finally:
                if hasattr(p, "old"):
                    p.old.cleanup()

    def test_kill_while_jobs_run_polls_them_again(self):
        # Slow jobs: killed while they run at Auth0, they are followed again.
        with Pipeline(sandbox_args=["--rate", "20", "--burst", "20", "--ms-per-user", "1"]) as p:
            try:
                imp = p.post_users(make_users(8000))
                p.wait(imp, pred=lambda o: o["chunks"]["submitted"] >= 2, timeout=60)
                restart(p)
                o = p.wait(imp, timeout=120)
                self.assertEqual(o["state"], "completed", json.dumps(o)[:1500])
                s = check_truth(p, imp, o, 8000)
                # Never resubmitted: one Auth0 job per chunk.
                self.assertEqual(s["import_jobs"], o["chunks"]["total"], s)
                self.assertEqual(o["users"]["assumed"], 0, o)
                self.assertIn("following it", p.d.log())
            finally:
                if hasattr(p, "old"):
                    p.old.cleanup()

    def test_kill_while_cancelling_ends_the_import(self):
        with Pipeline() as p:
            try:
                p.faults(endpoint="users-imports", skip=1, next=1, action="slow", seconds=2)
                imp = p.post_users(make_users(12000))
                p.wait(imp, pred=lambda o: o["chunks"]["submitting"] > 0
                       and o["chunks"]["submitted"] + o["chunks"]["completed"] > 0, timeout=60)
                status, _, data = p.d.request("DELETE", "/v1/imports/" + imp)
                self.assertIn(status, (200, 202), data)
                restart(p)
                o = p.wait(imp, states=("cancelled", "failed", "completed",
                                        "completed_with_errors"), timeout=60)
                # The cancel holds: the job at Auth0 was followed to its end,
                # the chunk left submitting (it may or may not have reached
                # Auth0) went once more to learn what Auth0 holds, and the
                # rest never left.
                self.assertEqual(o["state"], "cancelled", o)
                c, u = o["chunks"], o["users"]
                self.assertEqual(c["failed"], 0, c)
                self.assertEqual(c["completed"] + c["cancelled"], c["total"], c)
                self.assertGreaterEqual(c["completed"], 2, c)
                self.assertEqual(u["pending"], 0, u)
                self.assertGreater(u["not_submitted"], 0, u)
                # No new chunk after the cancel: only users parts sent before
                # the kill were sent again, and the counters equal Auth0's.
                s = p.stats()
                parts = [r["form"]["users_hash"] for r in p.all_requests()
                         if r.get("endpoint") == "users-imports" and "users_hash" in r.get("form", {})]
                self.assertEqual(len(set(parts)), c["completed"], parts)
                self.assertEqual(u["inserted"], s["users_inserted"], (u, s))
                self.assertEqual(s["users_inserted_more_than_once"], 0, s)
            finally:
                if hasattr(p, "old"):
                    p.old.cleanup()

    def test_cancel_submits_nothing_more(self):
        with Pipeline(sandbox_args=["--rate", "20", "--burst", "20", "--ms-per-user", "1"]) as p:
            imp = p.post_users(make_users(20000))
            p.wait(imp, pred=lambda o: o["chunks"]["submitted"] >= 1, timeout=60)
            status, _, data = p.d.request("DELETE", "/v1/imports/" + imp)
            self.assertIn(status, (200, 202), data)
            jobs_at_cancel = p.stats()["import_jobs"]
            o = p.wait(imp, states=("cancelled",), timeout=120)
            s = p.stats()
            # Jobs already at Auth0 (or leaving at that moment) ran to their
            # end and were followed; nothing else went out.
            self.assertLessEqual(s["import_jobs"], jobs_at_cancel + 1, s)
            self.assertEqual(o["users"]["inserted"], s["users_inserted"], (o, s))
            self.assertEqual(s["users_inserted_more_than_once"], 0, s)
            self.assertGreater(o["users"]["not_submitted"], 0, o)
            self.assertEqual(o["users"]["pending"], 0, o)
            c = o["chunks"]
            self.assertEqual(c["completed"] + c["cancelled"], c["total"], c)


if __name__ == "__main__":
    unittest.main()
