"""Exports, tenant-to-tenant migrations and undo through the real daemon,
with two tenants pointing at two emulators (source and target)."""
import gzip
import json
import os
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(__file__))
import harness  # noqa: E402

CONN = "con_SandboxUsers0001"
FAST = ("--rate", "20", "--burst", "20", "--ms-per-user", "0.1")


def make_users(n, prefix="u"):
    users = []
    for i in range(n):
        u = {"email": "%s%d@example.com" % (prefix, i), "email_verified": i % 2 == 0,
             "user_id": "%s%06d" % (prefix, i), "given_name": "Given%d" % i,
             "family_name": "Family", "name": "User %d" % i,
             "app_metadata": {"plan": "pro" if i % 3 == 0 else "free", "n": i},
             "user_metadata": {"lang": "en", "quote": "say \"hi\""}}
        if i % 7 == 0:
            u["blocked"] = True
        users.append(u)
    return users


class Tenants:
    """Two emulators, tenant `source` and tenant `default` (the target)."""

    def __init__(self, daemon_args=()):
        self.src = harness.Sandbox(FAST)
        self.dst = harness.Sandbox(FAST)
        self.daemon_args = daemon_args
        self.d = None

    def __enter__(self):
        self.src.start()
        self.dst.start()
        s, t = self.src.info, self.dst.info
        config = ("[tenant.source]\ndomain = %s\nclient_id = %s\nclient_secret = %s\n\n"
                  "[tenant.default]\ndomain = %s\nclient_id = %s\nclient_secret = %s\n" % (
                      s["base_url"], s["client_id"], s["client_secret"],
                      t["base_url"], t["client_id"], t["client_secret"]))
        self.config = config
        self.d = harness.Daemon(args=self.daemon_args, config=config)
        self.d.start()
        return self

    def crash_and_restart(self):
        """SIGKILL, then a new daemon on the same state dir."""
        old = self.d
        old.kill()
        self.d = harness.Daemon(args=self.daemon_args, config=self.config, state_dir=old.state_dir)
        self.d.start()
        self.old = old

    def __exit__(self, exc_type, exc, tb):
        try:
            if self.d:
                if exc_type is None:
                    self.d.stop()
                else:
                    self.d.kill()
        finally:
            if self.d:
                self.d.cleanup()
            if getattr(self, "old", None):
                self.old.cleanup()
            for sb in (self.src, self.dst):
                if exc_type is None:
                    sb.stop()
                elif sb.proc and sb.proc.poll() is None:
                    sb.proc.kill()
        return False

    def seed(self, sb, users):
        for i in range(0, len(users), 2500):
            r = sb.admin("POST", "seed", {"connection_id": CONN, "users": users[i:i + 2500]})
            assert r.status == 200, r

    def users(self, sb):
        r = sb.admin("GET", "users?connection_id=" + CONN)
        assert r.status == 200, r
        return [u for u in r.json()["users"] if not u["deleted"]]

    def get(self, path):
        r = self.d.get(path)
        assert r.status == 200, r
        return r.json()

    def wait(self, path, states, timeout=120):
        deadline = time.time() + timeout
        o = None
        while time.time() < deadline:
            o = self.get(path)
            if o["state"] in states:
                return o
            time.sleep(0.1)
        raise AssertionError("%s: timed out, last %s\n%s" % (path, json.dumps(o)[:3000],
                                                            self.d.stderr()[-4000:]))


ENDED = ("completed", "completed_with_errors", "failed", "cancelled")


class Migrate(unittest.TestCase):
    def test_migration_with_filter_lands_exactly_the_filtered_users(self):
        n = 10000
        with Tenants() as t:
            users = make_users(n)
            t.seed(t.src, users)
            body = {"source_tenant": "source", "source_connection_id": CONN,
                    "target_tenant": "default", "target_connection_id": CONN,
                    "filter": 'select(.app_metadata.plan == "pro") | .user_metadata.migrated = true'}
            r = t.d.post("/v1/migrations", body)
            self.assertEqual(r.status, 202, r)
            mid = r.json()["id"]
            self.assertEqual(r.header("Location"), "/v1/migrations/" + mid)
            m = t.wait("/v1/migrations/" + mid, ENDED, timeout=240)
            self.assertEqual(m["state"], "completed", json.dumps(m)[:3000])
            want = {u["user_id"]: u for u in users if u["app_metadata"]["plan"] == "pro"}
            st = m["stages"]
            self.assertEqual(st["export"]["state"], "completed")
            self.assertEqual(st["export"]["users"], n)
            self.assertEqual(st["convert"]["users_in"], n)
            self.assertEqual(st["convert"]["users_out"], n)
            self.assertEqual(st["convert"]["dropped"], 0)
            self.assertEqual(st["filter"]["kept"], len(want))
            self.assertEqual(st["filter"]["dropped"], n - len(want))
            self.assertEqual(st["import"]["users"]["inserted"], len(want))
            self.assertEqual(st["import"]["state"], "completed")
            # The target holds exactly the filtered users, with their properties.
            got = t.users(t.dst)
            self.assertEqual(len(got), len(want))
            for g in got:
                self.assertFalse(g["user_id"].startswith("auth0|auth0|"), g["user_id"])
                uid = g["user_id"][len("auth0|"):]
                self.assertIn(uid, want)
                w, p = want[uid], g["profile"]
                self.assertEqual(g["email"], w["email"])
                for k in ("given_name", "family_name", "name", "email_verified", "app_metadata"):
                    self.assertEqual(p.get(k), w[k], (k, p))
                self.assertEqual(p.get("blocked", False), w.get("blocked", False), p)
                self.assertEqual(p["user_metadata"], dict(w["user_metadata"], migrated=True))
            # The export's file is served as exported and as an import-ready array.
            eid = st["export"]["id"]
            r = t.d.get("/v1/exports/%s/file" % eid)
            self.assertEqual(r.status, 200)
            lines = gzip.decompress(r.body).decode().splitlines()
            self.assertEqual(len(lines), n)
            self.assertTrue(json.loads(lines[0])["user_id"].startswith("auth0|"))
            r = t.d.get("/v1/exports/%s/file?as=import" % eid)
            self.assertEqual(r.status, 200)
            arr = r.json()
            self.assertEqual(len(arr), n)
            self.assertFalse(any(u["user_id"].startswith("auth0|") for u in arr))
            self.assertTrue(all("created_at" not in u for u in arr))

    def test_export_expired_link_is_read_again(self):
        with Tenants() as t:
            t.seed(t.src, make_users(40))
            # Every link the file host signs has expired by the time it arrives
            # (links valid to the end of the second, job reads answered 1.5 s late)...
            r = t.src.admin("POST", "faults", {"export_url_ttl": 0, "scripts": [
                {"endpoint": "job", "next": 1000, "action": "slow", "seconds": 1.5}]})
            self.assertEqual(r.status, 200, r)
            r = t.d.post("/v1/exports", {"tenant": "source", "connection_id": CONN,
                                         "fields": [{"name": "email", "export_as": "mail"}]})
            self.assertEqual(r.status, 202, r)
            eid = r.json()["id"]
            names = [f["name"] for f in r.json()["fields"]]
            for f in ("email", "email_verified", "user_id", "username", "given_name",
                      "family_name", "name", "nickname", "picture", "blocked", "phone_number",
                      "phone_verified", "app_metadata", "user_metadata"):
                self.assertIn(f, names)
            harness.wait_for(lambda: "download link refused" in t.d.stderr(), 60,
                             what="a refused download link")
            # ...until it is not: the daemon reads the job again for a fresh link.
            r = t.src.admin("POST", "faults", {"export_url_ttl": 60, "clear_scripts": True})
            self.assertEqual(r.status, 200, r)
            e = t.wait("/v1/exports/" + eid, ("completed", "failed"), timeout=60)
            self.assertEqual(e["state"], "completed", e)
            self.assertEqual(e["users"], 40)
            self.assertTrue(e["auth0_job_id"].startswith("job_"))
            arr = t.d.get("/v1/exports/%s/file?as=import" % eid).json()
            self.assertEqual(sorted(u["email"] for u in arr),
                             sorted(u["email"] for u in make_users(40)))
            # the download never carried the token
            self.assertNotIn("Authorization", t.src.stderr())

    def test_migration_survives_a_crash(self):
        n = 3000
        with Tenants() as t:
            users = make_users(n, prefix="c")
            t.seed(t.src, users)
            body = {"source_tenant": "source", "source_connection_id": CONN,
                    "target_connection_id": CONN, "filter": "select(.app_metadata.n % 2 == 0)"}
            r = t.d.post("/v1/migrations", body)
            self.assertEqual(r.status, 202, r)
            mid = r.json()["id"]
            # killed once the import exists (the stage boundary the crash rules care about)
            t.wait("/v1/migrations/" + mid, ("importing",) + ENDED)
            t.crash_and_restart()
            m = t.wait("/v1/migrations/" + mid, ENDED)
            self.assertEqual(m["state"], "completed", json.dumps(m)[:3000])
            got = t.users(t.dst)
            self.assertEqual(len(got), n // 2)
            self.assertEqual(sorted(g["email"] for g in got),
                             sorted(u["email"] for u in users if u["app_metadata"]["n"] % 2 == 0))
            stats = t.dst.admin("GET", "stats").json()
            self.assertEqual(stats["users_inserted_more_than_once"], 0, stats)

    def test_crash_while_exporting_polls_the_same_job(self):
        with Tenants() as t:
            t.seed(t.src, make_users(30, prefix="x"))
            r = t.src.admin("POST", "faults", {"scripts": [
                {"endpoint": "job", "next": 1000, "action": "slow", "seconds": 1}]})
            self.assertEqual(r.status, 200, r)
            r = t.d.post("/v1/migrations", {"source_tenant": "source", "source_connection_id": CONN,
                                            "target_connection_id": CONN})
            self.assertEqual(r.status, 202, r)
            mid = r.json()["id"]
            harness.wait_for(lambda: t.get("/v1/migrations/" + mid)["stages"]["export"]["state"]
                             == "running", 30, what="the export job at Auth0")
            t.crash_and_restart()
            self.assertEqual(t.src.admin("POST", "faults", {"clear_scripts": True}).status, 200)
            m = t.wait("/v1/migrations/" + mid, ENDED)
            self.assertEqual(m["state"], "completed", json.dumps(m)[:2000])
            self.assertEqual(len(t.users(t.dst)), 30)
            # the export job was created once and polled again after the restart
            self.assertEqual(t.src.admin("GET", "stats").json()["export_jobs"], 1)

    def test_cancel_while_exporting(self):
        with Tenants() as t:
            t.seed(t.src, make_users(10))
            r = t.src.admin("POST", "faults", {"scripts": [
                {"endpoint": "job", "next": 1000, "action": "slow", "seconds": 1}]})
            self.assertEqual(r.status, 200, r)
            r = t.d.post("/v1/migrations", {"source_tenant": "source", "source_connection_id": CONN,
                                            "target_connection_id": CONN})
            self.assertEqual(r.status, 202, r)
            mid = r.json()["id"]
            r = t.d.delete("/v1/migrations/" + mid)
            self.assertEqual(r.status, 202, r)
            self.assertEqual(r.json()["state"], "cancelled")
            m = t.wait("/v1/migrations/" + mid, ENDED)
            self.assertEqual(m["state"], "cancelled")
            self.assertEqual(m["stages"]["export"]["state"], "cancelled")
            self.assertEqual(t.d.delete("/v1/migrations/" + mid).status, 200)
            self.assertEqual(len(t.users(t.dst)), 0)

    def test_csv_export_as_import(self):
        with Tenants() as t:
            users = make_users(12, prefix="csv")
            users[0]["name"] = 'Ann "The Hammer", Lee'
            t.seed(t.src, users)
            r = t.d.post("/v1/exports", {"tenant": "source", "connection_id": CONN, "format": "csv",
                                         "fields": [{"name": "email", "export_as": "mail"},
                                                    {"name": "created_at"},
                                                    {"name": "user_metadata.lang", "export_as": "lang"}]})
            self.assertEqual(r.status, 202, r)
            e = t.wait("/v1/exports/" + r.json()["id"], ("completed", "failed"), timeout=60)
            self.assertEqual(e["state"], "completed", e)
            self.assertEqual(e["users"], 12)
            raw = gzip.decompress(t.d.get("/v1/exports/%s/file" % e["id"]).body).decode()
            self.assertTrue(raw.startswith("mail,"), raw[:200])
            arr = t.d.get("/v1/exports/%s/file?as=import" % e["id"]).json()
            by_mail = {u["email"]: u for u in arr}
            self.assertEqual(len(by_mail), 12)
            for u in users:
                g = by_mail[u["email"]]
                self.assertEqual(g["user_id"], u["user_id"])
                self.assertEqual(g["name"], u["name"])
                self.assertEqual(g["email_verified"], u["email_verified"])
                self.assertEqual(g["app_metadata"], u["app_metadata"])
                self.assertEqual(g["user_metadata"]["lang"], "en")
                self.assertNotIn("created_at", g)

    def test_undo_of_an_upsert_keeps_users_that_existed(self):
        with Tenants() as t:
            old = make_users(5, prefix="keep")
            t.seed(t.dst, old)
            seeded = int(time.time())
            # the import's first job starts in a later second than the seeded users
            harness.wait_for(lambda: int(time.time()) > seeded, 3, what="the next second")
            users = [dict(u, given_name="Changed") for u in old] + make_users(5, prefix="fresh")
            body, ctype = harness.multipart({"connection_id": CONN, "upsert": "true"},
                                            {"users": ("u.json", json.dumps(users).encode())})
            r = t.d.request("POST", "/v1/imports", body=body, headers={"Content-Type": ctype})
            self.assertEqual(r.status, 202, r)
            iid = r.json()["id"]
            o = t.wait("/v1/imports/" + iid, ENDED)
            self.assertEqual(o["state"], "completed", o)
            r = t.d.post("/v1/imports/%s/undo" % iid, {"confirm": iid})
            self.assertEqual(r.status, 202, r)
            deadline = time.time() + 60
            while time.time() < deadline:
                o = t.get("/v1/imports/" + iid)
                if o["undo"]["state"] in ("completed", "failed"):
                    break
                time.sleep(0.1)
            self.assertEqual(o["undo"]["state"], "completed", o)
            self.assertEqual(o["undo"]["kept"], 5, o)
            self.assertEqual(o["undo"]["deleted"], 5, o)
            left = sorted(x["email"] for x in t.users(t.dst))
            self.assertEqual(left, sorted(u["email"] for u in old))

    def test_bad_requests(self):
        with Tenants() as t:
            base = {"source_tenant": "source", "source_connection_id": CONN,
                    "target_connection_id": CONN}
            r = t.d.post("/v1/migrations", dict(base, filter="select(.a =="))
            self.assertEqual(r.status, 400, r)
            self.assertIn("jq: error", r.json()["detail"])
            r = t.d.post("/v1/migrations", dict(base, source_tenant="nope"))
            self.assertEqual(r.status, 400)
            self.assertEqual(r.json()["type"], "/problems/unknown-tenant")
            r = t.d.post("/v1/exports", {"tenant": "source", "format": "xml"})
            self.assertEqual(r.status, 400)
            self.assertEqual(t.d.get("/v1/exports/exp_0000000000000000").status, 404)
            self.assertEqual(t.d.get("/v1/migrations/mig_0000000000000000").status, 404)

    def test_multipart_with_hashes_file(self):
        with Tenants() as t:
            users = make_users(20, prefix="h")
            t.seed(t.src, users)
            hashes = "".join(json.dumps({"_id": {"$oid": "5dea%020d" % i}, "alt_id": u["user_id"],
                                         "email": u["email"],
                                         "passwordHash": "$2b$10$" + "a" * 53}) + "\n"
                             for i, u in enumerate(users))
            r = t.d.post_multipart("/v1/migrations", fields={
                "source_tenant": "source", "source_connection_id": CONN,
                "target_connection_id": CONN, "upsert": "false",
                "filter": 'if .email == "h3@example.com" then error("h3 stays behind") else . end'},
                files={"hashes": ("hashes.ndjson", hashes.encode())})
            self.assertEqual(r.status, 202, r)
            m = t.wait("/v1/migrations/" + r.json()["id"], ENDED)
            self.assertEqual(m["state"], "completed", json.dumps(m)[:2000])
            self.assertEqual(m["stages"]["convert"]["hashes_added"], 20)
            self.assertEqual(m["stages"]["filter"]["errors"], 1)
            ni = m["stages"]["convert"]["not_imported"]
            self.assertEqual(len(ni), 1, ni)
            self.assertEqual((ni[0]["index"], ni[0]["stage"]), (3, "filter"), ni)
            self.assertIn("h3 stays behind", " ".join(ni[0]["notes"]))
            got = t.users(t.dst)
            self.assertEqual(len(got), 19)
            self.assertTrue(all(g["profile"].get("password_hash", "").startswith("$2b$10$")
                                for g in got), got[0])

    def test_undo_deletes_what_the_import_inserted(self):
        with Tenants() as t:
            before = make_users(5, prefix="old")
            t.seed(t.dst, before)
            users = make_users(30, prefix="new")
            for u in users[:10]:
                del u["user_id"]  # found by email
            body, ctype = harness.multipart({"connection_id": CONN},
                                            {"users": ("u.json", json.dumps(users).encode())})
            r = t.d.request("POST", "/v1/imports", body=body, headers={"Content-Type": ctype})
            self.assertEqual(r.status, 202, r)
            iid = r.json()["id"]
            o = t.wait("/v1/imports/" + iid, ENDED)
            self.assertEqual(o["state"], "completed", o)
            self.assertEqual(len(t.users(t.dst)), 35)
            r = t.d.post("/v1/imports/%s/undo" % iid, {"confirm": "wrong"})
            self.assertEqual(r.status, 400, r)
            r = t.d.post("/v1/imports/%s/undo" % iid, {"confirm": iid})
            self.assertEqual(r.status, 202, r)
            self.assertIn("undo", r.json())
            deadline = time.time() + 60
            while time.time() < deadline:
                o = t.get("/v1/imports/" + iid)
                if o["undo"]["state"] in ("completed", "failed"):
                    break
                time.sleep(0.1)
            u = o["undo"]
            self.assertEqual(u["state"], "completed", o)
            self.assertEqual(u["total"], 30)
            self.assertEqual(u["deleted"], 30)
            self.assertEqual(u["eta_seconds"], 0)
            left = t.users(t.dst)
            self.assertEqual(sorted(x["email"] for x in left), sorted(x["email"] for x in before))
            r = t.d.post("/v1/imports/%s/undo" % iid, {"confirm": iid})
            self.assertEqual(r.status, 409, r)


if __name__ == "__main__":
    unittest.main()
