"""Health, readiness, error shapes, status and metrics of a daemon with no
tenant; SIGTERM exits 0. Also in the 'sanitize' suite: keep it fast."""
import shutil
import subprocess
import unittest

from harness import Daemon


class ApiBasics(unittest.TestCase):
    def test_endpoints(self):
        with Daemon(env={"AUTH0_DOMAIN": "tenant.eu.auth0.com", "AUTH0_CLIENT_ID": "cid",
                         "AUTH0_CLIENT_SECRET": "top-secret-value"}) as d:
            r = d.get("/healthz")
            self.assertEqual(r.status, 200)
            self.assertEqual(r.text.strip(), "ok")

            r = d.get("/readyz")
            self.assertEqual(r.status, 200)

            r = d.get("/v1/status")
            self.assertEqual(r.status, 200)
            s = r.json()
            self.assertRegex(s["version"], r"^\d+\.\d+\.\d+")
            self.assertGreaterEqual(s["uptime_seconds"], 0)
            self.assertEqual([t["name"] for t in s["tenants"]], ["default"])
            self.assertEqual(s["tenants"][0]["base_url"], "https://tenant.eu.auth0.com")
            self.assertNotIn("top-secret-value", r.text)

            r = d.get("/no/such/thing")
            self.assertEqual(r.status, 404)
            self.assertEqual(r.header("content-type"), "application/problem+json")
            p = r.json()
            self.assertEqual(p["type"], "/problems/not-found")
            self.assertEqual(p["status"], 404)
            self.assertIn("title", p)

            r = d.request("DELETE", "/healthz")
            self.assertEqual(r.status, 405)
            self.assertEqual(r.header("allow"), "GET, HEAD")
            self.assertEqual(r.json()["type"], "/problems/method-not-allowed")

            r = d.request("HEAD", "/healthz")
            self.assertEqual(r.status, 200)

            r = d.get("/metrics")
            self.assertEqual(r.status, 200)
            self.assertIn("text/plain", r.header("content-type"))
            self.assertIn('importd_http_requests_total{route="/healthz",method="GET",status="200"}', r.text)
            self.assertIn('route="unmatched"', r.text)
            self.assertIn("process_resident_memory_bytes", r.text)
            self.assertNotIn("top-secret-value", r.text)
            promtool = shutil.which("promtool")
            if promtool:
                p = subprocess.run([promtool, "check", "metrics"], input=r.body,
                                   capture_output=True, timeout=30)
                self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        self.assertNotIn("top-secret-value", d.stderr())


if __name__ == "__main__":
    unittest.main()
