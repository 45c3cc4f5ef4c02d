#!/usr/bin/env python3
"""End-to-end pipeline benchmark: the real daemon imports N users into the
emulator, and the wall time is compared with the floor Auth0's limits allow:

  floor = max(sum of job durations / max_concurrent_jobs,
              longest job,
              minimal requests / rate)

minimal requests = one submit and one poll per job, plus one errors fetch
per job with failed users (the token grant is not a Management API call).
Wall time runs from the moment the import is queued (validation done) to
the moment the daemon reports it ended (seen by polling the import every
0.1 s); `emulator_seconds` is the same span on the emulator's clock, from
the first submit's arrival to the answer of the last Management request.

From the emulator's request log (`/__sandbox/requests`) and jobs it also
prints where the time between two jobs of a slot goes (`slot_gaps`: a job's
end -> the poll that saw it arriving -> its answer -> the next submit
arriving -> that job created), and the requests per chunk.

  python3 bench/pipeline_bench.py [--users 100000] [--build build]
          [--ms-per-user 0.5] [--rate 5] [--burst 10]
          [--wrk] [--wrk-after 20] [--dump FILE]

--wrk runs `wrk -t1 -c8 -d10s --latency` on GET /v1/imports/{id} once the
import has been submitting for --wrk-after seconds and prints its p50/p99.
The daemon's peak RSS (VmHWM) and CPU time (utime+stime from /proc) while
the import runs are always printed. Prints one JSON object; a benchmark,
not a test. Python standard library only.
"""
import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests", "e2e"))

CLK_TCK = os.sysconf("SC_CLK_TCK")


def proc_cpu_seconds(pid):
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    # utime, stime are fields 14 and 15 (1-based); fields[0] is field 3
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def proc_status_kib(pid, key):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1])
    return 0


def wrk_latency(url, seconds):
    """p50/p99 in ms and requests/s of wrk -t1 -c8 on url."""
    out = subprocess.run(["wrk", "-t1", "-c8", "-d%ds" % seconds, "--latency", url],
                         capture_output=True, text=True, timeout=seconds + 30).stdout

    def ms(tok):
        m = re.match(r"([\d.]+)(us|ms|s)$", tok)
        v = float(m.group(1))
        return {"us": v / 1000.0, "ms": v, "s": v * 1000.0}[m.group(2)]
    res = {}
    for line in out.splitlines():
        parts = line.split()
        if len(parts) == 2 and parts[0] in ("50%", "75%", "90%", "99%"):
            res["p" + parts[0][:-1] + "_ms"] = round(ms(parts[1]), 3)
        elif line.startswith("Requests/sec:"):
            res["requests_per_s"] = float(parts[1])
        elif "requests in" in line:
            res["requests"] = int(parts[0])
        elif line.strip().startswith("Non-2xx"):
            res["non_2xx"] = int(parts[-1])
        elif line.strip().startswith("Socket errors"):
            res["socket_errors"] = line.strip()
    return res


def quantiles(v):
    if not v:
        return None
    v = sorted(v)
    pick = lambda q: v[min(len(v) - 1, int(round(q * (len(v) - 1))))]
    return {"min": round(v[0], 3), "p50": round(pick(0.5), 3), "p90": round(pick(0.9), 3),
            "max": round(v[-1], 3), "mean": round(statistics.mean(v), 3)}


def analyse(jobs, reqs, max_jobs):
    """Per-slot gaps and requests per chunk, from the emulator's own clock."""
    imports = [j for j in jobs if j.get("type", "users_import") == "users_import"]
    by_id = {j["id"]: j for j in imports}
    mgmt = [r for r in reqs if r.get("endpoint") not in ("token", None)]
    per_job = {jid: {"submits": 0, "polls": 0, "errors": 0} for jid in by_id}
    polls_of = {jid: [] for jid in by_id}
    submits = []
    for r in mgmt:
        path = r.get("path", "")
        if r.get("endpoint") == "users-imports":
            submits.append(r)
            if r.get("job_id") in per_job:
                per_job[r["job_id"]]["submits"] += 1
            continue
        m = re.match(r"/api/v2/jobs/([^/?]+)(/errors)?", path)
        if not m or m.group(1) not in per_job:
            continue
        if m.group(2):
            per_job[m.group(1)]["errors"] += 1
        else:
            per_job[m.group(1)]["polls"] += 1
            polls_of[m.group(1)].append(r)
    out = {}
    if imports and "created_ms" in imports[0]:
        # A slot frees when its job ends; the daemon sees it with the first
        # poll after the end, and the next job of the import starts when
        # that submit is handled.
        order = sorted(imports, key=lambda j: j["created_ms"])
        ends = sorted(j["ends_ms"] for j in imports)
        late, answer, to_submit, submit_in, gap = [], [], [], [], []
        for j in order[max_jobs:]:
            # the slot this job took: the latest end before it was created
            prev_end = max([e for e in ends if e <= j["created_ms"]], default=None)
            if prev_end is None:
                continue
            ended = [jj for jj in imports if jj["ends_ms"] == prev_end][0]
            seen = [p for p in polls_of[ended["id"]] if p.get("handled_ms", 0) >= prev_end]
            sub = [s for s in submits if s.get("job_id") == j["id"]]
            gap.append((j["created_ms"] - prev_end) / 1000.0)
            if seen and sub and "answered_ms" in seen[0]:
                p = seen[0]
                late.append((p["time_ms"] - prev_end) / 1000.0)
                answer.append((p["answered_ms"] - p["time_ms"]) / 1000.0)
                to_submit.append((sub[0]["time_ms"] - p["answered_ms"]) / 1000.0)
                submit_in.append((j["created_ms"] - sub[0]["time_ms"]) / 1000.0)
        out["slot_gaps"] = {
            "count": len(gap),
            "total_seconds": round(sum(gap), 2),
            "end_to_next_created": quantiles(gap),
            "end_to_poll_arrival": quantiles(late),
            "poll_arrival_to_answer": quantiles(answer),
            "poll_answer_to_submit_arrival": quantiles(to_submit),
            "submit_arrival_to_created": quantiles(submit_in),
        }
        polls_running = []
        for j in imports:
            n = sum(1 for p in polls_of[j["id"]] if p.get("handled_ms", 0) < j["ends_ms"])
            polls_running.append(n)
        out["polls_before_end_per_job"] = quantiles(polls_running)
        if mgmt:
            t0 = submits[0]["time_ms"] if submits else mgmt[0]["time_ms"]
            t1 = max(r.get("answered_ms", r["time_ms"]) for r in mgmt)
            out["emulator_seconds"] = round((t1 - t0) / 1000.0, 2)
    n = max(1, len(per_job))
    out["requests_per_chunk"] = {
        "submits": round(sum(v["submits"] for v in per_job.values()) / n, 3),
        "polls": round(sum(v["polls"] for v in per_job.values()) / n, 3),
        "errors": round(sum(v["errors"] for v in per_job.values()) / n, 3),
        "max_polls": max((v["polls"] for v in per_job.values()), default=0),
    }
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--users", type=int, default=100000)
    ap.add_argument("--build", default=os.path.join(HERE, "..", "build"))
    ap.add_argument("--ms-per-user", default="0.5")
    ap.add_argument("--rate", default="5")
    ap.add_argument("--burst", default="10")
    ap.add_argument("--max-concurrent-jobs", type=int, default=2)
    ap.add_argument("--wrk", action="store_true",
                    help="measure GET /v1/imports/{id} latency with wrk during the run")
    ap.add_argument("--wrk-after", type=float, default=20.0,
                    help="seconds after the import is queued to start wrk")
    ap.add_argument("--wrk-seconds", type=int, default=10)
    ap.add_argument("--dump", help="write the emulator's jobs and request log to this JSON file")
    a = ap.parse_args()
    os.environ.setdefault("IMPORTD_BIN", os.path.join(a.build, "auth0-importd"))
    os.environ.setdefault("SANDBOX_BIN", os.path.join(a.build, "sandbox", "auth0-sandbox"))
    import pipeline_harness as ph  # after the environment is set
    import sandbox_harness
    sandbox_harness.SANDBOX_BIN = os.environ["SANDBOX_BIN"]

    args = ["--ms-per-user", a.ms_per_user, "--rate", a.rate, "--burst", a.burst,
            "--max-active-jobs", str(a.max_concurrent_jobs)]
    wrk = {}
    with ph.Pipeline(sandbox_args=args) as p:
        pid = p.d.pid()
        body_users = ph.make_users(a.users)
        t_post = time.time()
        imp = p.post_users(body_users)
        del body_users
        o = p.wait(imp, states=("queued", "running", "completed", "completed_with_errors",
                                "failed"), timeout=3600)
        t_queued = time.time()
        cpu0 = proc_cpu_seconds(pid)
        th = None
        if a.wrk:
            url = "http://%s/v1/imports/%s" % (p.d.address, imp)

            def run_wrk():
                time.sleep(a.wrk_after)
                c0 = proc_cpu_seconds(pid)
                wrk.update(wrk_latency(url, a.wrk_seconds))
                wrk["daemon_cpu_seconds_during_wrk"] = round(proc_cpu_seconds(pid) - c0, 2)
            th = threading.Thread(target=run_wrk, daemon=True)
            th.start()
        rss_peak_run = 0
        deadline = time.time() + 3600
        while True:
            o = p.import_object(imp)
            rss_peak_run = max(rss_peak_run, proc_status_kib(pid, "VmRSS"))
            if o["state"] in ("completed", "completed_with_errors", "failed", "cancelled"):
                break
            if time.time() > deadline:
                raise AssertionError("timed out")
            time.sleep(0.1)
        t_end = time.time()
        cpu1 = proc_cpu_seconds(pid)
        hwm = proc_status_kib(pid, "VmHWM")
        if th:
            th.join()
        s = p.stats()
        jobs = p.sb.admin("GET", "jobs")["jobs"]
        reqs = p.all_requests()

    if a.dump:
        with open(a.dump, "w") as f:
            json.dump({"jobs": jobs, "requests": reqs, "t_queued": t_queued, "t_end": t_end}, f)
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
        "daemon": {
            "cpu_seconds_while_importing": round(cpu1 - cpu0, 2),
            "rss_peak_while_importing_kib": rss_peak_run,
            "vmhwm_kib": hwm,
        },
    }
    out.update(analyse(jobs, reqs, a.max_concurrent_jobs))
    if "emulator_seconds" in out and floor:
        out["emulator_ratio"] = round(out["emulator_seconds"] / floor, 3)
    if a.wrk:
        out["wrk_get_import"] = wrk
    print(json.dumps(out, indent=2))
    return 0 if o["state"] == "completed" else 1


if __name__ == "__main__":
    sys.exit(main())
