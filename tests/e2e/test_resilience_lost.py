"""Resilience when the fate of a submission is unknown: connection resets
before the emulator handles a request (nothing happened at Auth0) and lost
answers (the job was created and inserts its users, the answer never came).
A chunk resubmitted because its first request's fate is unknown counts the
users Auth0 answers "already exist" (upsert=false) or reports `updated`
(upsert=true) as inserted + assumed, never as failed; a reset before
handling creates nothing, so nothing is assumed. Judged on the emulator's
truth: every user stored exactly once, counters equal to it.

A lost answer leaves an Auth0 job the daemon does not know of holding one
of the 2 slots: the "too many active jobs" 429 that follows costs a 15 s
pause (DESIGN.md), which sets these tests' pace."""
import collections
import os
import sys
import unittest

sys.path.insert(0, os.path.dirname(__file__))
from resilience_helpers import (TEST_SPEED, active_jobs_429s, check_exact,  # noqa: E402
                                chunk_of, chunk_users, jobs_by_id, make_users,
                                no_submit_during_pause, pipeline, submissions, wait_for)

N = 3000


def accepted_by_chunk(reqs):
    """chunk number -> the Auth0 jobs created for it (lost answers included)."""
    out = collections.defaultdict(list)
    for _, ext, _, job_id, _ in submissions(reqs):
        if job_id:
            out[chunk_of(ext)].append(job_id)
    return out


class ResilienceLostAnswers(unittest.TestCase):
    def lost_chunk(self, p, imp):
        """The one chunk Auth0 got twice: (chunk number, its 2 jobs, users)."""
        acc = accepted_by_chunk(p.all_requests())
        twice = [k for k, v in acc.items() if len(v) == 2]
        self.assertEqual(len(twice), 1, acc)
        self.assertEqual([k for k, v in acc.items() if len(v) > 2], [], acc)
        lost = twice[0]
        jobs = jobs_by_id(p)
        first, second = jobs[acc[lost][0]], jobs[acc[lost][1]]
        n = chunk_users(p, imp)[lost]
        self.assertEqual(first["users_count"], n, first)
        self.assertEqual(first["summary"]["inserted"], n, first)
        self.assertEqual(second["summary"]["inserted"], 0, second)
        return lost, second, n

    def test_lost_answer_counts_inserted_and_assumed(self):
        # The third submission is handled (the job exists and inserts its
        # users) but its answer is lost: the daemon resubmits, Auth0
        # answers "already exist" for every user of that chunk, and they
        # count as inserted + assumed, not failed.
        with pipeline() as p:
            p.faults(endpoint="users-imports", skip=2, next=1, action="reset-after")
            users = make_users(N)
            imp = p.post_users(users)
            o = p.wait(imp, timeout=100)
            lost, second, n = self.lost_chunk(p, imp)
            self.assertEqual(second["summary"]["failed"], n, second)
            s, reqs = check_exact(self, p, imp, o, users, assumed=n)
            self.assertEqual(s["import_jobs"], o["chunks"]["total"] + 1, s)
            # The unknown job held a slot: refused, then a real pause.
            self.assertEqual(s["rate_limited"], 0, s)
            self.assertEqual(len(active_jobs_429s(reqs)), s["active_jobs_429"], s)
            no_submit_during_pause(self, reqs)
            status, e = p.d.get_json("/v1/imports/%s/errors" % imp)
            self.assertEqual(status, 200, e)
            self.assertEqual(e.get("errors", []), [], "duplicates of a resubmission are no errors")

    def test_lost_answer_under_upsert_counts_updated_as_inserted(self):
        # upsert=true: the resubmission updates the users the lost job
        # inserted; they count as inserted + assumed, not updated.
        with pipeline() as p:
            p.faults(endpoint="users-imports", skip=1, next=1, action="reset-after")
            users = make_users(N)
            imp = p.post_users(users, upsert=True)
            o = p.wait(imp, timeout=100)
            lost, second, n = self.lost_chunk(p, imp)
            self.assertEqual(second["summary"]["updated"], n, second)
            upd = {u["email"] for u in p.sb.users() if u["updated"]}
            self.assertEqual(len(upd), n)
            s, reqs = check_exact(self, p, imp, o, users, assumed=n, updated_emails=upd)
            no_submit_during_pause(self, reqs)

    def test_connection_resets_before_handling(self):
        # Resets on every endpoint before the emulator handles the request:
        # the daemon cannot tell them from lost answers, resubmits, and
        # Auth0 had nothing — every user inserted by the one job of its
        # chunk, nothing assumed.
        args = TEST_SPEED + ["--fault-reset", "0.08", "--seed", "9"]
        with pipeline(args) as p:
            p.faults(scripts=[{"endpoint": "token", "next": 1, "action": "reset"},
                              {"endpoint": "users-imports", "skip": 1, "next": 2, "action": "reset"},
                              {"endpoint": "job", "skip": 1, "next": 2, "action": "reset"}])
            users = make_users(N)
            imp = p.post_users(users)
            o = p.wait(imp, timeout=100)
            s, reqs = check_exact(self, p, imp, o, users, assumed=0)
            self.assertGreaterEqual(s["faults_injected"]["reset"], 5, s)
            acc = accepted_by_chunk(reqs)
            self.assertEqual(sorted(acc), list(range(o["chunks"]["total"])), acc)
            self.assertEqual([k for k, v in acc.items() if len(v) != 1], [], acc)
            self.assertIn("transport error", p.d.log())

    def test_cancel_while_an_answer_is_lost(self):
        # An accepted import's answer is lost and DELETE comes during the
        # retry backoff: Auth0 holds that job, so the chunk is resubmitted
        # once to learn it (not cancelled as if it never left), and the
        # cancelled import's counters equal what Auth0 holds.
        with pipeline() as p:
            p.faults(endpoint="users-imports", skip=2, next=1, action="reset-after")
            users = make_users(N)
            imp = p.post_users(users)
            r = None
            while r is None:
                r = next((x for x in p.requests(0)["requests"] if x["endpoint"] == "users-imports"
                          and x.get("fault") == "reset-after"), None)
            status, _, _ = p.d.request("DELETE", "/v1/imports/" + imp)
            self.assertEqual(status, 202)
            o = p.wait(imp, states=("cancelled",), timeout=60)
            s = p.stats()
            acc = accepted_by_chunk(p.all_requests())
            lost = chunk_of(r["form"]["external_id"])
            u = o["users"]
            self.assertEqual(u["inserted"], s["users_inserted"], (u, s))
            self.assertEqual(s["users_inserted_more_than_once"], 0, s)
            self.assertEqual(len(acc[lost]), 2, acc)
            self.assertEqual(u["assumed"], chunk_users(p, imp)[lost], u)
            self.assertEqual((u["failed"], u["pending"]), (0, 0), u)
            self.assertEqual(u["inserted"] + u["not_submitted"], N, u)

    def test_import_failure_while_an_answer_is_lost(self):
        # An accepted import's answer is lost; during its retry backoff
        # another chunk is refused for good (401 after a token refresh) and
        # the whole import fails. The lost chunk may be at Auth0: it is
        # resubmitted once all the same, and the failed import's counters
        # equal what Auth0 holds. One job at a time, so that the two 401s
        # land on one chunk (401, token refresh, 401).
        with pipeline(env={"AUTH0_MAX_CONCURRENT_JOBS": "1"}) as p:
            p.faults(scripts=[
                {"endpoint": "users-imports", "skip": 2, "next": 1, "action": "reset-after"},
                {"endpoint": "users-imports", "skip": 2, "next": 2, "status": 401}])
            users = make_users(N)
            imp = p.post_users(users)
            o = p.wait(imp, states=("failed",), timeout=60)
            o = wait_for(lambda: (lambda x: x if x["chunks"]["submitting"] + x["chunks"]["queued"]
                                  + x["chunks"]["submitted"] == 0 else None)(p.import_object(imp)),
                         60, "the failed import settled")
            self.assertEqual(o["state"], "failed", o)
            reqs = p.all_requests()
            lost = next(chunk_of(x["form"]["external_id"]) for x in reqs
                        if x["endpoint"] == "users-imports" and x.get("fault") == "reset-after")
            acc = accepted_by_chunk(reqs)
            s = p.stats()
            u = o["users"]
            self.assertEqual(len(acc[lost]), 2, acc)
            self.assertEqual(u["inserted"], s["users_inserted"], (u, s))
            self.assertEqual(u["assumed"], chunk_users(p, imp)[lost], u)
            self.assertEqual(s["users_inserted_more_than_once"], 0, s)
            self.assertEqual(u["pending"], 0, u)


if __name__ == "__main__":
    unittest.main()
