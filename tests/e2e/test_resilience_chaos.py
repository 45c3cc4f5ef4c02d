"""Repeated crashes at random moments: an import runs under light faults
while the daemon is SIGKILLed every second or so and restarted on the same
state dir. Whatever moment each kill hit (validating aside: the import is
queued first), the end state is exact: every user stored once at the
emulator, counters equal to its truth, and `assumed` equal to the users of
the chunks Auth0 received more than once."""
import collections
import os
import random
import sys
import unittest

sys.path.insert(0, os.path.dirname(__file__))
from resilience_helpers import (check_exact, chunk_of, chunk_users, cleanup_olds,  # noqa: E402
                                crash_restart, make_users, pipeline, submissions, wait_for)


def accepted_by_chunk(reqs):
    out = collections.defaultdict(list)
    for _, ext, _, job_id, _ in submissions(reqs):
        if job_id:
            out[chunk_of(ext)].append(job_id)
    return out


class ResilienceChaos(unittest.TestCase):
    def run_chaos(self, seed, sandbox_args, kills, upsert=False):
        rnd = random.Random(seed)
        with pipeline(sandbox_args) as p:
            try:
                users = make_users(3000)
                imp = p.post_users(users, upsert=upsert)
                wait_for(lambda: p.import_object(imp)["state"] in ("queued", "running"), 30,
                         "the import queued")
                for _ in range(kills):
                    # Some kills while submits are in flight, some later.
                    t = rnd.uniform(0.2, 1.2)
                    try:
                        wait_for(lambda: p.import_object(imp)["state"] not in
                                 ("queued", "running"), t, "nothing")
                        break   # ended before this kill
                    except AssertionError:
                        pass
                    crash_restart(p)
                o = p.wait(imp, timeout=120)
                acc = accepted_by_chunk(p.all_requests())
                sizes = chunk_users(p, imp)
                self.assertEqual(sorted(acc), sorted(sizes), acc)
                again = [k for k, v in acc.items() if len(v) > 1]
                # Under upsert every later job of a chunk updated its users.
                upd = {}
                if upsert:
                    upd = {u["email"]: u["updated"] for u in p.sb.users() if u["updated"]}
                    self.assertEqual(sum(upd.values()),
                                     sum(sizes[k] * (len(acc[k]) - 1) for k in again))
                check_exact(self, p, imp, o, users, assumed=sum(sizes[k] for k in again),
                            updated_emails=upd)
                return len(again), len(getattr(p, "olds", []))
            finally:
                cleanup_olds(p)

    def test_random_kills_under_faults(self):
        args = ["--rate", "20", "--burst", "20", "--ms-per-user", "1",
                "--fault-5xx", "0.05", "--fault-slow", "0.2:0.8", "--seed", "17"]
        again, kills = self.run_chaos(1, args, kills=6)
        self.assertGreater(kills, 2)

    def test_random_kills_under_upsert(self):
        args = ["--rate", "20", "--burst", "20", "--ms-per-user", "1",
                "--fault-slow", "0.3:0.8", "--seed", "19"]
        again, kills = self.run_chaos(2, args, kills=5, upsert=True)
        self.assertGreater(kills, 2)


if __name__ == "__main__":
    unittest.main()
