/* undo — delete the users an import inserted (see undo.h). */
#include "queue/undo.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "daemon/auth0/mgmt.h"
#include "daemon/log.h"
#include "daemon/users/users.h"
#include "queue/chunk.h"
#include "queue/import.h"
#include "queue/pipeline.h"
#include "queue/store.h"

#define PERSIST_MS 1000
#define ATTEMPTS_MAX 5u
#define LINE_MAX_BYTES 2048u

struct ujob;

struct undo {
	uv_loop_t *loop;
	struct store *store;
	struct pipeline *pl;
	char *state_dir;
	struct ujob *jobs;
	bool stopping;
	unsigned workers;
	unsigned handles;
};

enum ustep { U_LOOKUP, U_DELETE };

struct ujob {
	struct undo *u;
	struct ujob *next;
	char import_id[32], tenant[64], state[16];
	bool upsert;
	int64_t first_job_at; /* unix s */
	int fd;
	uint64_t cursor, next_cursor;
	int64_t total, done, deleted, not_found, kept, failed;
	int64_t started_at;
	int64_t last_persist_ms;
	char cur_id[320], cur_email[320];
	enum ustep step;
	unsigned attempts;
	struct pipeline_slot *slot;
	struct a0_call *call;
	uv_timer_t timer;
	unsigned refs;
	bool ended, writing;
};

static int64_t now_s(void)
{
	return (int64_t)time(NULL);
}

static int64_t now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

__attribute__((noinline)) static int targets_path(const char *state_dir, const char *id, char *buf,
						  size_t len)
{
	int n = snprintf(buf, len, "%s/imports/%s/undo-targets.ndjson", state_dir, id);
	return n < 0 || (size_t)n >= len ? -ENAMETOOLONG : 0;
}

/* ---- the undos row ------------------------------------------------------------ */

struct uwrite {
	struct undo *u;
	struct ujob *j;
	bool insert;
	char import_id[32], state[16];
	int64_t total, done, deleted, not_found, kept, failed;
	uint64_t cursor;
	char error[256];
	undo_done_fn done_fn;
	void *done_arg;
	void (*then)(struct uwrite *w, int status);
};

static int uwrite_fn(struct sqlite3 *db, void *ctx)
{
	struct uwrite *w = ctx;
	sqlite3_stmt *st;
	int rc;
	if (w->insert) {
		/* A new undo, or one that failed before: never two at once. */
		rc = sqlite3_prepare_v2(db, "SELECT state FROM undos WHERE import_id = ?1", -1, &st, NULL);
		if (rc != SQLITE_OK)
			return store_errno(rc);
		sqlite3_bind_text(st, 1, w->import_id, -1, SQLITE_STATIC);
		rc = sqlite3_step(st);
		/* one undo per import; only a failed one may run again */
		bool busy = rc == SQLITE_ROW && strcmp((const char *)sqlite3_column_text(st, 0), "failed") != 0;
		sqlite3_finalize(st);
		if (busy)
			return -EEXIST;
		rc = sqlite3_prepare_v2(db, "INSERT OR REPLACE INTO undos (import_id, state, started_at, "
					"updated_at) VALUES (?1, 'preparing', ?2, ?2)", -1, &st, NULL);
		if (rc != SQLITE_OK)
			return store_errno(rc);
		sqlite3_bind_text(st, 1, w->import_id, -1, SQLITE_STATIC);
		sqlite3_bind_int64(st, 2, now_s());
	} else {
		rc = sqlite3_prepare_v2(db, "UPDATE undos SET state = ?2, total = ?3, done = ?4, deleted = ?5, "
					"not_found = ?6, kept = ?7, failed = ?8, cursor = ?9, "
					"error = COALESCE(?10, error), updated_at = ?11 WHERE import_id = ?1",
					-1, &st, NULL);
		if (rc != SQLITE_OK)
			return store_errno(rc);
		sqlite3_bind_text(st, 1, w->import_id, -1, SQLITE_STATIC);
		sqlite3_bind_text(st, 2, w->state, -1, SQLITE_STATIC);
		sqlite3_bind_int64(st, 3, w->total);
		sqlite3_bind_int64(st, 4, w->done);
		sqlite3_bind_int64(st, 5, w->deleted);
		sqlite3_bind_int64(st, 6, w->not_found);
		sqlite3_bind_int64(st, 7, w->kept);
		sqlite3_bind_int64(st, 8, w->failed);
		sqlite3_bind_int64(st, 9, (int64_t)w->cursor);
		if (w->error[0])
			sqlite3_bind_text(st, 10, w->error, -1, SQLITE_STATIC);
		else
			sqlite3_bind_null(st, 10);
		sqlite3_bind_int64(st, 11, now_s());
	}
	rc = sqlite3_step(st);
	sqlite3_finalize(st);
	return rc == SQLITE_DONE ? 0 : store_errno(rc);
}

static void uwrite_done(int status, void *ctx)
{
	struct uwrite *w = ctx;
	if (w->then)
		w->then(w, status);
	free(w);
}

static void uj_unref(struct ujob *j)
{
	if (--j->refs == 0)
		free(j);
}

static void uj_written(struct uwrite *w, int status)
{
	struct ujob *j = w->j;
	j->writing = false;
	if (status < 0)
		log_error("queue", "import %s: cannot store the undo's progress: %s", j->import_id,
			  strerror(-status));
	uj_unref(j);
}

static void uj_persist(struct ujob *j, const char *error)
{
	struct uwrite *w = calloc(1, sizeof(*w));
	if (!w)
		return;
	w->u = j->u;
	w->j = j;
	snprintf(w->import_id, sizeof(w->import_id), "%s", j->import_id);
	snprintf(w->state, sizeof(w->state), "%s", j->state);
	w->total = j->total;
	w->done = j->done;
	w->deleted = j->deleted;
	w->not_found = j->not_found;
	w->kept = j->kept;
	w->failed = j->failed;
	w->cursor = j->cursor;
	if (error)
		snprintf(w->error, sizeof(w->error), "%s", error);
	w->then = uj_written;
	j->refs++;
	j->writing = true;
	j->last_persist_ms = now_ms();
	if (store_write(j->u->store, uwrite_fn, w, uwrite_done) < 0) {
		j->refs--;
		j->writing = false;
		free(w);
	}
}

/* ---- the runner ------------------------------------------------------------------ */

static void uj_next(struct ujob *j);

static void uj_timer_closed(uv_handle_t *h)
{
	struct ujob *j = h->data;
	j->u->handles--;
	uj_unref(j);
}

static void uj_detach(struct ujob *j)
{
	if (j->ended)
		return;
	j->ended = true;
	for (struct ujob **pp = &j->u->jobs; *pp; pp = &(*pp)->next)
		if (*pp == j) {
			*pp = j->next;
			break;
		}
	if (j->slot) {
		pipeline_slot_cancel(j->slot);
		j->slot = NULL;
	}
	if (j->call) {
		a0_call_cancel(j->call);
		j->call = NULL;
		if (!j->u->stopping)
			pipeline_slot_ended(j->u->pl, j->tenant, NULL);
	}
	if (j->fd >= 0) {
		close(j->fd);
		j->fd = -1;
	}
	uv_timer_stop(&j->timer);
	uv_close((uv_handle_t *)&j->timer, uj_timer_closed);
}

static void uj_end(struct ujob *j, const char *state, const char *error)
{
	snprintf(j->state, sizeof(j->state), "%s", state);
	log_info("queue", "import %s: undo %s: %" PRId64 " deleted, %" PRId64 " not found, %" PRId64
		 " kept, %" PRId64 " failed", j->import_id, state, j->deleted, j->not_found, j->kept,
		 j->failed);
	uj_persist(j, error);
	uj_detach(j);
}

static void uj_advance(struct ujob *j)
{
	j->done++;
	j->cursor = j->next_cursor;
	j->attempts = 0;
	if (!j->writing && now_ms() - j->last_persist_ms >= PERSIST_MS)
		uj_persist(j, NULL);
	uj_next(j);
}

static void uj_timer_cb(uv_timer_t *t)
{
	struct ujob *j = t->data;
	if (j->ended)
		return;
	uj_next(j);
}

static void uj_step(struct ujob *j);

static void uj_retry_timer(uv_timer_t *t)
{
	struct ujob *j = t->data;
	if (!j->ended)
		uj_step(j);
}

/* A transient failure of the current request: again later, or count it. */
static void uj_retry(struct ujob *j, const struct a0_result *res)
{
	if (++j->attempts > ATTEMPTS_MAX) {
		j->failed++;
		uj_advance(j);
		return;
	}
	int64_t delay = 1000ll << (j->attempts - 1);
	if (res && res->cls.verdict == A0_WAIT && res->cls.wait_until_ms > 0)
		delay = res->cls.wait_until_ms - now_ms();
	uv_timer_start(&j->timer, uj_retry_timer, (uint64_t)(delay < 0 ? 0 : delay), 0);
}

static int64_t iso_to_s(const char *s)
{
	struct tm tm;
	memset(&tm, 0, sizeof(tm));
	if (!s || !strptime(s, "%Y-%m-%dT%H:%M:%S", &tm))
		return -1;
	return (int64_t)timegm(&tm);
}

static void uj_deleted(const struct a0_result *res, void *arg)
{
	struct ujob *j = arg;
	j->call = NULL;
	pipeline_slot_ended(j->u->pl, j->tenant, res);
	if (res->cls.verdict == A0_OK) {
		j->deleted++;
		uj_advance(j);
	} else if (res->status == 404) {
		j->not_found++;
		uj_advance(j);
	} else if (res->cls.verdict == A0_REJECTED) {
		log_warn("queue", "import %s: undo: deleting %s refused: %s, ignoring", j->import_id,
			 j->cur_id, res->cls.message);
		j->failed++;
		uj_advance(j);
	} else {
		uj_retry(j, res);
	}
}

static void uj_looked_up(const struct a0_result *res, void *arg)
{
	struct ujob *j = arg;
	j->call = NULL;
	pipeline_slot_ended(j->u->pl, j->tenant, res);
	if (res->cls.verdict != A0_OK) {
		if (res->cls.verdict == A0_REJECTED) {
			j->failed++;
			uj_advance(j);
		} else {
			uj_retry(j, res);
		}
		return;
	}
	json_object *found = NULL;
	size_t n = res->errors ? json_object_array_length(res->errors) : 0;
	for (size_t i = 0; i < n && !found; i++) {
		json_object *usr = json_object_array_get_idx(res->errors, i), *id;
		if (json_object_object_get_ex(usr, "user_id", &id) &&
		    strncmp(json_object_get_string(id), "auth0|", 6) == 0)
			found = usr;
	}
	if (!found) {
		j->not_found++;
		uj_advance(j);
		return;
	}
	json_object *v;
	if (j->upsert) {
		int64_t created = json_object_object_get_ex(found, "created_at", &v) ?
			iso_to_s(json_object_get_string(v)) : -1;
		if (created >= 0 && j->first_job_at > 0 && created < j->first_job_at) {
			j->kept++;
			uj_advance(j);
			return;
		}
	}
	json_object_object_get_ex(found, "user_id", &v);
	snprintf(j->cur_id, sizeof(j->cur_id), "%s", json_object_get_string(v));
	j->step = U_DELETE;
	j->attempts = 0;
	uj_step(j);
}

static void uj_on_slot(struct a0_client *client, void *arg)
{
	struct ujob *j = arg;
	j->slot = NULL;
	int r = j->step == U_LOOKUP ?
		a0_users_by_email(client, j->cur_email, uj_looked_up, j, &j->call) :
		a0_user_delete(client, j->cur_id, uj_deleted, j, &j->call);
	if (r < 0) {
		j->call = NULL;
		pipeline_slot_ended(j->u->pl, j->tenant, NULL);
		j->failed++;
		uj_advance(j);
	}
}

static void uj_step(struct ujob *j)
{
	if (j->ended || j->slot || j->call)
		return;
	int r = pipeline_slot_wait(j->u->pl, j->tenant, uj_on_slot, j, &j->slot);
	if (r < 0)
		uj_end(j, "failed", r == -ENOENT ? "the import's tenant is not configured" :
		       "cannot wait for the rate limiter");
}

/* Reads the target at the cursor and starts its requests. */
static void uj_next(struct ujob *j)
{
	if (j->ended)
		return;
	char buf[LINE_MAX_BYTES + 1];
	for (;;) {
		ssize_t n = pread(j->fd, buf, LINE_MAX_BYTES, (off_t)j->cursor);
		if (n < 0) {
			uj_end(j, "failed", "cannot read the undo's targets file");
			return;
		}
		if (n == 0) {
			uj_end(j, "completed", NULL);
			return;
		}
		buf[n] = '\0';
		char *nl = memchr(buf, '\n', (size_t)n);
		if (!nl) {
			uj_end(j, "failed", "the undo's targets file is damaged");
			return;
		}
		*nl = '\0';
		j->next_cursor = j->cursor + (uint64_t)(nl - buf) + 1;
		json_object *o = json_tokener_parse(buf), *v;
		j->cur_id[0] = j->cur_email[0] = '\0';
		if (o && json_object_object_get_ex(o, "u", &v) && json_object_is_type(v, json_type_string))
			snprintf(j->cur_id, sizeof(j->cur_id), "auth0|%s", json_object_get_string(v));
		if (o && json_object_object_get_ex(o, "e", &v) && json_object_is_type(v, json_type_string))
			snprintf(j->cur_email, sizeof(j->cur_email), "%s", json_object_get_string(v));
		json_object_put(o);
		j->attempts = 0;
		if (!j->upsert && j->cur_id[0]) {
			j->step = U_DELETE;
		} else if (j->cur_email[0]) {
			j->step = U_LOOKUP;
		} else {
			j->failed++;
			j->done++;
			j->cursor = j->next_cursor;
			continue;
		}
		uj_step(j);
		return;
	}
}

static struct ujob *uj_new(struct undo *u, const struct import_row *row)
{
	struct ujob *j = calloc(1, sizeof(*j));
	if (!j)
		return NULL;
	j->u = u;
	j->fd = -1;
	snprintf(j->import_id, sizeof(j->import_id), "%s", row->id);
	snprintf(j->tenant, sizeof(j->tenant), "%s", row->tenant);
	snprintf(j->state, sizeof(j->state), "preparing");
	j->upsert = row->upsert;
	uv_timer_init(u->loop, &j->timer);
	j->timer.data = j;
	u->handles++;
	j->refs = 1;
	j->next = u->jobs;
	u->jobs = j;
	return j;
}

/* Opens the targets file and runs from the cursor. */
static void uj_run(struct ujob *j)
{
	char path[4096];
	targets_path(j->u->state_dir, j->import_id, path, sizeof(path));
	j->fd = open(path, O_RDONLY | O_CLOEXEC);
	if (j->fd < 0) {
		uj_end(j, "failed", "the undo's targets file is gone");
		return;
	}
	snprintf(j->state, sizeof(j->state), "running");
	j->last_persist_ms = now_ms();
	uv_timer_start(&j->timer, uj_timer_cb, 0, 0);
}

/* ---- preparing, in a worker ------------------------------------------------------ */

struct prep {
	uv_work_t req;
	struct ujob *j;
	char state_dir[4096];
	bool strip_prefix;
	int status;
	char err[256];
	int64_t total, first_job_at;
	FILE *out;
	const uint8_t *indices;
	size_t n_indices;
	int64_t *errs;
	size_t n_errs;
};

static int cmp64(const void *a, const void *b)
{
	int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
	return x < y ? -1 : x > y;
}

static int prep_elem(void *ctx, uint32_t pos, const char *elem, size_t len)
{
	struct prep *p = ctx;
	if ((size_t)pos >= p->n_indices)
		return -EBADMSG;
	uint32_t le;
	memcpy(&le, p->indices + (size_t)pos * 4, 4);
	int64_t idx = (int64_t)le;
	if (p->n_errs && bsearch(&idx, p->errs, p->n_errs, sizeof(int64_t), cmp64))
		return 0;
	json_tokener *tok = json_tokener_new();
	json_object *o = tok ? json_tokener_parse_ex(tok, elem, (int)len) : NULL, *v;
	json_tokener_free(tok);
	json_object *line = json_object_new_object();
	if (o && json_object_object_get_ex(o, "user_id", &v) && json_object_is_type(v, json_type_string)) {
		const char *id = json_object_get_string(v);
		if (p->strip_prefix && strncmp(id, "auth0|", 6) == 0)
			id += 6;
		json_object_object_add(line, "u", json_object_new_string(id));
	}
	if (o && json_object_object_get_ex(o, "email", &v) && json_object_is_type(v, json_type_string))
		json_object_object_add(line, "e", json_object_new_string(json_object_get_string(v)));
	int r = fprintf(p->out, "%s\n", json_object_to_json_string_ext(line, JSON_C_TO_STRING_PLAIN)) < 0 ?
		-EIO : 0;
	json_object_put(line);
	json_object_put(o);
	p->total++;
	return r;
}

static void prep_work(uv_work_t *req)
{
	struct prep *p = req->data;
	struct ujob *j = p->j;
	sqlite3 *db = NULL;
	sqlite3_stmt *st = NULL;
	char dbpath[4200], path[4096], tmp[4200];
	size_t cap = 0;
	p->status = 0;
	snprintf(dbpath, sizeof(dbpath), "%s/%s", p->state_dir, STORE_DB_NAME);
	if (sqlite3_open_v2(dbpath, &db, SQLITE_OPEN_READONLY, NULL) != SQLITE_OK) {
		p->status = -EIO;
		snprintf(p->err, sizeof(p->err), "cannot open the store");
		goto out;
	}
	sqlite3_busy_timeout(db, 5000);
	/* the users Auth0 reported errors for */
	if (sqlite3_prepare_v2(db, "SELECT idx FROM auth0_user_errors WHERE import_id = ?1 ORDER BY idx",
			       -1, &st, NULL) != SQLITE_OK) {
		p->status = -EIO;
		goto out;
	}
	sqlite3_bind_text(st, 1, j->import_id, -1, SQLITE_STATIC);
	while (sqlite3_step(st) == SQLITE_ROW) {
		if (p->n_errs == cap) {
			cap = cap ? cap * 2 : 256;
			int64_t *n = realloc(p->errs, cap * sizeof(int64_t));
			if (!n) {
				p->status = -ENOMEM;
				goto out;
			}
			p->errs = n;
		}
		p->errs[p->n_errs++] = sqlite3_column_int64(st, 0);
	}
	sqlite3_finalize(st);
	st = NULL;
	if (sqlite3_prepare_v2(db, "SELECT MIN(submitted_at) FROM chunks WHERE import_id = ?1", -1, &st,
			       NULL) == SQLITE_OK) {
		sqlite3_bind_text(st, 1, j->import_id, -1, SQLITE_STATIC);
		if (sqlite3_step(st) == SQLITE_ROW)
			p->first_job_at = sqlite3_column_int64(st, 0);
		sqlite3_finalize(st);
		st = NULL;
	}
	targets_path(p->state_dir, j->import_id, path, sizeof(path));
	snprintf(tmp, sizeof(tmp), "%s.tmp", path);
	p->out = fopen(tmp, "we");
	if (!p->out) {
		p->status = -errno;
		snprintf(p->err, sizeof(p->err), "cannot create the targets file");
		goto out;
	}
	if (sqlite3_prepare_v2(db, "SELECT chunk_no, indices FROM chunks WHERE import_id = ?1 AND "
			       "state = 'completed' ORDER BY chunk_no", -1, &st, NULL) != SQLITE_OK) {
		p->status = -EIO;
		goto out;
	}
	sqlite3_bind_text(st, 1, j->import_id, -1, SQLITE_STATIC);
	while (sqlite3_step(st) == SQLITE_ROW) {
		char cpath[4096];
		chunk_file_path(p->state_dir, j->import_id, sqlite3_column_int64(st, 0), cpath, sizeof(cpath));
		p->indices = sqlite3_column_blob(st, 1);
		p->n_indices = (size_t)sqlite3_column_bytes(st, 1) / 4;
		int r = users_chunk_foreach(cpath, prep_elem, p);
		if (r < 0) {
			p->status = r;
			snprintf(p->err, sizeof(p->err), "the import's chunk files are gone (spool_retention) "
				 "or unreadable: %s", strerror(-r));
			goto out;
		}
	}
	if (fflush(p->out) != 0 || fsync(fileno(p->out)) < 0) {
		p->status = -EIO;
		goto out;
	}
	fclose(p->out);
	p->out = NULL;
	if (rename(tmp, path) < 0) {
		p->status = -errno;
		goto out;
	}
out:
	if (p->out) {
		fclose(p->out);
		unlink(tmp);
	}
	sqlite3_finalize(st);
	if (db)
		sqlite3_close(db);
	free(p->errs);
	p->errs = NULL;
}

static void prep_written(struct uwrite *w, int status)
{
	struct ujob *j = w->j;
	j->writing = false;
	if (status == 0 && !j->ended && strcmp(j->state, "running") == 0)
		uj_run(j);
	uj_unref(j);
}

static void prep_after(uv_work_t *req, int status)
{
	struct prep *p = req->data;
	struct ujob *j = p->j;
	j->u->workers--;
	if (!j->ended) {
		if (status < 0 || p->status < 0) {
			uj_end(j, "failed", p->err[0] ? p->err : "cannot prepare the undo");
		} else {
			j->total = p->total;
			j->first_job_at = p->first_job_at;
			snprintf(j->state, sizeof(j->state), "running");
			log_info("queue", "import %s: undo of %" PRId64 " users", j->import_id, j->total);
			struct uwrite *w = calloc(1, sizeof(*w));
			if (w) {
				w->u = j->u;
				w->j = j;
				snprintf(w->import_id, sizeof(w->import_id), "%s", j->import_id);
				snprintf(w->state, sizeof(w->state), "running");
				w->total = j->total;
				w->then = prep_written;
				j->refs++;
				j->writing = true;
				if (store_write(j->u->store, uwrite_fn, w, uwrite_done) < 0) {
					j->refs--;
					j->writing = false;
					free(w);
				}
			}
		}
	}
	uj_unref(j);
	free(p);
}

static int uj_prepare(struct ujob *j, const struct import_row *row)
{
	struct prep *p = calloc(1, sizeof(*p));
	if (!p)
		return -ENOMEM;
	p->req.data = p;
	p->j = j;
	p->strip_prefix = row->strip_auth0_prefix == 1;
	snprintf(p->state_dir, sizeof(p->state_dir), "%s", j->u->state_dir);
	int r = uv_queue_work(j->u->loop, &p->req, prep_work, prep_after);
	if (r < 0) {
		free(p);
		return r;
	}
	j->refs++;
	j->u->workers++;
	return 0;
}

/* ---- lifecycle ------------------------------------------------------------------- */

int undo_new(uv_loop_t *loop, struct store *store, struct pipeline *pl, struct undo **ret)
{
	struct undo *u = calloc(1, sizeof(*u));
	if (!u)
		return -ENOMEM;
	u->loop = loop;
	u->store = store;
	u->pl = pl;
	u->state_dir = strdup(store_state_dir(store));
	if (!u->state_dir) {
		free(u);
		return -ENOMEM;
	}
	*ret = u;
	return 0;
}

int undo_resume(struct undo *u)
{
	sqlite3 *db = store_reader(u->store);
	sqlite3_stmt *st;
	int rc = sqlite3_prepare_v2(db, "SELECT import_id, state, total, done, deleted, not_found, kept, "
				    "failed, cursor FROM undos WHERE state IN ('preparing', 'running')",
				    -1, &st, NULL);
	if (rc != SQLITE_OK)
		return store_errno(rc);
	int n = 0;
	while (sqlite3_step(st) == SQLITE_ROW) {
		struct import_row row;
		const char *id = (const char *)sqlite3_column_text(st, 0);
		if (import_load(db, id, &row) < 0)
			continue;
		struct ujob *j = uj_new(u, &row);
		if (!j)
			break;
		j->total = sqlite3_column_int64(st, 2);
		j->done = sqlite3_column_int64(st, 3);
		j->deleted = sqlite3_column_int64(st, 4);
		j->not_found = sqlite3_column_int64(st, 5);
		j->kept = sqlite3_column_int64(st, 6);
		j->failed = sqlite3_column_int64(st, 7);
		j->cursor = (uint64_t)sqlite3_column_int64(st, 8);
		if (strcmp((const char *)sqlite3_column_text(st, 1), "running") == 0) {
			/* first_job_at again from the chunks */
			sqlite3_stmt *q;
			if (sqlite3_prepare_v2(db, "SELECT MIN(submitted_at) FROM chunks WHERE import_id = ?1",
					       -1, &q, NULL) == SQLITE_OK) {
				sqlite3_bind_text(q, 1, id, -1, SQLITE_STATIC);
				if (sqlite3_step(q) == SQLITE_ROW)
					j->first_job_at = sqlite3_column_int64(q, 0);
				sqlite3_finalize(q);
			}
			uj_run(j);
		} else if (uj_prepare(j, &row) < 0) {
			uj_end(j, "failed", "cannot prepare the undo");
		}
		n++;
	}
	sqlite3_finalize(st);
	return n;
}

void undo_stop(struct undo *u)
{
	if (!u || u->stopping)
		return;
	u->stopping = true;
	while (u->jobs)
		uj_detach(u->jobs);
}

bool undo_busy(const struct undo *u)
{
	return u && (u->workers > 0 || u->handles > 0);
}

void undo_free(struct undo *u)
{
	if (!u)
		return;
	free(u->state_dir);
	free(u);
}

struct start_ctx {
	struct undo *u;
	struct import_row row;
	undo_done_fn done;
	void *arg;
};

static void started(struct uwrite *w, int status)
{
	struct start_ctx *c = (struct start_ctx *)w->done_arg;
	struct undo *u = c->u;
	if (status == 0 && !u->stopping) {
		struct ujob *j = uj_new(u, &c->row);
		if (!j || uj_prepare(j, &c->row) < 0) {
			if (j)
				uj_end(j, "failed", "cannot prepare the undo");
		}
	}
	if (c->done)
		c->done(status, c->row.id, c->arg);
	free(c);
}

int undo_start(struct undo *u, const char *id, undo_done_fn done, void *arg, char *why, size_t whylen)
{
	if (u->stopping)
		return -ESHUTDOWN;
	struct start_ctx *c = calloc(1, sizeof(*c));
	if (!c)
		return -ENOMEM;
	int r = import_load(store_reader(u->store), id, &c->row);
	if (r < 0) {
		free(c);
		return r;
	}
	if (c->row.dry_run || c->row.state == IMPORT_VALIDATED || c->row.state == IMPORT_REJECTED) {
		snprintf(why, whylen, "import %s is %s: nothing was imported", id, import_state_name(c->row.state));
		free(c);
		return -EPERM;
	}
	if (!import_state_terminal(c->row.state)) {
		snprintf(why, whylen, "import %s is %s: cancel it or wait for its end first", id,
			 import_state_name(c->row.state));
		free(c);
		return -EBUSY;
	}
	if (!pipeline_tenant_client(u->pl, c->row.tenant)) {
		snprintf(why, whylen, "the import's tenant %s is not configured", c->row.tenant);
		free(c);
		return -EPERM;
	}
	for (struct ujob *j = u->jobs; j; j = j->next)
		if (strcmp(j->import_id, id) == 0) {
			snprintf(why, whylen, "an undo of import %s is already running", id);
			free(c);
			return -EEXIST;
		}
	struct uwrite *w = calloc(1, sizeof(*w));
	if (!w) {
		free(c);
		return -ENOMEM;
	}
	c->u = u;
	c->done = done;
	c->arg = arg;
	w->u = u;
	w->insert = true;
	snprintf(w->import_id, sizeof(w->import_id), "%s", id);
	w->then = started;
	w->done_arg = c;
	r = store_write(u->store, uwrite_fn, w, uwrite_done);
	if (r < 0) {
		free(w);
		free(c);
	}
	return r;
}

/* ---- JSON ---------------------------------------------------------------------------- */

void undo_json_add(struct sqlite3 *db, const char *import_id, json_object *o)
{
	sqlite3_stmt *st;
	if (sqlite3_prepare_v2(db, "SELECT state, total, done, deleted, not_found, kept, failed, error, "
			       "started_at, updated_at FROM undos WHERE import_id = ?1", -1, &st, NULL) != SQLITE_OK)
		return;
	sqlite3_bind_text(st, 1, import_id, -1, SQLITE_STATIC);
	if (sqlite3_step(st) == SQLITE_ROW) {
		json_object *un = json_object_new_object();
		const char *state = (const char *)sqlite3_column_text(st, 0);
		int64_t total = sqlite3_column_int64(st, 1), done = sqlite3_column_int64(st, 2);
		int64_t started = sqlite3_column_int64(st, 8), updated = sqlite3_column_int64(st, 9);
		json_object_object_add(un, "state", json_object_new_string(state));
		const char *keys[] = { "total", "done", "deleted", "not_found", "kept", "failed" };
		for (int i = 0; i < 6; i++)
			json_object_object_add(un, keys[i], json_object_new_int64(sqlite3_column_int64(st, i + 1)));
		double progress = strcmp(state, "completed") == 0 ? 1.0 : total > 0 ? (double)done / (double)total : 0.0;
		char buf[16];
		snprintf(buf, sizeof(buf), "%.4f", progress);
		json_object_object_add(un, "progress", json_object_new_double_s(progress, buf));
		json_object *eta = NULL;
		if (strcmp(state, "completed") == 0)
			eta = json_object_new_int64(0);
		else if (strcmp(state, "running") == 0 && done > 0 && updated > started)
			eta = json_object_new_int64((int64_t)((double)(updated - started) / (double)done *
							      (double)(total - done)) + 1);
		json_object_object_add(un, "eta_seconds", eta);
		const unsigned char *err = sqlite3_column_text(st, 7);
		json_object_object_add(un, "error", err ? json_object_new_string((const char *)err) : NULL);
		char t[32];
		time_t tt = (time_t)started;
		struct tm tm;
		gmtime_r(&tt, &tm);
		strftime(t, sizeof(t), "%Y-%m-%dT%H:%M:%SZ", &tm);
		json_object_object_add(un, "started_at", json_object_new_string(t));
		json_object_object_add(o, "undo", un);
	}
	sqlite3_finalize(st);
}

int undo_import_json(struct sqlite3 *db, const char *import_id, json_object **ret)
{
	json_object *o = NULL;
	int r = import_json(db, import_id, false, now_s(), &o);
	if (r < 0)
		return r;
	undo_json_add(db, import_id, o);
	*ret = o;
	return 0;
}
