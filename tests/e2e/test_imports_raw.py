"""POST /v1/imports with the users file as the raw body, labelled as a form:
`curl --data-binary @users.json URL` sends any file as
application/x-www-form-urlencoded, and a users file is never a form, so the
body is the file and the fields come from the query string. Multipart is
unchanged. Runs against the real daemon."""
import json
import os
import shutil
import subprocess
import sys
import tempfile
import unittest

from imports_helpers import CONNECTION, QUEUED, Daemon, check_invariant, post_form, post_raw, users_array

FORM = "application/x-www-form-urlencoded"


class RawUploads(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.d = Daemon().start()

    @classmethod
    def tearDownClass(cls):
        try:
            cls.d.stop()
        finally:
            cls.d.cleanup()

    def test_urlencoded_body_is_the_users_file(self):
        status, hdrs, o = post_raw(self.d, users_array(25), query="external_id=raw-form", ctype=FORM)
        self.assertEqual(status, 202, o)
        self.assertIn(o["state"], QUEUED)
        self.assertEqual(o["users"]["total"], 25)
        self.assertEqual(o["connection_id"], CONNECTION)
        self.assertEqual(o["external_id"], "raw-form")
        self.assertEqual(hdrs["location"], "/v1/imports/" + o["id"])
        check_invariant(o)

    def test_urlencoded_invalid_users_are_validated_as_a_file(self):
        body = json.dumps([{"email": "a@example.com"}, {"email": "not-an-email"}]).encode()
        status, _, o = post_raw(self.d, body, ctype=FORM)
        self.assertEqual(status, 422, o)
        self.assertEqual(o["errors_total"], 1)
        self.assertEqual(o["errors"][0]["index"], 1)
        # A form-looking body is not parsed as fields: it is a malformed file.
        status, _, o = post_raw(self.d, b"users=x&connection_id=y", ctype=FORM)
        self.assertEqual(status, 400, o)
        self.assertIn(o["type"], ("/problems/malformed-file", "/problems/not-an-array"))

    def test_urlencoded_dry_run_from_query(self):
        status, _, o = post_raw(self.d, users_array(3), query="dry_run=true", ctype=FORM)
        self.assertEqual(status, 200, o)
        self.assertEqual(o["state"], "validated")

    def test_multipart_unchanged(self):
        status, _, o = post_form(self.d, users_array(4), {"external_id": "mp"})
        self.assertEqual(status, 202, o)
        self.assertEqual(o["users"]["total"], 4)
        self.assertEqual(o["external_id"], "mp")

    @unittest.skipUnless(shutil.which("curl"), "curl not installed")
    def test_plain_curl_data_binary(self):
        with tempfile.TemporaryDirectory() as tmp:
            path = os.path.join(tmp, "users.json")
            with open(path, "wb") as f:
                f.write(users_array(11))
            url = "http://%s/v1/imports?connection_id=%s" % (self.d.address, CONNECTION)
            out = subprocess.run(["curl", "-sS", "-w", "\n%{http_code}", "--data-binary", "@" + path, url],
                                 capture_output=True, timeout=30, check=True).stdout.decode()
        body, _, code = out.rpartition("\n")
        o = json.loads(body)
        self.assertEqual(code, "202", o)
        self.assertEqual(o["users"]["total"], 11)


if __name__ == "__main__":
    unittest.main(argv=sys.argv[:1], verbosity=2)
