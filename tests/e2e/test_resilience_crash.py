"""Crash rules through the real binaries: SIGKILL at chosen points of an
import's life, then a restart on the same state dir with no faults.

The points are made reachable with the emulator's scripted `slow` faults
(the emulator handles the request, then holds its answer: the daemon is
blocked inside that request) and its request log tells when the daemon is
there:
  1. a chunk is marked submitting, its request has not reached Auth0
     (the token grant it waits for is slow);
  2. Auth0 accepted the import (the job exists and inserts its users), the
     job id never came back;
  3. the daemon is polling a job;
  4. the daemon is fetching a job's errors.
The store is read right after the kill (what the crash left), and the end
state is judged on the emulator's truth: no user lost, none inserted twice,
counters right, `assumed` counting the users of a resubmitted chunk Auth0
answered "already exist", submitted jobs polled again, never resubmitted."""
import collections
import os
import sqlite3
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(__file__))
from imports_helpers import Daemon  # noqa: E402
from resilience_helpers import (TEST_SPEED, check_exact, chunk_of, cleanup_olds,  # noqa: E402
                                crash_restart, jobs_by_id, make_users, pipeline, submissions,
                                wait_for, wait_request)

SLOW = 30  # seconds the emulator holds an answer: the daemon dies meanwhile


def store_chunks(state_dir, imp):
    """chunk number -> (state, job_id, users) as the crash left them."""
    db = sqlite3.connect(os.path.join(state_dir, "importd.db"))
    try:
        rows = db.execute("SELECT chunk_no, state, job_id, users FROM chunks WHERE import_id = ?",
                          (imp,)).fetchall()
    finally:
        db.close()
    return {r[0]: (r[1], r[2], r[3]) for r in rows}


def accepted_by_chunk(reqs):
    out = collections.defaultdict(list)
    for _, ext, _, job_id, _ in submissions(reqs):
        if job_id:
            out[chunk_of(ext)].append(job_id)
    return out


class ResilienceCrash(unittest.TestCase):
    def crash_at(self, p, imp, pred, what, before_restart=None):
        """Waits until the request log shows the daemon inside the request
        pred picks, SIGKILLs it, reads the store, restarts. Returns (the
        request, the store's chunks at the crash, last seq before restart)."""
        r = wait_request(p, pred, timeout=60, what=what)
        # The daemon is now blocked in that request for SLOW seconds.
        at_crash = {}

        def inspect(state_dir):
            at_crash.update(store_chunks(state_dir, imp))
            if before_restart:
                before_restart()
        seq = crash_restart(p, inspect)
        return r, at_crash, seq

    def judge(self, p, imp, users, at_crash, seq_at_kill, timeout=90, max_jobs=2):
        """The end state after the restart, against what the crash left."""
        o = p.wait(imp, timeout=timeout)
        reqs = p.all_requests()
        acc = accepted_by_chunk(reqs)
        after = [r for r in reqs if r["seq"] > seq_at_kill]
        resubmitted_after = {chunk_of(ext) for _, ext, _, _, _ in submissions(after)}
        for no, (state, job_id, _) in at_crash.items():
            if state in ("submitted", "completed"):
                # Never resubmitted; a job left running is polled again.
                self.assertNotIn(no, resubmitted_after, (no, state, job_id))
                self.assertEqual(acc[no][-1], job_id, (no, acc[no]))
                if state == "submitted":
                    self.assertTrue(any(r["endpoint"] == "job" and job_id in r["path"]
                                        for r in after), "job %s not polled again" % job_id)
            elif state == "submitting":
                self.assertIn(no, resubmitted_after, "chunk %d left submitting: resubmit it" % no)
        self.assertEqual([k for k, v in acc.items() if len(v) > max_jobs], [], acc)
        # Users of a chunk Auth0 got twice were counted as inserted + assumed.
        assumed = sum(at_crash[k][2] for k, v in acc.items() if len(v) >= 2)
        return o, assumed, acc

    def test_1_kill_after_marked_submitting_before_the_request_leaves(self):
        with pipeline() as p:
            try:
                # The first token grant hangs: chunks are submitting, nothing
                # of them has reached Auth0.
                p.faults(endpoint="token", next=1, action="slow", seconds=SLOW)
                users = make_users(2500)
                imp = p.post_users(users)
                wait_for(lambda: p.import_object(imp)["chunks"]["submitting"] > 0, 30,
                         "a chunk marked submitting")
                r, at_crash, seq = self.crash_at(
                    p, imp, lambda r: r["endpoint"] == "token" and r.get("fault") == "slow",
                    "the slow token grant")
                self.assertGreater(sum(1 for v in at_crash.values() if v[0] == "submitting"), 0,
                                   at_crash)
                self.assertEqual(submissions([x for x in p.requests(0)["requests"]
                                              if x["seq"] <= seq]), [],
                                 "no import request reached the emulator before the crash")
                o, assumed, acc = self.judge(p, imp, users, at_crash, seq)
                self.assertEqual(assumed, 0)
                # Resubmitted, but Auth0 had nothing: every user inserted by
                # the one job of its chunk, nothing assumed.
                self.assertEqual(sorted(len(v) for v in acc.values()), [1] * len(at_crash), acc)
                check_exact(self, p, imp, o, users, assumed=0)
                self.assertIn("resubmitting", p.d.log())
            finally:
                cleanup_olds(p)

    def test_2_kill_after_auth0_accepted_before_the_job_id_is_stored(self):
        with pipeline() as p:
            try:
                # The third submission is handled (its job inserts its users)
                # and its answer held back: the daemon dies waiting for it.
                p.faults(endpoint="users-imports", skip=2, next=1, action="slow", seconds=SLOW)
                users = make_users(3000)
                imp = p.post_users(users)
                r, at_crash, seq = self.crash_at(
                    p, imp, lambda r: r["endpoint"] == "users-imports" and r.get("fault") == "slow",
                    "the held import answer")
                self.assertTrue(r.get("job_id"), r)
                lost = chunk_of(r["form"]["external_id"])
                self.assertEqual(at_crash[lost][0], "submitting", at_crash)
                self.assertIsNone(at_crash[lost][1], at_crash)
                o, assumed, acc = self.judge(p, imp, users, at_crash, seq)
                self.assertEqual(len(acc[lost]), 2, acc)
                self.assertGreaterEqual(assumed, at_crash[lost][2])
                self.assertGreater(assumed, 0)
                jobs = jobs_by_id(p)
                first, second = jobs[acc[lost][0]], jobs[acc[lost][1]]
                self.assertEqual(first["summary"]["inserted"], at_crash[lost][2], first)
                self.assertEqual(second["summary"]["inserted"], 0, second)
                check_exact(self, p, imp, o, users, assumed=assumed)
                status, e = p.d.get_json("/v1/imports/%s/errors" % imp)
                self.assertEqual(status, 200, e)
                self.assertEqual(e.get("errors", []), [], e)
            finally:
                cleanup_olds(p)

    def test_2b_kill_after_a_dropped_answer(self):
        # Point 2 with the answer dropped (connection closed after the job
        # was created): the daemon is killed during its retry backoff, the
        # chunk back in queued but flagged; the flag survives the restart.
        with pipeline() as p:
            try:
                p.faults(endpoint="users-imports", skip=2, next=1, action="reset-after")
                users = make_users(3000)
                imp = p.post_users(users)
                r, at_crash, seq = self.crash_at(
                    p, imp, lambda r: r["endpoint"] == "users-imports"
                    and r.get("fault") == "reset-after", "the dropped answer")
                lost = chunk_of(r["form"]["external_id"])
                self.assertIn(at_crash[lost][0], ("submitting", "queued"), at_crash)
                o, assumed, acc = self.judge(p, imp, users, at_crash, seq)
                self.assertEqual(len(acc[lost]), 2, acc)
                n = at_crash[lost][2]
                extra = [k for k, v in acc.items() if len(v) == 2]
                check_exact(self, p, imp, o, users, assumed=sum(at_crash[k][2] for k in extra))
                self.assertGreaterEqual(o["users"]["assumed"], n)
            finally:
                cleanup_olds(p)

    def test_3_kill_while_polling_a_job(self):
        # Two chunks, both submitted at once (cap 2): jobs of 1 ms a user
        # run long enough to be polled; the second poll hangs.
        args = ["--rate", "20", "--burst", "20", "--ms-per-user", "1"]
        with pipeline(args) as p:
            try:
                p.faults(endpoint="job", skip=1, next=1, action="slow", seconds=SLOW)
                users = make_users(550)
                imp = p.post_users(users)
                r, at_crash, seq = self.crash_at(
                    p, imp, lambda r: r["endpoint"] == "job" and r.get("fault") == "slow",
                    "the held poll")
                polled = r["path"].rsplit("/", 1)[1]
                self.assertIn(polled, [v[1] for v in at_crash.values()], at_crash)
                o, assumed, acc = self.judge(p, imp, users, at_crash, seq)
                self.assertEqual(assumed, 0)
                s, _ = check_exact(self, p, imp, o, users, assumed=0)
                self.assertEqual(s["import_jobs"], len(at_crash), s)
            finally:
                cleanup_olds(p)

    def test_4_kill_while_fetching_a_jobs_errors(self):
        # 20 users of the file already exist at Auth0 (seeded): their jobs
        # end with failed users, whose errors the daemon fetches; the first
        # fetch hangs. After the restart the errors are fetched again and
        # stored once, mapped to the original indices.
        with pipeline() as p:
            try:
                users = make_users(550)
                existing = list(range(3, 550, 27))
                p.sb.admin("POST", "seed", {"connection_id": "con_SandboxUsers0001",
                                             "users": [users[i] for i in existing]})
                p.faults(endpoint="job-errors", next=1, action="slow", seconds=SLOW)
                imp = p.post_users(users)
                r, at_crash, seq = self.crash_at(
                    p, imp, lambda r: r["endpoint"] == "job-errors" and r.get("fault") == "slow",
                    "the held errors fetch")
                job = r["path"].split("/")[-2]
                self.assertIn(job, [v[1] for v in at_crash.values()], at_crash)
                no = [k for k, v in at_crash.items() if v[1] == job][0]
                self.assertEqual(at_crash[no][0], "submitted", at_crash)
                o, assumed, acc = self.judge(p, imp, users, at_crash, seq)
                self.assertEqual(assumed, 0)
                after = [x for x in p.all_requests() if x["seq"] > seq]
                self.assertTrue(any(x["endpoint"] == "job-errors" and job in x["path"]
                                    for x in after), "errors of %s fetched again" % job)
                self.assertEqual(o["state"], "completed_with_errors", o)
                u = o["users"]
                self.assertEqual((u["inserted"], u["failed"], u["pending"], u["assumed"]),
                                 (550 - len(existing), len(existing), 0, 0), u)
                s = p.stats()
                self.assertEqual(s["users_inserted"], 550 - len(existing), s)
                self.assertEqual(s["users_inserted_more_than_once"], 0, s)
                self.assertEqual(s["import_jobs"], len(at_crash), s)
                held = {x["email"]: x for x in p.sb.users()}
                self.assertEqual(len(held), 550)
                for i, x in enumerate(users):
                    h = held[x["email"]]
                    self.assertEqual(h["inserted"], 0 if i in existing else 1, h)
                status, e = p.d.get_json("/v1/imports/%s/errors" % imp)
                self.assertEqual(status, 200, e)
                errs = e["errors"]
                self.assertEqual(sorted(x["index"] for x in errs), existing, errs[:3])
                for x in errs:
                    self.assertEqual(x["source"], "auth0", x)
                    self.assertEqual([y["code"] for y in x["errors"]], ["DUPLICATED_USER"], x)
                    self.assertEqual(x["user"]["email"], users[x["index"]]["email"], x)
            finally:
                cleanup_olds(p)

    def test_5_sigterm_while_a_submit_is_held(self):
        # A clean stop while Auth0 holds the answer of an accepted import:
        # the call is abandoned after shutdown_timeout, the daemon exits 0,
        # the chunk stays submitting and is resubmitted at the next start
        # with its users counted inserted + assumed.
        with pipeline() as p:
            try:
                p.faults(endpoint="users-imports", skip=1, next=1, action="slow", seconds=SLOW)
                users = make_users(3000)
                imp = p.post_users(users)
                r = wait_request(p, lambda r: r["endpoint"] == "users-imports"
                                 and r.get("fault") == "slow", timeout=60, what="the held answer")
                old = p.d
                t0 = time.monotonic()
                self.assertEqual(old.stop(timeout=15), 0)
                self.assertLess(time.monotonic() - t0, 12)
                at_crash = store_chunks(old.state_dir, imp)
                lost = chunk_of(r["form"]["external_id"])
                self.assertEqual(at_crash[lost][0], "submitting", at_crash)
                seq = p.requests(0)["last_seq"]
                d = Daemon(state_dir=old.state_dir, env=old.extra_env)
                p.olds = [old]
                d.start()
                p.d = d
                o, assumed, acc = self.judge(p, imp, users, at_crash, seq)
                self.assertEqual(len(acc[lost]), 2, acc)
                self.assertGreaterEqual(assumed, at_crash[lost][2])
                check_exact(self, p, imp, o, users, assumed=assumed)
            finally:
                cleanup_olds(p)

    def test_6_two_crashes_in_a_row(self):
        # Killed while Auth0 holds an accepted import's answer, restarted,
        # killed again while the answer to the new daemon's first submission
        # (the resubmission, or another chunk) is held too: whatever chunks
        # Auth0 got more than once inserted their users once, and they count
        # once, as inserted + assumed.
        with pipeline() as p:
            try:
                p.faults(endpoint="users-imports", skip=1, next=1, action="slow", seconds=SLOW)
                users = make_users(1500)
                imp = p.post_users(users)
                r1, at1, seq1 = self.crash_at(
                    p, imp, lambda r: r["endpoint"] == "users-imports" and r.get("fault") == "slow",
                    "the first held answer",
                    before_restart=lambda: p.faults(endpoint="users-imports", next=1,
                                                    action="slow", seconds=SLOW))
                first = chunk_of(r1["form"]["external_id"])
                self.assertEqual(at1[first][0], "submitting", at1)
                r2, at2, seq2 = self.crash_at(
                    p, imp, lambda r: r["seq"] > seq1 and r["endpoint"] == "users-imports"
                    and r.get("fault") == "slow", "the second held answer")
                second = chunk_of(r2["form"]["external_id"])
                self.assertEqual(at2[second][0], "submitting", at2)
                o, assumed, acc = self.judge(p, imp, users, at2, seq2, max_jobs=3)
                self.assertGreaterEqual(len(acc[first]), 2, acc)
                self.assertGreaterEqual(len(acc[second]), 2, acc)
                jobs = jobs_by_id(p)
                for k, v in acc.items():
                    self.assertEqual(sum(jobs[j]["summary"]["inserted"] for j in v), at2[k][2])
                again = [k for k, v in acc.items() if len(v) > 1]
                check_exact(self, p, imp, o, users, assumed=sum(at2[k][2] for k in again))
            finally:
                cleanup_olds(p)

    def test_7_kill_after_auth0_accepted_under_upsert(self):
        # Point 2 under upsert=true: after the restart the resubmission
        # updates the users the first job inserted; the flag that says so
        # came through the store, and they count as inserted + assumed.
        with pipeline() as p:
            try:
                p.faults(endpoint="users-imports", skip=1, next=1, action="slow", seconds=SLOW)
                users = make_users(1500)
                imp = p.post_users(users, upsert=True)
                r, at_crash, seq = self.crash_at(
                    p, imp, lambda r: r["endpoint"] == "users-imports" and r.get("fault") == "slow",
                    "the held import answer")
                lost = chunk_of(r["form"]["external_id"])
                o, assumed, acc = self.judge(p, imp, users, at_crash, seq)
                self.assertEqual(len(acc[lost]), 2, acc)
                upd = {u["email"] for u in p.sb.users() if u["updated"]}
                self.assertEqual(len(upd), assumed)
                check_exact(self, p, imp, o, users, assumed=assumed, updated_emails=upd)
            finally:
                cleanup_olds(p)

    def test_8_cancel_then_kill_while_a_submit_is_held(self):
        # DELETE while Auth0 holds the answer of an accepted import ("jobs
        # already at Auth0, or leaving at that moment, run to their end and
        # are still tracked"), then a crash: the chunk left submitting may
        # be at Auth0, so it is resubmitted to learn its fate, and the
        # cancelled import's counters still equal what Auth0 holds.
        with pipeline() as p:
            try:
                p.faults(endpoint="users-imports", skip=2, next=1, action="slow", seconds=SLOW)
                users = make_users(3000)
                imp = p.post_users(users)
                r = wait_request(p, lambda r: r["endpoint"] == "users-imports"
                                 and r.get("fault") == "slow", timeout=60, what="the held answer")
                lost = chunk_of(r["form"]["external_id"])
                status, _, _ = p.d.request("DELETE", "/v1/imports/" + imp)
                self.assertEqual(status, 202)
                at_crash = {}
                seq = crash_restart(p, lambda d: at_crash.update(store_chunks(d, imp)))
                self.assertEqual(at_crash[lost][0], "submitting", at_crash)
                o = p.wait(imp, states=("cancelled",), timeout=60)
                s = p.stats()
                reqs = p.all_requests()
                acc = accepted_by_chunk(reqs)
                self.assertEqual(len(acc[lost]), 2, acc)
                # Nothing else was submitted after the cancel: only the
                # chunks left submitting (another may have been leaving).
                after = {chunk_of(ext) for _, ext, _, _, _ in submissions(
                    [x for x in reqs if x["seq"] > seq])}
                self.assertIn(lost, after)
                self.assertEqual(after, {k for k, v in at_crash.items() if v[0] == "submitting"})
                u = o["users"]
                self.assertEqual(u["inserted"], s["users_inserted"], (u, s))
                self.assertEqual(u["assumed"], sum(at_crash[k][2] for k, v in acc.items()
                                                   if len(v) == 2), u)
                self.assertEqual((u["failed"], u["pending"]), (0, 0), u)
                self.assertEqual(u["inserted"] + u["not_submitted"], 3000, u)
                self.assertEqual(s["users_inserted_more_than_once"], 0, s)
                c = o["chunks"]
                self.assertEqual(c["completed"] + c["cancelled"], c["total"], c)
            finally:
                cleanup_olds(p)

    def test_9_import_fails_as_a_whole_then_kill_while_a_submit_is_held(self):
        # Auth0 holds the answer of an accepted import while another
        # chunk's submission is refused for good (401 after a token
        # refresh: the whole import fails), then a crash. After the restart
        # the failed import settles: the chunk left submitting (it may be
        # at Auth0) is resubmitted once — nothing else — and its users
        # count as what Auth0 holds; no chunk left submitting, no user
        # pending.
        with pipeline() as p:
            try:
                p.faults(scripts=[
                    {"endpoint": "users-imports", "skip": 2, "next": 1, "action": "slow",
                     "seconds": SLOW},
                    {"endpoint": "users-imports", "skip": 2, "next": 2, "status": 401}])
                users = make_users(3000)
                imp = p.post_users(users)
                wait_for(lambda: p.import_object(imp)["state"] == "failed", 30, "the import failed")
                r = wait_request(p, lambda r: r["endpoint"] == "users-imports"
                                 and r.get("fault") == "slow", timeout=30, what="the held answer")
                held_chunk = chunk_of(r["form"]["external_id"])
                at_crash = {}
                seq = crash_restart(p, lambda d: at_crash.update(store_chunks(d, imp)))
                self.assertEqual(at_crash[held_chunk][0], "submitting", at_crash)

                def settled():
                    o = p.import_object(imp)
                    return o if o["chunks"]["submitting"] == 0 and o["users"]["pending"] == 0 else None
                o = wait_for(settled, 30, "the failed import settled")
                self.assertEqual(o["state"], "failed", o)
                after = [x for x in p.all_requests() if x["seq"] > seq]
                self.assertEqual({chunk_of(ext) for _, ext, _, _, _ in submissions(after)},
                                 {held_chunk}, "only the chunk of unknown fate is resubmitted")
                u = o["users"]
                s = p.stats()
                self.assertEqual(u["total"], u["inserted"] + u["failed"] + u["not_submitted"], u)
                self.assertEqual(u["inserted"], s["users_inserted"], (u, s))
                self.assertEqual(u["assumed"], at_crash[held_chunk][2], u)
                self.assertEqual(s["users_inserted_more_than_once"], 0, s)
            finally:
                cleanup_olds(p)


if __name__ == "__main__":
    unittest.main()
