#!/usr/bin/env python3
"""CSV users files through the real binary: `auth0-importd check users.csv`
and POST /v1/imports (curl -F users=@users.csv, and a raw gzip body): 422
with `line` in every problem, a malformed CSV as 400 with line and column,
a valid CSV queued, and the failed users handed back as JSON."""
import gzip
import json
import os
import shutil
import subprocess
import tempfile
import unittest

from imports_helpers import CONNECTION, QUEUED, Daemon, check_invariant, post_form, post_raw

import harness

BIN = os.environ.get("IMPORTD_BIN", "build/auth0-importd")
BCRYPT = "$2b$10$N9qo8uLOickgx2ZMRZoMyeIjZAgcfl7p92ldGxad68LJZdL17lhWy"

VALID = ("email,email_verified,given_name,family_name,user_metadata.plan,user_metadata.seats,"
         "app_metadata.roles,password_hash\r\n"
         + "".join('user%d@example.com,true,"Ann, %d",Smith,gold,%d,"[""admin""]",%s\r\n'
                   % (i, i, i, BCRYPT) for i in range(40))).encode()

# Row 1 (line 3) has a header typo's value, row 2 (lines 4-5, an embedded
# line break) a bad email and a non-boolean, row 3 is fine.
INVALID = ("email,nickname,email_verified,emial\n"
           "a@example.com,Ann,true,\n"
           "b@example.com,Bob,false,b@example.com\n"
           "not-an-email,\"Cy\nJr\",yes,\n"
           "d@example.com,Di,,\n").encode()


def run_check(args):
    p = subprocess.run([BIN, "check", *args], capture_output=True, timeout=60)
    err = p.stderr.decode(errors="replace")
    harness.check_sanitizers(err)
    return p.returncode, p.stdout.decode(), err


class CheckCsv(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory()

    def tearDown(self):
        self.tmp.cleanup()

    def write(self, name, data):
        path = os.path.join(self.tmp.name, name)
        with open(path, "wb") as f:
            f.write(data)
        return path

    def test_valid(self):
        rc, out, _ = run_check([self.write("users.csv", VALID)])
        self.assertEqual(rc, 0, out)
        self.assertIn("40 users (csv)", out)
        rc, out, _ = run_check(["--format", "json", self.write("users.csv.gz", gzip.compress(VALID))])
        self.assertEqual(rc, 0, out)
        o = json.loads(out)
        self.assertEqual((o["format"], o["gzip"], o["users"]["valid"]), ("csv", True, 40))

    def test_invalid_with_lines_and_hints(self):
        path = self.write("users.csv", INVALID)
        rc, out, _ = run_check(["--format", "json", path])
        self.assertEqual(rc, 1, out)
        o = json.loads(out)
        self.assertEqual(o["errors_total"], 2)
        got = [(e["index"], e["line"], e["path"], e["code"]) for e in o["errors"]]
        self.assertEqual(got, [(1, 3, "/emial", "UNKNOWN_PROPERTY"),
                               (2, 4, "/email", "FORMAT"),
                               (2, 4, "/email_verified", "INVALID_TYPE")])
        self.assertEqual(o["errors"][0]["hint"], 'did you mean "email"?')
        rc, out, _ = run_check([path])
        self.assertEqual(rc, 1)
        self.assertIn("user 2 (line 4, not-an-email): error /email FORMAT", out)

    def test_malformed(self):
        rc, out, _ = run_check(["--format", "json",
                                self.write("bad.csv", b'email,name\na@b.co,"open\nb@b.co,x\n')])
        self.assertEqual(rc, 1)
        p = json.loads(out)
        self.assertEqual(p["type"], "/problems/malformed-file")
        self.assertEqual((p["line"], p["column"]), (2, 8))
        self.assertIn("never closed", p["detail"])
        rc, out, _ = run_check(["--format", "json", self.write("n.csv", b"hello,world\n")])
        self.assertEqual(rc, 1)
        self.assertEqual(json.loads(out)["type"], "/problems/not-an-array")


class ImportsCsv(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.d = Daemon().start()
        cls.tmp = tempfile.TemporaryDirectory()

    @classmethod
    def tearDownClass(cls):
        try:
            cls.d.stop()
        finally:
            cls.d.cleanup()
            cls.tmp.cleanup()

    def test_valid_accepted(self):
        status, hdrs, o = post_form(self.d, VALID, filename="users.csv")
        self.assertEqual(status, 202, o)
        self.assertIn(o["state"], QUEUED)
        self.assertEqual(o["users"]["total"], 40)
        self.assertEqual(o["users"]["pending"], 40)
        check_invariant(o)
        status, _, o = post_raw(self.d, gzip.compress(VALID), ctype="text/csv")
        self.assertEqual(status, 202, o)
        self.assertEqual(o["users"]["total"], 40)

    def test_invalid_422_with_line(self):
        if shutil.which("curl"):
            path = os.path.join(self.tmp.name, "users.csv")
            with open(path, "wb") as f:
                f.write(INVALID)
            p = subprocess.run(["curl", "-sS", "-D", "-", "-F", "users=@" + path,
                                "-F", "connection_id=" + CONNECTION,
                                self.d.base_url + "/v1/imports"],
                               capture_output=True, timeout=60)
            self.assertEqual(p.returncode, 0, p.stderr)
            head, _, body = p.stdout.decode().partition("\r\n\r\n")
            self.assertIn(" 422 ", head.splitlines()[0])
            location = [h.split(":", 1)[1].strip() for h in head.splitlines()
                        if h.lower().startswith("location:")][0]
            problem = json.loads(body)
        else:
            status, hdrs, problem = post_form(self.d, INVALID, filename="users.csv")
            self.assertEqual(status, 422, problem)
            location = hdrs["location"]
        self.assertEqual(problem["type"], "/problems/invalid-users")
        self.assertEqual(problem["errors_total"], 2)
        self.assertEqual([(e["index"], e["line"], e["code"]) for e in problem["errors"]],
                         [(1, 3, "UNKNOWN_PROPERTY"), (2, 4, "FORMAT"), (2, 4, "INVALID_TYPE")])
        imp = location.rsplit("/", 1)[1]

        status, e = self.d.get_json("/v1/imports/%s/errors" % imp)
        self.assertEqual(status, 200, e)
        self.assertEqual([x["index"] for x in e["errors"]], [1, 2])
        self.assertEqual([[p["line"] for p in x["errors"]] for x in e["errors"]], [[3], [4, 4]])

        # The resubmit file is a JSON array: the rows as the JSON users they became.
        status, _, data = self.d.call("GET", "/v1/imports/%s/failed-users" % imp)
        self.assertEqual(status, 200, data)
        self.assertEqual(json.loads(data), [
            {"email": "b@example.com", "nickname": "Bob", "email_verified": False,
             "emial": "b@example.com"},
            {"email": "not-an-email", "nickname": "Cy\nJr", "email_verified": "yes"}])

    def test_malformed_400(self):
        status, _, p = post_raw(self.d, b"email,name\na@b.co,A\nb@b.co,Smith, Jo\n", ctype="text/csv")
        self.assertEqual(status, 400, p)
        self.assertEqual(p["type"], "/problems/malformed-file")
        self.assertEqual((p["line"], p["column"]), (3, 14))
        self.assertIn("3 fields where the header row has 2", p["detail"])


if __name__ == "__main__":
    unittest.main()
