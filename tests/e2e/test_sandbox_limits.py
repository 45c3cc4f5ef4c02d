"""auth0-sandbox: the tenant-wide token bucket and its headers, the two
different 429s, early requests after a 429, token expiry and revocation,
and faults as data (scripts and probabilities)."""
import http.client
import threading
import time
import unittest
import urllib.parse

from sandbox_harness import CONN, FASTER, Sandbox, request



class RateLimit(unittest.TestCase):
    def test_headers_and_global_limit(self):
        with Sandbox(["--rate", "0.5", "--burst", "3", "--ms-per-user", "0.1"]) as s:
            tok = s.token()                          # takes one token
            seen = []
            for _ in range(8):
                r = s.api("GET", "/api/v2/jobs/job_AAAAAAAAAAAAAAAA", token=tok)
                seen.append(r)
                if r.status == 429:
                    break
            self.assertEqual(seen[0].status, 404)
            self.assertEqual(seen[0].headers["x-ratelimit-limit"], "3")
            self.assertIn(int(seen[0].headers["x-ratelimit-remaining"]), (1, 2))
            r = seen[-1]
            self.assertEqual(r.status, 429)
            self.assertEqual(r.json(), {"statusCode": 429, "error": "Too Many Requests",
                                        "message": "Global limit has been reached",
                                        "errorCode": "too_many_requests"})
            self.assertNotIn("retry-after", r.headers)
            self.assertEqual(r.headers["x-ratelimit-remaining"], "0")
            reset = int(r.headers["x-ratelimit-reset"])
            self.assertGreaterEqual(reset, int(time.time()))
            self.assertLessEqual(reset, int(time.time()) + 3)
            # the admin API is never rate-limited
            for _ in range(5):
                s.stats()
            # a request before the reset it was told is counted as early
            s.api("GET", "/api/v2/jobs/job_AAAAAAAAAAAAAAAA", token=tok)
            st = s.stats()
            self.assertGreaterEqual(st["early_after_429"], 1)
            self.assertGreaterEqual(st["rate_limited"], 1)
            log = s.admin("GET", "requests?since=0")["requests"]
            self.assertTrue(any(x["early_after_429"] for x in log))
            # waiting until the reset is not early
            while time.time() < reset + 0.05:
                time.sleep(0.05)
            before = s.stats()["early_after_429"]
            r = s.api("GET", "/api/v2/jobs/job_AAAAAAAAAAAAAAAA", token=tok)
            self.assertEqual(r.status, 404)
            self.assertEqual(s.stats()["early_after_429"], before)

    def test_retry_after_when_asked(self):
        with Sandbox(["--rate", "0.5", "--burst", "1", "--retry-after", "on"]) as s:
            s.token_response()
            r = s.token_response()
            self.assertEqual(r.status, 429)
            self.assertIn(r.headers["retry-after"], ("1", "2"))
            self.assertEqual(r.json()["message"], "Global limit has been reached")


class Tokens(unittest.TestCase):
    def test_ttl_expiry_and_revocation(self):
        with Sandbox(FASTER + ["--token-ttl", "1"]) as s:
            r = s.token_response()
            self.assertEqual(r.json()["expires_in"], 1)
            tok = r.json()["access_token"]
            self.assertEqual(s.api("GET", "/api/v2/jobs/job_AAAAAAAAAAAAAAAA", token=tok).status, 404)
            deadline = time.monotonic() + 4
            while time.monotonic() < deadline:
                r = s.api("GET", "/api/v2/jobs/job_AAAAAAAAAAAAAAAA", token=tok)
                if r.status == 401:
                    break
                time.sleep(0.1)
            self.assertEqual(r.status, 401)
            self.assertEqual(r.json(), {"statusCode": 401, "error": "Unauthorized",
                                        "message": "Expired token received for JSON Web Token validation"})
            # the admin API changes the lifetime of tokens issued from now on
            s.admin("POST", "faults", {"token_ttl": 3600})
            tok = s.token_response().json()
            self.assertEqual(tok["expires_in"], 3600)
            s.admin("POST", "faults", {"expire_tokens": True})
            r = s.api("GET", "/api/v2/jobs/job_AAAAAAAAAAAAAAAA", token=tok["access_token"])
            self.assertEqual(r.json()["message"], "Expired token received for JSON Web Token validation")
            tok = s.token_response().json()["access_token"]
            s.admin("POST", "revoke-tokens", {})
            r = s.api("GET", "/api/v2/jobs/job_AAAAAAAAAAAAAAAA", token=tok)
            self.assertEqual((r.status, r.json()["message"]), (401, "Invalid token."))


class Faults(unittest.TestCase):
    def test_scripts(self):
        with Sandbox(FASTER) as s:
            tok = s.token()
            s.admin("POST", "faults", {"endpoint": "users-imports", "next": 2, "status": 503})
            for _ in range(2):
                r = s.submit([{"email": "a@example.com"}], token=tok)
                self.assertEqual(r.status, 503)
                self.assertTrue(r.headers["content-type"].startswith("text/html"))
                self.assertNotIn("x-ratelimit-limit", r.headers)
            self.assertEqual(s.submit([{"email": "a@example.com"}], token=tok).status, 202)
            self.assertEqual(s.stats()["import_jobs"], 1)

            s.admin("POST", "faults", {"endpoint": "job", "skip": 1, "next": 1, "status": 429})
            self.assertEqual(s.api("GET", "/api/v2/jobs/job_AAAAAAAAAAAAAAAA").status, 404)
            r = s.api("GET", "/api/v2/jobs/job_AAAAAAAAAAAAAAAA")
            self.assertEqual((r.status, r.json()["message"]), (429, "Global limit has been reached"))

            # reset before processing: nothing happens at the tenant
            s.admin("POST", "faults", {"endpoint": "users-imports", "action": "reset"})
            with self.assertRaises((ConnectionError, http.client.HTTPException, OSError)):
                s.submit([{"email": "b@example.com"}], token=tok)
            self.assertEqual(s.stats()["import_jobs"], 1)
            # reset after processing: the job exists but the answer is lost
            s.admin("POST", "faults", {"endpoint": "users-imports", "action": "reset-after"})
            with self.assertRaises((ConnectionError, http.client.HTTPException, OSError)):
                s.submit([{"email": "b@example.com"}], token=tok)
            self.assertEqual(s.stats()["import_jobs"], 2)

            s.admin("POST", "faults", {"endpoint": "token", "action": "slow", "seconds": 0.5})
            t0 = time.monotonic()
            self.assertEqual(s.token_response().status, 200)
            self.assertGreaterEqual(time.monotonic() - t0, 0.45)
            st = s.stats()["faults_injected"]
            self.assertEqual(st, {"5xx": 2, "429": 1, "reset": 2, "slow": 1})
            self.assertEqual(s.admin("GET", "faults")["scripts"], [])
            r = request("POST", s.base + "/__sandbox/faults", b'{"endpoint": 3}',
                        {"Content-Type": "application/json"})
            self.assertEqual(r.status, 400)

    def test_probabilities_from_the_command_line(self):
        with Sandbox(FASTER + ["--fault-5xx", "1"]) as s:
            r = s.token_response()
            self.assertEqual(r.status, 503)
            self.assertEqual(s.stats()["faults_injected"]["5xx"], 1)   # admin is never faulted
            s.admin("POST", "faults", {"fault_5xx": 0, "fault_429": 1})
            r = s.token_response()
            self.assertEqual(r.status, 429)
            self.assertIn("x-ratelimit-reset", r.headers)
            s.admin("POST", "faults", {"fault_429": 0})
            self.assertEqual(s.token_response().status, 200)

    def test_requests_log_records_what_arrived(self):
        with Sandbox(FASTER) as s:
            s.import_users([{"email": "a@example.com"}], send_completion_email="false",
                           upsert="false", external_id="imp-0")
            log = s.admin("GET", "requests?since=0")
            imports = [x for x in log["requests"] if x["endpoint"] == "users-imports"]
            self.assertEqual(len(imports), 1)
            form = imports[0]["form"]
            self.assertEqual(form["send_completion_email"], "false")
            self.assertEqual(form["connection_id"], CONN)
            self.assertEqual(form["users_hash"], s.admin("GET", "jobs")["jobs"][0]["users_hash"])
            self.assertEqual(imports[0]["status"], 202)
            self.assertEqual(s.stats()["completion_emails"], 0)
            s.import_users([{"email": "b@example.com"}])      # Auth0's default: true
            self.assertEqual(s.stats()["completion_emails"], 1)
            later = s.admin("GET", "requests?since=" + urllib.parse.quote(str(log["last_seq"])))
            self.assertTrue(all(x["seq"] > log["last_seq"] for x in later["requests"]))
            self.assertTrue(later["requests"])


class Concurrency(unittest.TestCase):
    def test_parallel_clients_keep_the_rules(self):
        with Sandbox(["--rate", "1000", "--burst", "1000", "--ms-per-user", "2"]) as s:
            tok = s.token()
            failures = []

            def client(k):
                try:
                    for n in range(4):
                        users = [{"email": f"c{k}-{n}-{i}@example.com"} for i in range(20)]
                        while True:
                            r = s.submit(users, token=tok)
                            if r.status == 202:
                                break
                            if r.status != 429 or "active import" not in r.json()["message"]:
                                failures.append((r.status, r.body))
                                return
                            time.sleep(0.01)
                        job = s.wait_job(r.json()["id"], timeout=30, token=tok)
                        if job["summary"]["inserted"] != 20:
                            failures.append(job)
                except Exception as e:  # noqa: BLE001 - reported below
                    failures.append(repr(e))

            threads = [threading.Thread(target=client, args=(k,)) for k in range(6)]
            for t in threads:
                t.start()
            for t in threads:
                t.join(60)
            self.assertEqual(failures, [])
            st = s.stats()
            self.assertEqual(st["import_jobs"], 24)
            self.assertEqual(st["max_active_import_jobs"], 2)
            self.assertGreater(st["active_jobs_429"], 0)
            users = s.users()
            self.assertEqual(len(users), 480)
            self.assertTrue(all(u["inserted"] == 1 and u["updated"] == 0 for u in users))


if __name__ == "__main__":
    unittest.main()
