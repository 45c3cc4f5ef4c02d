/* The import/chunk state machines and counter derivation, on a temporary
 * database carrying the imports migration. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <sqlite3.h>

#include "daemon/config.h"
#include "queue/chunk.h"
#include "queue/import.h"
#include "queue/notifier.h"
#include "queue/schema_imports.h"
#include "queue/store.h"

static sqlite3 *db_new(void)
{
	sqlite3 *db = NULL;
	assert_int_equal(sqlite3_open(":memory:", &db), SQLITE_OK);
	assert_int_equal(sqlite3_exec(db, "PRAGMA foreign_keys = ON;", NULL, NULL, NULL), SQLITE_OK);
	/* Every migration of the import model and after (retryable, notifications). */
	for (size_t i = 0; i < store_n_migrations; i++)
		if (store_migrations[i].version >= 10 && store_migrations[i].sql)
			assert_int_equal(sqlite3_exec(db, store_migrations[i].sql, NULL, NULL, NULL), SQLITE_OK);
	return db;
}

static struct import_options opts_default(void)
{
	struct import_options o = {
		.tenant = "default", .connection_id = "con_A1b2C3d4E5f6G7h8",
		.on_invalid = "skip", .unsupported_hash = "reject", .strip_auth0_prefix = -1,
		.max_errors = 1000,
	};
	return o;
}

static void check_invariant(sqlite3 *db, const char *id, struct import_users *ret)
{
	struct import_users u;
	assert_int_equal(import_users_load(db, id, &u, NULL), 0);
	assert_int_equal(u.total, u.invalid + u.inserted + u.updated + u.failed + u.pending + u.not_submitted);
	assert_true(u.assumed <= u.inserted);
	if (ret)
		*ret = u;
}

static enum import_state state_of(sqlite3 *db, const char *id)
{
	struct import_row row;
	assert_int_equal(import_load(db, id, &row), 0);
	return row.state;
}

/* An import of `n_chunks` chunks of 10 users each, 3 invalid users, queued. */
static void make_queued(sqlite3 *db, const char *id, int n_chunks)
{
	struct import_options o = opts_default();
	assert_int_equal(import_insert_tx(db, id, &o, NULL, NULL, 1000, 100), 0);
	uint32_t idx[10];
	for (int c = 0; c < n_chunks; c++) {
		for (int i = 0; i < 10; i++)
			idx[i] = (uint32_t)(c * 11 + i);
		assert_int_equal(chunk_insert_tx(db, id, c, 10, 500, idx, 100), 0);
	}
	assert_int_equal(import_finish_validation_tx(db, id, IMPORT_QUEUED, 10 * n_chunks + 3, 3, 2, NULL, 101), 0);
}

static void test_transition_tables(void **state)
{
	(void)state;
	assert_true(chunk_transition_allowed(CHUNK_QUEUED, CHUNK_SUBMITTING));
	assert_true(chunk_transition_allowed(CHUNK_SUBMITTING, CHUNK_QUEUED));
	assert_true(chunk_transition_allowed(CHUNK_SUBMITTED, CHUNK_COMPLETED));
	assert_true(chunk_transition_allowed(CHUNK_FAILED, CHUNK_QUEUED));
	assert_false(chunk_transition_allowed(CHUNK_QUEUED, CHUNK_COMPLETED));
	assert_false(chunk_transition_allowed(CHUNK_SUBMITTED, CHUNK_QUEUED));
	assert_false(chunk_transition_allowed(CHUNK_COMPLETED, CHUNK_QUEUED));
	assert_false(chunk_transition_allowed(CHUNK_CANCELLED, CHUNK_QUEUED));

	assert_true(import_transition_allowed(IMPORT_VALIDATING, IMPORT_QUEUED));
	assert_true(import_transition_allowed(IMPORT_FAILED, IMPORT_QUEUED));
	assert_false(import_transition_allowed(IMPORT_COMPLETED, IMPORT_QUEUED));
	assert_false(import_transition_allowed(IMPORT_REJECTED, IMPORT_QUEUED));
	assert_false(import_transition_allowed(IMPORT_QUEUED, IMPORT_VALIDATING));
	assert_true(import_state_terminal(IMPORT_VALIDATED));
	assert_false(import_state_terminal(IMPORT_CANCELLING));

	for (int s = 0; s < IMPORT_STATE_COUNT; s++) {
		enum import_state back;
		assert_int_equal(import_state_from_name(import_state_name((enum import_state)s), &back), 0);
		assert_int_equal(back, s);
	}
	enum chunk_state cs;
	assert_int_equal(chunk_state_from_name("bogus", &cs), -EINVAL);
}

static void test_derive_pure(void **state)
{
	(void)state;
	struct import_chunk_agg agg = { 0 };
	struct import_users u;

	/* validating: counts so far, valid ones pending */
	import_users_derive(IMPORT_VALIDATING, 50, 5, &agg, &u);
	assert_int_equal(u.pending, 45);

	/* rejected: valid users were never submitted */
	import_users_derive(IMPORT_REJECTED, 50, 5, &agg, &u);
	assert_int_equal(u.not_submitted, 45);
	assert_int_equal(u.pending, 0);

	agg.count[CHUNK_QUEUED] = 2;
	agg.users[CHUNK_QUEUED] = 20;
	agg.count[CHUNK_COMPLETED] = 1;
	agg.users[CHUNK_COMPLETED] = 10;
	agg.inserted = 8;
	agg.updated = 1;
	agg.failed = 1;
	agg.count[CHUNK_FAILED] = 1;
	agg.users[CHUNK_FAILED] = 10;
	import_users_derive(IMPORT_RUNNING, 43, 3, &agg, &u);
	assert_int_equal(u.pending, 20);
	assert_int_equal(u.failed, 11);
	assert_int_equal(u.total, u.invalid + u.inserted + u.updated + u.failed + u.pending + u.not_submitted);
	assert_int_equal(import_state_derive(IMPORT_RUNNING, false, &agg, &u), IMPORT_RUNNING);
	/* A queued import with ended chunks is one an operator retried: it
	 * stays queued until a requeued chunk leaves. */
	assert_int_equal(import_state_derive(IMPORT_QUEUED, false, &agg, &u), IMPORT_QUEUED);
	agg.count[CHUNK_SUBMITTING] = 1;
	assert_int_equal(import_state_derive(IMPORT_QUEUED, false, &agg, &u), IMPORT_RUNNING);
	agg.count[CHUNK_SUBMITTING] = 0;

	agg.count[CHUNK_QUEUED] = 0;
	agg.users[CHUNK_QUEUED] = 0;
	import_users_derive(IMPORT_RUNNING, 23, 3, &agg, &u);
	assert_int_equal(import_state_derive(IMPORT_RUNNING, false, &agg, &u), IMPORT_COMPLETED_WITH_ERRORS);

	struct import_chunk_agg all_failed = { 0 };
	all_failed.count[CHUNK_FAILED] = 3;
	all_failed.users[CHUNK_FAILED] = 30;
	import_users_derive(IMPORT_RUNNING, 30, 0, &all_failed, &u);
	assert_int_equal(import_state_derive(IMPORT_RUNNING, false, &all_failed, &u), IMPORT_FAILED);

	struct import_chunk_agg all_ok = { 0 };
	all_ok.count[CHUNK_COMPLETED] = 1;
	all_ok.users[CHUNK_COMPLETED] = 10;
	all_ok.inserted = 10;
	import_users_derive(IMPORT_RUNNING, 10, 0, &all_ok, &u);
	assert_int_equal(import_state_derive(IMPORT_RUNNING, false, &all_ok, &u), IMPORT_COMPLETED);
	/* a cancelling import waits for its in-flight chunks */
	all_ok.count[CHUNK_SUBMITTED] = 1;
	all_ok.users[CHUNK_SUBMITTED] = 10;
	assert_int_equal(import_state_derive(IMPORT_CANCELLING, false, &all_ok, &u), IMPORT_CANCELLING);
}

static void test_chunk_lifecycle(void **state)
{
	(void)state;
	sqlite3 *db = db_new();
	const char *id = "imp_0000000000000001";
	struct import_users u;
	enum chunk_state from;

	make_queued(db, id, 3);
	assert_int_equal(state_of(db, id), IMPORT_QUEUED);
	check_invariant(db, id, &u);
	assert_int_equal(u.pending, 30);
	assert_int_equal(u.invalid, 3);

	/* illegal and same-state changes */
	assert_int_equal(chunk_set_state_tx(db, id, 0, CHUNK_COMPLETED, NULL, 200, NULL), -EPERM);
	assert_int_equal(chunk_set_state_tx(db, id, 0, CHUNK_QUEUED, NULL, 200, &from), 1);
	assert_int_equal(from, CHUNK_QUEUED);
	assert_int_equal(chunk_set_state_tx(db, id, 9, CHUNK_SUBMITTING, NULL, 200, NULL), -ENOENT);

	assert_int_equal(chunk_set_state_tx(db, id, 0, CHUNK_SUBMITTING, NULL, 200, &from), 0);
	assert_int_equal(state_of(db, id), IMPORT_RUNNING);
	/* transient error: back to queued with a retry time */
	struct chunk_update again = { .error = "503 from Auth0", .next_attempt_at_ms = 205000 };
	assert_int_equal(chunk_set_state_tx(db, id, 0, CHUNK_QUEUED, &again, 201, NULL), 0);
	assert_int_equal(chunk_set_state_tx(db, id, 0, CHUNK_SUBMITTING, NULL, 206, NULL), 0);
	struct chunk_update sub = { .job_id = "job_abc" };
	assert_int_equal(chunk_set_state_tx(db, id, 0, CHUNK_SUBMITTED, &sub, 207, NULL), 0);
	struct chunk c;
	assert_int_equal(chunk_load(db, id, 0, &c), 0);
	assert_int_equal(c.attempts, 2);
	assert_string_equal(c.job_id, "job_abc");
	assert_int_equal(c.next_attempt_at_ms, 205000);
	assert_int_equal(c.users, 10);
	assert_int_equal(c.indices[0], 0);
	assert_int_equal(c.indices[9], 9);
	chunk_done(&c);

	/* summary short of the users: the rest counts as failed */
	struct chunk_update done = { .inserted = 7, .updated = 1, .failed = 0, .assumed = 9 };
	assert_int_equal(chunk_set_state_tx(db, id, 0, CHUNK_COMPLETED, &done, 300, NULL), 0);
	check_invariant(db, id, &u);
	assert_int_equal(u.inserted, 7);
	assert_int_equal(u.updated, 1);
	assert_int_equal(u.failed, 2);
	assert_int_equal(u.assumed, 7);
	assert_int_equal(u.pending, 20);

	assert_int_equal(chunk_set_state_tx(db, id, 1, CHUNK_SUBMITTING, NULL, 301, NULL), 0);
	struct chunk_update perm = { .error = "400 bad chunk" };
	assert_int_equal(chunk_set_state_tx(db, id, 1, CHUNK_FAILED, &perm, 302, NULL), 0);
	check_invariant(db, id, &u);
	assert_int_equal(u.failed, 12);

	/* split chunk 2 (a 413) before it completes */
	int64_t new_no = -1;
	assert_int_equal(chunk_set_state_tx(db, id, 2, CHUNK_SUBMITTING, NULL, 303, NULL), 0);
	assert_int_equal(chunk_next_no(db, id, &new_no), 0);
	assert_int_equal(new_no, 3);
	/* a number already taken is refused, nothing changes */
	assert_int_equal(chunk_split_tx(db, id, 2, 1, 5, 250, 250, 304), -EEXIST);
	assert_int_equal(chunk_split_tx(db, id, 2, new_no, 5, 250, 250, 304), 0);
	assert_int_equal(chunk_load(db, id, 3, &c), 0);
	assert_int_equal(c.users, 5);
	assert_int_equal(c.indices[0], 27);
	assert_int_equal(c.state, CHUNK_QUEUED);
	chunk_done(&c);
	check_invariant(db, id, &u);
	assert_int_equal(u.pending, 10);

	for (int no = 2; no <= 3; no++) {
		struct chunk_update s = { .job_id = no == 2 ? "job_2" : "job_3" };
		struct chunk_update ok = { .inserted = 5 };
		assert_int_equal(chunk_set_state_tx(db, id, no, CHUNK_SUBMITTING, NULL, 305, NULL), 0); /* a split chunk is queued again */
		assert_int_equal(chunk_set_state_tx(db, id, no, CHUNK_SUBMITTED, &s, 306, NULL), 0);
		assert_int_equal(chunk_set_state_tx(db, id, no, CHUNK_COMPLETED, &ok, 307, NULL), 0);
	}
	check_invariant(db, id, &u);
	assert_int_equal(u.pending, 0);
	assert_int_equal(state_of(db, id), IMPORT_COMPLETED_WITH_ERRORS);

	/* retry of the failed chunk brings the import back */
	assert_int_equal(chunk_set_state_tx(db, id, 1, CHUNK_QUEUED, NULL, 400, NULL), 0);
	assert_int_equal(state_of(db, id), IMPORT_RUNNING);

	assert_int_equal(auth0_user_error_add_tx(db, id, 0, 4, "a@example.com", NULL,
						 "[{\"code\":\"DUPLICATED_USER\"}]"), 0);
	assert_int_equal(chunk_mark_errors_fetched_tx(db, id, 0), 0);
	assert_int_equal(chunk_mark_resubmitted_tx(db, id, 1), 0);
	sqlite3_close(db);
}

static void test_cancel_and_fail(void **state)
{
	(void)state;
	sqlite3 *db = db_new();
	const char *a = "imp_000000000000000a", *b = "imp_000000000000000b", *c = "imp_000000000000000c";
	enum import_state st;
	struct import_users u;

	/* only queued chunks: straight to cancelled */
	make_queued(db, a, 2);
	assert_int_equal(import_cancel_tx(db, a, 200, &st), 0);
	assert_int_equal(st, IMPORT_CANCELLED);
	check_invariant(db, a, &u);
	assert_int_equal(u.not_submitted, 20);
	assert_int_equal(import_cancel_tx(db, a, 201, &st), 1);

	/* a transient error while cancelling: the chunk is cancelled, not retried */
	{
		const char *e = "imp_000000000000000e";
		make_queued(db, e, 1);
		assert_int_equal(chunk_set_state_tx(db, e, 0, CHUNK_SUBMITTING, NULL, 200, NULL), 0);
		assert_int_equal(import_cancel_tx(db, e, 201, &st), 0);
		assert_int_equal(st, IMPORT_CANCELLING);
		struct chunk_update again = { .error = "503", .next_attempt_at_ms = 1 };
		assert_int_equal(chunk_set_state_tx(db, e, 0, CHUNK_QUEUED, &again, 202, NULL), 0);
		assert_int_equal(state_of(db, e), IMPORT_CANCELLED);
		check_invariant(db, e, &u);
		assert_int_equal(u.not_submitted, 10);
		assert_int_equal(u.pending, 0);
	}

	/* a job in flight: cancelling until it ends */
	make_queued(db, b, 2);
	assert_int_equal(chunk_set_state_tx(db, b, 0, CHUNK_SUBMITTING, NULL, 200, NULL), 0);
	assert_int_equal(import_cancel_tx(db, b, 201, &st), 0);
	assert_int_equal(st, IMPORT_CANCELLING);
	check_invariant(db, b, &u);
	assert_int_equal(u.pending, 10);
	assert_int_equal(u.not_submitted, 10);
	struct chunk_update sub = { .job_id = "job_b" }, ok = { .inserted = 10 };
	assert_int_equal(chunk_set_state_tx(db, b, 0, CHUNK_SUBMITTED, &sub, 202, NULL), 0);
	assert_int_equal(state_of(db, b), IMPORT_CANCELLING);
	assert_int_equal(chunk_set_state_tx(db, b, 0, CHUNK_COMPLETED, &ok, 203, NULL), 0);
	assert_int_equal(state_of(db, b), IMPORT_CANCELLED);
	check_invariant(db, b, &u);
	assert_int_equal(u.inserted, 10);

	/* import-wide failure */
	make_queued(db, c, 2);
	assert_int_equal(import_fail_tx(db, c, "{\"title\":\"unknown connection\"}", 200), 0);
	assert_int_equal(state_of(db, c), IMPORT_FAILED);
	check_invariant(db, c, &u);
	assert_int_equal(u.not_submitted, 20);
	assert_int_equal(import_cancel_tx(db, c, 201, &st), -EPERM);
	assert_int_equal(import_set_state_tx(db, c, IMPORT_VALIDATING, 202, NULL), -EPERM);
	assert_int_equal(import_cancel_tx(db, "imp_nope", 201, &st), -ENOENT);
	sqlite3_close(db);
}

/* A chunk whose request may have reached Auth0 (flagged resubmitted) is
 * neither cancelled by a cancel or an import failure nor turned into a
 * cancellation by its retry: it stays queued to be resubmitted, and a
 * cancelling import waits for it. */
static void test_unknown_fate_survives_stop(void **state)
{
	(void)state;
	sqlite3 *db = db_new();
	const char *f = "imp_000000000000000f", *g = "imp_0000000000000010", *h = "imp_0000000000000011";
	enum import_state st;
	struct import_users u;
	struct chunk_update again = { .error = "connection reset", .next_attempt_at_ms = 1 };

	/* lost answer, then DELETE during the backoff */
	make_queued(db, f, 2);
	assert_int_equal(chunk_set_state_tx(db, f, 0, CHUNK_SUBMITTING, NULL, 200, NULL), 0);
	assert_int_equal(chunk_mark_resubmitted_tx(db, f, 0), 0);
	assert_int_equal(chunk_set_state_tx(db, f, 0, CHUNK_QUEUED, &again, 201, NULL), 0);
	assert_int_equal(import_cancel_tx(db, f, 202, &st), 0);
	assert_int_equal(st, IMPORT_CANCELLING);
	check_invariant(db, f, &u);
	assert_int_equal(u.pending, 10);
	assert_int_equal(u.not_submitted, 10);
	struct chunk_update sub = { .job_id = "job_f" }, dup = { .inserted = 10, .assumed = 10 };
	assert_int_equal(chunk_set_state_tx(db, f, 0, CHUNK_SUBMITTING, NULL, 203, NULL), 0);
	assert_int_equal(chunk_set_state_tx(db, f, 0, CHUNK_SUBMITTED, &sub, 204, NULL), 0);
	assert_int_equal(chunk_set_state_tx(db, f, 0, CHUNK_COMPLETED, &dup, 205, NULL), 0);
	assert_int_equal(state_of(db, f), IMPORT_CANCELLED);
	check_invariant(db, f, &u);
	assert_int_equal(u.inserted, 10);
	assert_int_equal(u.assumed, 10);

	/* DELETE while in flight, then the answer is lost: stays queued */
	make_queued(db, g, 1);
	assert_int_equal(chunk_set_state_tx(db, g, 0, CHUNK_SUBMITTING, NULL, 200, NULL), 0);
	assert_int_equal(import_cancel_tx(db, g, 201, &st), 0);
	assert_int_equal(chunk_mark_resubmitted_tx(db, g, 0), 0);
	assert_int_equal(chunk_set_state_tx(db, g, 0, CHUNK_QUEUED, &again, 202, NULL), 0);
	assert_int_equal(state_of(db, g), IMPORT_CANCELLING);
	check_invariant(db, g, &u);
	assert_int_equal(u.pending, 10);

	/* an import-wide failure keeps it too; the resubmission settles it */
	make_queued(db, h, 2);
	assert_int_equal(chunk_set_state_tx(db, h, 1, CHUNK_SUBMITTING, NULL, 200, NULL), 0);
	assert_int_equal(chunk_mark_resubmitted_tx(db, h, 1), 0);
	assert_int_equal(chunk_set_state_tx(db, h, 1, CHUNK_QUEUED, &again, 201, NULL), 0);
	assert_int_equal(import_fail_tx(db, h, "{\"title\":\"Invalid token.\"}", 202), 0);
	assert_int_equal(state_of(db, h), IMPORT_FAILED);
	check_invariant(db, h, &u);
	assert_int_equal(u.not_submitted, 10);
	assert_int_equal(u.pending, 10);
	struct chunk_update refused = { .error = "Invalid token." };
	assert_int_equal(chunk_set_state_tx(db, h, 1, CHUNK_SUBMITTING, NULL, 203, NULL), 0);
	assert_int_equal(chunk_set_state_tx(db, h, 1, CHUNK_FAILED, &refused, 204, NULL), 0);
	assert_int_equal(state_of(db, h), IMPORT_FAILED);
	check_invariant(db, h, &u);
	assert_int_equal(u.pending, 0);
	assert_int_equal(u.failed, 10);
	sqlite3_close(db);
}

static void test_rejected_and_empty(void **state)
{
	(void)state;
	sqlite3 *db = db_new();
	struct import_options o = opts_default();
	struct import_users u;

	assert_int_equal(import_insert_tx(db, "imp_r", &o, "key1", "abc", 10, 100), 0);
	assert_int_equal(import_progress_tx(db, "imp_r", 5, 4, 1, 101), 0);
	check_invariant(db, "imp_r", &u);
	assert_int_equal(u.total, 4);
	assert_int_equal(u.pending, 3);
	assert_int_equal(import_finish_validation_tx(db, "imp_r", IMPORT_REJECTED, 8, 2, 0, NULL, 102), 0);
	check_invariant(db, "imp_r", &u);
	assert_int_equal(u.not_submitted, 6);

	/* every user invalid and skipped: nothing to run, completed_with_errors */
	assert_int_equal(import_insert_tx(db, "imp_s", &o, NULL, NULL, 10, 100), 0);
	assert_int_equal(import_finish_validation_tx(db, "imp_s", IMPORT_QUEUED, 5, 5, 0, NULL, 102), 0);
	assert_int_equal(state_of(db, "imp_s"), IMPORT_COMPLETED_WITH_ERRORS);

	struct import_row row;
	assert_int_equal(import_find_by_idempotency_key(db, "key1", 0, &row), 0);
	assert_string_equal(row.id, "imp_r");
	assert_string_equal(row.body_sha256, "abc");
	assert_int_equal(import_find_by_idempotency_key(db, "key1", 101, &row), -ENOENT);
	sqlite3_close(db);
}

static void test_json(void **state)
{
	(void)state;
	sqlite3 *db = db_new();
	char id[IMPORT_ID_LEN + 1];
	json_object *o = NULL;

	assert_int_equal(import_id_generate(id), 0);
	assert_int_equal(strlen(id), 20);
	assert_memory_equal(id, "imp_", 4);
	make_queued(db, id, 2);
	struct chunk_update sub = { .job_id = "job_x" }, ok = { .inserted = 10 };
	assert_int_equal(chunk_set_state_tx(db, id, 0, CHUNK_SUBMITTING, NULL, 200, NULL), 0);
	assert_int_equal(chunk_set_state_tx(db, id, 0, CHUNK_SUBMITTED, &sub, 200, NULL), 0);
	assert_int_equal(chunk_set_state_tx(db, id, 0, CHUNK_COMPLETED, &ok, 210, NULL), 0);

	assert_int_equal(import_json(db, id, true, 220, &o), 0);
	assert_string_equal(json_object_get_string(json_object_object_get(o, "state")), "running");
	json_object *users = json_object_object_get(o, "users");
	assert_int_equal(json_object_get_int64(json_object_object_get(users, "total")), 23);
	assert_int_equal(json_object_get_int64(json_object_object_get(users, "inserted")), 10);
	assert_int_equal(json_object_get_int64(json_object_object_get(users, "pending")), 10);
	json_object *chunks = json_object_object_get(o, "chunks");
	assert_int_equal(json_object_get_int64(json_object_object_get(chunks, "total")), 2);
	assert_int_equal(json_object_get_int64(json_object_object_get(chunks, "completed")), 1);
	json_object *jobs = json_object_object_get(o, "jobs");
	assert_int_equal(json_object_array_length(jobs), 1);
	json_object *job = json_object_array_get_idx(jobs, 0);
	assert_string_equal(json_object_get_string(json_object_object_get(job, "job_id")), "job_x");
	assert_string_equal(json_object_get_string(json_object_object_get(job, "status")), "completed");
	assert_int_equal(json_object_get_int64(json_object_object_get(o, "warnings_total")), 2);
	/* 10 users in the 20 s since the first submission, 10 pending: 20 s left */
	assert_int_equal(json_object_get_int64(json_object_object_get(o, "eta_seconds")), 20);
	assert_string_equal(json_object_get_string(json_object_object_get(o, "created_at")), "1970-01-01T00:01:40Z");
	json_object_put(o);

	/* every job, paged by chunk number */
	assert_int_equal(chunk_set_state_tx(db, id, 1, CHUNK_SUBMITTING, NULL, 211, NULL), 0);
	struct chunk_update sub1 = { .job_id = "job_y" };
	assert_int_equal(chunk_set_state_tx(db, id, 1, CHUNK_SUBMITTED, &sub1, 212, NULL), 0);
	assert_int_equal(import_jobs_json(db, id, -1, 1, &o), 0);
	json_object *jarr = json_object_object_get(o, "jobs");
	assert_int_equal(json_object_array_length(jarr), 1);
	assert_string_equal(json_object_get_string(json_object_object_get(json_object_array_get_idx(jarr, 0), "job_id")), "job_x");
	assert_string_equal(json_object_get_string(json_object_object_get(o, "next_cursor")), "0");
	json_object_put(o);
	assert_int_equal(import_jobs_json(db, id, 0, 1, &o), 0);
	jarr = json_object_object_get(o, "jobs");
	assert_string_equal(json_object_get_string(json_object_object_get(json_object_array_get_idx(jarr, 0), "status")), "pending");
	assert_null(json_object_object_get(o, "next_cursor"));
	json_object_put(o);
	assert_int_equal(import_jobs_json(db, "imp_missing", -1, 10, &o), -ENOENT);

	/* list paging, newest first */
	char ids[5][IMPORT_ID_LEN + 1];
	for (int i = 0; i < 5; i++) {
		snprintf(ids[i], sizeof(ids[i]), "imp_%016d", i);
		make_queued(db, ids[i], 1);
	}
	assert_int_equal(import_list_json(db, NULL, NULL, 0, 4, 300, &o), 0);
	json_object *arr = json_object_object_get(o, "imports");
	assert_int_equal(json_object_array_length(arr), 4);
	assert_string_equal(json_object_get_string(json_object_object_get(json_object_array_get_idx(arr, 0), "id")), ids[4]);
	assert_null(json_object_object_get(json_object_array_get_idx(arr, 0), "jobs"));
	const char *cur = json_object_get_string(json_object_object_get(o, "next_cursor"));
	assert_non_null(cur);
	int64_t cursor = strtoll(cur, NULL, 10);
	json_object_put(o);
	assert_int_equal(import_list_json(db, NULL, NULL, cursor, 4, 300, &o), 0);
	arr = json_object_object_get(o, "imports");
	assert_int_equal(json_object_array_length(arr), 2);
	assert_null(json_object_object_get(o, "next_cursor"));
	json_object_put(o);
	assert_int_equal(import_list_json(db, "running", NULL, 0, 50, 300, &o), 0);
	assert_int_equal(json_object_array_length(json_object_object_get(o, "imports")), 1);
	json_object_put(o);
	assert_int_equal(import_json(db, "imp_missing", true, 0, &o), -ENOENT);
	sqlite3_close(db);
}

static int64_t count_rows(sqlite3 *db, const char *sql, const char *id)
{
	sqlite3_stmt *st = NULL;
	assert_int_equal(sqlite3_prepare_v2(db, sql, -1, &st, NULL), SQLITE_OK);
	sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
	assert_int_equal(sqlite3_step(st), SQLITE_ROW);
	int64_t n = sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	return n;
}

/* POST /retry: only chunks failed for a transient reason go back, the
 * import to queued; every entry into a terminal state queues a
 * notification when the import has a notify_url. */
static void test_retry_and_notifications(void **state)
{
	(void)state;
	sqlite3 *db = db_new();
	const char *id = "imp_00000000000000f1", *plain = "imp_00000000000000f2";
	struct import_options o = opts_default();
	o.notify_url = "http://127.0.0.1:9/hook";
	assert_int_equal(import_insert_tx(db, id, &o, NULL, NULL, 1000, 100), 0);
	uint32_t idx[10];
	for (int c = 0; c < 3; c++) {
		for (int i = 0; i < 10; i++)
			idx[i] = (uint32_t)(c * 10 + i);
		assert_int_equal(chunk_insert_tx(db, id, c, 10, 500, idx, 100), 0);
	}
	assert_int_equal(import_finish_validation_tx(db, id, IMPORT_QUEUED, 30, 0, 0, NULL, 101), 0);
	const char *notes = "SELECT count(*) FROM notifications WHERE import_id = ?1";
	assert_int_equal(count_rows(db, notes, id), 0);
	/* nothing failed yet: not retryable */
	assert_int_equal(import_retry_tx(db, id, 150, NULL, NULL), -EPERM);

	struct chunk_update ok = { .job_id = "job_0", .inserted = 10 };
	struct chunk_update transient = { .error = "gave up after 5 attempts: HTTP 503", .retryable = true };
	struct chunk_update rejected = { .error = "Auth0 rejected the file" };
	for (int c = 0; c < 3; c++)
		assert_int_equal(chunk_set_state_tx(db, id, c, CHUNK_SUBMITTING, NULL, 200, NULL), 0);
	assert_int_equal(chunk_set_state_tx(db, id, 0, CHUNK_SUBMITTED, &ok, 201, NULL), 0);
	assert_int_equal(chunk_set_state_tx(db, id, 0, CHUNK_COMPLETED, &ok, 202, NULL), 0);
	assert_int_equal(chunk_set_state_tx(db, id, 1, CHUNK_FAILED, &transient, 203, NULL), 0);
	assert_int_equal(chunk_set_state_tx(db, id, 2, CHUNK_FAILED, &rejected, 204, NULL), 0);
	assert_int_equal(state_of(db, id), IMPORT_COMPLETED_WITH_ERRORS);
	assert_int_equal(count_rows(db, notes, id), 1);

	int64_t nchunks = 0, nusers = 0;
	assert_int_equal(import_retry_tx(db, id, 300, &nchunks, &nusers), 0);
	assert_int_equal(nchunks, 1);
	assert_int_equal(nusers, 10);
	assert_int_equal(state_of(db, id), IMPORT_QUEUED);
	struct import_users u;
	check_invariant(db, id, &u);
	assert_int_equal(u.pending, 10);
	assert_int_equal(u.failed, 10);
	assert_int_equal(u.inserted, 10);
	struct chunk c;
	assert_int_equal(chunk_load(db, id, 1, &c), 0);
	assert_int_equal(c.state, CHUNK_QUEUED);
	assert_int_equal(c.attempts, 0);
	assert_int_equal(c.next_attempt_at_ms, 0);
	chunk_done(&c);
	assert_int_equal(chunk_load(db, id, 2, &c), 0);
	assert_int_equal(c.state, CHUNK_FAILED);
	chunk_done(&c);
	struct import_row row;
	assert_int_equal(import_load(db, id, &row), 0);
	assert_int_equal(row.finished_at, 0);
	/* queued: not again */
	assert_int_equal(import_retry_tx(db, id, 301, NULL, NULL), -EPERM);

	/* it runs again and fails for good this time: a second notification,
	 * and nothing left to retry */
	assert_int_equal(chunk_set_state_tx(db, id, 1, CHUNK_SUBMITTING, NULL, 400, NULL), 0);
	assert_int_equal(state_of(db, id), IMPORT_RUNNING);
	assert_int_equal(chunk_set_state_tx(db, id, 1, CHUNK_FAILED, &rejected, 401, NULL), 0);
	assert_int_equal(state_of(db, id), IMPORT_COMPLETED_WITH_ERRORS);
	assert_int_equal(count_rows(db, notes, id), 2);
	assert_int_equal(import_retry_tx(db, id, 402, NULL, NULL), -ENODATA);
	assert_int_equal(state_of(db, id), IMPORT_COMPLETED_WITH_ERRORS);
	assert_int_equal(count_rows(db, "SELECT count(*) FROM notifications WHERE import_id = ?1 "
					"AND state = 'completed_with_errors' AND url = 'http://127.0.0.1:9/hook'", id), 2);

	/* an import-wide failure is not retried */
	make_queued(db, plain, 1);
	assert_int_equal(import_fail_tx(db, plain, "{\"title\":\"unknown connection\"}", 500), 0);
	assert_int_equal(import_retry_tx(db, plain, 501, NULL, NULL), -EPERM);
	/* no notify_url: no notification */
	assert_int_equal(count_rows(db, notes, plain), 0);
	assert_int_equal(import_retry_tx(db, "imp_missing", 502, NULL, NULL), -ENOENT);
	sqlite3_close(db);
}

static void test_notify_url_hosts(void **state)
{
	(void)state;
	assert_true(notifier_url_allowed(NULL, "http://127.0.0.1:8080/hook"));
	assert_true(notifier_url_allowed(NULL, "http://localhost/x?y=1"));
	assert_true(notifier_url_allowed(NULL, "https://[::1]:9/x"));
	assert_true(notifier_url_allowed(NULL, "http://127.1.2.3/"));
	assert_false(notifier_url_allowed(NULL, "http://example.com/hook"));
	assert_false(notifier_url_allowed(NULL, "ftp://127.0.0.1/hook"));
	assert_false(notifier_url_allowed(NULL, "127.0.0.1/hook"));
	/* the host curl would connect to is the one checked */
	assert_false(notifier_url_allowed(NULL, "http://127.0.0.1:80@example.com/"));
	assert_false(notifier_url_allowed(NULL, "http://user:pw@127.0.0.1/"));
	assert_false(notifier_url_allowed(NULL, "http://127.0.0.1/a b"));
	assert_false(notifier_url_allowed(NULL, ""));
	/* a list replaces the loopback default */
	struct config cfg;
	memset(&cfg, 0, sizeof(cfg));
	char *hosts[] = { "hooks.example.com" };
	cfg.notify_allowed_hosts = hosts;
	cfg.n_notify_allowed_hosts = 1;
	assert_true(notifier_url_allowed(&cfg, "https://HOOKS.example.com/x"));
	assert_false(notifier_url_allowed(&cfg, "https://example.com/x"));
	assert_false(notifier_url_allowed(&cfg, "http://127.0.0.1/x"));
}

static void write_file(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");
	assert_non_null(f);
	fputs(text, f);
	fclose(f);
}

static void read_file_eq(const char *path, const char *text)
{
	char buf[256] = {0};
	FILE *f = fopen(path, "r");
	assert_non_null(f);
	size_t n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = 0;
	assert_string_equal(buf, text);
}

/* A crash between a split's commit and the rename of the kept users' file:
 * at start the store decides (its bytes are the .split file's: committed). */
static void test_split_settle(void **state)
{
	(void)state;
	char dir[] = "/tmp/test_split_settleXXXXXX";
	assert_non_null(mkdtemp(dir));
	char chunk[256], split[300];
	snprintf(chunk, sizeof(chunk), "%s/chunk-000002.json", dir);
	snprintf(split, sizeof(split), "%s.split", chunk);

	/* nothing left over: nothing to do */
	write_file(chunk, "[{\"a\":1},{\"b\":2}]");
	assert_int_equal(chunk_split_settle(chunk, 19), 0);
	read_file_eq(chunk, "[{\"a\":1},{\"b\":2}]");

	/* committed: the store's bytes are the kept half's, which replaces the file */
	write_file(split, "[{\"a\":1}]");
	assert_int_equal(chunk_split_settle(chunk, 9), 1);
	read_file_eq(chunk, "[{\"a\":1}]");
	assert_int_not_equal(access(split, F_OK), 0);

	/* not committed: the store still has the whole chunk, the half goes */
	write_file(chunk, "[{\"a\":1},{\"b\":2}]");
	write_file(split, "[{\"a\":1}]");
	assert_int_equal(chunk_split_settle(chunk, 19), 0);
	read_file_eq(chunk, "[{\"a\":1},{\"b\":2}]");
	assert_int_not_equal(access(split, F_OK), 0);

	unlink(chunk);
	rmdir(dir);
}

/* Every statement on chunks a read runs, captured by the trace. */
struct traced {
	char *sql[64];
	size_t n;
};

static int trace_fn(unsigned type, void *ctx, void *p, void *x)
{
	(void)x;
	struct traced *t = ctx;
	if (type == SQLITE_TRACE_STMT && t->n < 64) {
		const char *sql = sqlite3_sql((sqlite3_stmt *)p);
		if (sql && strstr(sql, "FROM chunks"))
			t->sql[t->n++] = strdup(sql);
	}
	return 0;
}

static void assert_covering(sqlite3 *db, struct traced *t)
{
	assert_true(t->n > 0);
	for (size_t i = 0; i < t->n; i++) {
		char q[2048];
		snprintf(q, sizeof(q), "EXPLAIN QUERY PLAN %s", t->sql[i]);
		sqlite3_stmt *st = NULL;
		assert_int_equal(sqlite3_prepare_v2(db, q, -1, &st, NULL), SQLITE_OK);
		while (sqlite3_step(st) == SQLITE_ROW) {
			const char *d = (const char *)sqlite3_column_text(st, 3);
			if (strstr(d, " chunks") && !strstr(d, "USING COVERING INDEX")) {
				print_error("not covered: %s\n  plan: %s\n", t->sql[i], d);
				fail();
			}
		}
		sqlite3_finalize(st);
		free(t->sql[i]);
	}
	t->n = 0;
}

/* The import object, the list and the /metrics totals read chunks through
 * covering indexes, never the rows that carry the indices BLOB. */
static void test_reads_use_covering_indexes(void **state)
{
	(void)state;
	sqlite3 *db = db_new();
	const char *id = "imp_0123456789abcdef";
	make_queued(db, id, 3);
	assert_int_equal(chunk_set_state_tx(db, id, 0, CHUNK_SUBMITTING, NULL, 200, NULL), 0);
	struct chunk_update s = { .job_id = "job_0" };
	assert_int_equal(chunk_set_state_tx(db, id, 0, CHUNK_SUBMITTED, &s, 201, NULL), 0);

	struct traced t = {0};
	sqlite3_trace_v2(db, SQLITE_TRACE_STMT, trace_fn, &t);
	json_object *o = NULL;
	assert_int_equal(import_json(db, id, true, 300, &o), 0);
	json_object_put(o);
	assert_int_equal(import_list_json(db, NULL, NULL, 0, 50, 300, &o), 0);
	json_object_put(o);
	int64_t by_state[IMPORT_STATE_COUNT];
	struct import_users u;
	assert_int_equal(import_totals_load(db, by_state, &u), 0);
	sqlite3_trace_v2(db, 0, NULL, NULL);
	assert_covering(db, &t);
	sqlite3_close(db);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_transition_tables),
		cmocka_unit_test(test_derive_pure),
		cmocka_unit_test(test_chunk_lifecycle),
		cmocka_unit_test(test_cancel_and_fail),
		cmocka_unit_test(test_unknown_fate_survives_stop),
		cmocka_unit_test(test_rejected_and_empty),
		cmocka_unit_test(test_json),
		cmocka_unit_test(test_retry_and_notifications),
		cmocka_unit_test(test_notify_url_hosts),
		cmocka_unit_test(test_split_settle),
		cmocka_unit_test(test_reads_use_covering_indexes),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
