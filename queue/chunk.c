#include "queue/chunk.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sqlite3.h>

#include "daemon/log.h"
#include "queue/state_names.h"
#include "queue/import.h"

static const char *const chunk_state_names[CHUNK_STATE_COUNT] = {
	[CHUNK_QUEUED] = "queued",
	[CHUNK_SUBMITTING] = "submitting",
	[CHUNK_SUBMITTED] = "submitted",
	[CHUNK_COMPLETED] = "completed",
	[CHUNK_FAILED] = "failed",
	[CHUNK_CANCELLED] = "cancelled",
};

const char *chunk_state_name(enum chunk_state s)
{
	return state_names_get(chunk_state_names, CHUNK_STATE_COUNT, (unsigned)s);
}

int chunk_state_from_name(const char *name, enum chunk_state *ret_state)
{
	int i = state_names_find(chunk_state_names, CHUNK_STATE_COUNT, name);
	if (i < 0)
		return i;
	*ret_state = (enum chunk_state)i;
	return 0;
}

bool chunk_transition_allowed(enum chunk_state from, enum chunk_state to)
{
	switch (from) {
	case CHUNK_QUEUED:
		return to == CHUNK_SUBMITTING || to == CHUNK_CANCELLED || to == CHUNK_FAILED;
	case CHUNK_SUBMITTING:
		return to == CHUNK_SUBMITTED || to == CHUNK_QUEUED || to == CHUNK_FAILED ||
		       to == CHUNK_CANCELLED;
	case CHUNK_SUBMITTED:
		return to == CHUNK_COMPLETED || to == CHUNK_FAILED;
	case CHUNK_FAILED:
		return to == CHUNK_QUEUED;
	case CHUNK_COMPLETED:
	case CHUNK_CANCELLED:
	default:
		return false;
	}
}

bool chunk_state_in_flight(enum chunk_state s)
{
	return s == CHUNK_SUBMITTING || s == CHUNK_SUBMITTED;
}

static int sql_err(int rc)
{
	if (rc == SQLITE_CONSTRAINT)
		return -EEXIST;
	if (rc == SQLITE_NOMEM)
		return -ENOMEM;
	if (rc == SQLITE_BUSY || rc == SQLITE_LOCKED)
		return -EBUSY;
	return -EIO;
}

static int exec_bound(sqlite3 *db, const char *sql, sqlite3_stmt **ret)
{
	int rc = sqlite3_prepare_v2(db, sql, -1, ret, NULL);
	if (rc != SQLITE_OK) {
		log_error("queue", "prepare failed: %s (%s)", sqlite3_errmsg(db), sql);
		return sql_err(rc);
	}
	return 0;
}

static void indices_to_blob(const uint32_t *indices, int64_t n, unsigned char *out)
{
	for (int64_t i = 0; i < n; i++) {
		uint32_t v = indices[i];
		out[4 * i + 0] = (unsigned char)(v & 0xff);
		out[4 * i + 1] = (unsigned char)((v >> 8) & 0xff);
		out[4 * i + 2] = (unsigned char)((v >> 16) & 0xff);
		out[4 * i + 3] = (unsigned char)((v >> 24) & 0xff);
	}
}

static void blob_to_indices(const unsigned char *in, int64_t n, uint32_t *out)
{
	for (int64_t i = 0; i < n; i++)
		out[i] = (uint32_t)in[4 * i] | (uint32_t)in[4 * i + 1] << 8 |
			 (uint32_t)in[4 * i + 2] << 16 | (uint32_t)in[4 * i + 3] << 24;
}

int chunk_insert_tx(sqlite3 *db, const char *import_id, int64_t chunk_no,
		    int64_t users, int64_t bytes, const uint32_t *indices, int64_t now)
{
	sqlite3_stmt *st = NULL;
	unsigned char *blob = NULL;
	int r;

	if (users < 0 || (users > 0 && !indices))
		return -EINVAL;
	blob = malloc(users > 0 ? (size_t)users * 4 : 1);
	if (!blob)
		return -ENOMEM;
	indices_to_blob(indices, users, blob);
	r = exec_bound(db,
		"INSERT INTO chunks (import_id, chunk_no, state, users, bytes, indices, updated_at) "
		"VALUES (?1, ?2, 'queued', ?3, ?4, ?5, ?6)", &st);
	if (r < 0)
		goto out;
	sqlite3_bind_text(st, 1, import_id, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 2, chunk_no);
	sqlite3_bind_int64(st, 3, users);
	sqlite3_bind_int64(st, 4, bytes);
	sqlite3_bind_blob(st, 5, blob, (int)(users * 4), SQLITE_STATIC);
	sqlite3_bind_int64(st, 6, now);
	int rc = sqlite3_step(st);
	r = rc == SQLITE_DONE ? 0 : sql_err(rc);
out:
	sqlite3_finalize(st);
	free(blob);
	return r;
}

static int chunk_get_state(sqlite3 *db, const char *import_id, int64_t chunk_no,
			   enum chunk_state *ret)
{
	sqlite3_stmt *st = NULL;
	int r = exec_bound(db, "SELECT state FROM chunks WHERE import_id = ?1 AND chunk_no = ?2", &st);
	if (r < 0)
		return r;
	sqlite3_bind_text(st, 1, import_id, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 2, chunk_no);
	int rc = sqlite3_step(st);
	if (rc == SQLITE_ROW)
		r = chunk_state_from_name((const char *)sqlite3_column_text(st, 0), ret);
	else if (rc == SQLITE_DONE)
		r = -ENOENT;
	else
		r = sql_err(rc);
	sqlite3_finalize(st);
	return r;
}

/* A chunk flagged `resubmitted` and not yet accepted: Auth0 may hold a job
 * of it that the daemon does not know. */
static int chunk_fate_unknown(sqlite3 *db, const char *import_id, int64_t chunk_no, bool *ret)
{
	sqlite3_stmt *st = NULL;
	int r = exec_bound(db, "SELECT resubmitted FROM chunks WHERE import_id = ?1 AND chunk_no = ?2", &st);
	if (r < 0)
		return r;
	sqlite3_bind_text(st, 1, import_id, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 2, chunk_no);
	int rc = sqlite3_step(st);
	if (rc == SQLITE_ROW)
		*ret = sqlite3_column_int(st, 0) != 0;
	sqlite3_finalize(st);
	return rc == SQLITE_ROW ? 0 : (rc == SQLITE_DONE ? -ENOENT : sql_err(rc));
}

int chunk_set_state_tx(sqlite3 *db, const char *import_id, int64_t chunk_no,
		       enum chunk_state to, const struct chunk_update *upd,
		       int64_t now, enum chunk_state *ret_from)
{
	static const struct chunk_update none;
	sqlite3_stmt *st = NULL;
	enum chunk_state from;
	int64_t users = 0;
	int r;

	if (!upd)
		upd = &none;
	r = chunk_get_state(db, import_id, chunk_no, &from);
	if (r < 0)
		return r;
	if (from == to) {
		if (ret_from)
			*ret_from = from;
		return 1;
	}
	if (!chunk_transition_allowed(from, to))
		return -EPERM;
	if (to == CHUNK_QUEUED && from == CHUNK_SUBMITTING) {
		/* Nothing more is submitted for an import being cancelled or
		 * failed as a whole: the retry becomes a cancellation — except
		 * for a chunk whose request may have reached Auth0
		 * (`resubmitted`): that job may exist, and only its
		 * resubmission tells what Auth0 holds. */
		struct import_row row;
		r = import_load(db, import_id, &row);
		if (r < 0)
			return r;
		if (row.state == IMPORT_CANCELLED)
			to = CHUNK_CANCELLED;
		else if (row.state == IMPORT_CANCELLING || row.state == IMPORT_FAILED) {
			bool unknown = false;
			r = chunk_fate_unknown(db, import_id, chunk_no, &unknown);
			if (r < 0)
				return r;
			if (!unknown)
				to = CHUNK_CANCELLED;
		}
	}

	switch (to) {
	case CHUNK_SUBMITTING:
		r = exec_bound(db, "UPDATE chunks SET state = 'submitting', attempts = attempts + 1, "
				   "updated_at = ?3 WHERE import_id = ?1 AND chunk_no = ?2", &st);
		break;
	case CHUNK_SUBMITTED:
		r = exec_bound(db, "UPDATE chunks SET state = 'submitted', job_id = ?4, submitted_at = ?3, "
				   "updated_at = ?3 WHERE import_id = ?1 AND chunk_no = ?2", &st);
		break;
	case CHUNK_QUEUED:
		if (from == CHUNK_FAILED) {
			/* Operator retry: a fresh start for the scheduler. */
			r = exec_bound(db, "UPDATE chunks SET state = 'queued', attempts = 0, next_attempt_at = 0, "
					   "retryable = 0, completed_at = NULL, job_id = NULL, updated_at = ?3 "
					   "WHERE import_id = ?1 AND chunk_no = ?2", &st);
			break;
		}
		r = exec_bound(db, "UPDATE chunks SET state = 'queued', last_error = coalesce(?5, last_error), "
				   "next_attempt_at = ?6, job_id = NULL, updated_at = ?3 "
				   "WHERE import_id = ?1 AND chunk_no = ?2", &st);
		break;
	case CHUNK_COMPLETED: {
		/* Normalise the summary so inserted + updated + failed == users. */
		sqlite3_stmt *q = NULL;
		r = exec_bound(db, "SELECT users FROM chunks WHERE import_id = ?1 AND chunk_no = ?2", &q);
		if (r < 0)
			return r;
		sqlite3_bind_text(q, 1, import_id, -1, SQLITE_STATIC);
		sqlite3_bind_int64(q, 2, chunk_no);
		if (sqlite3_step(q) == SQLITE_ROW)
			users = sqlite3_column_int64(q, 0);
		sqlite3_finalize(q);
		r = exec_bound(db, "UPDATE chunks SET state = 'completed', summary_inserted = ?7, "
				   "summary_updated = ?8, summary_failed = ?9, assumed = ?10, "
				   "completed_at = ?3, updated_at = ?3 WHERE import_id = ?1 AND chunk_no = ?2", &st);
		break;
	}
	case CHUNK_FAILED:
		r = exec_bound(db, "UPDATE chunks SET state = 'failed', last_error = coalesce(?5, last_error), "
				   "retryable = ?11, completed_at = ?3, updated_at = ?3 "
				   "WHERE import_id = ?1 AND chunk_no = ?2", &st);
		break;
	case CHUNK_CANCELLED:
		r = exec_bound(db, "UPDATE chunks SET state = 'cancelled', updated_at = ?3 "
				   "WHERE import_id = ?1 AND chunk_no = ?2", &st);
		break;
	default:
		return -EINVAL;
	}
	if (r < 0)
		return r;

	int64_t ins = upd->inserted < 0 ? 0 : upd->inserted;
	int64_t updd = upd->updated < 0 ? 0 : upd->updated;
	if (ins > users)
		ins = users;
	if (updd > users - ins)
		updd = users - ins;
	int64_t fail = users - ins - updd;
	int64_t assumed = upd->assumed < 0 ? 0 : (upd->assumed > ins ? ins : upd->assumed);

	sqlite3_bind_text(st, 1, import_id, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 2, chunk_no);
	sqlite3_bind_int64(st, 3, now);
	if (sqlite3_bind_parameter_index(st, "?4"))
		sqlite3_bind_text(st, 4, upd->job_id, -1, SQLITE_STATIC);
	if (sqlite3_bind_parameter_index(st, "?5"))
		sqlite3_bind_text(st, 5, upd->error, -1, SQLITE_STATIC);
	if (sqlite3_bind_parameter_index(st, "?6"))
		sqlite3_bind_int64(st, 6, upd->next_attempt_at_ms);
	if (sqlite3_bind_parameter_index(st, "?7")) {
		sqlite3_bind_int64(st, 7, ins);
		sqlite3_bind_int64(st, 8, updd);
		sqlite3_bind_int64(st, 9, fail);
		sqlite3_bind_int64(st, 10, assumed);
	}
	if (sqlite3_bind_parameter_index(st, "?11"))
		sqlite3_bind_int(st, 11, upd->retryable ? 1 : 0);
	int rc = sqlite3_step(st);
	sqlite3_finalize(st);
	if (rc != SQLITE_DONE)
		return sql_err(rc);

	log_info("queue", "chunk %s-%" PRId64 ": %s -> %s", import_id, chunk_no,
		 chunk_state_name(from), chunk_state_name(to));
	r = import_refresh_tx(db, import_id, now, NULL);
	if (r < 0)
		return r;
	if (ret_from)
		*ret_from = from;
	return 0;
}

static int exec_chunk_flag(sqlite3 *db, const char *sql, const char *import_id, int64_t chunk_no)
{
	sqlite3_stmt *st = NULL;
	int r = exec_bound(db, sql, &st);
	if (r < 0)
		return r;
	sqlite3_bind_text(st, 1, import_id, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 2, chunk_no);
	int rc = sqlite3_step(st);
	sqlite3_finalize(st);
	if (rc != SQLITE_DONE)
		return sql_err(rc);
	return sqlite3_changes(db) == 1 ? 0 : -ENOENT;
}

int chunk_mark_resubmitted_tx(sqlite3 *db, const char *import_id, int64_t chunk_no)
{
	return exec_chunk_flag(db, "UPDATE chunks SET resubmitted = 1 WHERE import_id = ?1 AND chunk_no = ?2",
			       import_id, chunk_no);
}

int chunk_mark_errors_fetched_tx(sqlite3 *db, const char *import_id, int64_t chunk_no)
{
	return exec_chunk_flag(db, "UPDATE chunks SET errors_fetched = 1 WHERE import_id = ?1 AND chunk_no = ?2",
			       import_id, chunk_no);
}

int chunk_split_tx(sqlite3 *db, const char *import_id, int64_t chunk_no, int64_t new_no,
		   int64_t keep, int64_t keep_bytes, int64_t rest_bytes, int64_t now)
{
	struct chunk c;
	sqlite3_stmt *st = NULL;
	int r;

	if (new_no < 0 || new_no == chunk_no)
		return -EINVAL;
	r = chunk_load(db, import_id, chunk_no, &c);
	if (r < 0)
		return r;
	if ((c.state != CHUNK_QUEUED && c.state != CHUNK_SUBMITTING) || keep < 1 || keep >= c.users) {
		r = -EINVAL;
		goto out;
	}
	/* Exactly the number the caller wrote the file under: -EEXIST if taken. */
	r = chunk_insert_tx(db, import_id, new_no, c.users - keep, rest_bytes, c.indices + keep, now);
	if (r < 0)
		goto out;

	unsigned char *blob = malloc((size_t)keep * 4);
	if (!blob) {
		r = -ENOMEM;
		goto out;
	}
	indices_to_blob(c.indices, keep, blob);
	r = exec_bound(db, "UPDATE chunks SET state = 'queued', users = ?3, bytes = ?4, indices = ?5, "
			   "updated_at = ?6 WHERE import_id = ?1 AND chunk_no = ?2", &st);
	if (r == 0) {
		sqlite3_bind_text(st, 1, import_id, -1, SQLITE_STATIC);
		sqlite3_bind_int64(st, 2, chunk_no);
		sqlite3_bind_int64(st, 3, keep);
		sqlite3_bind_int64(st, 4, keep_bytes);
		sqlite3_bind_blob(st, 5, blob, (int)(keep * 4), SQLITE_STATIC);
		sqlite3_bind_int64(st, 6, now);
		int rc = sqlite3_step(st);
		r = rc == SQLITE_DONE ? 0 : sql_err(rc);
	}
	sqlite3_finalize(st);
	free(blob);
	if (r < 0)
		goto out;
	log_info("queue", "chunk %s-%" PRId64 ": split, %" PRId64 " users moved to chunk %" PRId64,
		 import_id, chunk_no, c.users - keep, new_no);
	r = import_refresh_tx(db, import_id, now, NULL);
out:
	chunk_done(&c);
	return r;
}

int auth0_user_error_add_tx(sqlite3 *db, const char *import_id, int64_t chunk_no,
			    int64_t idx, const char *email, const char *user_id,
			    const char *errors_json)
{
	sqlite3_stmt *st = NULL;
	int r = exec_bound(db, "INSERT OR REPLACE INTO auth0_user_errors "
			       "(import_id, idx, chunk_no, email, user_id, errors) VALUES (?1, ?2, ?3, ?4, ?5, ?6)", &st);
	if (r < 0)
		return r;
	sqlite3_bind_text(st, 1, import_id, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 2, idx);
	sqlite3_bind_int64(st, 3, chunk_no);
	sqlite3_bind_text(st, 4, email, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 5, user_id, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 6, errors_json ? errors_json : "[]", -1, SQLITE_STATIC);
	int rc = sqlite3_step(st);
	sqlite3_finalize(st);
	return rc == SQLITE_DONE ? 0 : sql_err(rc);
}

#define CHUNK_COLUMNS "c.import_id, c.chunk_no, c.state, c.users, c.bytes, coalesce(c.job_id, ''), " \
	"c.attempts, c.next_attempt_at, c.resubmitted, c.summary_inserted, c.summary_updated, " \
	"c.summary_failed, c.assumed, coalesce(c.submitted_at, 0), coalesce(c.completed_at, 0), " \
	"c.errors_fetched"

static void chunk_from_row(sqlite3_stmt *st, struct chunk *c)
{
	memset(c, 0, sizeof(*c));
	snprintf(c->import_id, sizeof(c->import_id), "%s", (const char *)sqlite3_column_text(st, 0));
	c->chunk_no = sqlite3_column_int64(st, 1);
	if (chunk_state_from_name((const char *)sqlite3_column_text(st, 2), &c->state) < 0)
		c->state = CHUNK_FAILED;
	c->users = sqlite3_column_int64(st, 3);
	c->bytes = sqlite3_column_int64(st, 4);
	snprintf(c->job_id, sizeof(c->job_id), "%s", (const char *)sqlite3_column_text(st, 5));
	c->attempts = sqlite3_column_int64(st, 6);
	c->next_attempt_at_ms = sqlite3_column_int64(st, 7);
	c->resubmitted = sqlite3_column_int(st, 8) != 0;
	c->inserted = sqlite3_column_int64(st, 9);
	c->updated = sqlite3_column_int64(st, 10);
	c->failed = sqlite3_column_int64(st, 11);
	c->assumed = sqlite3_column_int64(st, 12);
	c->submitted_at = sqlite3_column_int64(st, 13);
	c->completed_at = sqlite3_column_int64(st, 14);
	c->errors_fetched = sqlite3_column_int(st, 15) != 0;
}

void chunk_done(struct chunk *c)
{
	if (!c)
		return;
	free(c->indices);
	c->indices = NULL;
}

int chunk_load(sqlite3 *db, const char *import_id, int64_t chunk_no, struct chunk *ret)
{
	sqlite3_stmt *st = NULL;
	struct chunk c;
	int r = exec_bound(db, "SELECT " CHUNK_COLUMNS ", c.indices FROM chunks c "
			       "WHERE import_id = ?1 AND chunk_no = ?2", &st);
	if (r < 0)
		return r;
	sqlite3_bind_text(st, 1, import_id, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 2, chunk_no);
	int rc = sqlite3_step(st);
	if (rc != SQLITE_ROW) {
		r = rc == SQLITE_DONE ? -ENOENT : sql_err(rc);
		goto out;
	}
	chunk_from_row(st, &c);
	int n = sqlite3_column_bytes(st, 16);
	const unsigned char *blob = sqlite3_column_blob(st, 16);
	if (n != c.users * 4) {
		r = -EBADMSG;
		goto out;
	}
	c.indices = malloc(c.users > 0 ? (size_t)c.users * sizeof(uint32_t) : 1);
	if (!c.indices) {
		r = -ENOMEM;
		goto out;
	}
	blob_to_indices(blob, c.users, c.indices);
	*ret = c;
out:
	sqlite3_finalize(st);
	return r;
}

int chunk_foreach_in_state(sqlite3 *db, enum chunk_state state, int limit,
			   int (*fn)(const struct chunk *c, void *ctx), void *ctx)
{
	sqlite3_stmt *st = NULL;
	int r = exec_bound(db, "SELECT " CHUNK_COLUMNS " FROM chunks c JOIN imports i ON i.id = c.import_id "
			       "WHERE c.state = ?1 ORDER BY i.seq, c.chunk_no LIMIT ?2", &st);
	if (r < 0)
		return r;
	sqlite3_bind_text(st, 1, chunk_state_name(state), -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 2, limit > 0 ? limit : -1);
	int rc;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		struct chunk c;
		chunk_from_row(st, &c);
		r = fn(&c, ctx);
		if (r != 0)
			goto out;
	}
	r = rc == SQLITE_DONE ? 0 : sql_err(rc);
out:
	sqlite3_finalize(st);
	return r;
}

int chunk_next_no(sqlite3 *db, const char *import_id, int64_t *ret_no)
{
	sqlite3_stmt *st = NULL;
	int r = exec_bound(db, "SELECT coalesce(max(chunk_no), -1) + 1 FROM chunks WHERE import_id = ?1", &st);
	if (r < 0)
		return r;
	sqlite3_bind_text(st, 1, import_id, -1, SQLITE_STATIC);
	int rc = sqlite3_step(st);
	if (rc == SQLITE_ROW)
		*ret_no = sqlite3_column_int64(st, 0);
	else
		r = sql_err(rc);
	sqlite3_finalize(st);
	return r;
}

static int fsync_dir_of(const char *path)
{
	char dir[4096];
	const char *slash = strrchr(path, '/');
	if (!slash)
		snprintf(dir, sizeof(dir), ".");
	else if ((size_t)(slash - path) >= sizeof(dir))
		return -ENAMETOOLONG;
	else
		snprintf(dir, sizeof(dir), "%.*s", (int)(slash - path), path);
	int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	int r = fsync(fd) < 0 ? -errno : 0;
	close(fd);
	return r;
}

int chunk_split_settle(const char *chunk_path, int64_t store_bytes)
{
	char split[4200];
	struct stat sb;
	int n = snprintf(split, sizeof(split), "%s.split", chunk_path);
	if (n < 0 || (size_t)n >= sizeof(split))
		return -ENAMETOOLONG;
	if (stat(split, &sb) < 0)
		return errno == ENOENT ? 0 : -errno;
	int done = 0;
	if ((int64_t)sb.st_size == store_bytes) {
		/* The store has the split: the file still holds every user. */
		if (rename(split, chunk_path) < 0)
			return -errno;
		done = 1;
	} else if (unlink(split) < 0) {
		return -errno;
	}
	int r = fsync_dir_of(chunk_path);
	return r < 0 ? r : done;
}

int chunk_file_path(const char *state_dir, const char *import_id, int64_t chunk_no,
		    char *buf, size_t len)
{
	int n = snprintf(buf, len, "%s/imports/%s/chunks/chunk-%06u.json", state_dir, import_id,
			 (unsigned)chunk_no);
	if (n < 0 || (size_t)n >= len)
		return -ENAMETOOLONG;
	return 0;
}

int auth0_user_errors_page(sqlite3 *db, const char *import_id, int64_t after_idx, int limit,
			   int (*fn)(void *ctx, int64_t idx, const char *email, const char *user_id,
				     const char *errors_json),
			   void *ctx)
{
	sqlite3_stmt *st = NULL;
	int rows = 0, rc;
	int r = exec_bound(db, "SELECT idx, email, user_id, errors FROM auth0_user_errors "
			       "WHERE import_id = ?1 AND idx > ?2 ORDER BY idx LIMIT ?3", &st);
	if (r < 0)
		return r;
	sqlite3_bind_text(st, 1, import_id, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 2, after_idx);
	sqlite3_bind_int(st, 3, limit);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		rows++;
		r = fn(ctx, sqlite3_column_int64(st, 0), (const char *)sqlite3_column_text(st, 1),
		       (const char *)sqlite3_column_text(st, 2), (const char *)sqlite3_column_text(st, 3));
		if (r != 0)
			goto out;
	}
	r = rc == SQLITE_DONE ? rows : sql_err(rc);
out:
	sqlite3_finalize(st);
	return r;
}

int chunk_next_failed(sqlite3 *db, const char *import_id, int64_t after_no, struct chunk *ret,
		      char **ret_error)
{
	sqlite3_stmt *st = NULL;
	int64_t no;
	char *err = NULL;
	int r = exec_bound(db, "SELECT chunk_no, last_error FROM chunks WHERE import_id = ?1 "
			       "AND state = 'failed' AND chunk_no > ?2 ORDER BY chunk_no LIMIT 1", &st);
	if (r < 0)
		return r;
	sqlite3_bind_text(st, 1, import_id, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 2, after_no);
	int rc = sqlite3_step(st);
	if (rc != SQLITE_ROW) {
		sqlite3_finalize(st);
		return rc == SQLITE_DONE ? -ENOENT : sql_err(rc);
	}
	no = sqlite3_column_int64(st, 0);
	if (sqlite3_column_type(st, 1) != SQLITE_NULL)
		err = strdup((const char *)sqlite3_column_text(st, 1));
	sqlite3_finalize(st);
	r = chunk_load(db, import_id, no, ret);
	if (r < 0) {
		free(err);
		return r;
	}
	*ret_error = err;
	return 0;
}
