"""auth0-sandbox: the command line, the token endpoint and the import
endpoint's answers, checked against AUTH0.md (codes, bodies, headers)."""
import json
import subprocess
import unittest

from sandbox_harness import CONN, FASTER, SANDBOX_BIN, Sandbox, SharedSandbox, multipart, request

IMPORT = "/api/v2/jobs/users-imports"
MGMT_CT = "application/json; charset=utf-8"


class CommandLine(unittest.TestCase):
    def test_ready_line_lists_the_three_connections(self):
        with Sandbox() as s:
            self.assertEqual(set(s.ready), {"base_url", "client_id", "client_secret", "connections"})
            self.assertRegex(s.base, r"^http://127\.0\.0\.1:\d+$")
            conns = s.ready["connections"]
            self.assertEqual(len(conns), 3)
            self.assertEqual(conns[0], {"id": CONN, "name": "Username-Password-Authentication",
                                        "strategy": "auth0", "enabled": True})
            self.assertEqual(sum(c["strategy"] == "google-oauth2" for c in conns), 1)
            self.assertEqual(sum(c["strategy"] == "auth0" and not c["enabled"] for c in conns), 1)
            for c in conns:
                self.assertRegex(c["id"], r"^con_[A-Za-z0-9]{16}$")

    def test_random_credentials_unless_given(self):
        p = subprocess.Popen([SANDBOX_BIN], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        ready = json.loads(p.stdout.readline())
        p.terminate()
        self.assertEqual(p.wait(10), 0)
        p.stdout.close()
        p.stderr.close()
        self.assertGreaterEqual(len(ready["client_id"]), 16)
        self.assertGreaterEqual(len(ready["client_secret"]), 32)

    def test_non_loopback_and_bad_options_exit_2(self):
        for args in (["--listen", "0.0.0.0:0"], ["--listen", "192.0.2.1:8080"],
                     ["--burst", "0"], ["--retry-after", "maybe"], ["--bogus", "1"],
                     ["--fault-slow", "0.5"]):
            r = subprocess.run([SANDBOX_BIN] + args, capture_output=True, timeout=10)
            self.assertEqual(r.returncode, 2, args)
            self.assertEqual(r.stdout, b"", args)


class Token(SharedSandbox):
    def test_client_credentials_form_and_json(self):
        r = self.s.token_response()
        self.assertEqual(r.status, 200)
        self.assertEqual(r.headers["content-type"], "application/json")
        body = r.json()
        self.assertEqual(body["token_type"], "Bearer")
        self.assertEqual(body["expires_in"], 86400)
        self.assertEqual(body["scope"], "create:users read:users delete:users")
        j = request("POST", self.s.base + "/oauth/token", json.dumps({
            "grant_type": "client_credentials", "client_id": self.s.client_id,
            "client_secret": self.s.client_secret, "audience": self.s.base + "/api/v2/",
            "extra": "tolerated"}).encode(), {"Content-Type": "application/json"})
        self.assertEqual(j.status, 200, j.body)

    def test_audience_must_keep_its_trailing_slash(self):
        r = self.s.token_response(audience=self.s.base + "/api/v2")
        self.assertEqual(r.status, 403)
        self.assertEqual(r.json(), {"error": "access_denied",
                                    "error_description": "Service not found: " + self.s.base + "/api/v2"})

    def test_wrong_secret_is_401_invalid_client(self):
        r = self.s.token_response(client_secret="nope")
        self.assertEqual(r.status, 401)
        self.assertEqual(r.json()["error"], "invalid_client")
        self.assertNotIn(b"test-secret", r.body)

    def test_scope_narrowing_and_insufficient_scope(self):
        tok = self.s.token("read:users")
        r = self.s.submit([{"email": "x@example.com"}], token=tok)
        self.assertEqual(r.status, 403)
        self.assertEqual(r.json(), {"statusCode": 403, "error": "Forbidden",
                                    "message": "Insufficient scope; expected any of: create:users.",
                                    "errorCode": "insufficient_scope"})
        r = self.s.token_response(scope="create:users read:clients")
        self.assertEqual(r.status, 403)
        self.assertEqual(r.json()["error"], "access_denied")

    def test_bad_token_is_401(self):
        r = self.s.api("GET", "/api/v2/jobs/job_AAAAAAAAAAAAAAAA", token="nope")
        self.assertEqual(r.status, 401)
        self.assertEqual(r.json()["message"], "Invalid token.")
        self.assertEqual(r.headers["content-type"], MGMT_CT)
        r = request("GET", self.s.base + "/api/v2/jobs/job_AAAAAAAAAAAAAAAA")
        self.assertEqual(r.status, 401)


class Import(SharedSandbox):
    def post(self, fields, ctype=None, query=""):
        body, ct = multipart(fields)
        return self.s.api("POST", IMPORT + query, body, {"Content-Type": ctype or ct})

    def assert_400(self, r, message):
        self.assertEqual(r.status, 400, r.body)
        self.assertEqual(r.headers["content-type"], MGMT_CT)
        body = r.json()
        self.assertEqual(body["statusCode"], 400)
        self.assertEqual(body["error"], "Bad Request")
        self.assertEqual(body["message"], message)
        self.assertLessEqual(set(body), {"statusCode", "error", "message", "errorCode"})

    def test_202_has_exactly_the_recorded_fields(self):
        r = self.s.submit([{"email": "a@example.com"}], upsert="true",
                          send_completion_email="false")
        self.assertEqual(r.status, 202, r.body)
        self.assertEqual(r.headers["content-type"], MGMT_CT)
        body = r.json()
        self.assertEqual(list(body), ["type", "status", "connection_id", "connection",
                                      "created_at", "id"])
        self.assertEqual(body["type"], "users_import")
        self.assertEqual(body["status"], "pending")
        self.assertEqual(body["connection_id"], CONN)
        self.assertEqual(body["connection"], "Username-Password-Authentication")
        self.assertRegex(body["id"], r"^job_[A-Za-z0-9]{16}$")
        self.assertRegex(body["created_at"], r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")
        for k in ("x-ratelimit-limit", "x-ratelimit-remaining", "x-ratelimit-reset"):
            self.assertIn(k, r.headers)
        done = self.s.wait_job(body["id"])
        self.assertEqual(done["created_at"], body["created_at"])

    def test_external_id_is_echoed(self):
        r = self.s.submit([{"email": "a@example.com"}], external_id="imp_1-0")
        self.assertEqual(r.status, 202)
        self.assertEqual(r.json()["external_id"], "imp_1-0")
        self.assertEqual(self.s.wait_job(r.json()["id"])["external_id"], "imp_1-0")

    def test_query_string_and_empty_array_are_accepted(self):
        body, ct = multipart([("users", "[]", "u.json"), ("connection_id", CONN, None)])
        r = self.s.api("POST", IMPORT + "?foo=bar", body, {"Content-Type": ct})
        self.assertEqual(r.status, 202, r.body)
        self.assertEqual(self.s.wait_job(r.json()["id"])["summary"],
                         {"failed": 0, "updated": 0, "inserted": 0, "total": 0})

    def test_every_400_message(self):
        users = ("users", '[{"email":"a@example.com"}]', "u.json")
        self.assert_400(self.post([("connection_id", CONN, None)]),
                        "Must provide 'users' file as multipart part.")
        self.assert_400(self.s.api("POST", IMPORT, b"garbage", {"Content-Type": "multipart/form-data; boundary=xyz"}),
                        "Payload validation error: 'Invalid multipart payload format'.")
        self.assert_400(self.s.api("POST", IMPORT, b'{"users":[]}', {"Content-Type": "application/json"}),
                        "Payload validation error: 'Invalid multipart payload format'.")
        truncated, ct = multipart([users, ("connection_id", CONN, None)])
        self.assert_400(self.s.api("POST", IMPORT, truncated[:-30], {"Content-Type": ct}),
                        "Payload validation error: 'Invalid multipart payload format'.")
        self.assert_400(self.post([("users", "", "u.json"), ("connection_id", CONN, None)]),
                        "Users file must not be empty.")
        self.assert_400(self.post([users]), "Must provide 'connection_id' as multipart part.")
        self.assert_400(self.post([users, ("connection_id", "con_short", None)]),
                        "Payload validation error: 'String does not match pattern "
                        "^con_[A-Za-z0-9]{16}$' on property connection_id.")
        self.assert_400(self.post([users, ("connection_id", "con_AAAAAAAAAAAAAAAA", None)]),
                        "The connection does not exist.")
        google = self.s.ready["connections"][1]["id"]
        self.assert_400(self.post([users, ("connection_id", google, None)]),
                        "Connection must be a database connection.")
        disabled = self.s.ready["connections"][2]["id"]
        self.assert_400(self.post([users, ("connection_id", disabled, None)]),
                        "Connection must be enabled.")
        self.assertEqual(self.s.stats()["import_jobs"], 0)

    def test_413_counts_the_whole_body_at_512000(self):
        def body_of(total):
            head, ct = multipart([("users", "[]", "u.json"), ("connection_id", CONN, None)])
            pad = total - len(head)
            users = "[" + " " * pad + "]"
            body, ct = multipart([("users", users, "u.json"), ("connection_id", CONN, None)])
            self.assertEqual(len(body), total)
            return body, ct
        body, ct = body_of(512000)
        r = self.s.api("POST", IMPORT, body, {"Content-Type": ct})
        self.assertEqual(r.status, 202, r.body[:200])
        self.s.wait_job(r.json()["id"])
        body, ct = body_of(512001)
        r = self.s.api("POST", IMPORT, body, {"Content-Type": ct})
        self.assertEqual(r.status, 413)
        self.assertEqual(r.json(), {"statusCode": 413, "error": "Request Entity Too Large",
                                    "message": "Payload content length greater than maximum allowed: 512000"})
        self.assertEqual(self.s.stats()["largest_request_body"], 512001)

    def test_third_active_job_gets_the_jobs_429(self):
        self.s.admin("POST", "faults", {"ms_per_user": 2000})
        ids = [self.s.submit([{"email": f"u{i}@example.com"}]).json()["id"] for i in range(2)]
        r = self.s.submit([{"email": "third@example.com"}])
        self.assertEqual(r.status, 429)
        body = r.json()
        self.assertEqual(body["message"], "There are 2 active import users jobs, please wait "
                         "until some of them are finished and try again")
        self.assertNotEqual(body["message"], "Global limit has been reached")
        self.assertIn("x-ratelimit-remaining", r.headers)
        self.assertNotIn("retry-after", r.headers)
        st = self.s.stats()
        self.assertEqual(st["active_jobs_429"], 1)
        self.assertEqual(st["max_active_import_jobs"], 2)
        self.assertEqual(st["rate_limited"], 0)
        self.s.admin("POST", "faults", {"ms_per_user": 0.1})
        for j in ids:
            self.s.wait_job(j, timeout=10)

    def test_job_not_found_and_bad_id(self):
        r = self.s.api("GET", "/api/v2/jobs/job_AAAAAAAAAAAAAAAA")
        self.assertEqual(r.status, 404)
        self.assertEqual(r.json()["message"], "Job not found.")
        self.assertEqual(r.json()["error"], "Not Found")
        r = self.s.api("GET", "/api/v2/jobs/nope")
        self.assertEqual(r.status, 400)

    def test_get_with_a_json_null_body_is_accepted(self):
        r = self.s.submit([{"email": "a@example.com"}])
        job = r.json()["id"]
        r = self.s.api("GET", "/api/v2/jobs/" + job, b"null", {"Content-Type": "application/json"})
        self.assertEqual(r.status, 200)


if __name__ == "__main__":
    unittest.main()
