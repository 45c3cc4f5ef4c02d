/*
 * chunk — one Auth0 import job's worth of valid users, and its state machine.
 *
 * Terms:
 *   chunk       a JSON array file of valid users under the per-job byte
 *               budget, <state_dir>/imports/<import id>/chunks/chunk-NNNNNN.json
 *               (chunk_file_path),
 *               plus its row in `chunks` (queue/schema_imports.h).
 *   chunk_no    0-based, in file order; Auth0's external_id for its job is
 *               "<import id>-<chunk_no>".
 *   indices     for each user of the chunk, in chunk order, its 0-based index
 *               in the uploaded file (uint32); stored as a little-endian BLOB.
 *
 * States and the only legal changes (chunk_set_state_tx refuses the others
 * with -EPERM and ignores a change to the same state, returning 1):
 *
 *     queued     → submitting | cancelled | failed
 *     submitting → submitted | queued (transient error) | failed | cancelled
 *     submitted  → completed | failed
 *     failed     → queued (operator retry, POST /v1/imports/{id}/retry:
 *                  only a chunk failed `retryable`)
 *     completed, cancelled: final
 *
 *   queued      waiting for the scheduler (next_attempt_at, unix ms, says when
 *               it may go; 0 = at once).
 *   submitting  written BEFORE the request leaves (write-ahead); attempts is
 *               incremented on entry. After a crash a chunk found here is
 *               resubmitted (recovery sets `resubmitted`), and its users that
 *               Auth0 answers "already exist"/"updated" count as inserted and
 *               in `assumed`.
 *               submitting → queued: a transient error (5xx, network, 429),
 *               with last_error and next_attempt_at.
 *   submitted   Auth0 accepted it; job_id and submitted_at are set on entry.
 *   completed   the job ended; its summary (inserted/updated/failed/assumed)
 *               is stored on entry, normalised so inserted + updated + failed
 *               == users.
 *   failed      the chunk failed as a whole (permanent error or retries
 *               exhausted, or the Auth0 job failed): all its users count as
 *               failed with CHUNK_FAILED and last_error as the message.
 *               `retryable` (column added by migration 30) is set when the
 *               failure was transient (retries exhausted on 5xx, 429s or
 *               network errors) rather than Auth0 rejecting the chunk: an
 *               operator retry requeues exactly those. failed → queued
 *               resets attempts, next_attempt_at, retryable and completed_at.
 *   cancelled   the import was cancelled before the chunk left; its users
 *               count as not_submitted. submitting → queued of a chunk whose
 *               import is cancelling, cancelled or failed becomes
 *               submitting → cancelled (nothing more is submitted) — except
 *               while cancelling or failed for a chunk flagged
 *               `resubmitted`: its earlier request may have reached Auth0,
 *               so it stays queued and is resubmitted to learn what Auth0
 *               holds (a cancel or an import failure keeps such queued
 *               chunks too).
 *
 * Every state change also re-derives the import's state in the same
 * transaction (import_refresh_tx), so the import never disagrees with its
 * chunks.
 *
 * The *_tx functions run inside a store transaction on the writer thread
 * (they take the raw sqlite3 handle the writer passes to its callback);
 * reads take the loop's read connection. Times: unix seconds, *_ms unix ms.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct sqlite3 sqlite3;

enum chunk_state {
	CHUNK_QUEUED = 0,
	CHUNK_SUBMITTING,
	CHUNK_SUBMITTED,
	CHUNK_COMPLETED,
	CHUNK_FAILED,
	CHUNK_CANCELLED,
	CHUNK_STATE_COUNT,
};

const char *chunk_state_name(enum chunk_state s);
/* 0 and *ret_state, or -EINVAL. */
int chunk_state_from_name(const char *name, enum chunk_state *ret_state);
bool chunk_transition_allowed(enum chunk_state from, enum chunk_state to);
/* submitting or submitted: the request may be at Auth0. */
bool chunk_state_in_flight(enum chunk_state s);

/* What a transition stores beside the state (fields used depend on `to`). */
struct chunk_update {
	const char *job_id;        /* → submitted */
	const char *error;         /* → queued (transient) / → failed: last_error */
	int64_t next_attempt_at_ms; /* → queued */
	int64_t inserted, updated, failed, assumed; /* → completed */
	bool retryable;            /* → failed: transient, a retry may requeue it */
};

/* One chunk row (indices loaded only by chunk_load). */
struct chunk {
	char import_id[32];
	int64_t chunk_no;
	enum chunk_state state;
	int64_t users;
	int64_t bytes;
	char job_id[128];           /* "" when none */
	int64_t attempts;
	int64_t next_attempt_at_ms;
	bool resubmitted;
	int64_t inserted, updated, failed, assumed;
	int64_t submitted_at, completed_at; /* 0 when unset */
	bool errors_fetched;
	uint32_t *indices;          /* users entries, or NULL */
};

/* Frees what chunk_load allocated (indices); the struct itself is the caller's. */
void chunk_done(struct chunk *c);

/*
 * Inserts a new chunk in state queued. indices has `users` entries.
 * Returns 0 or a negative errno (-EEXIST when the number is taken).
 */
int chunk_insert_tx(sqlite3 *db, const char *import_id, int64_t chunk_no,
		    int64_t users, int64_t bytes, const uint32_t *indices, int64_t now);

/*
 * The one function that changes a chunk's state. Returns 0 when changed,
 * 1 when already in `to` (nothing written), -EPERM for an illegal change,
 * -ENOENT for no such chunk, another negative errno for a store error.
 * *ret_from (optional) gets the previous state. Logs "from -> to".
 */
int chunk_set_state_tx(sqlite3 *db, const char *import_id, int64_t chunk_no,
		       enum chunk_state to, const struct chunk_update *upd,
		       int64_t now, enum chunk_state *ret_from);

/* Recovery: flags a chunk found in submitting at start as resubmitted. */
int chunk_mark_resubmitted_tx(sqlite3 *db, const char *import_id, int64_t chunk_no);
/* After its per-user errors are stored (auth0_user_error_add_tx). */
int chunk_mark_errors_fetched_tx(sqlite3 *db, const char *import_id, int64_t chunk_no);

/*
 * Replaces chunk `chunk_no` (queued or submitting) by its first `keep` users
 * and inserts the rest as the new queued chunk `new_no` (a 413 from Auth0);
 * -EEXIST if that number is taken. The caller hands out new numbers from one
 * place (chunk_next_no once, then counting) and writes the rest's file under
 * `new_no` and the kept users' file as "<chunk file>.split" first, both
 * durable; after the commit it renames the .split file into place
 * (chunk_split_settle completes that rename after a crash).
 */
int chunk_split_tx(sqlite3 *db, const char *import_id, int64_t chunk_no, int64_t new_no,
		   int64_t keep, int64_t keep_bytes, int64_t rest_bytes, int64_t now);

/* The first chunk number the import does not use yet (max + 1, 0 if none). */
int chunk_next_no(sqlite3 *db, const char *import_id, int64_t *ret_no);

/*
 * After a crash during a split: `chunk_path` is a chunk's file, `store_bytes`
 * the chunk's size as the store has it. A "<chunk_path>.split" file left over
 * is renamed into place when the store already has the split (its size is the
 * store's), removed otherwise; the directory is fsynced. Returns 1 when
 * renamed, 0 when there was nothing to do or it was removed, negative errno.
 * Blocking: at start or in a worker.
 */
int chunk_split_settle(const char *chunk_path, int64_t store_bytes);

/* Stores Auth0's errors for one user (original index `idx`); errors_json is
 * a JSON array of problems. A second call for the same user replaces it.
 * Only users counted as failed belong here: a resubmitted chunk's "already
 * exists" answers that count as inserted (assumed) are not stored. Users of
 * a chunk that failed as a whole need no row: /errors and /failed-users
 * derive their CHUNK_FAILED entries from the chunk's state and last_error. */
int auth0_user_error_add_tx(sqlite3 *db, const char *import_id, int64_t chunk_no,
			    int64_t idx, const char *email, const char *user_id,
			    const char *errors_json);

/*
 * Reads a page of Auth0 per-user errors of an import with idx > after_idx,
 * by idx, at most limit rows; fn's non-zero return stops and is returned.
 * Returns the number of rows read.
 */
int auth0_user_errors_page(sqlite3 *db, const char *import_id, int64_t after_idx, int limit,
			   int (*fn)(void *ctx, int64_t idx, const char *email, const char *user_id,
				     const char *errors_json),
			   void *ctx);

/* The first failed chunk numbered above after_no, with its indices, and its
 * last_error (malloc'd, may be NULL) in *ret_error. -ENOENT when none. */
int chunk_next_failed(sqlite3 *db, const char *import_id, int64_t after_no, struct chunk *ret,
		      char **ret_error);

/* Reads one chunk, with its indices. -ENOENT when absent. */
int chunk_load(sqlite3 *db, const char *import_id, int64_t chunk_no, struct chunk *ret);

/*
 * Calls fn for every chunk in `state` (without indices), oldest import first,
 * then by chunk number, at most `limit` of them (limit <= 0: no limit). fn
 * returning non-zero stops the walk and is returned.
 */
int chunk_foreach_in_state(sqlite3 *db, enum chunk_state state, int limit,
			   int (*fn)(const struct chunk *c, void *ctx), void *ctx);

/* "<state_dir>/imports/<id>/chunks/chunk-%06u.json" (users_chunk_path's
 * naming) into buf; -ENAMETOOLONG. */
int chunk_file_path(const char *state_dir, const char *import_id, int64_t chunk_no,
		    char *buf, size_t len);
