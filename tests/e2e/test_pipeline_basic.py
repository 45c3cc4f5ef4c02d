"""An import goes through the real daemon to the emulator and back: every
user reaches Auth0 once and every outcome comes back."""
import json
import sys
import unittest

sys.path.insert(0, __import__("os").path.dirname(__file__))
from pipeline_harness import Pipeline, check_truth, make_users  # noqa: E402


class PipelineBasic(unittest.TestCase):
    def test_20000_users_complete_exactly_once(self):
        with Pipeline() as p:
            imp = p.post_users(make_users(20000))
            o = p.wait(imp, timeout=120)
            self.assertEqual(o["state"], "completed", json.dumps(o)[:1000])
            s = check_truth(p, imp, o, 20000)
            self.assertEqual(s["duplicate_users_parts"], 0, s)
            self.assertGreaterEqual(o["chunks"]["total"], 2)
            self.assertEqual(o["chunks"]["completed"], o["chunks"]["total"])
            self.assertEqual(s["import_jobs"], o["chunks"]["total"])
            # Status shows the tenant's pipeline, never a secret or token.
            status, _, data = p.d.request("GET", "/v1/status")
            self.assertEqual(status, 200, data)
            st = json.loads(data)
            self.assertIn("default", st["auth0"], st)
            self.assertEqual(st["auth0"]["default"]["jobs_in_flight"], 0, st)
            self.assertIsNotNone(st["auth0"]["default"]["token"]["valid_until"], st)
            for text in (data.decode(), p.d.log()):
                self.assertNotIn("e2e-secret", text)
                self.assertNotIn("Bearer", text)
            # Metrics count the Auth0 answers.
            status, _, data = p.d.request("GET", "/metrics")
            text = data.decode()
            self.assertIn('auth0_requests_total{tenant="default",endpoint="users-imports",'
                          'status="202"} %d' % o["chunks"]["total"], text)
            self.assertIn('auth0_jobs_in_flight{tenant="default"} 0', text)
            self.assertIn("auth0_job_duration_seconds_bucket", text)
            # Every job the emulator saw got the daemon's labels.
            for r in p.all_requests():
                if r.get("endpoint") == "users-imports" and r.get("status") == 202:
                    form = r.get("form", {})
                    self.assertEqual(form.get("send_completion_email"), "false", r)
                    self.assertTrue(form.get("external_id", "").startswith(imp + "-"), r)

    def test_per_user_errors_map_to_original_indices(self):
        with Pipeline() as p:
            # Users 3 and 7 already exist at Auth0: DUPLICATED_USER for them.
            users = make_users(10)
            p.sb.admin("POST", "seed", {"connection_id": "con_SandboxUsers0001",
                                         "users": [users[3], users[7]]})
            imp = p.post_users(users)
            o = p.wait(imp)
            self.assertEqual(o["state"], "completed_with_errors", o)
            self.assertEqual(o["users"]["inserted"], 8, o)
            self.assertEqual(o["users"]["failed"], 2, o)
            errs = p.errors(imp)
            items = errs.get("errors", errs.get("items", []))
            auth0 = [e for e in items if e.get("source") == "auth0"]
            self.assertEqual(sorted(e["index"] for e in auth0), [3, 7], errs)
            for e in auth0:
                self.assertEqual(e["errors"][0]["code"], "DUPLICATED_USER", e)
                self.assertEqual(e["user"]["email"], users[e["index"]]["email"], e)

    def test_connection_error_fails_the_import_at_once(self):
        with Pipeline() as p:
            users = make_users(3000)
            body_fields = {"connection_id": "con_SandboxDisabled1"}
            import imports_helpers as ih
            body, ctype = ih.multipart(body_fields, content=json.dumps(users).encode())
            status, _, data = p.d.request("POST", "/v1/imports", body=body,
                                          headers={"Content-Type": ctype})
            self.assertEqual(status, 202, data)
            imp = json.loads(data)["id"]
            o = p.wait(imp)
            self.assertEqual(o["state"], "failed", o)
            self.assertIn("Connection must be enabled", json.dumps(o))
            s = p.stats()
            self.assertEqual(s["requests_by_endpoint"].get("users-imports"), 1, s)
            self.assertEqual(s["users"], 0, s)


if __name__ == "__main__":
    unittest.main()
