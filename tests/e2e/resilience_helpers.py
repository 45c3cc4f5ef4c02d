"""Helpers for the resilience end-to-end tests (test_resilience_*.py): the
daemon against auth0-sandbox under faults and crashes, judged on what the
emulator received and holds.

On top of pipeline_harness.Pipeline. Python standard library only.
"""
import json
import os
import time

from imports_helpers import Daemon
from pipeline_harness import Pipeline, TEST_SPEED, make_users  # noqa: F401

# Small chunks so that a few thousand users make about ten Auth0 jobs: the
# faults then land on several chunks (a user of make_users is ~130 bytes).
CHUNK_ENV = {"IMPORTD_CHUNK_BYTES": "40000"}
TERMINAL = ("completed", "completed_with_errors", "failed", "cancelled")


def pipeline(sandbox_args=None, env=None):
    e = dict(CHUNK_ENV)
    e.update(env or {})
    return Pipeline(sandbox_args=TEST_SPEED if sandbox_args is None else sandbox_args, env=e)


def emails(users):
    return {u["email"].lower() for u in users}


def wait_for(pred, timeout, what, interval=0.05):
    deadline = time.time() + timeout
    while time.time() < deadline:
        v = pred()
        if v:
            return v
        time.sleep(interval)
    raise AssertionError("timed out waiting for " + what)


def wait_request(p, pred, timeout=30, what="a request at the emulator"):
    """The first request of the emulator's log matching pred (the log entry
    is written when the request is handled, before a `slow` answer)."""
    return wait_for(lambda: next((r for r in p.all_requests() if pred(r)), None), timeout, what)


def crash_restart(p, inspect=None):
    """SIGKILL the daemon (a crash: nothing runs in it), call
    inspect(state_dir) on what it left, and start another daemon on the same
    state directory, with the same tenant. Returns the emulator's last
    request seq at the moment of the kill."""
    old = p.d
    old.kill()
    seq = p.requests(0)["last_seq"]
    p.kill_seqs = getattr(p, "kill_seqs", []) + [seq]
    if inspect:
        inspect(old.state_dir)
    d = Daemon(state_dir=old.state_dir, env=old.extra_env)
    # The old instance's temp dir holds the state dir: keep it until the end.
    p.olds = getattr(p, "olds", []) + [old]
    d.start()
    p.d = d
    return seq


def cleanup_olds(p):
    for old in getattr(p, "olds", []):
        old.cleanup()


def submissions(reqs):
    """The import submissions of a request log: (seq, external_id, status,
    job_id, fault)."""
    out = []
    for r in reqs:
        if r.get("endpoint") != "users-imports":
            continue
        form = r.get("form") or {}
        out.append((r["seq"], form.get("external_id"), r.get("status"), r.get("job_id"),
                    r.get("fault")))
    return out


def no_early_requests(reqs, tolerance=0.25, kill_seqs=(), max_in_flight=4):
    """Zero requests while the daemon should have been waiting after a 429.
    The emulator flags every request that arrived before the wait a 429 gave
    had passed; one that was already on its way when the 429 was answered
    (another request in flight at that moment) is not the daemon's fault, so
    a flagged request must come within `tolerance` seconds of a 429's
    arrival (measured: under 25 ms), never later, and at most
    `max_in_flight` of them per 429 (what the daemon may have in flight). A daemon killed after a 429 takes what it knew
    with it: its successor is not held to that wait (kill_seqs: the last
    request seq at each kill). Returns the number of 429s seen."""
    last429 = None
    n429 = 0
    excused = False
    in_flight = 0
    for r in reqs:
        if last429 is not None and any(last429["seq"] <= k < r["seq"] for k in kill_seqs):
            excused = True
        if r.get("early_after_429") and not excused:
            in_flight += 1
            assert last429 is not None and r["time_ms"] - last429["time_ms"] < tolerance * 1000 \
                and in_flight <= max_in_flight, \
                "request sent while it should have waited: %s (last 429: %s)" % (r, last429)
        if r.get("status") == 429:
            last429 = r
            n429 += 1
            excused = False
            in_flight = 0
    return n429


def active_jobs_429s(reqs):
    """The "N active import users jobs" refusals of a request log: import
    submissions answered 429 that were neither injected nor early."""
    return [r for r in reqs if r.get("endpoint") == "users-imports" and r.get("status") == 429
            and not r.get("fault") and not r.get("early_after_429")]


def no_submit_during_pause(tc, reqs, pause_s=15, tolerance=0.5):
    """After an active-jobs 429 with at most one job of its own known
    active, the daemon waits 15 s before submitting again (DESIGN.md):
    only submissions already on their way may come sooner. Call only where
    the emulator's rate-limit bucket never runs dry."""
    subs = [r for r in reqs if r.get("endpoint") == "users-imports"]
    for t in active_jobs_429s(reqs):
        for r in subs:
            dt = (r["time_ms"] - t["time_ms"]) / 1000.0
            if tolerance < dt < pause_s - tolerance:
                tc.fail("submission %.1f s after an active-jobs 429: %s" % (dt, r))


def check_exact(tc, p, imp, o, users, assumed=0, updated_emails=()):
    """The import ended `completed`; the emulator holds every user of the
    file exactly once (insert count 1 each, none updated but those of
    updated_emails — a set: once each, or email -> times — by upsert
    resubmissions), the import's
    counters equal that truth (assumed as given), no request body over
    512000 bytes, never more than 2 active jobs, no request while waiting.
    Returns (stats, request log)."""
    tc.assertEqual(o["state"], "completed", json.dumps(o)[:2000])
    s = p.stats()
    held = p.sb.users()
    want = emails(users)
    got = {}
    for u in held:
        got[u["email"].lower()] = got.get(u["email"].lower(), 0) + 1
    tc.assertEqual(set(got), want, "the emulator does not hold exactly the file's users")
    tc.assertTrue(all(n == 1 for n in got.values()), "a user stored twice")
    if isinstance(updated_emails, dict):
        upd = {e.lower(): n for e, n in updated_emails.items()}
    else:
        upd = {e.lower(): 1 for e in updated_emails}
    tc.assertEqual([u for u in held if u["inserted"] != 1 or
                    u["updated"] != upd.get(u["email"].lower(), 0)], [],
                   "every user inserted exactly once, updated only by an upsert resubmission")
    tc.assertEqual(s["users_inserted_more_than_once"], 0, s)
    tc.assertLessEqual(s["largest_request_body"], 512000, s)
    tc.assertLessEqual(s["max_active_import_jobs"], 2, s)
    tc.assertEqual(s["completion_emails"], 0, s)
    reqs = p.all_requests()
    tc.assertTrue(all(r.get("body_bytes", 0) <= 512000 for r in reqs))
    no_early_requests(reqs, kill_seqs=getattr(p, "kill_seqs", ()))
    u = o["users"]
    tc.assertEqual(u["total"], len(users), u)
    tc.assertEqual(u["inserted"], len(held), u)
    tc.assertEqual(u["inserted"], s["users_inserted"], (u, s))
    tc.assertEqual((u["failed"], u["pending"], u["updated"], u["invalid"], u["not_submitted"]),
                   (0, 0, 0, 0, 0), u)
    tc.assertEqual(u["assumed"], assumed, u)
    c = o["chunks"]
    tc.assertEqual(c["completed"], c["total"], c)
    return s, reqs


def jobs_by_id(p):
    return {j["id"]: j for j in p.sb.admin("GET", "jobs")["jobs"]}


def chunk_users(p, imp):
    """chunk number -> users, from the daemon's GET /v1/imports/{id}/jobs."""
    status, o = p.d.get_json("/v1/imports/%s/jobs?limit=500" % imp)
    assert status == 200, o
    return {j["chunk"]: j["users"] for j in o["jobs"]}


def chunk_of(external_id):
    return int(external_id.rsplit("-", 1)[1])


def here():
    return os.path.dirname(os.path.abspath(__file__))
