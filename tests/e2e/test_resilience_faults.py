"""Resilience under faults: the real daemon imports a few thousand users
(about ten Auth0 jobs) while auth0-sandbox injects 5xx proxy pages, both
kinds of rate-limit 429, connection resets, lost answers, slow answers and
token expiry/revocation. Judged on what the emulator received and holds:
the import completes, every user is stored exactly once, the import's
counters equal the emulator's truth, never more than 2 active jobs, no
request while the daemon should have been waiting, no body over 512000."""
import collections
import os
import sys
import threading
import time
import unittest

sys.path.insert(0, os.path.dirname(__file__))
from resilience_helpers import (TEST_SPEED, check_exact, chunk_of, chunk_users,  # noqa: E402
                                cleanup_olds, jobs_by_id, make_users, pipeline, submissions)

N = 3000
# Rate-limit 429s ("Global limit has been reached", with headers) on every
# endpoint an import uses.
SCRIPTED_429 = [{"endpoint": "token", "next": 1, "status": 429},
                {"endpoint": "users-imports", "skip": 1, "next": 2, "status": 429},
                {"endpoint": "job", "skip": 1, "next": 2, "status": 429}]


def accepted_by_chunk(reqs):
    """chunk number -> the Auth0 jobs created for it (lost answers included)."""
    out = collections.defaultdict(list)
    for _, ext, _, job_id, _ in submissions(reqs):
        if job_id:
            out[chunk_of(ext)].append(job_id)
    return out


class ResilienceFaults(unittest.TestCase):
    def run_import(self, p, users=None, timeout=100):
        users = users or make_users(N)
        imp = p.post_users(users)
        o = p.wait(imp, timeout=timeout)
        return users, imp, o

    def assert_each_chunk_once(self, p, imp, reqs):
        """No lost answer: exactly one Auth0 job per chunk."""
        acc = accepted_by_chunk(reqs)
        n = len(chunk_users(p, imp))
        self.assertGreaterEqual(n, 8, "the test wants several chunks")
        self.assertEqual(sorted(acc), list(range(n)), acc)
        self.assertEqual([k for k, v in acc.items() if len(v) != 1], [], acc)
        # Knowing every job it has, the daemon never asks for a third slot.
        self.assertEqual(p.stats()["active_jobs_429"], 0)

    def test_5xx_proxy_pages(self):
        # Scripted ones on every endpoint the import uses, and random ones.
        args = TEST_SPEED + ["--fault-5xx", "0.15", "--seed", "11"]
        with pipeline(args) as p:
            p.faults(scripts=[{"endpoint": "token", "next": 1, "status": 500},
                              {"endpoint": "users-imports", "skip": 1, "next": 3, "status": 503},
                              {"endpoint": "job", "skip": 2, "next": 2, "status": 502}])
            users, imp, o = self.run_import(p)
            s, reqs = check_exact(self, p, imp, o, users)
            self.assertGreaterEqual(s["faults_injected"]["5xx"], 6, s)
            # A 5xx is an answer: Auth0 did not take the job, nothing assumed.
            self.assert_each_chunk_once(p, imp, reqs)

    def test_rate_limit_429_without_retry_after(self):
        # x-ratelimit-reset only (whole seconds): the daemon waits for it.
        args = TEST_SPEED + ["--fault-429", "0.15", "--retry-after", "off", "--seed", "5"]
        with pipeline(args) as p:
            p.faults(scripts=SCRIPTED_429)
            users, imp, o = self.run_import(p)
            s, reqs = check_exact(self, p, imp, o, users)
            self.assertGreaterEqual(s["faults_injected"]["429"], 5, s)
            self.assert_each_chunk_once(p, imp, reqs)

    def test_rate_limit_429_with_retry_after(self):
        args = TEST_SPEED + ["--fault-429", "0.15", "--retry-after", "on", "--seed", "6"]
        with pipeline(args) as p:
            p.faults(scripts=SCRIPTED_429)
            users, imp, o = self.run_import(p)
            s, reqs = check_exact(self, p, imp, o, users)
            self.assertGreaterEqual(s["faults_injected"]["429"], 5, s)
            self.assert_each_chunk_once(p, imp, reqs)

    def test_small_bucket_real_rate_limit(self):
        # The emulator's own bucket runs dry (burst 3, 4 req/s): the daemon
        # must follow the headers and never send early.
        args = ["--rate", "4", "--burst", "3", "--ms-per-user", "0.1"]
        with pipeline(args) as p:
            users, imp, o = self.run_import(p, timeout=110)
            s, reqs = check_exact(self, p, imp, o, users)
            self.assert_each_chunk_once(p, imp, reqs)

    def test_slow_answers(self):
        # Answers delayed 1.5 s (well inside the request timeout): the
        # daemon waits for them and resubmits nothing.
        args = TEST_SPEED + ["--fault-slow", "0.1:1.5", "--seed", "4"]
        with pipeline(args) as p:
            p.faults(scripts=[{"endpoint": "token", "next": 1, "action": "slow", "seconds": 1.5},
                              {"endpoint": "users-imports", "skip": 1, "next": 2, "action": "slow",
                               "seconds": 1.5},
                              {"endpoint": "job", "skip": 1, "next": 1, "action": "slow",
                               "seconds": 1.5}])
            users, imp, o = self.run_import(p)
            s, reqs = check_exact(self, p, imp, o, users)
            self.assertGreaterEqual(s["faults_injected"]["slow"], 4, s)
            self.assert_each_chunk_once(p, imp, reqs)

    def test_token_expiry_and_revocation(self):
        # Tokens live 2 s, and every 1.5 s all tokens are expired or revoked
        # while slower jobs (3 ms a user) run.
        args = ["--rate", "20", "--burst", "20", "--ms-per-user", "3"]
        with pipeline(args) as p:
            p.faults(token_ttl=2)
            stop = threading.Event()

            def churn():
                n = 0
                while not stop.wait(1.5):
                    if n % 2:
                        p.sb.admin("POST", "revoke-tokens")
                    else:
                        p.faults(expire_tokens=True)
                    n += 1
            t = threading.Thread(target=churn, daemon=True)
            t.start()
            try:
                users, imp, o = self.run_import(p)
            finally:
                stop.set()
                t.join()
            s, reqs = check_exact(self, p, imp, o, users)
            self.assertGreaterEqual(s["tokens_issued"], 3, s)
            self.assertGreater(s["responses_by_status"].get("401", 0), 0, s)
            self.assert_each_chunk_once(p, imp, reqs)

    def test_full_size_requests_under_faults(self):
        # The default chunk budget: requests as large as Auth0 takes, with
        # multi-byte UTF-8 in every user, under 5xx and 429 faults. Every
        # body stays within 512000 bytes (no 413 ever) and comes close to it.
        args = TEST_SPEED + ["--fault-5xx", "0.1", "--fault-429", "0.1", "--seed", "13"]
        users = make_users(6000, given_name="Zoë-Ångström ☃", family_name="Łukasiewicz 李")
        with pipeline(args, env={"IMPORTD_CHUNK_BYTES": None}) as p:
            users, imp, o = self.run_import(p, users=users)
            s, reqs = check_exact(self, p, imp, o, users)
            self.assertGreaterEqual(o["chunks"]["total"], 2, o["chunks"])
            self.assertGreater(s["largest_request_body"], 480000, s)
            self.assertNotIn("413", s["responses_by_status"], s)

    def test_everything_at_once(self):
        args = TEST_SPEED + ["--fault-5xx", "0.08", "--fault-429", "0.08", "--fault-reset", "0.05",
                             "--fault-slow", "0.05:1", "--retry-after", "on", "--seed", "21"]
        with pipeline(args) as p:
            p.faults(token_ttl=3)
            users, imp, o = self.run_import(p, users=make_users(4000))
            acc = accepted_by_chunk(p.all_requests())
            sizes = chunk_users(p, imp)
            lost = sum(sizes[k] for k, v in acc.items() if len(v) > 1)
            self.assertEqual([k for k, v in acc.items() if len(v) > 2], [], acc)
            check_exact(self, p, imp, o, users, assumed=lost)
            cleanup_olds(p)


if __name__ == "__main__":
    unittest.main()
