#!/usr/bin/env python3
"""`auth0-importd check` on real files through the real binary: valid,
invalid with hints, malformed, gzip, NDJSON, stdin, options, exit codes."""
import gzip
import json
import os
import subprocess
import sys
import tempfile
import unittest

BIN = os.environ.get("IMPORTD_BIN", "build/auth0-importd")
SANITIZER_MARKS = ("ERROR: AddressSanitizer", "runtime error:", "LeakSanitizer")

BCRYPT = "$2b$10$N9qo8uLOickgx2ZMRZoMyeIjZAgcfl7p92ldGxad68LJZdL17lhWy"


def run(args, stdin=None):
    p = subprocess.run([BIN, "check", *args], input=stdin, capture_output=True, timeout=60)
    err = p.stderr.decode(errors="replace")
    for m in SANITIZER_MARKS:
        assert m not in err, err
    return p.returncode, p.stdout.decode(), err


class CheckTest(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory()
        self.dir = self.tmp.name

    def tearDown(self):
        self.tmp.cleanup()

    def write(self, name, data):
        path = os.path.join(self.dir, name)
        mode = "wb" if isinstance(data, bytes) else "w"
        with open(path, mode) as f:
            f.write(data)
        return path

    def test_valid_file_exits_0(self):
        users = [{"email": f"u{i}@example.com", "email_verified": True, "user_id": f"id{i}",
                  "password_hash": BCRYPT} for i in range(50)]
        path = self.write("ok.json", json.dumps(users, indent=2))
        rc, out, _ = run([path])
        self.assertEqual(rc, 0, out)
        self.assertIn("50 users (json): 50 valid (0 with warnings), 0 invalid", out)
        rc, out, _ = run(["--format", "json", path])
        self.assertEqual(rc, 0)
        body = json.loads(out)
        self.assertEqual(body["errors"], [])
        self.assertEqual(body["errors_total"], 0)
        self.assertFalse(body["truncated"])
        self.assertEqual(body["warnings_total"], 0)

    def test_invalid_with_hints_json(self):
        users = [
            {"email": "a@example.com"},
            {"email": "b@example.com", "Email_Verified": True},
            {"email": "not-an-email"},
            {"email": "c@example.com", "username": "a_rather_long_username"},
            {"email": "d@example.com", "password_hash": BCRYPT.replace("$2b$", "$2y$")},
        ]
        path = self.write("bad.json", json.dumps(users))
        rc, out, _ = run(["--format=json", path])
        self.assertEqual(rc, 1)
        body = json.loads(out)
        self.assertEqual(body["errors_total"], 3)
        self.assertFalse(body["truncated"])
        self.assertEqual(body["errors"][0], {
            "index": 1, "path": "/Email_Verified", "code": "UNKNOWN_PROPERTY",
            "message": "Additional properties not allowed: Email_Verified",
            "hint": "did you mean \"email_verified\"?"})
        self.assertEqual(body["errors"][1]["index"], 2)
        self.assertEqual(body["errors"][1]["path"], "/email")
        self.assertEqual(body["errors"][1]["code"], "FORMAT")
        self.assertEqual(body["errors"][2]["path"], "/password_hash")
        self.assertIn("custom_password_hash", body["errors"][2]["hint"])
        self.assertEqual(body["warnings_total"], 1)
        self.assertEqual(body["warnings"][0]["index"], 3)
        self.assertEqual(body["warnings"][0]["code"], "MAX_LENGTH")

    def test_warnings_only_exit_0(self):
        path = self.write("w.json", json.dumps([{"email": "a@b.co", "username": "x" * 20}]))
        rc, out, _ = run([path])
        self.assertEqual(rc, 0, out)
        self.assertIn("warning /username MAX_LENGTH", out)

    def test_max_errors_truncates(self):
        users = [{"email": f"bad{i}"} for i in range(30)]
        path = self.write("many.json", json.dumps(users))
        rc, out, _ = run(["--format", "json", "--max-errors", "5", path])
        self.assertEqual(rc, 1)
        body = json.loads(out)
        self.assertEqual(len(body["errors"]), 5)
        self.assertEqual(body["errors_total"], 30)
        self.assertTrue(body["truncated"])
        rc, out, _ = run(["--max-errors", "5", path])
        self.assertIn("25 more invalid users not shown", out)

    def test_policies(self):
        users = [{"email": "a@b.co", "user_id": "auth0|123"},
                 {"email": "c@b.co", "custom_password_hash": {"algorithm": "crypt", "hash": {"value": "x"}}}]
        path = self.write("p.json", json.dumps(users))
        rc, out, _ = run(["--format", "json", path])
        self.assertEqual(rc, 1)
        codes = [e["code"] for e in json.loads(out)["errors"]]
        self.assertEqual(codes, ["AUTH0_PREFIX", "UNSUPPORTED_HASH"])
        rc, out, _ = run(["--format", "json", "--strip-auth0-prefix", "true",
                          "--unsupported-hash", "strip", path])
        self.assertEqual(rc, 0, out)
        body = json.loads(out)
        self.assertEqual(body["warnings"][0]["code"], "UNSUPPORTED_HASH")
        self.assertEqual(body["warnings"][0]["path"], "/custom_password_hash")
        rc, out, _ = run(["--strip-auth0-prefix=false", "--unsupported-hash=strip", "--on-invalid", "skip", path])
        self.assertEqual(rc, 0, out)

    def test_malformed(self):
        path = self.write("m.json", '[\n  {"email": "a@b.co"},\n  {"email" "x"}\n]')
        rc, out, _ = run([path])
        self.assertEqual(rc, 1)
        self.assertIn("malformed-file at line 3, column 12", out)
        rc, out, _ = run(["--format", "json", path])
        self.assertEqual(rc, 1)
        body = json.loads(out)
        self.assertEqual(body["type"], "/problems/malformed-file")
        self.assertEqual(body["status"], 400)
        self.assertEqual((body["line"], body["column"], body["offset"]), (3, 12, 36))
        self.assertIn("expected ':'", body["detail"])

    def test_empty_and_not_array(self):
        rc, out, _ = run([self.write("e.json", "")])
        self.assertEqual(rc, 1)
        self.assertIn("empty-file", out)
        rc, out, _ = run(["--format", "json", self.write("n.json", '"hello"')])
        self.assertEqual(rc, 1)
        self.assertEqual(json.loads(out)["type"], "/problems/not-an-array")

    def test_gzip_ndjson_and_stdin(self):
        lines = "".join(json.dumps({"email": f"u{i}@example.com"}) + "\n" for i in range(1000))
        data = gzip.compress(lines.encode())
        path = self.write("export.json.gz", data)
        rc, out, _ = run([path])
        self.assertEqual(rc, 0, out)
        self.assertIn("1000 users (ndjson, gzip)", out)
        rc, out, _ = run(["-"], stdin=data)
        self.assertEqual(rc, 0, out)
        self.assertIn("1000 users (ndjson, gzip)", out)
        rc, out, _ = run(["-"], stdin=data[: len(data) // 2])
        self.assertEqual(rc, 1)
        self.assertIn("truncated gzip stream", out)

    def test_bad_command_line_exits_2(self):
        path = self.write("ok.json", "[]")
        for args in (["--format", "xml", path], ["--max-errors", "0", path], ["--bogus", "1", path],
                     [], ["--on-invalid", "maybe", path], [path, path],
                     [os.path.join(self.dir, "missing.json")]):
            rc, _, err = run(args)
            self.assertEqual(rc, 2, args)
            self.assertTrue(err.strip(), args)
        rc, out, _ = run([path])
        self.assertEqual(rc, 0)
        self.assertIn("0 users", out)


if __name__ == "__main__":
    unittest.main(verbosity=2)
