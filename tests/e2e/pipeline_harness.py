"""The pipeline end-to-end tests: the real daemon against auth0-sandbox.

Pipeline(sandbox_args, daemon_args) starts the emulator (sandbox_harness) and
the daemon (imports_helpers.Daemon) with tenant "default" pointing at it, and
offers what the tests assert on: the import object, the emulator's stats,
users and request log. Python standard library only.
"""
import json
import time

from imports_helpers import Daemon, multipart, user
from sandbox_harness import CONN, FAST, Sandbox

TEST_SPEED = FAST  # --rate 20 --burst 20 --ms-per-user 0.1


class Pipeline:
    def __init__(self, sandbox_args=None, daemon_args=(), env=None, client_secret="e2e-secret"):
        self.sb = Sandbox(TEST_SPEED if sandbox_args is None else sandbox_args,
                          client_id="e2e-client", client_secret=client_secret)
        e = {"AUTH0_DOMAIN": self.sb.base, "AUTH0_CLIENT_ID": "e2e-client",
             "AUTH0_CLIENT_SECRET": client_secret}
        e.update(env or {})
        self.d = Daemon(extra_args=daemon_args, env=e)

    def __enter__(self):
        try:
            self.d.start()
        except BaseException:
            self.d.cleanup()
            self.sb.__exit__(AssertionError, None, None)
            raise
        return self

    def __exit__(self, *exc):
        try:
            if exc[0] is None:
                self.d.stop()
        finally:
            self.d.cleanup()
            self.sb.__exit__(*exc)
        return False

    # --- the daemon side
    def post_users(self, users, **fields):
        f = {"connection_id": CONN}
        f.update({k: str(v).lower() if isinstance(v, bool) else str(v) for k, v in fields.items()})
        body, ctype = multipart(f, content=json.dumps(users).encode())
        status, _, data = self.d.request("POST", "/v1/imports", body=body,
                                         headers={"Content-Type": ctype})
        o = json.loads(data)
        assert status == 202, (status, o)
        return o["id"]

    def import_object(self, imp_id):
        status, o = self.d.get_json("/v1/imports/" + imp_id)
        assert status == 200, o
        return o

    def wait(self, imp_id, states=("completed", "completed_with_errors", "failed", "cancelled"),
             timeout=120, pred=None):
        deadline = time.time() + timeout
        o = None
        while time.time() < deadline:
            o = self.import_object(imp_id)
            if (pred and pred(o)) or (not pred and o["state"] in states):
                return o
            time.sleep(0.1)
        raise AssertionError("import %s: timed out waiting, last %s\n%s" % (
            imp_id, json.dumps(o)[:2000], self.d.log()[-4000:]))

    def errors(self, imp_id):
        status, o = self.d.get_json("/v1/imports/%s/errors" % imp_id)
        assert status == 200, o
        return o

    # --- the emulator side
    def stats(self):
        return self.sb.stats()

    def requests(self, since=0):
        return self.sb.admin("GET", "requests?since=%d" % since)

    def all_requests(self):
        out, since = [], 0
        while True:
            r = self.requests(since)
            batch = r.get("requests", [])
            out += batch
            if not batch or r.get("last_seq", since) == since:
                return out
            since = r["last_seq"]

    def faults(self, **kw):
        return self.sb.admin("POST", "faults", kw)


def make_users(n, start=0, **extra):
    return [user(i, **extra) for i in range(start, start + n)]


def _t(r):
    # "2026-11-27T16:52:19.943Z" -> seconds since midnight (same day in a test)
    hms = r["time"].split("T")[1].rstrip("Z").split(":")
    return int(hms[0]) * 3600 + int(hms[1]) * 60 + float(hms[2])


def check_no_early(p, s):
    """No request while the daemon should have been waiting after a 429.
    The emulator also flags requests that were already on their way when
    it answered 429 (another request in flight, stamped when the emulator
    gets to it, which can be hundreds of ms later while it applies a job's
    users): at most one per 429, and right after it. A deterministic test
    (test_pipeline_faults) checks the wait itself with nothing else in
    flight."""
    if s["early_after_429"] == 0:
        return
    reqs = p.all_requests()
    last429 = None
    for r in reqs:
        if r.get("early_after_429"):
            assert last429 is not None and _t(r) - _t(last429) < 1.0, (r, last429)
        if r.get("status") == 429:
            last429 = r
    n429 = sum(1 for r in reqs if r.get("status") == 429)
    assert s["early_after_429"] <= n429, s


def check_truth(p, imp_id, o, total):
    """The sandbox holds every user exactly once, the counters equal its
    truth, no body over 512000, never more than 2 active jobs, and nothing
    sent early after a 429."""
    s = p.stats()
    assert s["users"] == total, s
    assert s["users_inserted"] == total, s
    assert s["users_inserted_more_than_once"] == 0, s
    assert s["largest_request_body"] <= 512000, s
    assert s["max_active_import_jobs"] <= 2, s
    check_no_early(p, s)
    assert s["completion_emails"] == 0, s
    u = o["users"]
    assert u["inserted"] == total, u
    assert u["failed"] == 0 and u["pending"] == 0, u
    assert u["total"] == u["invalid"] + u["inserted"] + u["updated"] + u["failed"] + \
        u["pending"] + u["not_submitted"], u
    return s
