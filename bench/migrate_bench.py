#!/usr/bin/env python3
"""Tenant-to-tenant migration benchmark: N users seeded in a `source`
emulator are exported, converted, filtered with a jq program and imported
into a `default` emulator by one POST /v1/migrations. Prints the time of
each stage, the users kept, and the daemon's peak RSS and CPU time.

    IMPORTD_BIN=build/auth0-importd SANDBOX_BIN=build/sandbox/auth0-sandbox \\
        bench/migrate_bench.py [--users 50000] [--sandbox-args "--rate 20 --burst 20 --ms-per-user 0.1"]

The emulators run at test speed by default, so the figure measures the
daemon's own work (export download, conversion, filter, validation, import
pacing) rather than Auth0's emulated job time.
"""
import argparse
import os
import sys
import time

here = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(here, "..", "tests", "e2e"))
import harness  # noqa: E402
import test_migrate as tm  # noqa: E402


def proc_figures(pid):
    hwm = cpu = None
    try:
        with open("/proc/%d/status" % pid) as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    hwm = int(line.split()[1]) // 1024
        with open("/proc/%d/stat" % pid) as f:
            fields = f.read().rsplit(")", 1)[1].split()
            cpu = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except OSError:
        pass
    return hwm, cpu


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--users", type=int, default=50000)
    ap.add_argument("--sandbox-args", default="--rate 20 --burst 20 --ms-per-user 0.1")
    a = ap.parse_args()
    tm.FAST = tuple(a.sandbox_args.split())

    with tm.Tenants() as t:
        users = tm.make_users(a.users)
        t0 = time.time()
        t.seed(t.src, users)
        print("seeded %d users in %.1f s" % (a.users, time.time() - t0))
        body = {"source_tenant": "source", "source_connection_id": tm.CONN,
                "target_tenant": "default", "target_connection_id": tm.CONN,
                "filter": 'select(.app_metadata.plan == "pro") | .user_metadata.migrated = true'}
        t0 = time.time()
        r = t.d.post("/v1/migrations", body)
        assert r.status == 202, r
        mid = r.json()["id"]
        seen, marks = None, {}
        while True:
            m = t.get("/v1/migrations/" + mid)
            if m["state"] != seen:
                seen = m["state"]
                marks[seen] = time.time() - t0
            if m["state"] in tm.ENDED:
                break
            time.sleep(0.2)
        total = time.time() - t0
        hwm, cpu = proc_figures(t.d.proc.pid)
        st = m["stages"]
        got = len(t.users(t.dst))
        print("state %s after %.1f s (%.0f users/s of the source)" % (m["state"], total, a.users / total))
        for name, at in marks.items():
            print("  entered %-22s at %6.1f s" % (name, at))
        print("  export %d, convert in %d out %d, filter kept %d dropped %d, imported %d, target holds %d"
              % (st["export"]["users"], st["convert"]["users_in"], st["convert"]["users_out"],
                 st["filter"]["kept"], st["filter"]["dropped"],
                 st["import"]["users"]["inserted"], got))
        print("daemon peak RSS %s MiB, CPU %s s" % (hwm, cpu))


if __name__ == "__main__":
    main()
