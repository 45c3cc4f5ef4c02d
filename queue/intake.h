/*
 * intake — from a durable spool file to a queued import: read, validate and
 * split the users file in a uv worker thread (never on the loop), then
 * commit the import's outcome, its chunks and their index maps in ONE store
 * transaction.
 *
 * Files of one import, under <state_dir>/imports/<id>/:
 *   upload            the uploaded users file as received (the spool file;
 *                     written by api/upload.c to a temporary name, fsynced,
 *                     renamed here before the import row is committed).
 *   problems.ndjson   one line per user with problems, in file order:
 *                     {"index", "line", "user": {"email", "user_id"},
 *                      "source": "validation", "errors": [problem...],
 *                      "warnings": [problem...]}
 *                     (bounded memory whatever the number of problems).
 *   chunks/chunk-NNNNNN.json   the chunk files (users_process naming).
 *   chunks/index.tmp  the chunks' index maps while validating, read back by
 *                     the commit on the writer thread, then removed.
 * Temporary spool files live in <state_dir>/spool/ (*.part) until renamed.
 *
 * Lifetime: intake_new on the loop thread after the store is open;
 * intake_stop asks running validations to stop (they stay `validating` and
 * are re-validated at the next start) and intake_free runs once they have
 * returned (intake_busy() == false) — run the loop in between.
 *
 * Outcome of one validation (state after the commit):
 *   a bad file (malformed, not an array, empty or "[]", too many users) → rejected
 *       with the problem stored as the import's error;
 *   on_invalid=reject and invalid users → rejected (chunk files removed),
 *       dry run or not;
 *   dry run → validated (no chunk rows, chunk files removed);
 *   otherwise → queued (or straight to completed_with_errors when no user
 *       is valid); an import cancelled meanwhile stays cancelled.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <uv.h>

#include "daemon/users/users.h"
#include "queue/import.h"

struct store;
struct intake;

struct intake_limits {
	uint64_t max_users;   /* max_users_per_import; 0 = none */
	uint64_t chunk_bytes; /* 0 = users_chunk_budget_default() */
	uint64_t spool_retention; /* seconds an ended import keeps its upload and chunk files */
};

/* What a validation came to; valid during the done callback only. */
struct intake_result {
	int status;                      /* 0, or negative errno (users_process or store) */
	enum import_state state;         /* the state committed */
	struct users_summary summary;
	struct users_failure failure;    /* kind != NONE for a bad file */
	/* The first max_errors invalid users' problems (API.md's 422 errors[]
	 * entries: {"index", "path", "code", "message", "hint"?}) and the first
	 * max_errors warnings; borrowed json arrays. */
	json_object *errors;
	json_object *warnings;
	bool truncated;                  /* invalid users beyond max_errors */
};

typedef void (*intake_done_fn)(void *ctx, const struct intake_result *res);

int intake_new(uv_loop_t *loop, struct store *store, const char *state_dir,
	       const struct intake_limits *limits, struct intake **ret);
void intake_set_limits(struct intake *in, const struct intake_limits *limits);
void intake_stop(struct intake *in);
bool intake_busy(const struct intake *in);
void intake_free(struct intake *in);

/*
 * At start, before serving: removes <state_dir>/spool/ *.part (uploads that
 * never completed) and import directories without an import row, then starts
 * the validation again of every import left in `validating`. Runs on the
 * loop (a directory walk at start is allowed: nothing is served yet).
 * Returns the number of imports restarted, or a negative errno.
 */
int intake_recover(struct intake *in);

/*
 * Starts validating import `id` (its row in state validating, its upload
 * durable). done (may be NULL) runs on the loop thread once the outcome is
 * committed. -ENOMEM, -EALREADY (already running), -ESHUTDOWN.
 */
int intake_start(struct intake *in, const char *id, intake_done_fn done, void *ctx);
/* fn(arg) runs on the loop after every validation's outcome is committed
 * (the pipeline starts submitting a queued import at once, not at its next
 * rescan). */
void intake_on_outcome(struct intake *in, void (*fn)(void *arg), void *arg);
/* Forgets the done callback of a running validation (the requester left). */
void intake_detach(struct intake *in, const char *id, void *ctx);

/* Live progress of a running validation: 0, or -ENOENT when not running. */
int intake_progress(const struct intake *in, const char *id, uint64_t *ret_bytes_read,
		    uint64_t *ret_bytes_total, uint64_t *ret_users, uint64_t *ret_invalid);

/*
 * Starts the retention sweep: every min(60 s, spool_retention) a uv worker
 * removes the upload and the chunk files of imports that entered a terminal
 * state more than spool_retention seconds ago (problems.ndjson stays, so
 * /errors keeps answering; /failed-users answers 410 and a retry of such an
 * import is impossible). The timer is closed by intake_stop().
 */
int intake_sweep_start(struct intake *in);

/* Paths of an import's files into buf (-ENAMETOOLONG). */
int intake_import_dir(const char *state_dir, const char *id, char *buf, size_t len);
int intake_upload_path(const char *state_dir, const char *id, char *buf, size_t len);
int intake_problems_path(const char *state_dir, const char *id, char *buf, size_t len);
int intake_spool_dir(const char *state_dir, char *buf, size_t len);

/*
 * Reads the problems file of an import (bounded by max_errors): *ret_errors
 * gets every error problem of the first max_errors invalid users,
 * *ret_warnings the first max_errors warnings, *ret_truncated whether some
 * invalid users were left out. errors_total (invalid users) and
 * warnings_total (warning problems) are the import's totals: reading stops
 * as soon as both lists are as full as they can get, never at the end of
 * the file just to count. A missing file gives empty lists.
 */
int intake_read_problems(const char *problems_path, int64_t max_errors, int64_t errors_total,
			 int64_t warnings_total, json_object **ret_errors,
			 json_object **ret_warnings, bool *ret_truncated);

/*
 * The original indices of the users that were invalid or failed (sorted,
 * without repetition): invalid users from the problems file, users with
 * Auth0 errors, users of failed chunks. Opens its own read-only connection
 * to the store: for a uv worker thread. -ENOENT when the upload is gone.
 */
int intake_failed_indices(const char *state_dir, const char *id, uint32_t **ret, size_t *ret_n);

/* Builds the users_options of an import row's options (and the limits). */
void intake_users_options(const struct import_row *row, const struct intake_limits *limits,
			  struct users_options *ret);
