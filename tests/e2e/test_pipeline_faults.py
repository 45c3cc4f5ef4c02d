"""The pipeline under injected faults: 5xx proxy pages, both 429s, resets,
lost answers, revoked tokens. Every user still reaches Auth0 exactly once,
the counters equal the emulator's truth, and nothing is sent while the
daemon should be waiting."""
import json
import os
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(__file__))
from pipeline_harness import Pipeline, TEST_SPEED, check_truth, make_users  # noqa: E402


class PipelineFaults(unittest.TestCase):
    def test_5xx_429_resets_and_token_revocation(self):
        args = TEST_SPEED + ["--fault-5xx", "0.1", "--fault-429", "0.1", "--fault-reset", "0.05",
                             "--seed", "7"]
        with Pipeline(sandbox_args=args) as p:
            imp = p.post_users(make_users(20000))
            # Revoke every token once the first job is known.
            p.wait(imp, pred=lambda o: o["chunks"]["submitted"] + o["chunks"]["completed"] > 0,
                   timeout=60)
            p.sb.admin("POST", "revoke-tokens")
            o = p.wait(imp, timeout=150)
            self.assertEqual(o["state"], "completed", json.dumps(o)[:1500])
            s = check_truth(p, imp, o, 20000)
            f = s["faults_injected"]
            self.assertGreater(f["5xx"] + f["429"] + f["reset"], 0, s)
            self.assertGreaterEqual(s["tokens_issued"], 2, s)

    def test_retry_after_and_the_active_jobs_429(self):
        # A third concurrent job is refused by the emulator's cap of one:
        # the daemon must hold back, not hammer, and still finish.
        args = TEST_SPEED + ["--retry-after", "on", "--fault-429", "0.2", "--seed", "3",
                             "--max-active-jobs", "1"]
        with Pipeline(sandbox_args=args) as p:
            imp = p.post_users(make_users(8000))
            o = p.wait(imp, timeout=150)
            self.assertEqual(o["state"], "completed", json.dumps(o)[:1500])
            s = check_truth(p, imp, o, 8000)
            self.assertLessEqual(s["max_active_import_jobs"], 1, s)
            # Each refusal of the cap is followed by a pause: far fewer of
            # them than submits at full speed would cause.
            self.assertLess(s["active_jobs_429"], 10, s)

    def test_waits_for_retry_after_and_reset(self):
        # One job, one poll refused at a time: nothing else is in flight, so
        # the next request must come no earlier than the 429 allowed.
        for extra in ([], ["--retry-after", "on"]):
            with Pipeline(sandbox_args=TEST_SPEED + ["--ms-per-user", "1"] + extra) as p:
                p.faults(endpoint="job", next=2, status=429)
                imp = p.post_users(make_users(3000))
                o = p.wait(imp, timeout=60)
                self.assertEqual(o["state"], "completed", o)
                s = p.stats()
                self.assertEqual(s["early_after_429"], 0, s)
                reqs = p.all_requests()
                n429 = [r for r in reqs if r.get("status") == 429]
                self.assertEqual(len(n429), 2, reqs)

    def test_413_splits_the_chunk(self):
        with Pipeline() as p:
            p.faults(endpoint="users-imports", next=1, status=413)
            imp = p.post_users(make_users(3000))
            o = p.wait(imp, timeout=60)
            self.assertEqual(o["state"], "completed", json.dumps(o)[:1500])
            check_truth(p, imp, o, 3000)
            self.assertEqual(o["chunks"]["total"], 2, o)
            self.assertEqual(p.stats()["import_jobs"], 2)

    def test_two_413s_in_flight_on_one_import(self):
        # Two chunks out at once both answered 413: each split takes its
        # own new chunk number, no user is lost or sent twice.
        with Pipeline() as p:
            p.faults(endpoint="users-imports", next=2, status=413)
            imp = p.post_users(make_users(7000))
            o = p.wait(imp, timeout=90)
            self.assertEqual(o["state"], "completed", json.dumps(o)[:1500])
            check_truth(p, imp, o, 7000)
            s = p.stats()
            self.assertEqual(s["users"], 7000, s)
            self.assertEqual(s["users_inserted_more_than_once"], 0, s)

    def test_lost_answer_counts_duplicates_as_assumed(self):
        with Pipeline() as p:
            # The first submit is handled (the job exists) but its answer is lost.
            p.faults(endpoint="users-imports", next=1, action="reset-after")
            users = make_users(3000)
            imp = p.post_users(users)
            o = p.wait(imp, timeout=120)
            self.assertEqual(o["state"], "completed", json.dumps(o)[:1500])
            s = check_truth(p, imp, o, 3000)
            self.assertGreater(o["users"]["assumed"], 0, o)
            self.assertGreaterEqual(s["import_jobs"], o["chunks"]["total"] + 1, s)

    def test_lost_answer_with_upsert_counts_updated_as_assumed(self):
        with Pipeline() as p:
            p.faults(endpoint="users-imports", next=1, action="reset-after")
            imp = p.post_users(make_users(3000), upsert=True)
            o = p.wait(imp, timeout=120)
            self.assertEqual(o["state"], "completed", json.dumps(o)[:1500])
            u = o["users"]
            self.assertEqual(u["inserted"], 3000, u)
            self.assertEqual(u["updated"], 0, u)
            self.assertGreater(u["assumed"], 0, u)
            s = p.stats()
            self.assertEqual(s["users"], 3000, s)
            self.assertEqual(s["users_inserted_more_than_once"], 0, s)


if __name__ == "__main__":
    unittest.main()
