/*
 * import — one uploaded users file and what became of it: its row, its state
 * machine, its counters derived from its chunks, and its JSON face.
 *
 * States (API.md), and the only legal changes (import_set_state_tx refuses
 * the others with -EPERM, ignores a change to the same state, returning 1):
 *
 *   validating ─▶ validated               (dry run: nothing queued)
 *              ─▶ rejected                (on_invalid=reject and invalid users,
 *                                          or a malformed file found after the
 *                                          POST had answered 202)
 *              ─▶ queued                  (chunks committed)
 *              ─▶ failed | cancelled
 *   queued     ─▶ running | completed | completed_with_errors | failed
 *              ─▶ cancelling | cancelled
 *   running    ─▶ completed | completed_with_errors | failed
 *              ─▶ cancelling | cancelled
 *   cancelling ─▶ cancelled | failed
 *   completed_with_errors, failed ─▶ queued | running   (operator retry)
 *
 * Terminal: validated, rejected, completed, completed_with_errors, failed,
 * cancelled.
 * Entering one (import_set_state_tx) also queues, in the same transaction,
 * the delivery of the import object to its notify_url (queue/notifier.h).
 *
 * After validation the state follows the chunks (import_state_derive, run
 * by import_refresh_tx in the same transaction as every chunk change):
 *   - every chunk queued                      → queued
 *   - some chunk left queued, not all ended   → running
 *   - cancelling, nothing in flight or queued → cancelled
 *   - all chunks ended (completed/failed/cancelled):
 *       all of them failed                    → failed
 *       no failed user and no invalid user    → completed
 *       otherwise                             → completed_with_errors
 * An import-wide error (import_fail_tx: unknown connection, 401/403 after a
 * refresh) sets `failed` at once and cancels the chunks still queued.
 *
 * Counters (struct import_users), at every moment
 *   total = invalid + inserted + updated + failed + pending + not_submitted
 * with pending = users of queued/submitting/submitted chunks, inserted/
 * updated/failed from completed chunks' summaries, failed += users of failed
 * chunks, not_submitted = users of cancelled chunks + valid users that got no
 * chunk (rejected, validated, cancelled while validating). While validating,
 * total/invalid are the counts so far and the valid ones are pending.
 *
 * *_tx functions run inside a store transaction on the writer thread; the
 * read functions take the loop's read connection (bounded reads only).
 * Times are unix seconds.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <json-c/json.h>

#include "queue/chunk.h"

#define IMPORT_ID_LEN 20 /* "imp_" + 16 hex */
#define IMPORT_JOBS_MAX 100 /* jobs[] in the import object */

enum import_state {
	IMPORT_VALIDATING = 0,
	IMPORT_VALIDATED,
	IMPORT_REJECTED,
	IMPORT_QUEUED,
	IMPORT_RUNNING,
	IMPORT_COMPLETED,
	IMPORT_COMPLETED_WITH_ERRORS,
	IMPORT_FAILED,
	IMPORT_CANCELLING,
	IMPORT_CANCELLED,
	IMPORT_STATE_COUNT,
};

const char *import_state_name(enum import_state s);
int import_state_from_name(const char *name, enum import_state *ret_state);
bool import_state_terminal(enum import_state s);
bool import_transition_allowed(enum import_state from, enum import_state to);

/* What the client asked for (POST /v1/imports fields). Strings are the
 * caller's; NULL for unset optional ones. */
struct import_options {
	const char *tenant;
	const char *connection_id;
	bool upsert;
	bool send_completion_email;
	const char *external_id;
	const char *on_invalid;        /* "reject" | "skip" */
	const char *unsupported_hash;  /* "reject" | "strip" */
	int strip_auth0_prefix;        /* -1 unset, 0 false, 1 true */
	const char *notify_url;
	bool dry_run;
	int64_t max_errors;
};

/* Per chunk-state aggregates of one import's chunks. */
struct import_chunk_agg {
	int64_t count[CHUNK_STATE_COUNT];
	int64_t users[CHUNK_STATE_COUNT];
	int64_t inserted, updated, failed, assumed; /* completed chunks' summaries */
};

struct import_users {
	int64_t total, invalid, inserted, updated, failed, pending, not_submitted, assumed;
};

/* Pure: the counters from the import's own totals and its chunks. */
void import_users_derive(enum import_state state, int64_t users_total, int64_t users_invalid,
			 const struct import_chunk_agg *agg, struct import_users *ret);
/* Pure: the state the chunks call for (returns `cur` while validating and in
 * validated/rejected/cancelled, and for failed with an import-wide error). */
enum import_state import_state_derive(enum import_state cur, bool has_import_error,
				      const struct import_chunk_agg *agg,
				      const struct import_users *users);

/* "imp_" + 16 random hex into out (IMPORT_ID_LEN + 1 bytes). 0 or -errno. */
int import_id_generate(char out[IMPORT_ID_LEN + 1]);

/* Inserts a new import in state validating. 0, -EEXIST, or -errno. */
int import_insert_tx(sqlite3 *db, const char *id, const struct import_options *opts,
		     const char *idempotency_key, const char *body_sha256,
		     int64_t upload_bytes, int64_t now);

/*
 * The one function that changes an import's state: 0 changed, 1 same state
 * (nothing written), -EPERM illegal, -ENOENT no such import. Sets
 * updated_at (and finished_at on entering a terminal state). Logs
 * "from -> to". *ret_from optional.
 */
int import_set_state_tx(sqlite3 *db, const char *id, enum import_state to, int64_t now,
			enum import_state *ret_from);

/* Re-derives the state from the chunks and applies it (0 or -errno).
 * *ret_state (optional) gets the state after. */
int import_refresh_tx(sqlite3 *db, const char *id, int64_t now, enum import_state *ret_state);

/* Validation progress (bytes of the spool read so far, counts so far). */
int import_progress_tx(sqlite3 *db, const char *id, int64_t validated_bytes,
		       int64_t users_seen, int64_t users_invalid, int64_t now);

/* Validation ended: stores the counts (chunks were inserted by the caller in
 * the same transaction) and moves to `to` (queued, validated or rejected).
 * error_json: the import-wide problem for a rejected malformed file, or NULL. */
int import_finish_validation_tx(sqlite3 *db, const char *id, enum import_state to,
				int64_t users_total, int64_t users_invalid,
				int64_t warnings_total, const char *error_json, int64_t now);

/* An import-wide error: stores error_json (a problem object), cancels the
 * queued chunks (but those flagged `resubmitted`, as a cancel does) and
 * moves to failed (cancelling first if jobs are in flight
 * is not needed: in-flight jobs keep being followed, the state is failed). */
int import_fail_tx(sqlite3 *db, const char *id, const char *error_json, int64_t now);

/*
 * Cancel (DELETE): queued chunks → cancelled, but those flagged
 * `resubmitted` (an earlier request may have reached Auth0: they are
 * resubmitted once to learn what it holds); then cancelling while a chunk
 * is in flight or kept queued, else cancelled. A validating import goes to
 * cancelled (the intake sees it and queues nothing). Returns 0 with *ret_state the state
 * after, 1 when it was already cancelled or cancelling, -EPERM for another
 * terminal state, -ENOENT.
 */
int import_cancel_tx(sqlite3 *db, const char *id, int64_t now, enum import_state *ret_state);

/*
 * Operator retry (POST /v1/imports/{id}/retry): the chunks that failed for
 * transient reasons (`retryable`, see queue/chunk.h) go back to queued, and
 * the import to queued (those users count as pending again). Returns 0 with
 * the number of chunks and users requeued; -EPERM when the import is not
 * failed or completed_with_errors, or failed with an import-wide error;
 * -ENODATA when no chunk can be retried; -ENOENT.
 */
int import_retry_tx(sqlite3 *db, const char *id, int64_t now, int64_t *ret_chunks,
		    int64_t *ret_users);

/* Reads. */
struct import_row {
	int64_t seq;
	char id[IMPORT_ID_LEN + 1];
	enum import_state state;
	char tenant[64];
	char connection_id[72];
	bool upsert;
	bool send_completion_email;
	char notify_url[2048];   /* "" when none */
	int64_t created_at;
	int64_t max_errors;
	bool dry_run;
	char on_invalid[8];
	char unsupported_hash[8];
	int strip_auth0_prefix;  /* -1 unset, 0 false, 1 true */
	char body_sha256[65];
	char idempotency_key[256];
	int64_t users_total, users_invalid, warnings_total;
	int64_t finished_at;     /* 0 while not terminal */
};
int import_load(sqlite3 *db, const char *id, struct import_row *ret);
/* The newest import with this idempotency key created at or after `since`;
 * -ENOENT when none. */
int import_find_by_idempotency_key(sqlite3 *db, const char *key, int64_t since,
				   struct import_row *ret);
/* Ids of imports in `state`, oldest first (recovery), fn non-zero stops. */
int import_foreach_in_state(sqlite3 *db, enum import_state state,
			    int (*fn)(const struct import_row *row, void *ctx), void *ctx);

/* The counters and chunk aggregates of one import (bounded: one GROUP BY). */
int import_users_load(sqlite3 *db, const char *id, struct import_users *ret_users,
		      struct import_chunk_agg *ret_agg);

/*
 * The import object of API.md (with jobs[] of the IMPORT_JOBS_MAX most
 * recent jobs when with_jobs). *ret is a new reference. -ENOENT.
 */
int import_json(sqlite3 *db, const char *id, bool with_jobs, int64_t now,
		json_object **ret);

/*
 * GET /v1/imports: newest first, state/external_id filters (NULL = any),
 * cursor = the seq after which to continue (0 = from the newest), at most
 * limit. *ret = {"imports": [...], "next_cursor": "..."|null}.
 */
int import_list_json(sqlite3 *db, const char *state, const char *external_id,
		     int64_t cursor, int limit, int64_t now, json_object **ret);

/*
 * GET /v1/imports/{id}/jobs: the chunks that have an Auth0 job, by chunk
 * number, after `cursor` (a chunk number; -1 = from the start), at most
 * limit. *ret = {"jobs": [...], "next_cursor": "..."|null}. -ENOENT.
 */
int import_jobs_json(sqlite3 *db, const char *id, int64_t cursor, int limit, json_object **ret);

/*
 * Totals over every import, for /metrics (bounded: two GROUP BY queries):
 * ret_by_state[s] = imports in state s; *ret_users = users by outcome,
 * summed the way import_users_derive counts them.
 */
int import_totals_load(sqlite3 *db, int64_t ret_by_state[IMPORT_STATE_COUNT],
		       struct import_users *ret_users);

/* RFC 3339 UTC "2026-11-27T10:00:00Z" into buf (>= 21 bytes). */
void import_format_time(int64_t t, char *buf, size_t len);
