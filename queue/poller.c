/* poller — follows submitted jobs to their end, fetches their per-user
 * errors, maps them back to the original indices and commits the chunk's
 * outcome (see pipeline.h). */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "daemon/log.h"
#include "queue/pipeline_int.h"
#include "queue/store.h"

/* "The user already exist and upsert parameter is false" */
#define DUPLICATE_MARK "already exist"

/* One user's errors, mapped to its original index. */
struct mapped_error {
	int64_t idx;
	char *email, *user_id;
	char *errors_json;
};

struct completion {
	struct pchunk *c;
	char import_id[IMPORT_ID_LEN + 1];
	int64_t chunk_no;
	bool failed;             /* the job failed as a whole */
	char message[A0_MESSAGE_MAX];
	int64_t inserted, updated, assumed;
	struct mapped_error *rows;
	size_t nrows;
	bool errors_fetched;
};

static void completion_free(struct completion *cp)
{
	for (size_t i = 0; i < cp->nrows; i++) {
		free(cp->rows[i].email);
		free(cp->rows[i].user_id);
		free(cp->rows[i].errors_json);
	}
	free(cp->rows);
	free(cp);
}

static int completion_fn(struct sqlite3 *db, void *ctx)
{
	struct completion *cp = ctx;
	int64_t now = pipeline_now_ms() / 1000;
	int r;
	for (size_t i = 0; i < cp->nrows; i++) {
		struct mapped_error *m = &cp->rows[i];
		r = auth0_user_error_add_tx(db, cp->import_id, cp->chunk_no, m->idx, m->email,
					    m->user_id, m->errors_json);
		if (r < 0)
			return r;
	}
	if (cp->errors_fetched && (r = chunk_mark_errors_fetched_tx(db, cp->import_id, cp->chunk_no)) < 0)
		return r;
	if (cp->failed) {
		struct chunk_update u = {.error = cp->message};
		r = chunk_set_state_tx(db, cp->import_id, cp->chunk_no, CHUNK_FAILED, &u, now, NULL);
	} else {
		struct chunk_update u = {.inserted = cp->inserted, .updated = cp->updated,
					 .assumed = cp->assumed};
		r = chunk_set_state_tx(db, cp->import_id, cp->chunk_no, CHUNK_COMPLETED, &u, now, NULL);
	}
	return r < 0 ? r : 0;
}

static void completion_done(int status, void *ctx)
{
	struct completion *cp = ctx;
	struct pchunk *c = cp->c;
	struct pipeline *p = c->p;
	if (status < 0)
		log_error("queue", "chunk %s-%" PRId64 ": cannot store its outcome: %s", cp->import_id,
			  cp->chunk_no, strerror(-status));
	else if (cp->failed)
		log_warn("queue", "chunk %s-%" PRId64 ": job %s failed: %s", cp->import_id, cp->chunk_no,
			 c->job_id, cp->message);
	else
		log_info("queue", "chunk %s-%" PRId64 ": job %s completed (inserted %" PRId64
			 ", updated %" PRId64 ", assumed %" PRId64 ", %zu users with errors)",
			 cp->import_id, cp->chunk_no, c->job_id, cp->inserted, cp->updated, cp->assumed,
			 cp->nrows);
	completion_free(cp);
	pchunk_end(c);
	pchunk_release(c);
	pipeline_tick(p);
}

static void commit(struct completion *cp)
{
	struct pchunk *c = cp->c;
	c->pending++;
	int r = store_write(c->p->store, completion_fn, cp, completion_done);
	if (r < 0) {
		log_error("queue", "chunk %s-%" PRId64 ": cannot queue its outcome: %s", cp->import_id,
			  cp->chunk_no, strerror(-r));
		c->pending--;
		completion_free(cp);
	}
}

static struct completion *completion_new(struct pchunk *c)
{
	struct completion *cp = calloc(1, sizeof(*cp));
	if (!cp)
		return NULL;
	cp->c = c;
	snprintf(cp->import_id, sizeof(cp->import_id), "%s", c->imp->id);
	cp->chunk_no = c->chunk_no;
	cp->failed = c->job_failed;
	snprintf(cp->message, sizeof(cp->message), "%s", c->message);
	cp->inserted = c->inserted;
	cp->updated = c->updated;
	/* A resubmitted chunk under upsert: users Auth0 "updated" were most
	 * likely inserted by the first submission. */
	if (c->resubmitted && c->imp->upsert && cp->updated > 0) {
		cp->inserted += cp->updated;
		cp->assumed += cp->updated;
		cp->updated = 0;
	}
	return cp;
}

/* Without per-user errors (none, 204, the job-object shape, or given up). */
static void commit_summary(struct pchunk *c, bool fetched)
{
	struct completion *cp = completion_new(c);
	if (!cp)
		return;
	cp->errors_fetched = fetched;
	commit(cp);
}

/* --- poll --------------------------------------------------------------------------- */

static bool status_is(const char *s, const char *v)
{
	return strcasecmp(s, v) == 0;
}

static void poll_done(const struct a0_result *res, void *arg)
{
	struct pchunk *c = arg;
	struct pipeline *p = c->p;
	c->call = NULL;
	pipeline_observe_none(c, res);
	int64_t now = pipeline_now_ms();
	if (c->dead || !c->item)
		goto out;
	switch (res->cls.verdict) {
	case A0_OK: {
		const struct a0_job *j = &res->job;
		bool ended = true, fetch = false;
		if (status_is(j->status, "completed")) {
			c->inserted = j->inserted;
			c->updated = j->updated;
			c->failed = j->failed;
			fetch = j->failed > 0;
		} else if (status_is(j->status, "failed") || status_is(j->status, "expired")) {
			c->job_failed = true;
			if (j->status_details[0])
				snprintf(c->message, sizeof(c->message), "%s", j->status_details);
			else
				snprintf(c->message, sizeof(c->message), "the Auth0 job %s", j->status);
			fetch = status_is(j->status, "failed");
		} else {
			ended = false;
			if (!status_is(j->status, "pending") && !status_is(j->status, "processing"))
				log_info("queue", "job %s: unknown status \"%s\", still following it",
					 c->job_id, j->status);
			sched_poll_running(c->item, now, j->percentage_done, j->time_left_seconds);
		}
		if (ended) {
			pipeline_count_job_end(c, now);
			sched_poll_ended(c->item, now, fetch);
			if (!fetch)
				commit_summary(c, false);
		}
		break;
	}
	case A0_WAIT:
		sched_requeue(c->item, now);
		break;
	case A0_NOT_FOUND:
		c->job_failed = true;
		snprintf(c->message, sizeof(c->message), "Auth0 no longer knows job %.100s: %.300s", c->job_id,
			 res->cls.message);
		sched_poll_ended(c->item, now, false);
		commit_summary(c, false);
		break;
	default:
		/* Transient, or credentials that stopped working: keep following
		 * (Auth0 ends the job anyway; SCHED_DO_EXPIRE bounds it). */
		pipeline_count_retry(c, "job");
		sched_retry(c->item, now);
		break;
	}
out:
	pchunk_release(c);
	pipeline_tick(p);
	pipeline_drain_check(p);
}

void poller_poll(struct pchunk *c)
{
	c->pending++;
	int r = a0_job_get(c->imp->t->client, c->job_id, poll_done, c, &c->call);
	if (r < 0)
		pipeline_call_not_started(poll_done, c, "cannot poll", r);
}

void poller_expire(struct pchunk *c)
{
	c->job_failed = true;
	snprintf(c->message, sizeof(c->message),
		 "job %s still running after 2 hours (Auth0 fails such jobs)", c->job_id);
	commit_summary(c, false);
}

/* --- errors ---------------------------------------------------------------------------- */

struct map_work {
	uv_work_t work;
	struct pchunk *c;
	char path[4096];
	uint32_t *indices;
	size_t nindices;
	json_object *errors;     /* the list, a reference */
	bool count_duplicates;   /* resubmitted, upsert=false */
	struct completion *cp;
	size_t duplicates;
	int status;
};

struct user_keys {
	char *email, *user_id, *username;
};

static char *dup_lower(const char *s)
{
	if (!s)
		return NULL;
	char *d = strdup(s);
	for (char *x = d; x && *x; x++)
		if (*x >= 'A' && *x <= 'Z')
			*x = (char)(*x - 'A' + 'a');
	return d;
}

static const char *get_str(json_object *o, const char *k)
{
	json_object *v;
	if (o && json_object_object_get_ex(o, k, &v) && json_object_is_type(v, json_type_string))
		return json_object_get_string(v);
	return NULL;
}

/* Auth0's paths name its internal shape ("identities[0].profileData.email");
 * the last component is the property of the user. */
static void pointer_of(const char *path, char *buf, size_t len)
{
	if (!path || !path[0]) {
		snprintf(buf, len, "%s", "");
		return;
	}
	const char *dot = strrchr(path, '.');
	const char *last = dot ? dot + 1 : path;
	snprintf(buf, len, "/%s", last);
}

static bool all_duplicates(json_object *errs)
{
	size_t n = json_object_array_length(errs);
	if (n == 0)
		return false;
	for (size_t i = 0; i < n; i++) {
		json_object *e = json_object_array_get_idx(errs, i);
		const char *code = get_str(e, "code");
		const char *msg = get_str(e, "message");
		if (!code || strcmp(code, "DUPLICATED_USER") != 0 || !msg || !strstr(msg, DUPLICATE_MARK))
			return false;
	}
	return true;
}

static void map_work_fn(uv_work_t *req)
{
	struct map_work *mw = req->data;
	struct user_keys *keys = NULL;
	size_t nkeys = 0;
	char *buf = NULL;
	json_object *arr = NULL;
	int r = 0;

	/* The chunk file is at most one request body (~500 KB). */
	int fd = open(mw->path, O_RDONLY | O_CLOEXEC);
	struct stat sb;
	if (fd < 0 || fstat(fd, &sb) < 0 || sb.st_size > 64 * 1024 * 1024) {
		r = fd < 0 ? -errno : -EFBIG;
		goto out;
	}
	buf = malloc((size_t)sb.st_size + 1);
	if (!buf || read(fd, buf, (size_t)sb.st_size) != sb.st_size) {
		r = buf ? -EIO : -ENOMEM;
		goto out;
	}
	buf[sb.st_size] = '\0';
	json_tokener *tok = json_tokener_new_ex(64);
	if (!tok) {
		r = -ENOMEM;
		goto out;
	}
	arr = json_tokener_parse_ex(tok, buf, (int)sb.st_size);
	json_tokener_free(tok);
	if (!arr || !json_object_is_type(arr, json_type_array)) {
		r = -EBADMSG;
		goto out;
	}
	nkeys = json_object_array_length(arr);
	keys = calloc(nkeys ? nkeys : 1, sizeof(*keys));
	if (!keys) {
		r = -ENOMEM;
		goto out;
	}
	for (size_t i = 0; i < nkeys; i++) {
		json_object *u = json_object_array_get_idx(arr, i);
		keys[i].email = dup_lower(get_str(u, "email"));
		const char *uid = get_str(u, "user_id");
		keys[i].user_id = uid ? strdup(uid) : NULL;
		keys[i].username = dup_lower(get_str(u, "username"));
	}

	size_t n = json_object_array_length(mw->errors);
	struct completion *cp = mw->cp;
	cp->rows = calloc(n ? n : 1, sizeof(*cp->rows));
	if (!cp->rows) {
		r = -ENOMEM;
		goto out;
	}
	for (size_t i = 0; i < n; i++) {
		json_object *entry = json_object_array_get_idx(mw->errors, i);
		json_object *user = NULL, *errs = NULL;
		json_object_object_get_ex(entry, "user", &user);
		if (!json_object_object_get_ex(entry, "errors", &errs) ||
		    !json_object_is_type(errs, json_type_array))
			continue;
		char *email = dup_lower(get_str(user, "email"));
		const char *uid = get_str(user, "user_id");
		char *uname = dup_lower(get_str(user, "username"));
		size_t pos = SIZE_MAX;
		for (size_t k = 0; k < nkeys && pos == SIZE_MAX; k++)
			if (email && keys[k].email && strcmp(email, keys[k].email) == 0)
				pos = k;
		for (size_t k = 0; k < nkeys && pos == SIZE_MAX; k++)
			if (uid && keys[k].user_id &&
			    (strcmp(uid, keys[k].user_id) == 0 ||
			     (strncmp(uid, "auth0|", 6) == 0 && strcmp(uid + 6, keys[k].user_id) == 0)))
				pos = k;
		for (size_t k = 0; k < nkeys && pos == SIZE_MAX; k++)
			if (uname && keys[k].username && strcmp(uname, keys[k].username) == 0)
				pos = k;
		free(email);
		free(uname);
		if (pos == SIZE_MAX || pos >= mw->nindices)
			continue; /* not ours: counted in the summary anyway */
		if (mw->count_duplicates && all_duplicates(errs)) {
			mw->duplicates++;
			continue;
		}
		int64_t idx = mw->indices[pos];
		json_object *probs = json_object_new_array();
		size_t ne = json_object_array_length(errs);
		for (size_t e = 0; e < ne; e++) {
			json_object *ae = json_object_array_get_idx(errs, e);
			json_object *pr = json_object_new_object();
			char ptr[256];
			pointer_of(get_str(ae, "path"), ptr, sizeof(ptr));
			json_object_object_add(pr, "index", json_object_new_int64(idx));
			json_object_object_add(pr, "path", json_object_new_string(ptr));
			const char *code = get_str(ae, "code");
			const char *msg = get_str(ae, "message");
			json_object_object_add(pr, "code", json_object_new_string(code ? code : "UNKNOWN"));
			json_object_object_add(pr, "message", json_object_new_string(msg ? msg : ""));
			json_object_array_add(probs, pr);
		}
		struct mapped_error *m = &cp->rows[cp->nrows++];
		m->idx = idx;
		m->email = keys[pos].email ? strdup(get_str(json_object_array_get_idx(arr, pos), "email")) : NULL;
		m->user_id = keys[pos].user_id ? strdup(keys[pos].user_id) : NULL;
		m->errors_json = strdup(json_object_to_json_string_ext(probs, JSON_C_TO_STRING_PLAIN));
		json_object_put(probs);
	}
out:
	if (fd >= 0)
		close(fd);
	for (size_t i = 0; i < nkeys; i++) {
		free(keys[i].email);
		free(keys[i].user_id);
		free(keys[i].username);
	}
	free(keys);
	json_object_put(arr);
	free(buf);
	mw->status = r;
}

static void map_after_work(uv_work_t *req, int status)
{
	struct map_work *mw = req->data;
	struct pchunk *c = mw->c;
	struct completion *cp = mw->cp;
	if (status < 0 && mw->status == 0)
		mw->status = status;
	json_object_put(mw->errors);
	free(mw->indices);
	if (c->dead) {
		completion_free(cp);
		pchunk_release(c);
		free(mw);
		return;
	}
	if (mw->status < 0)
		log_warn("queue", "chunk %s-%" PRId64 ": cannot map Auth0's errors to users (%s), "
			 "keeping the summary only", c->imp->id, c->chunk_no, strerror(-mw->status));
	if (mw->duplicates > 0) {
		/* A resubmission after a possible first delivery: "already exist"
		 * means the first one got there. */
		cp->inserted += (int64_t)mw->duplicates;
		cp->assumed += (int64_t)mw->duplicates;
	}
	cp->errors_fetched = true;
	commit(cp);
	pchunk_release(c);
	free(mw);
}

static void map_start(struct pchunk *c, json_object *errors)
{
	struct pipeline *p = c->p;
	struct map_work *mw = calloc(1, sizeof(*mw));
	struct completion *cp = completion_new(c);
	struct chunk ch;
	memset(&ch, 0, sizeof(ch));
	if (!mw || !cp || chunk_load(store_reader(p->store), c->imp->id, c->chunk_no, &ch) < 0 ||
	    chunk_file_path(p->state_dir, c->imp->id, c->chunk_no, mw->path, sizeof(mw->path)) < 0) {
		free(mw);
		if (cp)
			completion_free(cp);
		chunk_done(&ch);
		commit_summary(c, false);
		return;
	}
	mw->c = c;
	mw->cp = cp;
	mw->indices = ch.indices;
	mw->nindices = (size_t)ch.users;
	ch.indices = NULL;
	chunk_done(&ch);
	mw->errors = json_object_get(errors);
	mw->count_duplicates = c->resubmitted && !c->imp->upsert;
	mw->work.data = mw;
	c->pending++;
	if (uv_queue_work(p->loop, &mw->work, map_work_fn, map_after_work) < 0) {
		c->pending--;
		json_object_put(mw->errors);
		free(mw->indices);
		completion_free(cp);
		free(mw);
		commit_summary(c, false);
	}
}

static void fetch_done(const struct a0_result *res, void *arg)
{
	struct pchunk *c = arg;
	struct pipeline *p = c->p;
	c->call = NULL;
	pipeline_observe_none(c, res);
	int64_t now = pipeline_now_ms();
	if (c->dead || !c->item)
		goto out;
	switch (res->cls.verdict) {
	case A0_OK:
		if (res->has_job && res->job.status_details[0] && c->job_failed)
			snprintf(c->message, sizeof(c->message), "%s", res->job.status_details);
		if (res->errors && json_object_array_length(res->errors) > 0 && !c->job_failed)
			map_start(c, res->errors);
		else
			commit_summary(c, true);
		break;
	case A0_WAIT:
		sched_requeue(c->item, now);
		break;
	case A0_NOT_FOUND:
		commit_summary(c, false);
		break;
	default:
		pipeline_count_retry(c, "job-errors");
		if (sched_retry(c->item, now) == -ETIMEDOUT) {
			log_warn("queue", "chunk %s-%" PRId64 ": cannot fetch job %s's errors (%s), "
				 "keeping the summary only", c->imp->id, c->chunk_no, c->job_id,
				 res->cls.message);
			commit_summary(c, false);
		}
		break;
	}
out:
	pchunk_release(c);
	pipeline_tick(p);
	pipeline_drain_check(p);
}

void poller_fetch_errors(struct pchunk *c)
{
	c->pending++;
	int r = a0_job_errors(c->imp->t->client, c->job_id, fetch_done, c, &c->call);
	if (r < 0)
		pipeline_call_not_started(fetch_done, c, "cannot fetch errors", r);
}
