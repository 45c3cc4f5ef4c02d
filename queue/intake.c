#include "queue/intake.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <sqlite3.h>

#include "daemon/log.h"
#include "queue/store.h"

struct intake_job {
	struct intake *in;
	struct intake_job *next;
	char id[IMPORT_ID_LEN + 1];
	struct import_row row;
	struct users_options uopts;
	uv_work_t work;
	intake_done_fn done;
	void *done_ctx;

	/* Live progress, written by the worker, read on the loop. */
	_Atomic uint64_t bytes_read, bytes_total, users_seen, users_invalid;

	/* Worker results, read on the loop after the work callback. */
	char dir[1024];
	char index_path[1200];
	FILE *problems;
	FILE *index;
	int io_error;
	int status;
	struct users_summary summary;
	struct users_failure failure;
	json_object *errors;
	json_object *warnings;
	uint64_t errors_users;
	bool truncated;
	enum import_state target;
	char *error_json;

	/* Commit results. */
	enum import_state final_state;
};

struct intake {
	uv_loop_t *loop;
	struct store *store;
	char *state_dir;
	struct intake_limits limits;
	struct intake_job *jobs;
	bool stopping;
	uv_timer_t sweep_timer;
	bool sweep_started;
	bool sweeping;          /* a sweep worker is running */
	uv_work_t sweep_work;
	uint64_t sweep_retention;
	int sweep_removed;
	void (*on_outcome)(void *arg);  /* any validation's outcome committed */
	void *on_outcome_arg;
};

static int64_t now_s(void)
{
	return (int64_t)time(NULL);
}

static int path_check(int n, size_t len)
{
	if (n < 0 || (size_t)n >= len)
		return -ENAMETOOLONG;
	return 0;
}

int intake_import_dir(const char *state_dir, const char *id, char *buf, size_t len)
{
	return path_check(snprintf(buf, len, "%s/imports/%s", state_dir, id), len);
}

int intake_upload_path(const char *state_dir, const char *id, char *buf, size_t len)
{
	return path_check(snprintf(buf, len, "%s/imports/%s/upload", state_dir, id), len);
}

int intake_problems_path(const char *state_dir, const char *id, char *buf, size_t len)
{
	return path_check(snprintf(buf, len, "%s/imports/%s/problems.ndjson", state_dir, id), len);
}

int intake_spool_dir(const char *state_dir, char *buf, size_t len)
{
	return path_check(snprintf(buf, len, "%s/spool", state_dir), len);
}

void intake_users_options(const struct import_row *row, const struct intake_limits *limits,
			  struct users_options *ret)
{
	struct users_options o;
	users_options_init(&o);
	o.on_invalid = strcmp(row->on_invalid, "skip") == 0 ? USERS_ON_INVALID_SKIP : USERS_ON_INVALID_REJECT;
	o.unsupported_hash = strcmp(row->unsupported_hash, "strip") == 0 ? USERS_UNSUPPORTED_HASH_STRIP
									  : USERS_UNSUPPORTED_HASH_REJECT;
	o.strip_auth0_prefix = row->strip_auth0_prefix < 0   ? USERS_AUTH0_PREFIX_UNSET
			       : row->strip_auth0_prefix > 0 ? USERS_AUTH0_PREFIX_STRIP
							     : USERS_AUTH0_PREFIX_KEEP;
	o.max_users = limits->max_users > UINT32_MAX ? UINT32_MAX : (uint32_t)limits->max_users;
	o.max_errors = 0; /* the whole list goes to problems.ndjson */
	o.chunk_bytes = (size_t)limits->chunk_bytes;
	*ret = o;
}

int intake_new(uv_loop_t *loop, struct store *store, const char *state_dir,
	       const struct intake_limits *limits, struct intake **ret)
{
	struct intake *in = calloc(1, sizeof(*in));
	if (!in)
		return -ENOMEM;
	in->state_dir = strdup(state_dir);
	if (!in->state_dir) {
		free(in);
		return -ENOMEM;
	}
	in->loop = loop;
	in->store = store;
	in->limits = *limits;
	*ret = in;
	return 0;
}

void intake_set_limits(struct intake *in, const struct intake_limits *limits)
{
	in->limits = *limits;
}

void intake_stop(struct intake *in)
{
	in->stopping = true;
	if (in->sweep_started && !uv_is_closing((uv_handle_t *)&in->sweep_timer))
		uv_close((uv_handle_t *)&in->sweep_timer, NULL);
}

bool intake_busy(const struct intake *in)
{
	return in->jobs != NULL || in->sweeping;
}

void intake_free(struct intake *in)
{
	if (!in)
		return;
	free(in->state_dir);
	free(in);
}

static struct intake_job *job_find(const struct intake *in, const char *id)
{
	for (struct intake_job *j = in->jobs; j; j = j->next)
		if (strcmp(j->id, id) == 0)
			return j;
	return NULL;
}

static void job_unlink(struct intake_job *job)
{
	struct intake_job **p = &job->in->jobs;
	while (*p && *p != job)
		p = &(*p)->next;
	if (*p)
		*p = job->next;
}

static void job_free(struct intake_job *job)
{
	if (job->problems)
		fclose(job->problems);
	if (job->index)
		fclose(job->index);
	json_object_put(job->errors);
	json_object_put(job->warnings);
	free(job->error_json);
	free(job);
}

int intake_progress(const struct intake *in, const char *id, uint64_t *ret_bytes_read,
		    uint64_t *ret_bytes_total, uint64_t *ret_users, uint64_t *ret_invalid)
{
	const struct intake_job *j = job_find(in, id);
	if (!j)
		return -ENOENT;
	*ret_bytes_read = atomic_load(&j->bytes_read);
	*ret_bytes_total = atomic_load(&j->bytes_total);
	*ret_users = atomic_load(&j->users_seen);
	*ret_invalid = atomic_load(&j->users_invalid);
	return 0;
}

void intake_detach(struct intake *in, const char *id, void *ctx)
{
	struct intake_job *j = job_find(in, id);
	if (j && j->done_ctx == ctx) {
		j->done = NULL;
		j->done_ctx = NULL;
	}
}

/* ---- worker thread ------------------------------------------------------ */

static json_object *problem_json(uint32_t index, const struct users_problem *p)
{
	json_object *o = json_object_new_object();
	json_object_object_add(o, "index", json_object_new_int64(index));
	if (p->line) /* CSV files */
		json_object_object_add(o, "line", json_object_new_int64(p->line));
	json_object_object_add(o, "path", json_object_new_string(p->path ? p->path : ""));
	json_object_object_add(o, "code", json_object_new_string(p->code ? p->code : ""));
	json_object_object_add(o, "message", json_object_new_string(p->message ? p->message : ""));
	if (p->hint)
		json_object_object_add(o, "hint", json_object_new_string(p->hint));
	return o;
}

static int on_problems(void *ctx, uint32_t index, uint32_t line, const char *email,
		       const char *user_id, const struct users_problem *problems, size_t n,
		       bool warnings_only)
{
	struct intake_job *job = ctx;
	json_object *o = json_object_new_object(), *user = json_object_new_object();
	json_object *errs = json_object_new_array(), *warns = json_object_new_array();
	int64_t max_errors = job->row.max_errors;

	if (!warnings_only)
		atomic_fetch_add(&job->users_invalid, 1);
	bool keep_errors = !warnings_only && job->errors_users < (uint64_t)max_errors;
	if (!warnings_only) {
		if (keep_errors)
			job->errors_users++;
		else
			job->truncated = true;
	}
	for (size_t i = 0; i < n; i++) {
		const struct users_problem *p = &problems[i];
		json_object_array_add(p->warning ? warns : errs, problem_json(index, p));
		if (p->warning) {
			if (json_object_array_length(job->warnings) < (size_t)max_errors)
				json_object_array_add(job->warnings, problem_json(index, p));
		} else if (keep_errors) {
			json_object_array_add(job->errors, problem_json(index, p));
		}
	}
	json_object_object_add(o, "index", json_object_new_int64(index));
	json_object_object_add(o, "line", json_object_new_int64(line));
	json_object_object_add(user, "email", email ? json_object_new_string(email) : NULL);
	json_object_object_add(user, "user_id", user_id ? json_object_new_string(user_id) : NULL);
	json_object_object_add(o, "user", user);
	json_object_object_add(o, "source", json_object_new_string("validation"));
	json_object_object_add(o, "errors", errs);
	json_object_object_add(o, "warnings", warns);
	const char *text = json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE);
	if (fputs(text, job->problems) == EOF || fputc('\n', job->problems) == EOF)
		job->io_error = errno ? -errno : -EIO;
	json_object_put(o);
	return job->io_error;
}

static int on_chunk(void *ctx, uint32_t chunk_no, const char *path, uint32_t n_users,
		    const uint32_t *indices, size_t bytes)
{
	struct intake_job *job = ctx;
	uint64_t head[2] = { ((uint64_t)chunk_no << 32) | n_users, bytes };
	if (fwrite(head, sizeof(head), 1, job->index) != 1 ||
	    (n_users > 0 && fwrite(indices, sizeof(uint32_t), n_users, job->index) != n_users))
		job->io_error = -EIO;
	return job->io_error;
}

static int on_progress(void *ctx, uint64_t bytes_read, uint64_t bytes_total, uint64_t users_seen)
{
	struct intake_job *job = ctx;
	atomic_store(&job->bytes_read, bytes_read);
	atomic_store(&job->bytes_total, bytes_total);
	atomic_store(&job->users_seen, users_seen);
	/* The daemon is stopping: leave the import validating for the next
	 * start. */
	return job->in->stopping ? -ECANCELED : 0;
}

static const char *failure_title(const char *slug)
{
	if (!slug)
		return "Internal error";
	if (strcmp(slug, "malformed-file") == 0)
		return "Malformed users file";
	if (strcmp(slug, "not-an-array") == 0)
		return "Not a users array";
	if (strcmp(slug, "empty-file") == 0)
		return "Empty users file";
	if (strcmp(slug, "too-many-users") == 0)
		return "Too many users";
	return "Internal error";
}

static char *failure_problem_json(const struct users_failure *f, unsigned status)
{
	const char *slug = f->slug ? f->slug : "internal";
	json_object *o = json_object_new_object();
	char type[96];
	snprintf(type, sizeof(type), "/problems/%s", slug);
	json_object_object_add(o, "type", json_object_new_string(type));
	json_object_object_add(o, "title", json_object_new_string(failure_title(slug)));
	json_object_object_add(o, "status", json_object_new_int(status));
	json_object_object_add(o, "detail", json_object_new_string(f->message));
	if (f->kind == USERS_FAILURE_MALFORMED) {
		json_object_object_add(o, "offset", json_object_new_int64((int64_t)f->offset));
		json_object_object_add(o, "line", json_object_new_int64(f->line));
		json_object_object_add(o, "column", json_object_new_int64(f->column));
	}
	char *s = strdup(json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE));
	json_object_put(o);
	return s;
}

static int fsync_file(FILE *f)
{
	if (fflush(f) != 0)
		return -errno;
	if (fsync(fileno(f)) != 0)
		return -errno;
	return 0;
}

static void job_work(uv_work_t *w)
{
	struct intake_job *job = w->data;
	char chunk_dir[1100], path[1200];
	int r;

	job->errors = json_object_new_array();
	job->warnings = json_object_new_array();
	snprintf(chunk_dir, sizeof(chunk_dir), "%s/chunks", job->dir);
	if (mkdir(chunk_dir, 0700) < 0 && errno != EEXIST) {
		r = -errno;
		goto io_fail;
	}
	snprintf(path, sizeof(path), "%s/problems.ndjson", job->dir);
	job->problems = fopen(path, "we");
	if (!job->problems) {
		r = -errno;
		goto io_fail;
	}
	snprintf(job->index_path, sizeof(job->index_path), "%s/index.tmp", chunk_dir);
	job->index = fopen(job->index_path, "w+e");
	if (!job->index) {
		r = -errno;
		goto io_fail;
	}
	snprintf(path, sizeof(path), "%s/upload", job->dir);

	const struct users_sink sink = {
		.on_problems = on_problems,
		.on_chunk = on_chunk,
		.on_progress = on_progress,
	};
	memset(&job->failure, 0, sizeof(job->failure));
	r = users_process(path, &job->uopts, chunk_dir, &sink, job, &job->summary, &job->failure);
	job->status = r;
	if (r == -ECANCELED && job->io_error == 0)
		return; /* stopping: re-validated at the next start */
	if (job->io_error < 0 && r >= 0)
		r = job->status = job->io_error;
	if (r == -EBADMSG || r == -E2BIG) {
		job->target = IMPORT_REJECTED;
		job->error_json = failure_problem_json(&job->failure, r == -E2BIG ? 413 : 400);
		users_chunks_remove(chunk_dir);
	} else if (r < 0) {
		goto io_fail;
	} else if (job->summary.users_total == 0) {
		/* "[]" or NDJSON of blank lines: nothing to import is a bad file. */
		job->target = IMPORT_REJECTED;
		job->failure.kind = USERS_FAILURE_EMPTY;
		job->failure.slug = "empty-file";
		snprintf(job->failure.message, sizeof(job->failure.message), "the users file holds no user");
		job->error_json = failure_problem_json(&job->failure, 400);
	} else if (job->summary.users_invalid > 0 && strcmp(job->row.on_invalid, "skip") != 0) {
		job->target = IMPORT_REJECTED;
		users_chunks_remove(chunk_dir);
	} else if (job->row.dry_run) {
		job->target = IMPORT_VALIDATED;
		users_chunks_remove(chunk_dir);
	} else {
		job->target = IMPORT_QUEUED;
	}
	r = fsync_file(job->problems);
	if (r == 0 && fflush(job->index) != 0)
		r = -errno;
	if (r < 0)
		goto io_fail;
	return;

io_fail:
	job->status = r;
	job->target = IMPORT_FAILED;
	job->failure.kind = USERS_FAILURE_IO;
	job->failure.slug = "internal";
	snprintf(job->failure.message, sizeof(job->failure.message),
		 "reading the upload failed: %s", strerror(-r));
	job->error_json = failure_problem_json(&job->failure, 500);
}

/* ---- commit (writer thread) -------------------------------------------- */

static int insert_chunks(sqlite3 *db, struct intake_job *job, int64_t now)
{
	uint32_t *idx = NULL;
	size_t cap = 0;
	int r = 0;

	if (fseek(job->index, 0, SEEK_SET) != 0)
		return -errno;
	for (;;) {
		uint64_t head[2];
		size_t got = fread(head, sizeof(head), 1, job->index);
		if (got != 1)
			break;
		uint32_t chunk_no = (uint32_t)(head[0] >> 32), n = (uint32_t)head[0];
		if (n > cap) {
			uint32_t *p = realloc(idx, (size_t)n * sizeof(uint32_t));
			if (!p) {
				r = -ENOMEM;
				goto out;
			}
			idx = p;
			cap = n;
		}
		if (n > 0 && fread(idx, sizeof(uint32_t), n, job->index) != n) {
			r = -EIO;
			goto out;
		}
		r = chunk_insert_tx(db, job->id, chunk_no, n, (int64_t)head[1], idx, now);
		if (r < 0)
			goto out;
	}
	if (ferror(job->index))
		r = -EIO;
out:
	free(idx);
	return r;
}

static int job_commit(sqlite3 *db, void *ctx)
{
	struct intake_job *job = ctx;
	struct import_row row;
	int64_t now = now_s();
	int r = import_load(db, job->id, &row);
	if (r < 0)
		return r;
	int64_t total = (int64_t)job->summary.users_total, invalid = (int64_t)job->summary.users_invalid;
	int64_t warnings = (int64_t)job->summary.warnings_total;
	if (row.state != IMPORT_VALIDATING) {
		/* Cancelled while validating: keep the counts, queue nothing. */
		sqlite3_stmt *st = NULL;
		if (sqlite3_prepare_v2(db, "UPDATE imports SET users_total = ?2, users_invalid = ?3, "
					   "warnings_total = ?4 WHERE id = ?1", -1, &st, NULL) != SQLITE_OK)
			return -EIO;
		sqlite3_bind_text(st, 1, job->id, -1, SQLITE_STATIC);
		sqlite3_bind_int64(st, 2, total);
		sqlite3_bind_int64(st, 3, invalid);
		sqlite3_bind_int64(st, 4, warnings);
		int rc = sqlite3_step(st);
		sqlite3_finalize(st);
		job->final_state = row.state;
		return rc == SQLITE_DONE ? 0 : -EIO;
	}
	if (job->target == IMPORT_QUEUED) {
		r = insert_chunks(db, job, now);
		if (r < 0)
			return r;
	}
	r = import_finish_validation_tx(db, job->id, job->target, total, invalid, warnings,
					job->error_json, now);
	if (r < 0)
		return r;
	r = import_load(db, job->id, &row);
	if (r < 0)
		return r;
	job->final_state = row.state;
	return 0;
}

static void job_finish(struct intake_job *job, int status)
{
	struct intake_result res = {
		.status = status < 0 ? status : job->status,
		.state = job->final_state,
		.summary = job->summary,
		.failure = job->failure,
		.errors = job->errors,
		.warnings = job->warnings,
		.truncated = job->truncated,
	};
	job_unlink(job);
	if (job->index) {
		fclose(job->index);
		job->index = NULL;
		unlink(job->index_path);
	}
	struct intake *in = job->in;
	if (job->done)
		job->done(job->done_ctx, &res);
	job_free(job);
	if (in->on_outcome && !in->stopping)
		in->on_outcome(in->on_outcome_arg);
}

void intake_on_outcome(struct intake *in, void (*fn)(void *arg), void *arg)
{
	in->on_outcome = fn;
	in->on_outcome_arg = arg;
}

static void job_committed(int status, void *ctx)
{
	struct intake_job *job = ctx;
	if (status < 0) {
		log_error("queue", "import %s: committing the validation failed: %s", job->id,
			  strerror(-status));
		job->final_state = IMPORT_VALIDATING;
	} else {
		log_info("queue", "import %s: validated: %" PRIu64 " users, %" PRIu64 " invalid, %u chunks -> %s",
			 job->id, job->summary.users_total, job->summary.users_invalid, job->summary.chunks,
			 import_state_name(job->final_state));
	}
	job_finish(job, status);
}

static void job_after_work(uv_work_t *w, int uv_status)
{
	struct intake_job *job = w->data;
	if (uv_status < 0 || (job->status == -ECANCELED && job->target == IMPORT_VALIDATING)) {
		log_info("queue", "import %s: validation interrupted, ignoring (resumed at next start)", job->id);
		job->final_state = IMPORT_VALIDATING;
		job_finish(job, -ECANCELED);
		return;
	}
	int r = store_write(job->in->store, job_commit, job, job_committed);
	if (r < 0) {
		log_error("queue", "import %s: cannot commit the validation: %s", job->id, strerror(-r));
		job->final_state = IMPORT_VALIDATING;
		job_finish(job, r);
	}
}

int intake_start(struct intake *in, const char *id, intake_done_fn done, void *ctx)
{
	struct intake_job *job;
	int r;

	if (in->stopping)
		return -ESHUTDOWN;
	if (job_find(in, id))
		return -EALREADY;
	job = calloc(1, sizeof(*job));
	if (!job)
		return -ENOMEM;
	job->in = in;
	snprintf(job->id, sizeof(job->id), "%s", id);
	r = import_load(store_reader(in->store), id, &job->row);
	if (r < 0)
		goto fail;
	if (job->row.state != IMPORT_VALIDATING) {
		r = -EINVAL;
		goto fail;
	}
	r = intake_import_dir(in->state_dir, id, job->dir, sizeof(job->dir));
	if (r < 0)
		goto fail;
	intake_users_options(&job->row, &in->limits, &job->uopts);
	job->done = done;
	job->done_ctx = ctx;
	job->target = IMPORT_VALIDATING;
	job->work.data = job;
	r = uv_queue_work(in->loop, &job->work, job_work, job_after_work);
	if (r < 0)
		goto fail;
	job->next = in->jobs;
	in->jobs = job;
	return 0;
fail:
	free(job);
	return r;
}

/* ---- recovery ----------------------------------------------------------- */

static int remove_tree(const char *path)
{
	DIR *d = opendir(path);
	if (!d)
		return errno == ENOENT ? 0 : -errno;
	struct dirent *e;
	char sub[2048];
	while ((e = readdir(d))) {
		if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
			continue;
		snprintf(sub, sizeof(sub), "%s/%s", path, e->d_name);
		if (e->d_type == DT_DIR)
			remove_tree(sub);
		else
			unlink(sub);
	}
	closedir(d);
	return rmdir(path) < 0 ? -errno : 0;
}

struct restart_ctx {
	struct intake *in;
	char (*ids)[IMPORT_ID_LEN + 1];
	size_t n, cap;
};

static int collect_validating(const struct import_row *row, void *arg)
{
	struct restart_ctx *rc = arg;
	if (rc->n == rc->cap) {
		size_t cap = rc->cap ? rc->cap * 2 : 8;
		void *p = realloc(rc->ids, cap * sizeof(*rc->ids));
		if (!p)
			return -ENOMEM;
		rc->ids = p;
		rc->cap = cap;
	}
	snprintf(rc->ids[rc->n++], IMPORT_ID_LEN + 1, "%s", row->id);
	return 0;
}

int intake_recover(struct intake *in)
{
	char dir[1024], sub[2048];
	sqlite3 *db = store_reader(in->store);
	int r, restarted = 0;

	/* Uploads that never completed. */
	r = intake_spool_dir(in->state_dir, dir, sizeof(dir));
	if (r < 0)
		return r;
	if (mkdir(dir, 0700) < 0 && errno != EEXIST)
		return -errno;
	DIR *d = opendir(dir);
	if (d) {
		struct dirent *e;
		while ((e = readdir(d))) {
			if (e->d_name[0] == '.')
				continue;
			snprintf(sub, sizeof(sub), "%s/%s", dir, e->d_name);
			if (unlink(sub) == 0)
				log_info("queue", "removed incomplete upload %s", e->d_name);
		}
		closedir(d);
	}

	/* Import directories whose row was never committed. */
	snprintf(dir, sizeof(dir), "%s/imports", in->state_dir);
	if (mkdir(dir, 0700) < 0 && errno != EEXIST)
		return -errno;
	d = opendir(dir);
	if (d) {
		struct dirent *e;
		while ((e = readdir(d))) {
			struct import_row row;
			if (e->d_name[0] == '.')
				continue;
			if (import_load(db, e->d_name, &row) == -ENOENT) {
				snprintf(sub, sizeof(sub), "%s/%s", dir, e->d_name);
				remove_tree(sub);
				log_info("queue", "removed upload %s that was never committed", e->d_name);
			}
		}
		closedir(d);
	}

	/* Imports interrupted while validating. */
	struct restart_ctx rc = { .in = in };
	r = import_foreach_in_state(db, IMPORT_VALIDATING, collect_validating, &rc);
	if (r < 0)
		goto out;
	for (size_t i = 0; i < rc.n; i++) {
		r = intake_start(in, rc.ids[i], NULL, NULL);
		if (r < 0) {
			log_error("queue", "import %s: cannot restart validation: %s", rc.ids[i], strerror(-r));
			continue;
		}
		log_info("queue", "import %s: validating again after a restart", rc.ids[i]);
		restarted++;
	}
	r = restarted;
out:
	free(rc.ids);
	return r;
}

/* ---- reading back ------------------------------------------------------- */

int intake_read_problems(const char *problems_path, int64_t max_errors, int64_t errors_total,
			 int64_t warnings_total, json_object **ret_errors, json_object **ret_warnings,
			 bool *ret_truncated)
{
	json_object *errors = json_object_new_array(), *warnings = json_object_new_array();
	int64_t users = 0, n_warnings = 0;
	/* What the lists can hold: the rest of the file need not be read (the
	 * totals come from the import's row, not from counting lines). */
	int64_t want_users = errors_total < max_errors ? errors_total : max_errors;
	int64_t want_warnings = warnings_total < max_errors ? warnings_total : max_errors;
	char *line = NULL;
	size_t cap = 0;
	ssize_t len;
	FILE *f = NULL;

	if (!errors || !warnings) {
		json_object_put(errors);
		json_object_put(warnings);
		return -ENOMEM;
	}
	if (want_users > 0 || want_warnings > 0)
		f = fopen(problems_path, "re");
	while (f && (users < want_users || n_warnings < want_warnings) && (len = getline(&line, &cap, f)) > 0) {
		json_object *o = json_tokener_parse(line);
		if (!o)
			continue;
		json_object *e = json_object_object_get(o, "errors"), *w = json_object_object_get(o, "warnings");
		if (e && json_object_array_length(e) > 0 && users < want_users) {
			for (size_t i = 0; i < json_object_array_length(e); i++)
				json_object_array_add(errors, json_object_get(json_object_array_get_idx(e, i)));
			users++;
		}
		for (size_t i = 0; w && i < json_object_array_length(w) && n_warnings < want_warnings; i++) {
			json_object_array_add(warnings, json_object_get(json_object_array_get_idx(w, i)));
			n_warnings++;
		}
		json_object_put(o);
	}
	free(line);
	if (f)
		fclose(f);
	*ret_errors = errors;
	*ret_warnings = warnings;
	*ret_truncated = errors_total > users;
	return 0;
}

struct index_set {
	uint32_t *v;
	size_t n, cap;
};

static int index_add(struct index_set *s, uint32_t idx)
{
	if (s->n == s->cap) {
		size_t cap = s->cap ? s->cap * 2 : 1024;
		uint32_t *p = realloc(s->v, cap * sizeof(uint32_t));
		if (!p)
			return -ENOMEM;
		s->v = p;
		s->cap = cap;
	}
	s->v[s->n++] = idx;
	return 0;
}

static int index_from_auth0(void *ctx, int64_t idx, const char *email, const char *user_id,
			    const char *errors_json)
{
	return index_add(ctx, (uint32_t)idx);
}

static int cmp_u32(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
	return x < y ? -1 : x > y;
}

int intake_failed_indices(const char *state_dir, const char *id, uint32_t **ret, size_t *ret_n)
{
	struct index_set set = { 0 };
	char path[1100];
	sqlite3 *db = NULL;
	char *line = NULL;
	size_t cap = 0;
	ssize_t len;
	int r;

	r = intake_upload_path(state_dir, id, path, sizeof(path));
	if (r < 0)
		return r;
	if (access(path, R_OK) < 0)
		return -ENOENT;

	r = intake_problems_path(state_dir, id, path, sizeof(path));
	if (r < 0)
		return r;
	FILE *f = fopen(path, "re");
	while (f && (len = getline(&line, &cap, f)) > 0) {
		json_object *o = json_tokener_parse(line);
		json_object *e = o ? json_object_object_get(o, "errors") : NULL;
		if (e && json_object_array_length(e) > 0)
			r = index_add(&set, (uint32_t)json_object_get_int64(json_object_object_get(o, "index")));
		json_object_put(o);
		if (r < 0)
			break;
	}
	free(line);
	if (f)
		fclose(f);
	if (r < 0)
		goto out;

	snprintf(path, sizeof(path), "%s/%s", state_dir, STORE_DB_NAME);
	if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL) != SQLITE_OK) {
		r = -EIO;
		goto out;
	}
	sqlite3_busy_timeout(db, 5000);
	int64_t after = -1;
	for (;;) {
		int rows = auth0_user_errors_page(db, id, after, 1000, index_from_auth0, &set);
		if (rows < 0) {
			r = rows;
			goto out;
		}
		if (set.n > 0)
			after = set.v[set.n - 1];
		if (rows < 1000)
			break;
	}
	int64_t no = -1;
	for (;;) {
		struct chunk c;
		char *err = NULL;
		r = chunk_next_failed(db, id, no, &c, &err);
		if (r == -ENOENT) {
			r = 0;
			break;
		}
		if (r < 0)
			goto out;
		free(err);
		no = c.chunk_no;
		for (int64_t i = 0; i < c.users && r == 0; i++)
			r = index_add(&set, c.indices[i]);
		chunk_done(&c);
		if (r < 0)
			goto out;
	}
	if (set.n > 0) {
		qsort(set.v, set.n, sizeof(uint32_t), cmp_u32);
		size_t w = 1;
		for (size_t i = 1; i < set.n; i++)
			if (set.v[i] != set.v[w - 1])
				set.v[w++] = set.v[i];
		set.n = w;
	}
	*ret = set.v;
	*ret_n = set.n;
	set.v = NULL;
out:
	if (db)
		sqlite3_close(db);
	free(set.v);
	return r;
}

/* ---- retention sweep ---------------------------------------------------- */

static int remove_tree(const char *path);

static void sweep_work(uv_work_t *w)
{
	struct intake *in = w->data;
	char path[1100];
	sqlite3 *db = NULL;
	sqlite3_stmt *st = NULL;

	in->sweep_removed = 0;
	snprintf(path, sizeof(path), "%s/%s", in->state_dir, STORE_DB_NAME);
	if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL) != SQLITE_OK)
		goto out;
	sqlite3_busy_timeout(db, 5000);
	if (sqlite3_prepare_v2(db, "SELECT id FROM imports WHERE finished_at IS NOT NULL "
				   "AND finished_at < ?1", -1, &st, NULL) != SQLITE_OK)
		goto out;
	sqlite3_bind_int64(st, 1, now_s() - (int64_t)in->sweep_retention);
	while (sqlite3_step(st) == SQLITE_ROW) {
		const char *id = (const char *)sqlite3_column_text(st, 0);
		bool removed = false;
		if (intake_upload_path(in->state_dir, id, path, sizeof(path)) == 0 && unlink(path) == 0)
			removed = true;
		if (intake_import_dir(in->state_dir, id, path, sizeof(path)) == 0) {
			size_t l = strlen(path);
			if (l + 8 < sizeof(path)) {
				memcpy(path + l, "/chunks", 8);
				if (remove_tree(path) == 0)
					removed = true;
			}
		}
		in->sweep_removed += removed;
	}
out:
	sqlite3_finalize(st);
	if (db)
		sqlite3_close(db);
}

static void sweep_after(uv_work_t *w, int status)
{
	struct intake *in = w->data;
	in->sweeping = false;
	if (in->sweep_removed > 0)
		log_info("queue", "spool retention: removed the files of %d ended imports", in->sweep_removed);
}

static void sweep_tick(uv_timer_t *t)
{
	struct intake *in = t->data;
	if (in->sweeping || in->stopping)
		return;
	in->sweep_retention = in->limits.spool_retention;
	in->sweep_work.data = in;
	if (uv_queue_work(in->loop, &in->sweep_work, sweep_work, sweep_after) == 0)
		in->sweeping = true;
}

int intake_sweep_start(struct intake *in)
{
	uint64_t every = in->limits.spool_retention < 60 ? in->limits.spool_retention : 60;
	if (every == 0)
		every = 1;
	int r = uv_timer_init(in->loop, &in->sweep_timer);
	if (r < 0)
		return r;
	in->sweep_timer.data = in;
	in->sweep_started = true;
	uv_unref((uv_handle_t *)&in->sweep_timer);
	return uv_timer_start(&in->sweep_timer, sweep_tick, 1000, every * 1000);
}
