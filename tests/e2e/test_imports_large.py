"""A large upload (~80 MB, generated on the fly and streamed chunked) is
spooled, validated and split with the daemon's memory staying bounded
(VmHWM) while /healthz keeps answering fast."""
import http.client
import json
import sys
import threading
import time
import unittest

from imports_helpers import CONNECTION, QUEUED, Daemon, check_invariant, vm_hwm_kib

USERS = 400000          # ~80 MB of JSON array
RSS_LIMIT_KIB = 48 * 1024  # measured ~16 MiB for ~85 MB
HEALTHZ_LIMIT_S = 0.5


def body_pieces():
    yield b"["
    batch = []
    for i in range(USERS):
        u = {"email": "big%d@example.com" % i, "email_verified": True, "given_name": "Given%d" % i,
             "family_name": "Family", "user_metadata": {"plan": "gold", "n": i, "note": "x" * 40}}
        batch.append(("," if i else "") + json.dumps(u))
        if len(batch) == 2000:
            yield "".join(batch).encode()
            batch = []
    if batch:
        yield "".join(batch).encode()
    yield b"]"


class ImportsLarge(unittest.TestCase):
    def test_large_upload_bounded_memory(self):
        d = Daemon()
        try:
            d.start()
            base = vm_hwm_kib(d.pid())
            stop = threading.Event()
            worst, failures = [0.0], []

            def probe():
                # Everything is recorded, timeouts and errors included, and
                # asserted in the main thread after join(): an exception
                # here would only end the thread.
                while not stop.is_set():
                    t0 = time.monotonic()
                    try:
                        status, _, _ = d.call("GET", "/healthz", timeout=10)
                        if status != 200:
                            failures.append("/healthz answered %d" % status)
                    except Exception as e:
                        failures.append("/healthz: %r" % e)
                    finally:
                        worst[0] = max(worst[0], time.monotonic() - t0)
                    time.sleep(0.02)

            th = threading.Thread(target=probe)
            th.start()
            try:
                c = http.client.HTTPConnection("127.0.0.1", d.port, timeout=300)
                c.request("POST", "/v1/imports?connection_id=%s&wait=300" % CONNECTION,
                          body=body_pieces(), encode_chunked=True,
                          headers={"Content-Type": "application/json", "Transfer-Encoding": "chunked"})
                r = c.getresponse()
                o = json.loads(r.read())
                c.close()
            finally:
                stop.set()
                th.join()
            self.assertEqual(failures, [])
            self.assertEqual(r.status, 202, o)
            self.assertIn(o["state"], QUEUED)
            self.assertEqual(o["users"]["total"], USERS)
            self.assertGreater(o["chunks"]["total"], 100)
            check_invariant(o)
            hwm = vm_hwm_kib(d.pid())
            sys.stderr.write("VmHWM %d KiB (at start %d KiB), worst /healthz %.3f s\n"
                             % (hwm, base, worst[0]))
            self.assertLess(hwm, RSS_LIMIT_KIB)
            self.assertLess(worst[0], HEALTHZ_LIMIT_S)
            d.stop()
        finally:
            d.cleanup()


if __name__ == "__main__":
    unittest.main(argv=sys.argv[:1], verbosity=2)
