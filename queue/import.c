#include "queue/import.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#include <sqlite3.h>

#include "daemon/log.h"
#include "queue/state_names.h"
#include "queue/notifier.h"

static const char *const import_state_names[IMPORT_STATE_COUNT] = {
	[IMPORT_VALIDATING] = "validating",
	[IMPORT_VALIDATED] = "validated",
	[IMPORT_REJECTED] = "rejected",
	[IMPORT_QUEUED] = "queued",
	[IMPORT_RUNNING] = "running",
	[IMPORT_COMPLETED] = "completed",
	[IMPORT_COMPLETED_WITH_ERRORS] = "completed_with_errors",
	[IMPORT_FAILED] = "failed",
	[IMPORT_CANCELLING] = "cancelling",
	[IMPORT_CANCELLED] = "cancelled",
};

const char *import_state_name(enum import_state s)
{
	return state_names_get(import_state_names, IMPORT_STATE_COUNT, (unsigned)s);
}

int import_state_from_name(const char *name, enum import_state *ret_state)
{
	int i = state_names_find(import_state_names, IMPORT_STATE_COUNT, name);
	if (i < 0)
		return i;
	*ret_state = (enum import_state)i;
	return 0;
}

bool import_state_terminal(enum import_state s)
{
	switch (s) {
	case IMPORT_VALIDATED:
	case IMPORT_REJECTED:
	case IMPORT_COMPLETED:
	case IMPORT_COMPLETED_WITH_ERRORS:
	case IMPORT_FAILED:
	case IMPORT_CANCELLED:
		return true;
	default:
		return false;
	}
}

#define BIT(s) (1u << (s))

bool import_transition_allowed(enum import_state from, enum import_state to)
{
	static const unsigned allowed[IMPORT_STATE_COUNT] = {
		[IMPORT_VALIDATING] = BIT(IMPORT_VALIDATED) | BIT(IMPORT_REJECTED) | BIT(IMPORT_QUEUED) |
				      BIT(IMPORT_FAILED) | BIT(IMPORT_CANCELLED),
		[IMPORT_QUEUED] = BIT(IMPORT_RUNNING) | BIT(IMPORT_COMPLETED) |
				  BIT(IMPORT_COMPLETED_WITH_ERRORS) | BIT(IMPORT_FAILED) |
				  BIT(IMPORT_CANCELLING) | BIT(IMPORT_CANCELLED),
		[IMPORT_RUNNING] = BIT(IMPORT_COMPLETED) | BIT(IMPORT_COMPLETED_WITH_ERRORS) |
				   BIT(IMPORT_FAILED) | BIT(IMPORT_CANCELLING) | BIT(IMPORT_CANCELLED),
		[IMPORT_CANCELLING] = BIT(IMPORT_CANCELLED) | BIT(IMPORT_FAILED),
		[IMPORT_COMPLETED_WITH_ERRORS] = BIT(IMPORT_QUEUED) | BIT(IMPORT_RUNNING),
		[IMPORT_FAILED] = BIT(IMPORT_QUEUED) | BIT(IMPORT_RUNNING),
	};
	if ((unsigned)from >= IMPORT_STATE_COUNT || (unsigned)to >= IMPORT_STATE_COUNT)
		return false;
	return (allowed[from] & BIT(to)) != 0;
}

void import_users_derive(enum import_state state, int64_t users_total, int64_t users_invalid,
			 const struct import_chunk_agg *agg, struct import_users *ret)
{
	struct import_users u = { .total = users_total, .invalid = users_invalid };

	if (state == IMPORT_VALIDATING) {
		u.pending = users_total - users_invalid;
		*ret = u;
		return;
	}
	int64_t in_chunks = 0;
	for (int s = 0; s < CHUNK_STATE_COUNT; s++)
		in_chunks += agg->users[s];
	u.pending = agg->users[CHUNK_QUEUED] + agg->users[CHUNK_SUBMITTING] + agg->users[CHUNK_SUBMITTED];
	u.inserted = agg->inserted;
	u.updated = agg->updated;
	u.failed = agg->failed + agg->users[CHUNK_FAILED];
	u.assumed = agg->assumed;
	/* Valid users without a chunk (rejected, dry run, cancelled while
	 * validating) and users of cancelled chunks were never submitted. */
	u.not_submitted = agg->users[CHUNK_CANCELLED] + (users_total - users_invalid - in_chunks);
	if (u.not_submitted < 0)
		u.not_submitted = 0;
	*ret = u;
}

enum import_state import_state_derive(enum import_state cur, bool has_import_error,
				      const struct import_chunk_agg *agg,
				      const struct import_users *users)
{
	switch (cur) {
	case IMPORT_VALIDATING:
	case IMPORT_VALIDATED:
	case IMPORT_REJECTED:
	case IMPORT_CANCELLED:
	case IMPORT_COMPLETED:
		return cur;
	case IMPORT_FAILED:
		if (has_import_error)
			return cur;
		break;
	default:
		break;
	}
	int64_t total = 0;
	for (int s = 0; s < CHUNK_STATE_COUNT; s++)
		total += agg->count[s];
	int64_t in_flight = agg->count[CHUNK_SUBMITTING] + agg->count[CHUNK_SUBMITTED];
	int64_t open = agg->count[CHUNK_QUEUED] + in_flight;

	/* A cancelling import's queued chunks are those whose fate at Auth0 is
	 * unknown (the cancel took the others): they are resubmitted first. */
	if (cur == IMPORT_CANCELLING)
		return open > 0 ? IMPORT_CANCELLING : IMPORT_CANCELLED;
	if (open > 0) {
		/* A running import stays running while a chunk waits to retry. */
		if (cur != IMPORT_RUNNING &&
		    (agg->count[CHUNK_QUEUED] == total ||
		     /* after a retry, until a requeued chunk leaves */
		     (cur == IMPORT_QUEUED && in_flight == 0)))
			return IMPORT_QUEUED;
		return IMPORT_RUNNING;
	}
	/* Every chunk ended. */
	if (total > 0 && agg->count[CHUNK_FAILED] == total)
		return IMPORT_FAILED;
	if (agg->count[CHUNK_CANCELLED] > 0)
		return IMPORT_CANCELLED;
	if (users->failed == 0 && users->invalid == 0)
		return IMPORT_COMPLETED;
	return IMPORT_COMPLETED_WITH_ERRORS;
}

int import_id_generate(char out[IMPORT_ID_LEN + 1])
{
	unsigned char raw[8];
	size_t got = 0;
	while (got < sizeof(raw)) {
		ssize_t n = getrandom(raw + got, sizeof(raw) - got, 0);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		got += (size_t)n;
	}
	snprintf(out, IMPORT_ID_LEN + 1, "imp_%02x%02x%02x%02x%02x%02x%02x%02x", raw[0], raw[1],
		 raw[2], raw[3], raw[4], raw[5], raw[6], raw[7]);
	return 0;
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

static int prepare(sqlite3 *db, const char *sql, sqlite3_stmt **ret)
{
	int rc = sqlite3_prepare_v2(db, sql, -1, ret, NULL);
	if (rc != SQLITE_OK) {
		log_error("queue", "prepare failed: %s (%s)", sqlite3_errmsg(db), sql);
		return sql_err(rc);
	}
	return 0;
}

static void bind_text_or_null(sqlite3_stmt *st, int i, const char *s)
{
	if (s)
		sqlite3_bind_text(st, i, s, -1, SQLITE_STATIC);
	else
		sqlite3_bind_null(st, i);
}

int import_insert_tx(sqlite3 *db, const char *id, const struct import_options *o,
		     const char *idempotency_key, const char *body_sha256,
		     int64_t upload_bytes, int64_t now)
{
	sqlite3_stmt *st = NULL;
	int r = prepare(db,
		"INSERT INTO imports (id, state, tenant, connection_id, upsert, send_completion_email, "
		"external_id, on_invalid, unsupported_hash, strip_auth0_prefix, notify_url, dry_run, "
		"max_errors, idempotency_key, body_sha256, created_at, updated_at, upload_bytes) "
		"VALUES (?1, 'validating', ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?15, ?16)",
		&st);
	if (r < 0)
		return r;
	sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, o->tenant ? o->tenant : "default", -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 3, o->connection_id ? o->connection_id : "", -1, SQLITE_STATIC);
	sqlite3_bind_int(st, 4, o->upsert);
	sqlite3_bind_int(st, 5, o->send_completion_email);
	bind_text_or_null(st, 6, o->external_id);
	sqlite3_bind_text(st, 7, o->on_invalid ? o->on_invalid : "reject", -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 8, o->unsupported_hash ? o->unsupported_hash : "reject", -1, SQLITE_STATIC);
	if (o->strip_auth0_prefix < 0)
		sqlite3_bind_null(st, 9);
	else
		sqlite3_bind_int(st, 9, o->strip_auth0_prefix);
	bind_text_or_null(st, 10, o->notify_url);
	sqlite3_bind_int(st, 11, o->dry_run);
	sqlite3_bind_int64(st, 12, o->max_errors);
	bind_text_or_null(st, 13, idempotency_key);
	bind_text_or_null(st, 14, body_sha256);
	sqlite3_bind_int64(st, 15, now);
	sqlite3_bind_int64(st, 16, upload_bytes);
	int rc = sqlite3_step(st);
	sqlite3_finalize(st);
	if (rc != SQLITE_DONE)
		return sql_err(rc);
	log_info("queue", "import %s: created (validating, %" PRId64 " bytes)", id, upload_bytes);
	return 0;
}

static int import_get_state(sqlite3 *db, const char *id, enum import_state *ret, bool *ret_has_error)
{
	sqlite3_stmt *st = NULL;
	int r = prepare(db, "SELECT state, error IS NOT NULL FROM imports WHERE id = ?1", &st);
	if (r < 0)
		return r;
	sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
	int rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		r = import_state_from_name((const char *)sqlite3_column_text(st, 0), ret);
		if (ret_has_error)
			*ret_has_error = sqlite3_column_int(st, 1) != 0;
	} else {
		r = rc == SQLITE_DONE ? -ENOENT : sql_err(rc);
	}
	sqlite3_finalize(st);
	return r;
}

int import_set_state_tx(sqlite3 *db, const char *id, enum import_state to, int64_t now,
			enum import_state *ret_from)
{
	enum import_state from;
	sqlite3_stmt *st = NULL;
	int r = import_get_state(db, id, &from, NULL);
	if (r < 0)
		return r;
	if (from == to) {
		if (ret_from)
			*ret_from = from;
		return 1;
	}
	if (!import_transition_allowed(from, to))
		return -EPERM;
	r = prepare(db, "UPDATE imports SET state = ?2, updated_at = ?3, "
			"finished_at = CASE WHEN ?4 THEN ?3 ELSE NULL END WHERE id = ?1", &st);
	if (r < 0)
		return r;
	sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, import_state_name(to), -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 3, now);
	sqlite3_bind_int(st, 4, import_state_terminal(to));
	int rc = sqlite3_step(st);
	sqlite3_finalize(st);
	if (rc != SQLITE_DONE)
		return sql_err(rc);
	log_info("queue", "import %s: %s -> %s", id, import_state_name(from), import_state_name(to));
	/* Entry action of a terminal state: the notify_url delivery, due at
	 * once, committed with the change (queue/notifier.h). */
	if (import_state_terminal(to) && (r = notifier_enqueue_tx(db, id, now)) < 0)
		return r;
	if (ret_from)
		*ret_from = from;
	return 0;
}

static int import_totals(sqlite3 *db, const char *id, enum import_state *ret_state,
			 int64_t *ret_total, int64_t *ret_invalid, bool *ret_has_error)
{
	sqlite3_stmt *st = NULL;
	int r = prepare(db, "SELECT state, users_total, users_invalid, error IS NOT NULL "
			    "FROM imports WHERE id = ?1", &st);
	if (r < 0)
		return r;
	sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
	int rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		r = import_state_from_name((const char *)sqlite3_column_text(st, 0), ret_state);
		*ret_total = sqlite3_column_int64(st, 1);
		*ret_invalid = sqlite3_column_int64(st, 2);
		*ret_has_error = sqlite3_column_int(st, 3) != 0;
	} else {
		r = rc == SQLITE_DONE ? -ENOENT : sql_err(rc);
	}
	sqlite3_finalize(st);
	return r;
}

static int chunk_agg_load(sqlite3 *db, const char *id, struct import_chunk_agg *agg)
{
	sqlite3_stmt *st = NULL;
	memset(agg, 0, sizeof(*agg));
	int r = prepare(db, "SELECT state, count(*), sum(users), sum(summary_inserted), "
			    "sum(summary_updated), sum(summary_failed), sum(assumed) "
			    "FROM chunks WHERE import_id = ?1 GROUP BY state", &st);
	if (r < 0)
		return r;
	sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
	int rc;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		enum chunk_state s;
		if (chunk_state_from_name((const char *)sqlite3_column_text(st, 0), &s) < 0)
			continue;
		agg->count[s] = sqlite3_column_int64(st, 1);
		agg->users[s] = sqlite3_column_int64(st, 2);
		if (s == CHUNK_COMPLETED) {
			agg->inserted = sqlite3_column_int64(st, 3);
			agg->updated = sqlite3_column_int64(st, 4);
			agg->failed = sqlite3_column_int64(st, 5);
			agg->assumed = sqlite3_column_int64(st, 6);
		}
	}
	r = rc == SQLITE_DONE ? 0 : sql_err(rc);
	sqlite3_finalize(st);
	return r;
}

int import_users_load(sqlite3 *db, const char *id, struct import_users *ret_users,
		      struct import_chunk_agg *ret_agg)
{
	enum import_state state;
	int64_t total, invalid;
	bool has_error;
	struct import_chunk_agg agg;
	int r = import_totals(db, id, &state, &total, &invalid, &has_error);
	if (r < 0)
		return r;
	r = chunk_agg_load(db, id, &agg);
	if (r < 0)
		return r;
	import_users_derive(state, total, invalid, &agg, ret_users);
	if (ret_agg)
		*ret_agg = agg;
	return 0;
}

int import_refresh_tx(sqlite3 *db, const char *id, int64_t now, enum import_state *ret_state)
{
	enum import_state state;
	int64_t total, invalid;
	bool has_error;
	struct import_chunk_agg agg;
	struct import_users users;
	int r = import_totals(db, id, &state, &total, &invalid, &has_error);
	if (r < 0)
		return r;
	r = chunk_agg_load(db, id, &agg);
	if (r < 0)
		return r;
	import_users_derive(state, total, invalid, &agg, &users);
	enum import_state to = import_state_derive(state, has_error, &agg, &users);
	if (to != state) {
		/* queued → completed can skip running; a retry brings a terminal
		 * import back through queued. */
		r = import_set_state_tx(db, id, to, now, NULL);
		if (r < 0)
			return r;
	}
	if (ret_state)
		*ret_state = to;
	return 0;
}

int import_progress_tx(sqlite3 *db, const char *id, int64_t validated_bytes,
		       int64_t users_seen, int64_t users_invalid, int64_t now)
{
	sqlite3_stmt *st = NULL;
	int r = prepare(db, "UPDATE imports SET validated_bytes = ?2, users_total = ?3, "
			    "users_invalid = ?4, updated_at = ?5 WHERE id = ?1 AND state = 'validating'", &st);
	if (r < 0)
		return r;
	sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 2, validated_bytes);
	sqlite3_bind_int64(st, 3, users_seen);
	sqlite3_bind_int64(st, 4, users_invalid);
	sqlite3_bind_int64(st, 5, now);
	int rc = sqlite3_step(st);
	sqlite3_finalize(st);
	return rc == SQLITE_DONE ? 0 : sql_err(rc);
}

int import_finish_validation_tx(sqlite3 *db, const char *id, enum import_state to,
				int64_t users_total, int64_t users_invalid,
				int64_t warnings_total, const char *error_json, int64_t now)
{
	sqlite3_stmt *st = NULL;
	int r = prepare(db, "UPDATE imports SET users_total = ?2, users_invalid = ?3, warnings_total = ?4, "
			    "error = ?5, validated_bytes = upload_bytes, updated_at = ?6 WHERE id = ?1", &st);
	if (r < 0)
		return r;
	sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 2, users_total);
	sqlite3_bind_int64(st, 3, users_invalid);
	sqlite3_bind_int64(st, 4, warnings_total);
	bind_text_or_null(st, 5, error_json);
	sqlite3_bind_int64(st, 6, now);
	int rc = sqlite3_step(st);
	sqlite3_finalize(st);
	if (rc != SQLITE_DONE)
		return sql_err(rc);
	if (sqlite3_changes(db) != 1)
		return -ENOENT;
	r = import_set_state_tx(db, id, to, now, NULL);
	if (r < 0)
		return r;
	/* A queued import with no chunk at all (every user invalid, skipped)
	 * has nothing to wait for. */
	if (to == IMPORT_QUEUED)
		return import_refresh_tx(db, id, now, NULL);
	return 0;
}

/* Keeps the queued chunks whose earlier request may have reached Auth0
 * (`resubmitted`): they are resubmitted once to learn what Auth0 holds,
 * like the jobs already there are followed. */
static int cancel_queued_chunks(sqlite3 *db, const char *id, int64_t now)
{
	sqlite3_stmt *st = NULL;
	int r = prepare(db, "UPDATE chunks SET state = 'cancelled', updated_at = ?2 "
			    "WHERE import_id = ?1 AND state = 'queued' AND resubmitted = 0", &st);
	if (r < 0)
		return r;
	sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 2, now);
	int rc = sqlite3_step(st);
	sqlite3_finalize(st);
	if (rc != SQLITE_DONE)
		return sql_err(rc);
	int n = sqlite3_changes(db);
	if (n > 0)
		log_info("queue", "import %s: %d queued chunks -> cancelled", id, n);
	return 0;
}

int import_fail_tx(sqlite3 *db, const char *id, const char *error_json, int64_t now)
{
	sqlite3_stmt *st = NULL;
	enum import_state from;
	int r = import_get_state(db, id, &from, NULL);
	if (r < 0)
		return r;
	if (from == IMPORT_FAILED)
		return 1;
	if (!import_transition_allowed(from, IMPORT_FAILED))
		return -EPERM;
	r = prepare(db, "UPDATE imports SET error = ?2 WHERE id = ?1", &st);
	if (r < 0)
		return r;
	sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
	bind_text_or_null(st, 2, error_json ? error_json : "{}");
	int rc = sqlite3_step(st);
	sqlite3_finalize(st);
	if (rc != SQLITE_DONE)
		return sql_err(rc);
	r = cancel_queued_chunks(db, id, now);
	if (r < 0)
		return r;
	return import_set_state_tx(db, id, IMPORT_FAILED, now, NULL);
}

int import_cancel_tx(sqlite3 *db, const char *id, int64_t now, enum import_state *ret_state)
{
	enum import_state from;
	int r = import_get_state(db, id, &from, NULL);
	if (r < 0)
		return r;
	if (from == IMPORT_CANCELLED || from == IMPORT_CANCELLING) {
		if (ret_state)
			*ret_state = from;
		return 1;
	}
	if (import_state_terminal(from))
		return -EPERM;
	if (from == IMPORT_VALIDATING) {
		r = import_set_state_tx(db, id, IMPORT_CANCELLED, now, NULL);
		if (r < 0)
			return r;
		if (ret_state)
			*ret_state = IMPORT_CANCELLED;
		return 0;
	}
	r = cancel_queued_chunks(db, id, now);
	if (r < 0)
		return r;
	r = import_set_state_tx(db, id, IMPORT_CANCELLING, now, NULL);
	if (r < 0)
		return r;
	/* cancelling → cancelled at once when nothing is in flight. */
	return import_refresh_tx(db, id, now, ret_state);
}

int import_retry_tx(sqlite3 *db, const char *id, int64_t now, int64_t *ret_chunks,
		    int64_t *ret_users)
{
	enum import_state from;
	bool has_error = false;
	int64_t total = 0, invalid = 0, nchunks = 0, nusers = 0;
	sqlite3_stmt *st = NULL;
	int r = import_totals(db, id, &from, &total, &invalid, &has_error);
	if (r < 0)
		return r;
	if ((from != IMPORT_FAILED && from != IMPORT_COMPLETED_WITH_ERRORS) || has_error)
		return -EPERM;
	r = prepare(db, "SELECT count(*), coalesce(sum(users), 0) FROM chunks "
			"WHERE import_id = ?1 AND state = 'failed' AND retryable = 1", &st);
	if (r < 0)
		return r;
	sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
	if (sqlite3_step(st) == SQLITE_ROW) {
		nchunks = sqlite3_column_int64(st, 0);
		nusers = sqlite3_column_int64(st, 1);
	}
	sqlite3_finalize(st);
	if (nchunks == 0)
		return -ENODATA;
	/* The import first, so that the chunks' refreshes keep it queued. */
	if ((r = import_set_state_tx(db, id, IMPORT_QUEUED, now, NULL)) < 0)
		return r;
	r = prepare(db, "SELECT chunk_no FROM chunks WHERE import_id = ?1 AND state = 'failed' "
			"AND retryable = 1 ORDER BY chunk_no", &st);
	if (r < 0)
		return r;
	sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
	int rc;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		r = chunk_set_state_tx(db, id, sqlite3_column_int64(st, 0), CHUNK_QUEUED, NULL, now, NULL);
		if (r < 0)
			break;
		r = 0;
	}
	sqlite3_finalize(st);
	if (r < 0)
		return r;
	if (rc != SQLITE_DONE)
		return sql_err(rc);
	log_info("queue", "import %s: retry: %" PRId64 " chunks (%" PRId64 " users) queued again",
		 id, nchunks, nusers);
	if ((r = import_refresh_tx(db, id, now, NULL)) < 0)
		return r;
	if (ret_chunks)
		*ret_chunks = nchunks;
	if (ret_users)
		*ret_users = nusers;
	return 0;
}

#define IMPORT_ROW_COLUMNS "seq, id, state, tenant, created_at, max_errors, dry_run, on_invalid, " \
	"coalesce(body_sha256, ''), coalesce(idempotency_key, ''), users_total, users_invalid, warnings_total, " \
	"unsupported_hash, coalesce(strip_auth0_prefix, -1), coalesce(finished_at, 0), connection_id, " \
	"upsert, send_completion_email, coalesce(notify_url, '')"

static void import_row_from(sqlite3_stmt *st, struct import_row *r)
{
	memset(r, 0, sizeof(*r));
	r->seq = sqlite3_column_int64(st, 0);
	snprintf(r->id, sizeof(r->id), "%s", (const char *)sqlite3_column_text(st, 1));
	if (import_state_from_name((const char *)sqlite3_column_text(st, 2), &r->state) < 0)
		r->state = IMPORT_FAILED;
	snprintf(r->tenant, sizeof(r->tenant), "%s", (const char *)sqlite3_column_text(st, 3));
	r->created_at = sqlite3_column_int64(st, 4);
	r->max_errors = sqlite3_column_int64(st, 5);
	r->dry_run = sqlite3_column_int(st, 6) != 0;
	snprintf(r->on_invalid, sizeof(r->on_invalid), "%s", (const char *)sqlite3_column_text(st, 7));
	snprintf(r->body_sha256, sizeof(r->body_sha256), "%s", (const char *)sqlite3_column_text(st, 8));
	snprintf(r->idempotency_key, sizeof(r->idempotency_key), "%s",
		 (const char *)sqlite3_column_text(st, 9));
	r->users_total = sqlite3_column_int64(st, 10);
	r->users_invalid = sqlite3_column_int64(st, 11);
	r->warnings_total = sqlite3_column_int64(st, 12);
	snprintf(r->unsupported_hash, sizeof(r->unsupported_hash), "%s",
		 (const char *)sqlite3_column_text(st, 13));
	r->strip_auth0_prefix = sqlite3_column_int(st, 14);
	r->finished_at = sqlite3_column_int64(st, 15);
	snprintf(r->connection_id, sizeof(r->connection_id), "%s", (const char *)sqlite3_column_text(st, 16));
	r->upsert = sqlite3_column_int(st, 17) != 0;
	r->send_completion_email = sqlite3_column_int(st, 18) != 0;
	snprintf(r->notify_url, sizeof(r->notify_url), "%s", (const char *)sqlite3_column_text(st, 19));
}

int import_load(sqlite3 *db, const char *id, struct import_row *ret)
{
	sqlite3_stmt *st = NULL;
	int r = prepare(db, "SELECT " IMPORT_ROW_COLUMNS " FROM imports WHERE id = ?1", &st);
	if (r < 0)
		return r;
	sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
	int rc = sqlite3_step(st);
	if (rc == SQLITE_ROW)
		import_row_from(st, ret);
	else
		r = rc == SQLITE_DONE ? -ENOENT : sql_err(rc);
	sqlite3_finalize(st);
	return r;
}

int import_find_by_idempotency_key(sqlite3 *db, const char *key, int64_t since,
				   struct import_row *ret)
{
	sqlite3_stmt *st = NULL;
	int r = prepare(db, "SELECT " IMPORT_ROW_COLUMNS " FROM imports WHERE idempotency_key = ?1 "
			    "AND created_at >= ?2 ORDER BY seq DESC LIMIT 1", &st);
	if (r < 0)
		return r;
	sqlite3_bind_text(st, 1, key, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 2, since);
	int rc = sqlite3_step(st);
	if (rc == SQLITE_ROW)
		import_row_from(st, ret);
	else
		r = rc == SQLITE_DONE ? -ENOENT : sql_err(rc);
	sqlite3_finalize(st);
	return r;
}

int import_foreach_in_state(sqlite3 *db, enum import_state state,
			    int (*fn)(const struct import_row *row, void *ctx), void *ctx)
{
	sqlite3_stmt *st = NULL;
	int r = prepare(db, "SELECT " IMPORT_ROW_COLUMNS " FROM imports WHERE state = ?1 ORDER BY seq", &st);
	if (r < 0)
		return r;
	sqlite3_bind_text(st, 1, import_state_name(state), -1, SQLITE_STATIC);
	int rc;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		struct import_row row;
		import_row_from(st, &row);
		r = fn(&row, ctx);
		if (r != 0)
			goto out;
	}
	r = rc == SQLITE_DONE ? 0 : sql_err(rc);
out:
	sqlite3_finalize(st);
	return r;
}

void import_format_time(int64_t t, char *buf, size_t len)
{
	struct tm tm;
	time_t tt = (time_t)t;
	gmtime_r(&tt, &tm);
	strftime(buf, len, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

static json_object *json_time(int64_t t)
{
	char buf[32];
	import_format_time(t, buf, sizeof(buf));
	return json_object_new_string(buf);
}

static json_object *json_text_or_null(sqlite3_stmt *st, int col)
{
	if (sqlite3_column_type(st, col) == SQLITE_NULL)
		return NULL;
	return json_object_new_string((const char *)sqlite3_column_text(st, col));
}

static json_object *job_from_row(sqlite3_stmt *st)
{
	json_object *j = json_object_new_object();
	const char *state = (const char *)sqlite3_column_text(st, 2);
	json_object_object_add(j, "chunk", json_object_new_int64(sqlite3_column_int64(st, 0)));
	json_object_object_add(j, "job_id", json_text_or_null(st, 1));
	/* Auth0's job vocabulary: pending until it ends. */
	const char *status = strcmp(state, "completed") == 0 ? "completed"
			     : strcmp(state, "failed") == 0  ? "failed"
							      : "pending";
	json_object_object_add(j, "status", json_object_new_string(status));
	int64_t users = sqlite3_column_int64(st, 3);
	json_object_object_add(j, "users", json_object_new_int64(users));
	if (strcmp(state, "completed") == 0) {
		json_object *s = json_object_new_object();
		json_object_object_add(s, "inserted", json_object_new_int64(sqlite3_column_int64(st, 4)));
		json_object_object_add(s, "updated", json_object_new_int64(sqlite3_column_int64(st, 5)));
		json_object_object_add(s, "failed", json_object_new_int64(sqlite3_column_int64(st, 6)));
		json_object_object_add(s, "total", json_object_new_int64(users));
		json_object_object_add(j, "summary", s);
	} else {
		json_object_object_add(j, "summary", NULL);
	}
	return j;
}

#define JOB_COLUMNS "chunk_no, job_id, state, users, summary_inserted, summary_updated, summary_failed"

static int jobs_json(sqlite3 *db, const char *id, json_object *jobs)
{
	sqlite3_stmt *st = NULL;
	int r = prepare(db, "SELECT " JOB_COLUMNS " FROM chunks WHERE import_id = ?1 AND job_id IS NOT NULL "
			    "ORDER BY submitted_at DESC, chunk_no DESC LIMIT ?2", &st);
	if (r < 0)
		return r;
	sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
	sqlite3_bind_int(st, 2, IMPORT_JOBS_MAX);
	int rc;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW)
		json_object_array_add(jobs, job_from_row(st));
	r = rc == SQLITE_DONE ? 0 : sql_err(rc);
	sqlite3_finalize(st);
	return r;
}

int import_jobs_json(sqlite3 *db, const char *id, int64_t cursor, int limit, json_object **ret)
{
	sqlite3_stmt *st = NULL;
	struct import_row row;
	int64_t last = -1;
	int n = 0, rc, r;
	bool more = false;

	r = import_load(db, id, &row);
	if (r < 0)
		return r;
	r = prepare(db, "SELECT " JOB_COLUMNS " FROM chunks WHERE import_id = ?1 AND job_id IS NOT NULL "
			"AND chunk_no > ?2 ORDER BY chunk_no LIMIT ?3", &st);
	if (r < 0)
		return r;
	sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 2, cursor);
	sqlite3_bind_int(st, 3, limit + 1);
	json_object *o = json_object_new_object(), *arr = json_object_new_array();
	json_object_object_add(o, "jobs", arr);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		if (n == limit) {
			more = true;
			break;
		}
		last = sqlite3_column_int64(st, 0);
		json_object_array_add(arr, job_from_row(st));
		n++;
	}
	sqlite3_finalize(st);
	if (rc != SQLITE_ROW && rc != SQLITE_DONE) {
		json_object_put(o);
		return sql_err(rc);
	}
	if (more) {
		char buf[32];
		snprintf(buf, sizeof(buf), "%" PRId64, last);
		json_object_object_add(o, "next_cursor", json_object_new_string(buf));
	} else {
		json_object_object_add(o, "next_cursor", NULL);
	}
	*ret = o;
	return 0;
}

/* Seconds since the first submission, for the ETA; 0 when none yet. */
static int64_t first_submitted_at(sqlite3 *db, const char *id)
{
	sqlite3_stmt *st = NULL;
	int64_t t = 0;
	if (prepare(db, "SELECT coalesce(min(submitted_at), 0) FROM chunks WHERE import_id = ?1", &st) < 0)
		return 0;
	sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
	if (sqlite3_step(st) == SQLITE_ROW)
		t = sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	return t;
}

#define IMPORT_JSON_COLUMNS "id, state, tenant, connection_id, upsert, send_completion_email, " \
	"external_id, on_invalid, unsupported_hash, strip_auth0_prefix, notify_url, dry_run, " \
	"max_errors, created_at, updated_at, users_total, users_invalid, warnings_total, " \
	"upload_bytes, validated_bytes, error, finished_at, seq"

static int import_json_from_row(sqlite3 *db, sqlite3_stmt *st, bool with_jobs, int64_t now,
				json_object **ret)
{
	const char *id = (const char *)sqlite3_column_text(st, 0);
	enum import_state state;
	struct import_chunk_agg agg;
	struct import_users u;
	int r;

	if (import_state_from_name((const char *)sqlite3_column_text(st, 1), &state) < 0)
		return -EBADMSG;
	r = chunk_agg_load(db, id, &agg);
	if (r < 0)
		return r;
	import_users_derive(state, sqlite3_column_int64(st, 15), sqlite3_column_int64(st, 16), &agg, &u);

	json_object *o = json_object_new_object();
	if (!o)
		return -ENOMEM;
	json_object_object_add(o, "id", json_object_new_string(id));
	json_object_object_add(o, "state", json_object_new_string(import_state_name(state)));
	json_object_object_add(o, "tenant", json_text_or_null(st, 2));
	json_object_object_add(o, "connection_id", json_text_or_null(st, 3));
	json_object_object_add(o, "upsert", json_object_new_boolean(sqlite3_column_int(st, 4)));
	json_object_object_add(o, "send_completion_email", json_object_new_boolean(sqlite3_column_int(st, 5)));
	json_object_object_add(o, "external_id", json_text_or_null(st, 6));
	json_object_object_add(o, "dry_run", json_object_new_boolean(sqlite3_column_int(st, 11)));
	json_object *opt = json_object_new_object();
	json_object_object_add(opt, "on_invalid", json_text_or_null(st, 7));
	json_object_object_add(opt, "unsupported_hash", json_text_or_null(st, 8));
	json_object_object_add(opt, "strip_auth0_prefix",
			       sqlite3_column_type(st, 9) == SQLITE_NULL
				       ? NULL
				       : json_object_new_boolean(sqlite3_column_int(st, 9)));
	json_object_object_add(opt, "notify_url", json_text_or_null(st, 10));
	json_object_object_add(opt, "max_errors", json_object_new_int64(sqlite3_column_int64(st, 12)));
	json_object_object_add(o, "options", opt);
	json_object_object_add(o, "created_at", json_time(sqlite3_column_int64(st, 13)));
	json_object_object_add(o, "updated_at", json_time(sqlite3_column_int64(st, 14)));

	json_object *ju = json_object_new_object();
	json_object_object_add(ju, "total", json_object_new_int64(u.total));
	json_object_object_add(ju, "invalid", json_object_new_int64(u.invalid));
	json_object_object_add(ju, "inserted", json_object_new_int64(u.inserted));
	json_object_object_add(ju, "updated", json_object_new_int64(u.updated));
	json_object_object_add(ju, "failed", json_object_new_int64(u.failed));
	json_object_object_add(ju, "pending", json_object_new_int64(u.pending));
	json_object_object_add(ju, "not_submitted", json_object_new_int64(u.not_submitted));
	json_object_object_add(ju, "assumed", json_object_new_int64(u.assumed));
	json_object_object_add(o, "users", ju);

	json_object *jc = json_object_new_object();
	int64_t chunks_total = 0;
	for (int s = 0; s < CHUNK_STATE_COUNT; s++)
		chunks_total += agg.count[s];
	json_object_object_add(jc, "total", json_object_new_int64(chunks_total));
	for (int s = 0; s < CHUNK_STATE_COUNT; s++)
		json_object_object_add(jc, chunk_state_name((enum chunk_state)s),
				       json_object_new_int64(agg.count[s]));
	json_object_object_add(o, "chunks", jc);

	if (with_jobs) {
		json_object *jobs = json_object_new_array();
		json_object_object_add(o, "jobs", jobs);
		r = jobs_json(db, id, jobs);
		if (r < 0) {
			json_object_put(o);
			return r;
		}
	}
	json_object_object_add(o, "warnings_total", json_object_new_int64(sqlite3_column_int64(st, 17)));

	/* progress: bytes while validating, then users with an outcome. */
	double progress;
	json_object *eta = NULL;
	if (state == IMPORT_VALIDATING) {
		int64_t up = sqlite3_column_int64(st, 18), done = sqlite3_column_int64(st, 19);
		progress = up > 0 ? (double)done / (double)up : 0.0;
	} else if (import_state_terminal(state)) {
		progress = 1.0;
		eta = json_object_new_int64(0);
	} else {
		int64_t decided = u.total - u.pending;
		progress = u.total > 0 ? (double)decided / (double)u.total : 1.0;
		int64_t done_valid = u.inserted + u.updated + u.failed;
		int64_t t0 = first_submitted_at(db, id);
		if (done_valid > 0 && t0 > 0 && now > t0) {
			double per_user = (double)(now - t0) / (double)done_valid;
			eta = json_object_new_int64((int64_t)(per_user * (double)u.pending + 0.5));
		}
	}
	if (progress > 1.0)
		progress = 1.0;
	if (progress < 0.0)
		progress = 0.0;
	char pbuf[16];
	snprintf(pbuf, sizeof(pbuf), "%.4f", progress);
	for (size_t l = strlen(pbuf); l > 3 && pbuf[l - 1] == '0'; l--)
		pbuf[l - 1] = '\0';
	json_object_object_add(o, "progress", json_object_new_double_s(progress, pbuf));
	json_object_object_add(o, "eta_seconds", eta);
	if (sqlite3_column_type(st, 20) != SQLITE_NULL) {
		json_object *err = json_tokener_parse((const char *)sqlite3_column_text(st, 20));
		if (err)
			json_object_object_add(o, "error", err);
	}
	if (sqlite3_column_type(st, 21) != SQLITE_NULL)
		json_object_object_add(o, "finished_at", json_time(sqlite3_column_int64(st, 21)));
	*ret = o;
	return 0;
}

int import_json(sqlite3 *db, const char *id, bool with_jobs, int64_t now, json_object **ret)
{
	sqlite3_stmt *st = NULL;
	int r = prepare(db, "SELECT " IMPORT_JSON_COLUMNS " FROM imports WHERE id = ?1", &st);
	if (r < 0)
		return r;
	sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
	int rc = sqlite3_step(st);
	if (rc == SQLITE_ROW)
		r = import_json_from_row(db, st, with_jobs, now, ret);
	else
		r = rc == SQLITE_DONE ? -ENOENT : sql_err(rc);
	sqlite3_finalize(st);
	return r;
}

int import_list_json(sqlite3 *db, const char *state, const char *external_id,
		     int64_t cursor, int limit, int64_t now, json_object **ret)
{
	sqlite3_stmt *st = NULL;
	json_object *o = NULL, *arr = NULL;
	int64_t last_seq = 0;
	int n = 0, r;

	r = prepare(db, "SELECT " IMPORT_JSON_COLUMNS " FROM imports WHERE (?1 IS NULL OR state = ?1) "
			"AND (?2 IS NULL OR external_id = ?2) AND (?3 <= 0 OR seq < ?3) "
			"ORDER BY seq DESC LIMIT ?4", &st);
	if (r < 0)
		return r;
	bind_text_or_null(st, 1, state);
	bind_text_or_null(st, 2, external_id);
	sqlite3_bind_int64(st, 3, cursor);
	sqlite3_bind_int(st, 4, limit + 1);
	o = json_object_new_object();
	arr = json_object_new_array();
	json_object_object_add(o, "imports", arr);
	bool more = false;
	int rc;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		if (n == limit) {
			more = true;
			break;
		}
		json_object *imp = NULL;
		r = import_json_from_row(db, st, false, now, &imp);
		if (r < 0)
			goto fail;
		json_object_array_add(arr, imp);
		last_seq = sqlite3_column_int64(st, 22);
		n++;
	}
	if (rc != SQLITE_ROW && rc != SQLITE_DONE) {
		r = sql_err(rc);
		goto fail;
	}
	if (more) {
		char buf[32];
		snprintf(buf, sizeof(buf), "%" PRId64, last_seq);
		json_object_object_add(o, "next_cursor", json_object_new_string(buf));
	} else {
		json_object_object_add(o, "next_cursor", NULL);
	}
	sqlite3_finalize(st);
	*ret = o;
	return 0;
fail:
	sqlite3_finalize(st);
	json_object_put(o);
	return r;
}

int import_totals_load(sqlite3 *db, int64_t ret_by_state[IMPORT_STATE_COUNT],
		       struct import_users *ret_users)
{
	sqlite3_stmt *st = NULL;
	int64_t by_state[IMPORT_STATE_COUNT] = { 0 };
	int64_t total = 0, invalid = 0, validating_valid = 0;
	struct import_chunk_agg agg;
	int rc, r;

	r = prepare(db, "SELECT state, count(*), sum(users_total), sum(users_invalid) FROM imports "
			"GROUP BY state", &st);
	if (r < 0)
		return r;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		enum import_state s;
		if (import_state_from_name((const char *)sqlite3_column_text(st, 0), &s) < 0)
			continue;
		by_state[s] = sqlite3_column_int64(st, 1);
		total += sqlite3_column_int64(st, 2);
		invalid += sqlite3_column_int64(st, 3);
		if (s == IMPORT_VALIDATING)
			validating_valid += sqlite3_column_int64(st, 2) - sqlite3_column_int64(st, 3);
	}
	sqlite3_finalize(st);
	if (rc != SQLITE_DONE)
		return sql_err(rc);

	memset(&agg, 0, sizeof(agg));
	r = prepare(db, "SELECT state, count(*), sum(users), sum(summary_inserted), sum(summary_updated), "
			"sum(summary_failed), sum(assumed) FROM chunks GROUP BY state", &st);
	if (r < 0)
		return r;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		enum chunk_state s;
		if (chunk_state_from_name((const char *)sqlite3_column_text(st, 0), &s) < 0)
			continue;
		agg.count[s] = sqlite3_column_int64(st, 1);
		agg.users[s] = sqlite3_column_int64(st, 2);
		if (s == CHUNK_COMPLETED) {
			agg.inserted = sqlite3_column_int64(st, 3);
			agg.updated = sqlite3_column_int64(st, 4);
			agg.failed = sqlite3_column_int64(st, 5);
			agg.assumed = sqlite3_column_int64(st, 6);
		}
	}
	sqlite3_finalize(st);
	if (rc != SQLITE_DONE)
		return sql_err(rc);

	struct import_users u;
	import_users_derive(IMPORT_RUNNING, total - validating_valid, invalid, &agg, &u);
	u.total = total;
	u.pending += validating_valid;
	memcpy(ret_by_state, by_state, sizeof(by_state));
	*ret_users = u;
	return 0;
}
