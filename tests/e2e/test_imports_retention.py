"""spool_retention: once an ended import is older than the retention, its
upload and chunk files are removed and /failed-users answers 410 gone,
while /errors still answers."""
import json
import os
import sys
import time
import unittest

from imports_helpers import Daemon, post_form, user


class ImportsRetention(unittest.TestCase):
    def test_failed_users_gone_after_retention(self):
        d = Daemon(env={"IMPORTD_SPOOL_RETENTION": "1"})
        try:
            d.start()
            body = json.dumps([user(0), {"email": "bad"}]).encode()
            status, hdrs, p = post_form(d, body)
            self.assertEqual(status, 422, p)
            imp = p["import_id"]
            upload = os.path.join(d.state_dir, "imports", imp, "upload")
            deadline = time.time() + 20
            while time.time() < deadline:
                status, _, data = d.call("GET", "/v1/imports/%s/failed-users" % imp)
                if status == 410:
                    break
                self.assertEqual(status, 200, data)
                self.assertEqual(json.loads(data), [{"email": "bad"}])
                time.sleep(0.1)
            self.assertEqual(status, 410)
            self.assertEqual(json.loads(data)["type"], "/problems/gone")
            while os.path.exists(upload) and time.time() < deadline:
                time.sleep(0.1)
            self.assertFalse(os.path.exists(upload))
            status, e = d.get_json("/v1/imports/%s/errors" % imp)
            self.assertEqual(status, 200)
            self.assertEqual([x["index"] for x in e["errors"]], [1])
            d.stop()
        finally:
            d.cleanup()


if __name__ == "__main__":
    unittest.main(argv=sys.argv[:1], verbosity=2)
