"""Sharing one tenant: imports are served round-robin (a big import does
not starve a small later one), and a reload gives the tenant new
credentials without disturbing what runs."""
import os
import shutil
import signal
import sys
import tempfile
import time
import unittest

sys.path.insert(0, os.path.dirname(__file__))
from pipeline_harness import Pipeline, make_users  # noqa: E402


class PipelineSharing(unittest.TestCase):
    def test_a_small_import_is_not_starved_by_a_big_one(self):
        with Pipeline(sandbox_args=["--rate", "20", "--burst", "20", "--ms-per-user", "0.3"]) as p:
            big = p.post_users(make_users(30000))
            p.wait(big, pred=lambda o: o["chunks"]["submitted"] + o["chunks"]["completed"] > 0,
                   timeout=60)
            small = p.post_users(make_users(300, start=100000))
            o = p.wait(small, timeout=60)
            self.assertEqual(o["state"], "completed", o)
            ob = p.import_object(big)
            self.assertIn(ob["state"], ("running", "queued"), ob)
            self.assertGreater(ob["chunks"]["queued"], 0, ob)
            ob = p.wait(big, timeout=120)
            self.assertEqual(ob["state"], "completed", ob)
            s = p.stats()
            self.assertEqual(s["users"], 30300, s)
            self.assertEqual(s["users_inserted_more_than_once"], 0, s)

    def test_reload_takes_new_credentials(self):
        tmp = tempfile.mkdtemp(prefix="importd-reload-")
        conf = os.path.join(tmp, "importd.conf")
        with open(conf, "w") as f:
            f.write("[tenant.default]\nmax_concurrent_jobs = 2\n")
        try:
            with Pipeline(daemon_args=["--config", conf]) as p:
                def reload():
                    n = p.d.log().count("configuration reloaded")
                    p.d.proc.send_signal(signal.SIGHUP)
                    deadline = time.time() + 10
                    while p.d.log().count("configuration reloaded") <= n and time.time() < deadline:
                        time.sleep(0.05)
                    self.assertGreater(p.d.log().count("configuration reloaded"), n)

                def token_requests():
                    return [r for r in p.all_requests() if r.get("path") == "/oauth/token"]

                imp = p.post_users(make_users(500))
                self.assertEqual(p.wait(imp)["state"], "completed")
                self.assertEqual(len(token_requests()), 1)

                # The same configuration: the client and its token are kept.
                reload()
                imp2 = p.post_users(make_users(500, start=500))
                self.assertEqual(p.wait(imp2)["state"], "completed")
                self.assertEqual(len(token_requests()), 1, token_requests())
                self.assertEqual(p.stats()["tokens_issued"], 1)

                # A changed credential (the audience, now explicit): a new
                # client, with its own token.
                with open(conf, "w") as f:
                    f.write("[tenant.default]\nmax_concurrent_jobs = 2\naudience = %s/api/v2/\n"
                            % p.sb.base)
                reload()
                imp3 = p.post_users(make_users(500, start=1000))
                self.assertEqual(p.wait(imp3)["state"], "completed")
                s = p.stats()
                self.assertEqual(s["users"], 1500, s)
                self.assertEqual(s["tokens_issued"], 2, s)  # the new client got its own token
                self.assertEqual(len(token_requests()), 2)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    unittest.main()
