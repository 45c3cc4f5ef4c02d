"""GET /v1/imports/{id}/errors over a big problems file where the severity
filter skips nearly every line: the answer is complete and valid in both
formats, and the loop is never held by the file's size (/healthz answers
fast while the stream scans)."""
import json
import sys
import threading
import time
import unittest

from imports_helpers import Daemon, post_raw

WARNED = 120000         # users with a warning only (a long username)
HEALTHZ_LIMIT_S = 0.5  # the whole scan on the loop took ~0.9 s here


def users_file():
    users = [{"email": "w%d@example.com" % i, "username": "u%d_" % i + "x" * 20} for i in range(WARNED)]
    users.append({"email": "not-an-email"})  # the one invalid user, last
    return json.dumps(users).encode()


class ImportsErrors(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.d = Daemon().start()
        status, _, o = post_raw(cls.d, users_file(), query="wait=120&max_errors=10")
        assert status == 422, (status, str(o)[:500])

    @classmethod
    def tearDownClass(cls):
        try:
            cls.d.stop()
        finally:
            cls.d.cleanup()

    def import_id(self):
        status, lst = self.d.get_json("/v1/imports?state=rejected")
        self.assertEqual(status, 200, lst)
        return lst["imports"][0]["id"]

    def timed_get(self, path):
        """The body of GET path, and the worst /healthz time seen meanwhile."""
        stop = threading.Event()
        worst, failures = [0.0], []

        def probe():
            while not stop.is_set():
                t0 = time.monotonic()
                try:
                    status, _, _ = self.d.call("GET", "/healthz", timeout=10)
                    if status != 200:
                        failures.append("status %d" % status)
                except Exception as e:  # recorded, asserted after join()
                    failures.append(repr(e))
                worst[0] = max(worst[0], time.monotonic() - t0)
                time.sleep(0.005)

        th = threading.Thread(target=probe)
        th.start()
        try:
            status, hdrs, data = self.d.call("GET", path, timeout=120)
        finally:
            stop.set()
            th.join()
        self.assertEqual(failures, [])
        self.assertEqual(status, 200, data[:500])
        return hdrs, data, worst[0]

    def test_errors_skip_warning_lines_without_holding_the_loop(self):
        imp = self.import_id()
        for path in ("/v1/imports/%s/errors" % imp, "/v1/imports/%s/errors?format=ndjson" % imp):
            hdrs, data, worst = self.timed_get(path)
            sys.stderr.write("%s: %d bytes, worst /healthz %.3f s\n" % (path, len(data), worst))
            if "ndjson" in path:
                entries = [json.loads(x) for x in data.decode().splitlines()]
            else:
                entries = json.loads(data)["errors"]
            self.assertEqual([e["index"] for e in entries], [WARNED])
            self.assertEqual(entries[0]["source"], "validation")
            self.assertLess(worst, HEALTHZ_LIMIT_S)

    def test_warnings_stream_is_complete(self):
        imp = self.import_id()
        hdrs, data, _ = self.timed_get("/v1/imports/%s/errors?severity=warning&format=ndjson" % imp)
        lines = data.decode().splitlines()
        self.assertEqual(len(lines), WARNED)
        last = json.loads(lines[-1])
        self.assertEqual(last["index"], WARNED - 1)
        # one shape whatever the severity: the problems are under "errors"
        self.assertEqual([p["code"] for p in last["errors"]], ["MAX_LENGTH"])
        self.assertNotIn("warnings", last)
        hdrs, data, _ = self.timed_get("/v1/imports/%s/errors?severity=warning" % imp)
        doc = json.loads(data)
        self.assertEqual(sorted(doc), ["errors", "import_id"])
        self.assertEqual(len(doc["errors"]), WARNED)


if __name__ == "__main__":
    unittest.main(argv=sys.argv[:1], verbosity=2)
