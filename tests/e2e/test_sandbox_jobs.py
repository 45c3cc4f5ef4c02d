"""auth0-sandbox: what import and export jobs do to the tenant — job
lifecycle, per-user errors (codes, paths, masked hashes), duplicates,
upsert semantics, retention, exports with expiring links, users endpoints."""
import csv
import io
import json
import time
import unittest
import urllib.parse

from sandbox_harness import CONN, FASTER, Sandbox, SharedSandbox, gunzip, request

BCRYPT = "$2b$10$" + "a" * 53


class Jobs(SharedSandbox):
    def errors(self, job_id):
        return self.s.api("GET", f"/api/v2/jobs/{job_id}/errors")

    def test_lifecycle_pending_processing_completed(self):
        self.s.admin("POST", "faults", {"ms_per_user": 100})
        r = self.s.submit([{"email": f"u{i}@example.com"} for i in range(10)])
        self.assertEqual(r.json()["status"], "pending")
        seen = []
        while True:
            j = self.s.api("GET", "/api/v2/jobs/" + r.json()["id"]).json()
            if not seen or seen[-1] != j["status"]:
                seen.append(j["status"])
            if j["status"] == "processing":
                self.assertTrue(0 <= j["percentage_done"] <= 99)
                self.assertTrue(0 <= j["time_left_seconds"] <= 1)
            if j["status"] == "completed":
                break
            time.sleep(0.02)
        self.assertIn("processing", seen)
        self.assertEqual(seen[-1], "completed")
        order = ["pending", "processing", "completed"]
        self.assertEqual(seen, [x for x in order if x in seen])
        self.assertEqual(j["summary"], {"failed": 0, "updated": 0, "inserted": 10, "total": 10})
        self.assertNotIn("percentage_done", j)
        self.assertEqual(self.errors(j["id"]).status, 204)

    def test_unparseable_file_fails_the_job_and_errors_are_204(self):
        for bad in ('[{"email": "a@example.com"', '{"email": "a@example.com"}', "not json"):
            r = self.s.submit(bad)
            self.assertEqual(r.status, 202, bad)
            job = self.s.wait_job(r.json()["id"])
            self.assertEqual(job["status"], "failed", bad)
            self.assertEqual(self.errors(job["id"]).status, 204)
        self.assertEqual(self.s.users(), [])

    def test_errors_list_shape_codes_paths_and_masked_hashes(self):
        users = [
            {"email": "ok@example.com", "password_hash": BCRYPT},
            {"email": "OK@example.com", "password_hash": BCRYPT},          # duplicate in file
            {"email": "not-an-email"},
            {"email": "p@example.com", "phone_number": "0612"},
            {"email": "n@example.com", "given_name": "x" * 151},
            {"email": "t@example.com", "blocked": "yes"},
            {"name": "no email"},
            {"email": "u@example.com", "Email": "typo"},
            {"email": "h@example.com", "custom_password_hash": {
                "algorithm": "md5", "hash": {"value": "zz", "encoding": "utf8"}}},
            {"email": "s@example.com", "custom_password_hash": {
                "algorithm": "sha256", "hash": {"value": "ab" * 32, "encoding": "hex"}}},
            {"email": "m@example.com", "app_metadata": {"a.b": 1}},
            {"email": "big@example.com", "user_metadata": {"x": "y" * 11000}},
            {"email": "f@example.com", "mfa_factors": []},
        ]
        job = self.s.import_users(users)
        self.assertEqual(job["summary"], {"failed": 11, "updated": 0, "inserted": 2, "total": 13})
        r = self.errors(job["id"])
        self.assertEqual(r.status, 200)
        self.assertEqual(r.headers["content-type"], "application/json")
        errs = r.json()
        self.assertEqual(len(errs), 11)
        for e in errs:
            self.assertEqual(set(e), {"user", "errors"})
            for x in e["errors"]:
                self.assertLessEqual(set(x), {"code", "message", "path"})
        by_email = {e["user"].get("email", e["user"].get("name")): e for e in errs}
        dup = by_email["OK@example.com"]
        self.assertEqual(dup["user"]["password_hash"], "*****")
        self.assertEqual(dup["errors"], [{"code": "DUPLICATED_USER",
                                          "message": "A user with this email was already provided."}])
        fmt = by_email["not-an-email"]["errors"][0]
        self.assertEqual((fmt["code"], fmt["path"]), ("FORMAT", "identities[0].profileData.email"))
        self.assertEqual(by_email["p@example.com"]["errors"][0]["code"], "PATTERN")
        self.assertEqual(by_email["n@example.com"]["errors"][0]["code"], "MAX_LENGTH")
        self.assertEqual(by_email["t@example.com"]["errors"][0]["code"], "INVALID_TYPE")
        self.assertEqual(by_email["no email"]["errors"][0]["code"], "OBJECT_REQUIRED")
        self.assertIn("Email", by_email["u@example.com"]["errors"][0]["message"])
        h = by_email["h@example.com"]
        self.assertEqual(h["user"]["custom_password_hash"]["hash"]["value"], "*****")
        self.assertEqual(h["errors"][0]["code"], "ENUM_MISMATCH")
        self.assertEqual(by_email["m@example.com"]["errors"][0]["code"], "PATTERN")
        self.assertEqual(by_email["big@example.com"]["errors"][0]["code"], "PROFILE_SIZE_EXCEEDED")
        self.assertEqual(by_email["f@example.com"]["errors"][0]["code"], "ARRAY_LENGTH_SHORT")
        self.assertNotIn(BCRYPT, r.body.decode())

    def test_existing_users_and_upsert_semantics(self):
        first = {"email": "Mixed@Example.com", "user_id": "u1", "username": "mixy",
                 "given_name": "Old", "blocked": False, "email_verified": True,
                 "user_metadata": {"a": 1, "b": 2}, "password_hash": BCRYPT}
        job = self.s.import_users([first])
        self.assertEqual(job["summary"]["inserted"], 1)
        stored = self.s.users()
        self.assertEqual(stored[0]["email"], "mixed@example.com")
        self.assertEqual(stored[0]["user_id"], "auth0|u1")
        # upsert=false: same email, or same user_id/username → already exists
        again = [{"email": "mixed@example.com"}, {"email": "other@example.com", "user_id": "u1"},
                 {"email": "x@example.com", "username": "MIXY"}]
        job = self.s.import_users(again)
        self.assertEqual(job["summary"], {"failed": 3, "updated": 0, "inserted": 0, "total": 3})
        for e in self.errors(job["id"]).json():
            self.assertEqual(e["errors"], [{"code": "DUPLICATED_USER",
                                            "message": "The user already exist and upsert parameter is false"}])
        # upsert=true: matched on email; only the listed fields change
        change = {"email": "MIXED@example.com", "user_id": "u2", "username": "newname",
                  "given_name": "New", "blocked": True, "user_metadata": {"c": 3}}
        job = self.s.import_users([change], upsert="true")
        self.assertEqual(job["summary"], {"failed": 0, "updated": 1, "inserted": 0, "total": 1})
        u = self.s.users()[0]
        self.assertEqual((u["inserted"], u["updated"]), (1, 1))
        p = u["profile"]
        self.assertEqual(p["given_name"], "New")
        self.assertEqual(p["user_metadata"], {"c": 3})            # replaced, not merged
        self.assertEqual(p["email_verified"], False)              # reset unless given
        self.assertEqual((p["user_id"], p["username"], p["blocked"]), ("u1", "mixy", False))
        self.assertEqual(p["password_hash"], BCRYPT)
        by = self.s.api("GET", "/api/v2/users-by-email?email=" + urllib.parse.quote("mixed@EXAMPLE.com"))
        self.assertEqual(by.status, 200)
        self.assertEqual(by.headers["content-type"], "application/json; charset=utf-8")
        [user] = by.json()
        self.assertEqual(user["user_id"], "auth0|u1")
        self.assertNotIn("password_hash", user)
        # delete, then the user is gone and can be imported again
        d = self.s.api("DELETE", "/api/v2/users/" + urllib.parse.quote("auth0|u1", safe=""))
        self.assertEqual(d.status, 204)
        self.assertEqual(self.s.api("GET", "/api/v2/users-by-email?email=mixed@example.com").json(), [])
        job = self.s.import_users([first])
        self.assertEqual(job["summary"]["inserted"], 1)
        self.assertEqual(self.s.users()[0]["inserted"], 2)

    def test_seed_and_duplicate_users_parts(self):
        self.s.admin("POST", "seed", {"connection_id": CONN, "users": [{"email": "Seed@example.com"}]})
        users = [{"email": "seed@example.com"}, {"email": "fresh@example.com"}]
        j1 = self.s.import_users(users)
        self.assertEqual(j1["summary"]["inserted"], 1)
        self.s.import_users(users)
        st = self.s.stats()
        self.assertEqual(st["duplicate_users_parts"], 1)
        self.assertEqual(st["users"], 2)
        self.assertEqual(st["users_inserted_more_than_once"], 0)
        jobs = self.s.admin("GET", "jobs")["jobs"]
        self.assertEqual(jobs[0]["users_hash"], jobs[1]["users_hash"])

    def test_delete_needs_delete_scope(self):
        tok = self.s.token("create:users read:users")
        r = self.s.api("DELETE", "/api/v2/users/auth0%7Cabc", token=tok)
        self.assertEqual(r.status, 403)
        self.assertEqual(r.json()["message"], "Insufficient scope; expected any of: delete:users.")


class Exports(unittest.TestCase):
    def test_export_json_and_csv_with_expiring_link(self):
        with Sandbox(FASTER + ["--export-url-ttl", "1"]) as s:
            s.import_users([{"email": "a@example.com", "user_id": "ua", "name": 'Quote "me"',
                             "user_metadata": {"plan": "gold"}, "password_hash": BCRYPT},
                            {"email": "b@example.com"}])
            fields = [{"name": "user_id"}, {"name": "email", "export_as": "mail"},
                      {"name": "name"}, {"name": "user_metadata"}, {"name": "created_at"}]
            r = s.api("POST", "/api/v2/jobs/users-exports",
                      {"connection_id": CONN, "format": "json", "fields": fields, "limit": 5})
            self.assertEqual(r.status, 200, r.body)
            job = r.json()
            self.assertEqual(job["type"], "users_export")
            self.assertEqual((job["format"], job["limit"], job["fields"]), ("json", 5, fields))
            done = s.wait_job(job["id"])
            self.assertEqual(done["status"], "completed")
            loc = done["location"]
            self.assertTrue(loc.startswith(s.base + "/"))
            f = request("GET", loc)                       # no Authorization header
            self.assertEqual(f.status, 200)
            lines = [json.loads(x) for x in gunzip(f.body).splitlines()]
            self.assertEqual(len(lines), 2)
            a = [x for x in lines if x["mail"] == "a@example.com"][0]
            self.assertEqual(set(a), {"user_id", "mail", "name", "user_metadata", "created_at"})
            self.assertEqual(a["user_id"], "auth0|ua")
            self.assertEqual(a["user_metadata"], {"plan": "gold"})
            self.assertNotIn("password_hash", gunzip(f.body))
            # the link expires; reading the job again gives a fresh one
            deadline = time.monotonic() + 5
            while time.monotonic() < deadline:
                late = request("GET", loc)
                if late.status == 403:
                    break
                time.sleep(0.2)
            self.assertEqual(late.status, 403)
            self.assertTrue(late.body.startswith(b"<?xml"))
            self.assertIn(b"<Error>", late.body)
            fresh = s.api("GET", "/api/v2/jobs/" + job["id"]).json()["location"]
            self.assertEqual(request("GET", fresh).status, 200)
            bad = request("GET", fresh.replace("Signature=", "Signature=0"))
            self.assertEqual(bad.status, 403)

            r = s.api("POST", "/api/v2/jobs/users-exports", {"format": "csv", "fields": fields[:4]})
            done = s.wait_job(r.json()["id"])
            text = gunzip(request("GET", done["location"]).body)
            rows = list(csv.reader(io.StringIO(text)))
            self.assertEqual(rows[0], ["user_id", "mail", "name", "user_metadata"])
            row = [x for x in rows[1:] if x[1] == "'a@example.com"][0]
            self.assertEqual(row[0], "'auth0|ua")
            self.assertEqual(row[2], "'Quote \"me\"")
            self.assertIn('"\'Quote ""me"""', text)

            too_many = [{"name": f"user_metadata.f{i}"} for i in range(31)]
            r = s.api("POST", "/api/v2/jobs/users-exports", {"format": "csv", "fields": too_many})
            self.assertEqual(r.status, 400)
            tok = s.token("create:users")
            r = s.api("POST", "/api/v2/jobs/users-exports", {}, token=tok)
            self.assertEqual(r.status, 403)
            self.assertEqual(r.json()["message"], "Insufficient scope; expected any of: read:users.")


class Retention(unittest.TestCase):
    def test_job_data_expires(self):
        with Sandbox(FASTER + ["--retention", "1"]) as s:
            job = s.import_users([{"email": "bad"}])
            self.assertEqual(s.api("GET", f"/api/v2/jobs/{job['id']}/errors").status, 200)
            deadline = time.monotonic() + 5
            while time.monotonic() < deadline:
                r = s.api("GET", "/api/v2/jobs/" + job["id"])
                if r.status == 404:
                    break
                time.sleep(0.1)
            self.assertEqual(r.status, 404)
            self.assertEqual(r.json()["message"], "Job not found.")
            self.assertEqual(s.api("GET", f"/api/v2/jobs/{job['id']}/errors").status, 404)


if __name__ == "__main__":
    unittest.main()
