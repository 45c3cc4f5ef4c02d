#!/usr/bin/env python3
"""End-to-end pipeline benchmark: the real daemon imports N users into the
emulator, and the wall time is compared with the floor Auth0's limits allow:

  floor = max(sum of job durations / max_concurrent_jobs,
              longest job,
              minimal requests / rate)

minimal requests = one submit and one poll per job, plus one errors fetch
per job with failed users (the token grant is not a Management API call).
Wall time runs from the moment the import is queued (validation done) to
the moment the daemon reports it ended.

  python3 bench/pipeline_bench.py [--users 100000] [--build build]
          [--ms-per-user 0.5] [--rate 5] [--burst 10]

Prints one JSON object. Python standard library only.
"""
import argparse
import json
import os
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests", "e2e"))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--users", type=int, default=100000)
    ap.add_argument("--build", default=os.path.join(HERE, "..", "build"))
    ap.add_argument("--ms-per-user", default="0.5")
    ap.add_argument("--rate", default="5")
    ap.add_argument("--burst", default="10")
    ap.add_argument("--max-concurrent-jobs", type=int, default=2)
    a = ap.parse_args()
    os.environ.setdefault("IMPORTD_BIN", os.path.join(a.build, "auth0-importd"))
    os.environ.setdefault("SANDBOX_BIN", os.path.join(a.build, "sandbox", "auth0-sandbox"))
    import pipeline_harness as ph  # after the environment is set
    import sandbox_harness
    sandbox_harness.SANDBOX_BIN = os.environ["SANDBOX_BIN"]

    args = ["--ms-per-user", a.ms_per_user, "--rate", a.rate, "--burst", a.burst,
            "--max-active-jobs", str(a.max_concurrent_jobs)]
    with ph.Pipeline(sandbox_args=args) as p:
        t_post = time.time()
        imp = p.post_users(ph.make_users(a.users))
        o = p.wait(imp, states=("queued", "running", "completed", "completed_with_errors",
                                "failed"), timeout=600)
        t_queued = time.time()
        o = p.wait(imp, timeout=3600)
        t_end = time.time()
        s = p.stats()
        jobs = p.sb.admin("GET", "jobs")["jobs"]
        reqs = p.all_requests()

    ms = float(a.ms_per_user)
    durations = [j.get("users_count", 0) * ms / 1000.0 for j in jobs if j.get("type", "users_import") == "users_import"]
    with_failures = sum(1 for j in jobs if (j.get("summary") or {}).get("failed", 0) > 0)
    minimal_requests = 2 * len(durations) + with_failures
    floor_parts = {
        "jobs_sum_over_cap": sum(durations) / a.max_concurrent_jobs,
        "longest_job": max(durations) if durations else 0.0,
        "requests_over_rate": minimal_requests / float(a.rate),
    }
    floor = max(floor_parts.values())
    wall = t_end - t_queued
    mgmt = [r for r in reqs if r.get("endpoint") not in ("token", None)]
    out = {
        "users": a.users,
        "state": o["state"],
        "inserted": o["users"]["inserted"],
        "sandbox_users": s["users"],
        "inserted_more_than_once": s["users_inserted_more_than_once"],
        "jobs": len(durations),
        "validation_seconds": round(t_queued - t_post, 2),
        "wall_seconds": round(wall, 2),
        "floor_seconds": round(floor, 2),
        "floor_parts": {k: round(v, 2) for k, v in floor_parts.items()},
        "ratio": round(wall / floor, 3) if floor else None,
        "requests": len(mgmt),
        "minimal_requests": minimal_requests,
        "rate_limited_429": s["rate_limited"],
        "active_jobs_429": s["active_jobs_429"],
        "early_after_429": s["early_after_429"],
        "max_active_import_jobs": s["max_active_import_jobs"],
        "largest_request_body": s["largest_request_body"],
    }
    print(json.dumps(out, indent=2))
    return 0 if o["state"] == "completed" else 1


if __name__ == "__main__":
    sys.exit(main())
