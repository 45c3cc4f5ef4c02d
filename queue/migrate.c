/* migrate — the exports and migrations runner (see migrate.h). */
#include "queue/migrate.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "daemon/auth0/mgmt.h"
#include "daemon/convert/convert.h"
#include "daemon/log.h"
#include "queue/import.h"
#include "queue/intake.h"
#include "queue/migrate_store.h"
#include "queue/pipeline.h"
#include "queue/store.h"

#define POLL_FIRST_MS 500
#define POLL_MAX_MS 5000
#define RETRY_MAX 8u
#define FOLLOW_MS 1000

struct mexport;
struct mmig;

struct migrate {
	uv_loop_t *loop;
	struct store *store;
	struct pipeline *pl;
	struct intake *in;
	char *state_dir;
	struct mexport *exports;
	struct mmig *migs;
	uv_timer_t follow;
	bool stopping;
	unsigned workers;
	unsigned handles; /* open uv handles (the follow timer, exports' timers) */
};

struct mexport {
	struct migrate *m;
	struct mexport *next;
	char id[32], tenant[64], state[16], job_id[128], migration_id[32];
	char *body;
	struct pipeline_slot *slot;
	struct a0_call *call;
	uv_timer_t timer;
	unsigned refs;        /* the timer handle, store writes, workers */
	unsigned attempts, refreshes;
	int64_t poll_ms;
	int fd;
	bool ended;
	bool listed;
};

struct mmig {
	struct migrate *m;
	struct mmig *next;
	char id[32], state[24], export_id[32], import_id[32];
	char target_tenant[64], target_connection_id[72];
	char *filter;
	bool upsert, has_hashes;
	bool working, cancel_requested, writing;
	unsigned refs;
};

static int64_t now_s(void)
{
	return (int64_t)time(NULL);
}

static int gen_id(const char *prefix, char out[MIGRATE_ID_LEN + 1])
{
	unsigned char raw[8];
	if (getrandom(raw, sizeof(raw), 0) != (ssize_t)sizeof(raw))
		return -EIO;
	snprintf(out, MIGRATE_ID_LEN + 1, "%s%02x%02x%02x%02x%02x%02x%02x%02x", prefix, raw[0], raw[1],
		 raw[2], raw[3], raw[4], raw[5], raw[6], raw[7]);
	return 0;
}

static char *problem_text(const char *title, const char *detail)
{
	json_object *o = json_object_new_object();
	json_object_object_add(o, "type", json_object_new_string("/problems/internal"));
	json_object_object_add(o, "title", json_object_new_string(title));
	json_object_object_add(o, "status", json_object_new_int(500));
	json_object_object_add(o, "detail", json_object_new_string(detail));
	char *s = strdup(json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN));
	json_object_put(o);
	return s;
}

int export_file_path(const char *state_dir, const char *id, char *buf, size_t len)
{
	int n = snprintf(buf, len, "%s/exports/%s/export.gz", state_dir, id);
	return n < 0 || (size_t)n >= len ? -ENAMETOOLONG : 0;
}

int export_import_path(const char *state_dir, const char *id, char *buf, size_t len)
{
	int n = snprintf(buf, len, "%s/exports/%s/import.json", state_dir, id);
	return n < 0 || (size_t)n >= len ? -ENAMETOOLONG : 0;
}

__attribute__((noinline)) static int sub_dir(const char *state_dir, const char *kind, const char *id, char *buf, size_t len)
{
	int n = snprintf(buf, len, "%s/%s/%s", state_dir, kind, id);
	return n < 0 || (size_t)n >= len ? -ENAMETOOLONG : 0;
}

static int mkdir_p2(const char *state_dir, const char *kind, const char *id)
{
	char p[4096];
	snprintf(p, sizeof(p), "%s/%s", state_dir, kind);
	if (mkdir(p, 0700) < 0 && errno != EEXIST)
		return -errno;
	if (sub_dir(state_dir, kind, id, p, sizeof(p)) < 0)
		return -ENAMETOOLONG;
	if (mkdir(p, 0700) < 0 && errno != EEXIST)
		return -errno;
	return 0;
}

static int fsync_path(const char *path)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	int r = fsync(fd) < 0 ? -errno : 0;
	close(fd);
	return r;
}

/* ---- store writes ------------------------------------------------------------ */

enum wop_kind {
	W_EXPORT_INSERT,
	W_EXPORT_UPDATE,
	W_MIGRATION_INSERT,   /* migration + its export */
	W_MIGRATION_UPDATE,
	W_MIGRATION_IMPORT,   /* import row + migration importing */
	W_MIGRATION_CANCEL,   /* import cancel + migration cancelling */
};

struct wop {
	struct migrate *m;
	enum wop_kind kind;
	struct export_row ex;
	struct migration_row mig;
	char state[24];
	char job_id[128];
	int64_t users, bytes;
	char *error;
	char *convert;
	char import_id[32];
	struct import_options iopts;
	int64_t upload_bytes;
	void (*then)(struct wop *w, int status);
	void *obj;
	migrate_done_fn done;
	void *done_arg;
	char *hashes_spool;
};

static struct wop *wop_new(struct migrate *m, enum wop_kind kind)
{
	struct wop *w = calloc(1, sizeof(*w));
	if (!w)
		return NULL;
	w->m = m;
	w->kind = kind;
	w->users = w->bytes = -1;
	return w;
}

static void wop_free(struct wop *w)
{
	free(w->error);
	free(w->convert);
	free(w->ex.fields);
	free(w->mig.filter);
	free(w->hashes_spool);
	free(w);
}

static int wop_fn(struct sqlite3 *db, void *ctx)
{
	struct wop *w = ctx;
	int64_t now = now_s();
	int r;
	switch (w->kind) {
	case W_EXPORT_INSERT:
		return export_insert_tx(db, &w->ex, now);
	case W_EXPORT_UPDATE:
		return export_update_tx(db, w->ex.id, w->state, w->job_id, w->users, w->bytes, w->error, now);
	case W_MIGRATION_INSERT:
		r = migration_insert_tx(db, &w->mig, now);
		return r < 0 ? r : export_insert_tx(db, &w->ex, now);
	case W_MIGRATION_UPDATE:
		return migration_update_tx(db, w->mig.id, w->state, NULL, w->convert, w->error, now);
	case W_MIGRATION_IMPORT:
		r = import_insert_tx(db, w->import_id, &w->iopts, NULL, NULL, w->upload_bytes, now);
		return r < 0 ? r : migration_update_tx(db, w->mig.id, "importing", w->import_id,
						       w->convert, NULL, now);
	case W_MIGRATION_CANCEL: {
		enum import_state st;
		r = import_cancel_tx(db, w->import_id, now, &st);
		if (r < 0 && r != -EPERM && r != -ENOENT)
			return r;
		return migration_update_tx(db, w->mig.id, "cancelling", NULL, NULL, NULL, now);
	}
	}
	return -EINVAL;
}

static void wop_done(int status, void *ctx)
{
	struct wop *w = ctx;
	if (w->then)
		w->then(w, status);
	wop_free(w);
}

static int wop_queue(struct wop *w)
{
	int r = store_write(w->m->store, wop_fn, w, wop_done);
	if (r < 0)
		wop_free(w);
	return r;
}

/* ---- exports ------------------------------------------------------------------- */

static void ex_step(struct mexport *e);
static void mig_export_ended(struct migrate *m, const char *migration_id, const char *export_id,
			     bool ok, const char *message);

static void ex_unref(struct mexport *e)
{
	if (--e->refs > 0)
		return;
	free(e->body);
	free(e);
}

static void ex_timer_closed(uv_handle_t *h)
{
	struct mexport *e = h->data;
	e->m->handles--;
	ex_unref(e);
}

/* No more work for this export (ended, or the daemon stops). */
static void ex_detach(struct mexport *e)
{
	if (e->ended)
		return;
	e->ended = true;
	struct migrate *m = e->m;
	for (struct mexport **pp = &m->exports; *pp; pp = &(*pp)->next)
		if (*pp == e) {
			*pp = e->next;
			break;
		}
	if (e->slot) {
		pipeline_slot_cancel(e->slot);
		e->slot = NULL;
	}
	if (e->call) {
		a0_call_cancel(e->call);
		e->call = NULL;
		/* its answer will never feed the bucket: count it answered */
		if (!m->stopping)
			pipeline_slot_ended(m->pl, e->tenant, NULL);
	}
	if (e->fd >= 0) {
		close(e->fd);
		e->fd = -1;
	}
	uv_timer_stop(&e->timer);
	uv_close((uv_handle_t *)&e->timer, ex_timer_closed);
}

static void ex_end_written(struct wop *w, int status)
{
	struct mexport *e = w->obj;
	if (status < 0)
		log_error("queue", "export %s: cannot store its end: %s", e->id, strerror(-status));
	if (status == 0 && e->migration_id[0])
		mig_export_ended(e->m, e->migration_id, e->id, strcmp(w->state, "completed") == 0,
				 w->error);
	ex_unref(e);
}

static void ex_finish(struct mexport *e, const char *state, const char *message, int64_t users,
		      int64_t bytes)
{
	struct wop *w = wop_new(e->m, W_EXPORT_UPDATE);
	if (message)
		log_warn("queue", "export %s: %s: %s", e->id, state, message);
	if (w) {
		snprintf(w->ex.id, sizeof(w->ex.id), "%s", e->id);
		snprintf(w->state, sizeof(w->state), "%s", state);
		w->users = users;
		w->bytes = bytes;
		w->error = message ? problem_text("export failed", message) : NULL;
		w->then = ex_end_written;
		w->obj = e;
		e->refs++;
		if (wop_queue(w) < 0)
			e->refs--;
	}
	snprintf(e->state, sizeof(e->state), "%s", state);
	ex_detach(e);
}

static void ex_timer_cb(uv_timer_t *t)
{
	struct mexport *e = t->data;
	if (!e->ended)
		ex_step(e);
}

static void ex_later(struct mexport *e, int64_t ms)
{
	if (e->ended)
		return;
	uv_timer_start(&e->timer, ex_timer_cb, (uint64_t)(ms < 0 ? 0 : ms), 0);
}

static void ex_retry(struct mexport *e, const struct a0_result *res, const char *message)
{
	if (++e->attempts > RETRY_MAX) {
		ex_finish(e, "failed", message, -1, -1);
		return;
	}
	int64_t delay = 1000ll << (e->attempts < 6 ? e->attempts - 1 : 5);
	if (res && res->cls.verdict == A0_WAIT && res->cls.wait_until_ms > 0) {
		struct timespec ts;
		clock_gettime(CLOCK_REALTIME, &ts);
		int64_t now = (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
		delay = res->cls.wait_until_ms - now;
	}
	log_info("queue", "export %s: %s, retrying in %" PRId64 " ms", e->id, message, delay);
	ex_later(e, delay);
}

static void ex_state_written(struct wop *w, int status)
{
	struct mexport *e = w->obj;
	if (status < 0 && !e->ended)
		ex_finish(e, "failed", "the store refused the export's state", -1, -1);
	ex_unref(e);
}

static void ex_set_state(struct mexport *e, const char *state, const char *job_id)
{
	snprintf(e->state, sizeof(e->state), "%s", state);
	struct wop *w = wop_new(e->m, W_EXPORT_UPDATE);
	if (!w)
		return;
	snprintf(w->ex.id, sizeof(w->ex.id), "%s", e->id);
	snprintf(w->state, sizeof(w->state), "%s", state);
	if (job_id)
		snprintf(w->job_id, sizeof(w->job_id), "%s", job_id);
	w->then = ex_state_written;
	w->obj = e;
	e->refs++;
	if (wop_queue(w) < 0)
		e->refs--;
}

/* -- the download's end, in a worker: fsync, rename, count -- */

struct ex_work {
	uv_work_t req;
	struct mexport *e;
	int fd;
	char part[4096], final[4096];
	int status;
	uint64_t users;
	int64_t bytes;
};

static void ex_finish_work(uv_work_t *req)
{
	struct ex_work *w = req->data;
	struct stat st;
	w->status = 0;
	if (fsync(w->fd) < 0 || fstat(w->fd, &st) < 0) {
		w->status = -errno;
	} else {
		w->bytes = (int64_t)st.st_size;
	}
	close(w->fd);
	if (w->status == 0 && rename(w->part, w->final) < 0)
		w->status = -errno;
	if (w->status == 0) {
		char dir[4096];
		snprintf(dir, sizeof(dir), "%s", w->final);
		char *slash = strrchr(dir, '/');
		if (slash)
			*slash = '\0';
		fsync_path(dir);
		w->status = convert_count_users(w->final, CONVERT_FORMAT_AUTO, &w->users);
	}
}

static void ex_finish_after(uv_work_t *req, int status)
{
	struct ex_work *w = req->data;
	struct mexport *e = w->e;
	e->m->workers--;
	if (!e->ended) {
		if (status < 0 || w->status < 0)
			ex_finish(e, "failed", "the downloaded file could not be stored or read", -1, -1);
		else
			ex_finish(e, "completed", NULL, (int64_t)w->users, w->bytes);
	}
	ex_unref(e);
	free(w);
}

static void ex_downloaded(const struct a0_result *res, void *arg)
{
	struct mexport *e = arg;
	e->call = NULL;
	if (res->cls.verdict == A0_OK && res->status >= 200 && res->status < 300) {
		struct ex_work *w = calloc(1, sizeof(*w));
		if (!w) {
			ex_retry(e, NULL, "out of memory");
			return;
		}
		w->e = e;
		w->fd = e->fd;
		w->req.data = w;
		sub_dir(e->m->state_dir, "exports", e->id, w->part, sizeof(w->part));
		strcat(w->part, "/export.part");
		export_file_path(e->m->state_dir, e->id, w->final, sizeof(w->final));
		if (uv_queue_work(e->m->loop, &w->req, ex_finish_work, ex_finish_after) < 0) {
			free(w);
			ex_retry(e, NULL, "cannot start a worker");
			return;
		}
		e->fd = -1;
		e->refs++;
		e->m->workers++;
		return;
	}
	close(e->fd);
	e->fd = -1;
	if (res->status == 403 || res->status == 401 || res->status == 400) {
		/* The signed link expired (or was refused): read the job again. */
		if (++e->refreshes > EXPORT_LINK_REFRESHES_MAX) {
			ex_finish(e, "failed", "the export's download link kept being refused", -1, -1);
			return;
		}
		log_info("queue", "export %s: download link refused (HTTP %ld), reading the job for a new one",
			 e->id, res->status);
		ex_later(e, 1000ll * (e->refreshes - 1));
		return;
	}
	if (res->result == -EMSGSIZE) {
		ex_finish(e, "failed", "the export file is larger than the daemon keeps", -1, -1);
		return;
	}
	ex_retry(e, res, res->cls.message[0] ? res->cls.message : "download failed");
}

static void ex_download(struct mexport *e, const char *url)
{
	struct a0_client *c = pipeline_tenant_client(e->m->pl, e->tenant);
	char part[4096];
	if (!c) {
		ex_finish(e, "failed", "the tenant is no longer configured", -1, -1);
		return;
	}
	if (mkdir_p2(e->m->state_dir, "exports", e->id) < 0 ||
	    sub_dir(e->m->state_dir, "exports", e->id, part, sizeof(part)) < 0) {
		ex_finish(e, "failed", "cannot create the export's directory", -1, -1);
		return;
	}
	strcat(part, "/export.part");
	e->fd = open(part, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (e->fd < 0) {
		ex_finish(e, "failed", "cannot create the export file", -1, -1);
		return;
	}
	int r = a0_download(c, url, e->fd, EXPORT_MAX_BYTES, ex_downloaded, e, &e->call);
	if (r < 0) {
		close(e->fd);
		e->fd = -1;
		ex_retry(e, NULL, "cannot start the download");
	}
}

static void ex_polled(const struct a0_result *res, void *arg)
{
	struct mexport *e = arg;
	e->call = NULL;
	pipeline_slot_ended(e->m->pl, e->tenant, res);
	if (res->cls.verdict != A0_OK || !res->has_job) {
		if (res->status == 404) {
			ex_finish(e, "failed", "Auth0 no longer knows the export job", -1, -1);
			return;
		}
		if (res->cls.verdict == A0_REJECTED) {
			ex_finish(e, "failed", res->cls.message, -1, -1);
			return;
		}
		ex_retry(e, res, res->cls.message[0] ? res->cls.message : "job read failed");
		return;
	}
	const struct a0_job *j = &res->job;
	e->attempts = 0;
	if (strcmp(j->status, "completed") == 0) {
		if (!j->location) {
			ex_retry(e, res, "the completed job has no location");
			return;
		}
		if (strcmp(e->state, "downloading") != 0)
			ex_set_state(e, "downloading", NULL);
		ex_download(e, j->location);
		return;
	}
	if (strcmp(j->status, "failed") == 0 || strcmp(j->status, "expired") == 0) {
		char msg[A0_MESSAGE_MAX + 64];
		snprintf(msg, sizeof(msg), "the Auth0 export job %s%s%s", j->status,
			 j->status_details[0] ? ": " : "", j->status_details);
		ex_finish(e, "failed", msg, -1, -1);
		return;
	}
	if (strcmp(e->state, "downloading") == 0) {
		/* A job seen completed before is no longer: odd, wait. */
		ex_set_state(e, "running", NULL);
	}
	e->poll_ms = e->poll_ms ? e->poll_ms * 3 / 2 : POLL_FIRST_MS;
	if (e->poll_ms > POLL_MAX_MS)
		e->poll_ms = POLL_MAX_MS;
	ex_later(e, e->poll_ms);
}

static void ex_created(const struct a0_result *res, void *arg)
{
	struct mexport *e = arg;
	e->call = NULL;
	pipeline_slot_ended(e->m->pl, e->tenant, res);
	if (res->cls.verdict == A0_OK && res->has_job) {
		snprintf(e->job_id, sizeof(e->job_id), "%s", res->job.id);
		e->attempts = 0;
		log_info("queue", "export %s: Auth0 job %s", e->id, e->job_id);
		ex_set_state(e, "running", e->job_id);
		ex_later(e, POLL_FIRST_MS);
		return;
	}
	if (res->cls.verdict == A0_REJECTED) {
		ex_finish(e, "failed", res->cls.message, -1, -1);
		return;
	}
	ex_retry(e, res, res->cls.message[0] ? res->cls.message : "export create failed");
}

static void ex_on_slot(struct a0_client *client, void *arg)
{
	struct mexport *e = arg;
	e->slot = NULL;
	int r;
	if (strcmp(e->state, "queued") == 0)
		r = a0_export_create(client, e->body, ex_created, e, &e->call);
	else
		r = a0_job_get(client, e->job_id, ex_polled, e, &e->call);
	if (r < 0) {
		e->call = NULL;
		pipeline_slot_ended(e->m->pl, e->tenant, NULL);
		ex_retry(e, NULL, "cannot start the request");
	}
}

static void ex_step(struct mexport *e)
{
	if (e->ended || e->slot || e->call)
		return;
	int r = pipeline_slot_wait(e->m->pl, e->tenant, ex_on_slot, e, &e->slot);
	if (r == -ENOENT)
		ex_finish(e, "failed", "the tenant is not configured (or has no credentials)", -1, -1);
	else if (r < 0)
		ex_retry(e, NULL, "cannot wait for the rate limiter");
}

/* Builds the runner of an export row and starts it at its state. */
static int ex_run(struct migrate *m, const struct export_row *r)
{
	struct mexport *e = calloc(1, sizeof(*e));
	if (!e)
		return -ENOMEM;
	e->m = m;
	e->fd = -1;
	snprintf(e->id, sizeof(e->id), "%s", r->id);
	snprintf(e->tenant, sizeof(e->tenant), "%s", r->tenant);
	snprintf(e->state, sizeof(e->state), "%s", r->state);
	snprintf(e->job_id, sizeof(e->job_id), "%s", r->job_id);
	snprintf(e->migration_id, sizeof(e->migration_id), "%s", r->migration_id);
	json_object *body = json_object_new_object();
	if (r->connection_id[0])
		json_object_object_add(body, "connection_id", json_object_new_string(r->connection_id));
	json_object_object_add(body, "format", json_object_new_string(r->format));
	if (r->limit > 0)
		json_object_object_add(body, "limit", json_object_new_int64(r->limit));
	json_object_object_add(body, "fields", json_tokener_parse(r->fields ? r->fields : "[]"));
	e->body = strdup(json_object_to_json_string_ext(body, JSON_C_TO_STRING_PLAIN));
	json_object_put(body);
	if (!e->body) {
		free(e);
		return -ENOMEM;
	}
	uv_timer_init(m->loop, &e->timer);
	e->timer.data = e;
	m->handles++;
	e->refs = 1;
	e->next = m->exports;
	m->exports = e;
	ex_step(e);
	return 0;
}

static struct mexport *ex_find(struct migrate *m, const char *id)
{
	for (struct mexport *e = m->exports; e; e = e->next)
		if (strcmp(e->id, id) == 0)
			return e;
	return NULL;
}

/* ---- migrations ------------------------------------------------------------- */

static void mig_unref(struct mmig *g)
{
	if (--g->refs > 0)
		return;
	free(g->filter);
	free(g);
}

/* Takes g off the list; true when it was on it (the list's reference is
 * then the caller's to drop). */
static bool mig_unlink(struct mmig *g)
{
	struct migrate *m = g->m;
	for (struct mmig **pp = &m->migs; *pp; pp = &(*pp)->next)
		if (*pp == g) {
			*pp = g->next;
			return true;
		}
	return false;
}

static void mig_detach(struct mmig *g)
{
	if (mig_unlink(g))
		mig_unref(g);
}

static struct mmig *mig_find(struct migrate *m, const char *id)
{
	for (struct mmig *g = m->migs; g; g = g->next)
		if (strcmp(g->id, id) == 0)
			return g;
	return NULL;
}

static bool mig_terminal(const char *s)
{
	return strcmp(s, "completed") == 0 || strcmp(s, "completed_with_errors") == 0 ||
	       strcmp(s, "failed") == 0 || strcmp(s, "cancelled") == 0;
}

static void mig_state_written(struct wop *w, int status)
{
	struct mmig *g = w->obj;
	g->writing = false;
	if (status < 0)
		log_error("queue", "migration %s: cannot store state %s: %s", g->id, w->state,
			  strerror(-status));
	else if (mig_terminal(w->state) && mig_unlink(g))
		g->refs--; /* the list's; the write's is dropped below */
	mig_unref(g);
}

static void mig_set_state(struct mmig *g, const char *state, const char *error_detail,
			  char *convert_json)
{
	snprintf(g->state, sizeof(g->state), "%s", state);
	struct wop *w = wop_new(g->m, W_MIGRATION_UPDATE);
	if (!w) {
		free(convert_json);
		return;
	}
	snprintf(w->mig.id, sizeof(w->mig.id), "%s", g->id);
	snprintf(w->state, sizeof(w->state), "%s", state);
	w->error = error_detail ? problem_text("migration failed", error_detail) : NULL;
	w->convert = convert_json;
	w->then = mig_state_written;
	w->obj = g;
	g->refs++;
	g->writing = true;
	if (wop_queue(w) < 0) {
		g->refs--;
		g->writing = false;
	}
}

/* -- converting, in a worker -- */

struct mig_work {
	uv_work_t req;
	struct mmig *g;
	char state_dir[4096];
	char export_path[4096];
	char *fields_json;
	char *filter;
	bool has_hashes;
	char import_id[IMPORT_ID_LEN + 1];
	struct convert_summary sum;
	int status;
	char err[512];
	int64_t upload_bytes;
	json_object *samples; /* the first MIGRATE_SAMPLES_MAX users not imported, and why */
};

#define MIGRATE_SAMPLES_MAX 100

/* Worker thread: keeps a bounded sample of the users conversion or the
 * filter left out (json-c objects are private to this work item). */
static int mig_on_user(void *ctx, uint64_t index, uint64_t line, enum convert_user_result res,
		       const struct convert_notes *notes)
{
	struct mig_work *w = ctx;
	if (res == CONVERT_USER_WRITTEN || res == CONVERT_USER_FILTERED_OUT)
		return 0;
	if (!w->samples)
		w->samples = json_object_new_array();
	if (!w->samples || json_object_array_length(w->samples) >= MIGRATE_SAMPLES_MAX)
		return 0;
	json_object *o = json_object_new_object(), *n = json_object_new_array();
	json_object_object_add(o, "index", json_object_new_int64((int64_t)index));
	json_object_object_add(o, "line", json_object_new_int64((int64_t)line));
	json_object_object_add(o, "stage", json_object_new_string(
		res == CONVERT_USER_FILTER_ERROR ? "filter" : "convert"));
	for (size_t i = 0; i < notes->n; i++)
		json_object_array_add(n, json_object_new_string(notes->note[i]));
	json_object_object_add(o, "notes", n);
	json_object_array_add(w->samples, o);
	return 0;
}

static void mig_convert_work(uv_work_t *req)
{
	struct mig_work *w = req->data;
	struct convert_fields f;
	struct convert_hashes *h = NULL;
	char dir[4096], out[4200], hashes[4200];
	json_object *fj = json_tokener_parse(w->fields_json ? w->fields_json : "null");
	w->status = convert_fields_parse(fj, &f, w->err, sizeof(w->err));
	json_object_put(fj);
	if (w->status < 0)
		return;
	if ((w->status = mkdir_p2(w->state_dir, "migrations", w->g->id)) < 0) {
		snprintf(w->err, sizeof(w->err), "cannot create the migration's directory: %s",
			 strerror(-w->status));
		return;
	}
	sub_dir(w->state_dir, "migrations", w->g->id, dir, sizeof(dir));
	snprintf(out, sizeof(out), "%s/import.json", dir);
	if (w->has_hashes) {
		struct convert_hashes_stats st;
		snprintf(hashes, sizeof(hashes), "%s/hashes", dir);
		w->status = convert_hashes_open(hashes, dir, &h, &st, w->err, sizeof(w->err));
		if (w->status < 0)
			return;
	}
	struct convert_params p = {
		.export_path = w->export_path,
		.fields = &f,
		.hashes = h,
		.filter = w->filter,
		.out_path = out,
		.sync = true,
	};
	struct convert_sink sink = { .on_user = mig_on_user };
	w->status = convert_run(&p, &sink, w, &w->sum, w->err, sizeof(w->err));
	convert_hashes_close(h);
	if (w->status < 0 || w->sum.users_out == 0)
		return;
	/* The converted file becomes the upload of a new import. */
	char idir[4096], upload[4200];
	if ((w->status = import_id_generate(w->import_id)) < 0 ||
	    (w->status = mkdir_p2(w->state_dir, "imports", w->import_id)) < 0) {
		snprintf(w->err, sizeof(w->err), "cannot create the import's directory: %s",
			 strerror(-w->status));
		return;
	}
	sub_dir(w->state_dir, "imports", w->import_id, idir, sizeof(idir));
	snprintf(upload, sizeof(upload), "%s/upload", idir);
	if (rename(out, upload) < 0) {
		w->status = -errno;
		snprintf(w->err, sizeof(w->err), "cannot move the converted file: %s", strerror(errno));
		return;
	}
	fsync_path(idir);
	struct stat st;
	w->upload_bytes = stat(upload, &st) == 0 ? (int64_t)st.st_size : 0;
}

static char *convert_counts_json(const struct convert_summary *s, bool has_filter, json_object *samples)
{
	json_object *o = json_object_new_object();
	json_object_object_add(o, "not_imported", samples ? json_object_get(samples) : json_object_new_array());
	json_object_object_add(o, "users_in", json_object_new_int64((int64_t)s->users_in));
	json_object_object_add(o, "users_out", json_object_new_int64((int64_t)(s->users_in - s->dropped)));
	json_object_object_add(o, "changed", json_object_new_int64((int64_t)s->changed));
	json_object_object_add(o, "dropped", json_object_new_int64((int64_t)s->dropped));
	json_object_object_add(o, "malformed", json_object_new_int64((int64_t)s->malformed));
	json_object_object_add(o, "hashes_added", json_object_new_int64((int64_t)s->hashes_added));
	json_object *f = json_object_new_object();
	uint64_t converted = s->users_in - s->dropped;
	json_object_object_add(f, "kept", json_object_new_int64((int64_t)(has_filter ? s->filter_kept : converted)));
	json_object_object_add(f, "dropped", json_object_new_int64((int64_t)s->filter_dropped));
	json_object_object_add(f, "changed", json_object_new_int64((int64_t)s->filter_changed));
	json_object_object_add(f, "errors", json_object_new_int64((int64_t)s->filter_errors));
	json_object_object_add(f, "users_out", json_object_new_int64((int64_t)s->users_out));
	json_object_object_add(o, "filter", f);
	char *txt = strdup(json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN));
	json_object_put(o);
	return txt;
}

static void mig_import_written(struct wop *w, int status)
{
	struct mmig *g = w->obj;
	g->writing = false;
	if (status < 0) {
		log_error("queue", "migration %s: cannot create its import: %s", g->id, strerror(-status));
		mig_set_state(g, "failed", "the import could not be stored", NULL);
	} else {
		snprintf(g->import_id, sizeof(g->import_id), "%s", w->import_id);
		snprintf(g->state, sizeof(g->state), "importing");
		int r = intake_start(g->m->in, g->import_id, NULL, NULL);
		if (r < 0 && r != -EALREADY)
			log_warn("queue", "migration %s: import %s validation not started (%s); it "
				 "resumes at the next start", g->id, g->import_id, strerror(-r));
	}
	mig_unref(g);
}

static void mig_convert_after(uv_work_t *req, int status)
{
	struct mig_work *w = req->data;
	struct mmig *g = w->g;
	struct migrate *m = g->m;
	m->workers--;
	g->working = false;
	if (m->stopping) {
		/* converted again at the next start */
	} else if (g->cancel_requested) {
		mig_set_state(g, "cancelled", NULL, NULL);
	} else if (status < 0 || w->status < 0) {
		char msg[600];
		snprintf(msg, sizeof(msg), "conversion failed: %s", w->err[0] ? w->err : "worker error");
		mig_set_state(g, "failed", msg, NULL);
	} else if (w->sum.users_out == 0) {
		log_info("queue", "migration %s: no user left after conversion and filter", g->id);
		mig_set_state(g, "completed", NULL, convert_counts_json(&w->sum, w->filter != NULL, w->samples));
	} else {
		log_info("queue", "migration %s: converted %" PRIu64 " users, %" PRIu64 " to import as %s",
			 g->id, w->sum.users_in, w->sum.users_out, w->import_id);
		struct wop *op = wop_new(m, W_MIGRATION_IMPORT);
		if (op) {
			snprintf(op->mig.id, sizeof(op->mig.id), "%s", g->id);
			snprintf(op->import_id, sizeof(op->import_id), "%s", w->import_id);
			snprintf(op->state, sizeof(op->state), "importing");
			op->convert = convert_counts_json(&w->sum, w->filter != NULL, w->samples);
			op->iopts = (struct import_options){
				.tenant = g->target_tenant,
				.connection_id = g->target_connection_id,
				.upsert = g->upsert,
				.send_completion_email = false,
				.external_id = g->id,
				.on_invalid = "skip",
				.unsupported_hash = "reject",
				.strip_auth0_prefix = 0,
				.max_errors = 1000,
			};
			op->upload_bytes = w->upload_bytes;
			op->then = mig_import_written;
			op->obj = g;
			g->refs++;
			g->writing = true;
			if (wop_queue(op) < 0) {
				g->refs--;
				g->writing = false;
			}
		}
	}
	mig_unref(g);
	json_object_put(w->samples);
	free(w->fields_json);
	free(w->filter);
	free(w);
}

static void mig_convert(struct mmig *g)
{
	struct migrate *m = g->m;
	if (g->working || m->stopping)
		return;
	struct export_row ex;
	if (export_load(store_reader(m->store), g->export_id, &ex) < 0) {
		mig_set_state(g, "failed", "the migration's export is gone", NULL);
		return;
	}
	struct mig_work *w = calloc(1, sizeof(*w));
	if (!w) {
		export_row_done(&ex);
		return;
	}
	w->req.data = w;
	w->g = g;
	snprintf(w->state_dir, sizeof(w->state_dir), "%s", m->state_dir);
	export_file_path(m->state_dir, g->export_id, w->export_path, sizeof(w->export_path));
	w->fields_json = ex.fields;
	ex.fields = NULL;
	export_row_done(&ex);
	w->filter = g->filter ? strdup(g->filter) : NULL;
	w->has_hashes = g->has_hashes;
	if (strcmp(g->state, "converting") != 0)
		mig_set_state(g, "converting", NULL, NULL);
	if (uv_queue_work(m->loop, &w->req, mig_convert_work, mig_convert_after) < 0) {
		free(w->fields_json);
		free(w->filter);
		free(w);
		mig_set_state(g, "failed", "cannot start the conversion", NULL);
		return;
	}
	g->working = true;
	g->refs++;
	m->workers++;
}

static void mig_export_ended(struct migrate *m, const char *migration_id, const char *export_id,
			     bool ok, const char *message)
{
	struct mmig *g = mig_find(m, migration_id);
	if (!g || strcmp(g->state, "exporting") != 0)
		return;
	if (ok) {
		mig_convert(g);
		return;
	}
	char msg[1024];
	json_object *p = message ? json_tokener_parse(message) : NULL;
	json_object *d = NULL;
	snprintf(msg, sizeof(msg), "the export %s failed: %s", export_id,
		 p && json_object_object_get_ex(p, "detail", &d) ? json_object_get_string(d) : "see the export");
	json_object_put(p);
	mig_set_state(g, "failed", msg, NULL);
}

/* Follows the imports of migrations in importing / cancelling. */
static void follow_cb(uv_timer_t *t)
{
	struct migrate *m = t->data;
	if (m->stopping)
		return;
	struct mmig *next;
	for (struct mmig *g = m->migs; g; g = next) {
		next = g->next;
		if (g->writing || g->working || !g->import_id[0])
			continue;
		if (strcmp(g->state, "importing") != 0 && strcmp(g->state, "cancelling") != 0)
			continue;
		struct import_row row;
		if (import_load(store_reader(m->store), g->import_id, &row) < 0)
			continue;
		if (!import_state_terminal(row.state))
			continue;
		const char *to = "completed_with_errors";
		switch (row.state) {
		case IMPORT_COMPLETED: to = "completed"; break;
		case IMPORT_FAILED: to = "failed"; break;
		case IMPORT_CANCELLED: to = "cancelled"; break;
		default: break;
		}
		mig_set_state(g, to, row.state == IMPORT_FAILED ? "the import failed (see stages.import)" : NULL,
			      NULL);
	}
}

static int mig_run(struct migrate *m, const struct migration_row *r)
{
	struct mmig *g = calloc(1, sizeof(*g));
	if (!g)
		return -ENOMEM;
	g->m = m;
	g->refs = 1;
	snprintf(g->id, sizeof(g->id), "%s", r->id);
	snprintf(g->state, sizeof(g->state), "%s", r->state);
	snprintf(g->export_id, sizeof(g->export_id), "%s", r->export_id);
	snprintf(g->import_id, sizeof(g->import_id), "%s", r->import_id);
	snprintf(g->target_tenant, sizeof(g->target_tenant), "%s", r->target_tenant);
	snprintf(g->target_connection_id, sizeof(g->target_connection_id), "%s", r->target_connection_id);
	g->filter = r->filter ? strdup(r->filter) : NULL;
	g->upsert = r->upsert;
	g->has_hashes = r->has_hashes;
	g->next = m->migs;
	m->migs = g;
	return 0;
}

/* ---- lifecycle --------------------------------------------------------------- */

int migrate_new(uv_loop_t *loop, struct store *store, struct pipeline *pl, struct intake *in,
		struct migrate **ret)
{
	struct migrate *m = calloc(1, sizeof(*m));
	if (!m)
		return -ENOMEM;
	m->loop = loop;
	m->store = store;
	m->pl = pl;
	m->in = in;
	m->state_dir = strdup(store_state_dir(store));
	if (!m->state_dir) {
		free(m);
		return -ENOMEM;
	}
	uv_timer_init(loop, &m->follow);
	m->follow.data = m;
	m->handles++;
	*ret = m;
	return 0;
}

static int resume_export(const struct export_row *r, void *ctx)
{
	struct migrate *m = ctx;
	if (ex_run(m, r) < 0)
		log_warn("queue", "export %s: cannot resume it, ignoring", r->id);
	return 0;
}

static int resume_migration(const struct migration_row *r, void *ctx)
{
	struct migrate *m = ctx;
	if (mig_run(m, r) < 0)
		log_warn("queue", "migration %s: cannot resume it, ignoring", r->id);
	return 0;
}

int migrate_start(struct migrate *m)
{
	int r = migration_foreach_unfinished(store_reader(m->store), resume_migration, m);
	if (r < 0)
		return r;
	r = export_foreach_unfinished(store_reader(m->store), resume_export, m);
	if (r < 0)
		return r;
	/* Migrations whose export ended while the daemon was down. */
	struct mmig *next;
	for (struct mmig *g = m->migs; g; g = next) {
		next = g->next;
		if (strcmp(g->state, "converting") == 0) {
			mig_convert(g);
		} else if (strcmp(g->state, "exporting") == 0 && !ex_find(m, g->export_id)) {
			struct export_row ex;
			if (export_load(store_reader(m->store), g->export_id, &ex) == 0) {
				mig_export_ended(m, g->id, ex.id, strcmp(ex.state, "completed") == 0, ex.error);
				export_row_done(&ex);
			}
		}
	}
	uv_timer_start(&m->follow, follow_cb, FOLLOW_MS, FOLLOW_MS);
	return 0;
}

static void follow_closed(uv_handle_t *h)
{
	struct migrate *m = h->data;
	m->handles--;
}

void migrate_stop(struct migrate *m)
{
	if (!m || m->stopping)
		return;
	m->stopping = true;
	while (m->exports)
		ex_detach(m->exports);
	uv_timer_stop(&m->follow);
	uv_close((uv_handle_t *)&m->follow, follow_closed);
}

bool migrate_busy(const struct migrate *m)
{
	return m && (m->workers > 0 || m->handles > 0);
}

void migrate_free(struct migrate *m)
{
	if (!m)
		return;
	while (m->migs)
		mig_detach(m->migs);
	free(m->state_dir);
	free(m);
}

/* ---- creation and cancel ----------------------------------------------------- */

static void export_inserted(struct wop *w, int status)
{
	struct migrate *m = w->m;
	if (status == 0 && !m->stopping && ex_run(m, &w->ex) < 0)
		log_warn("queue", "export %s: cannot start it now; it starts at the next start", w->ex.id);
	if (w->done)
		w->done(status, w->ex.id, w->done_arg);
}

int migrate_export_create(struct migrate *m, const struct export_params *p, migrate_done_fn done,
			  void *arg)
{
	if (m->stopping)
		return -ESHUTDOWN;
	struct wop *w = wop_new(m, W_EXPORT_INSERT);
	if (!w)
		return -ENOMEM;
	int r = gen_id("exp_", w->ex.id);
	if (r < 0) {
		wop_free(w);
		return r;
	}
	snprintf(w->ex.state, sizeof(w->ex.state), "queued");
	snprintf(w->ex.tenant, sizeof(w->ex.tenant), "%s", p->tenant);
	snprintf(w->ex.connection_id, sizeof(w->ex.connection_id), "%s", p->connection_id ? p->connection_id : "");
	snprintf(w->ex.format, sizeof(w->ex.format), "%s", p->format);
	w->ex.fields = strdup(json_object_to_json_string_ext(p->fields, JSON_C_TO_STRING_PLAIN));
	w->ex.limit = p->limit;
	w->ex.users = w->ex.bytes = -1;
	w->then = export_inserted;
	w->done = done;
	w->done_arg = arg;
	return wop_queue(w);
}

/* -- migration: move the hashes file in (worker), then commit -- */

struct mig_create {
	uv_work_t req;
	struct wop *w;
	char state_dir[4096];
	int status;
};

static void mig_inserted(struct wop *w, int status)
{
	struct migrate *m = w->m;
	if (status == 0 && !m->stopping) {
		if (mig_run(m, &w->mig) < 0 || ex_run(m, &w->ex) < 0)
			log_warn("queue", "migration %s: cannot start it now; it starts at the next start",
				 w->mig.id);
	}
	if (w->done)
		w->done(status, w->mig.id, w->done_arg);
}

static void mig_create_work(uv_work_t *req)
{
	struct mig_create *c = req->data;
	struct wop *w = c->w;
	c->status = 0;
	if (!w->hashes_spool)
		return;
	char dir[4096], dst[4200];
	if ((c->status = mkdir_p2(c->state_dir, "migrations", w->mig.id)) < 0)
		return;
	sub_dir(c->state_dir, "migrations", w->mig.id, dir, sizeof(dir));
	snprintf(dst, sizeof(dst), "%s/hashes", dir);
	if ((c->status = fsync_path(w->hashes_spool)) < 0)
		return;
	if (rename(w->hashes_spool, dst) < 0) {
		c->status = -errno;
		return;
	}
	fsync_path(dir);
}

static void mig_create_after(uv_work_t *req, int status)
{
	struct mig_create *c = req->data;
	struct wop *w = c->w;
	struct migrate *m = w->m;
	m->workers--;
	int r = status < 0 ? status : c->status;
	free(c);
	migrate_done_fn done = w->done;
	void *arg = w->done_arg;
	if (r == 0) {
		r = wop_queue(w); /* frees w on failure */
		if (r < 0 && done)
			done(r, NULL, arg);
		return;
	}
	log_error("queue", "migration %s: cannot keep the hashes file: %s", w->mig.id, strerror(-r));
	wop_free(w);
	if (done)
		done(r, NULL, arg);
}

int migrate_migration_create(struct migrate *m, const struct migration_params *p,
			     migrate_done_fn done, void *arg)
{
	if (m->stopping)
		return -ESHUTDOWN;
	struct wop *w = wop_new(m, W_MIGRATION_INSERT);
	struct mig_create *c = calloc(1, sizeof(*c));
	int r = -ENOMEM;
	if (!w || !c)
		goto fail;
	if ((r = gen_id("mig_", w->mig.id)) < 0 || (r = gen_id("exp_", w->ex.id)) < 0)
		goto fail;
	snprintf(w->mig.state, sizeof(w->mig.state), "exporting");
	snprintf(w->mig.source_tenant, sizeof(w->mig.source_tenant), "%s", p->source_tenant);
	snprintf(w->mig.source_connection_id, sizeof(w->mig.source_connection_id), "%s", p->source_connection_id);
	snprintf(w->mig.target_tenant, sizeof(w->mig.target_tenant), "%s", p->target_tenant);
	snprintf(w->mig.target_connection_id, sizeof(w->mig.target_connection_id), "%s", p->target_connection_id);
	w->mig.filter = p->filter && p->filter[0] ? strdup(p->filter) : NULL;
	w->mig.upsert = p->upsert;
	w->mig.has_hashes = p->hashes_path != NULL;
	snprintf(w->mig.export_id, sizeof(w->mig.export_id), "%s", w->ex.id);
	snprintf(w->ex.state, sizeof(w->ex.state), "queued");
	snprintf(w->ex.tenant, sizeof(w->ex.tenant), "%s", p->source_tenant);
	snprintf(w->ex.connection_id, sizeof(w->ex.connection_id), "%s", p->source_connection_id);
	snprintf(w->ex.format, sizeof(w->ex.format), "json");
	snprintf(w->ex.migration_id, sizeof(w->ex.migration_id), "%s", w->mig.id);
	struct convert_fields f;
	convert_fields_default(&f);
	json_object *fj = convert_fields_to_json(&f);
	w->ex.fields = strdup(json_object_to_json_string_ext(fj, JSON_C_TO_STRING_PLAIN));
	json_object_put(fj);
	w->ex.users = w->ex.bytes = -1;
	w->hashes_spool = p->hashes_path ? strdup(p->hashes_path) : NULL;
	w->then = mig_inserted;
	w->done = done;
	w->done_arg = arg;
	c->w = w;
	c->req.data = c;
	snprintf(c->state_dir, sizeof(c->state_dir), "%s", m->state_dir);
	if ((r = uv_queue_work(m->loop, &c->req, mig_create_work, mig_create_after)) < 0)
		goto fail;
	m->workers++;
	return 0;
fail:
	if (w)
		wop_free(w);
	free(c);
	return r;
}

static void mig_cancel_written(struct wop *w, int status)
{
	struct mmig *g = w->obj;
	g->writing = false;
	if (w->done)
		w->done(status, g->id, w->done_arg);
	mig_unref(g);
}

int migrate_migration_cancel(struct migrate *m, const char *id, migrate_done_fn done, void *arg)
{
	struct mmig *g = mig_find(m, id);
	if (!g) {
		struct migration_row r;
		int rc = migration_load(store_reader(m->store), id, &r);
		if (rc < 0)
			return rc;
		bool cancelled = strcmp(r.state, "cancelled") == 0;
		migration_row_done(&r);
		return cancelled ? 1 : -EPERM;
	}
	if (strcmp(g->state, "cancelling") == 0 || g->cancel_requested)
		return 1;
	if (g->writing)
		return -EAGAIN;
	if (strcmp(g->state, "exporting") == 0) {
		struct mexport *e = ex_find(m, g->export_id);
		if (e)
			ex_finish(e, "cancelled", NULL, -1, -1);
		mig_set_state(g, "cancelled", NULL, NULL);
		done(0, g->id, arg);
		return 0;
	}
	if (strcmp(g->state, "converting") == 0) {
		g->cancel_requested = true;
		if (!g->working)
			mig_set_state(g, "cancelled", NULL, NULL);
		else
			mig_set_state(g, "cancelling", NULL, NULL);
		done(0, g->id, arg);
		return 0;
	}
	/* importing: cancel the import, follow it to its end */
	struct wop *w = wop_new(m, W_MIGRATION_CANCEL);
	if (!w)
		return -ENOMEM;
	snprintf(w->mig.id, sizeof(w->mig.id), "%s", g->id);
	snprintf(w->import_id, sizeof(w->import_id), "%s", g->import_id);
	snprintf(w->state, sizeof(w->state), "cancelling");
	snprintf(g->state, sizeof(g->state), "cancelling");
	w->then = mig_cancel_written;
	w->obj = g;
	w->done = done;
	w->done_arg = arg;
	g->refs++;
	g->writing = true;
	int r = wop_queue(w);
	if (r < 0) {
		g->refs--;
		g->writing = false;
	}
	return r;
}

const char *migrate_migration_state(struct migrate *m, const char *id)
{
	struct mmig *g = m ? mig_find(m, id) : NULL;
	return g ? g->state : NULL;
}
