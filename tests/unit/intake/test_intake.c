/* intake through a real temporary store: validation in a uv worker, the
 * one-transaction commit through the writer thread, chunk transitions
 * through store_write, failed-user indices, and the start-up cleanup. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "queue/import.h"
#include "queue/intake.h"
#include "queue/store.h"

static char base[64];
static char dir[128];

static int setup(void **state)
{
	(void)state;
	snprintf(base, sizeof(base), "/tmp/importd-test-intake-XXXXXX");
	assert_non_null(mkdtemp(base));
	snprintf(dir, sizeof(dir), "%s/state", base);
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	char cmd[160];
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", base);
	assert_int_equal(system(cmd), 0);
	return 0;
}

static void write_file(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");
	assert_non_null(f);
	fputs(text, f);
	fclose(f);
}

struct tx {
	const char *id;
	const struct import_options *opts;
	int64_t chunk_no;
	enum chunk_state to;
	const struct chunk_update *upd;
	int result;
	int status;
	bool done;
};

static int tx_insert(struct sqlite3 *db, void *ctx)
{
	struct tx *t = ctx;
	return import_insert_tx(db, t->id, t->opts, NULL, "sha", 100, 1000);
}

static int tx_chunk(struct sqlite3 *db, void *ctx)
{
	struct tx *t = ctx;
	t->result = chunk_set_state_tx(db, t->id, t->chunk_no, t->to, t->upd, 2000, NULL);
	return t->result < 0 ? t->result : 0;
}

static void tx_done(int status, void *ctx)
{
	struct tx *t = ctx;
	t->status = status;
	t->done = true;
}

/* A queued store write and a running intake work item both keep the loop
 * alive, so the loop blocks until the callback has run. */
static void run_until(uv_loop_t *loop, const bool *flag)
{
	while (!*flag)
		assert_true(uv_run(loop, UV_RUN_ONCE) != 0 || *flag);
}

static int run_write(uv_loop_t *loop, struct store *st, store_write_fn fn, struct tx *t)
{
	t->done = false;
	assert_int_equal(store_write(st, fn, t, tx_done), 0);
	run_until(loop, &t->done);
	return t->status;
}

struct outcome {
	bool done;
	struct intake_result res;
	size_t n_errors;
};

static void on_validated(void *ctx, const struct intake_result *res)
{
	struct outcome *o = ctx;
	o->done = true;
	o->res = *res;
	o->n_errors = res->errors ? json_object_array_length(res->errors) : 0;
	o->res.errors = o->res.warnings = NULL; /* borrowed */
}

static void test_validate_commit_and_read(void **state)
{
	(void)state;
	uv_loop_t loop;
	struct store *st;
	struct intake *in;
	char err[512], path[1024];
	const char *id = "imp_00000000000000aa";
	struct import_options opts = {
		.tenant = "default", .connection_id = "con_A1b2C3d4E5f6G7h8", .on_invalid = "skip",
		.unsupported_hash = "reject", .strip_auth0_prefix = -1, .max_errors = 10,
	};
	struct intake_limits limits = { .max_users = 1000, .chunk_bytes = 0 };

	assert_int_equal(uv_loop_init(&loop), 0);
	assert_int_equal(store_open(&loop, dir, &st, err, sizeof(err)), 0);
	assert_int_equal(intake_new(&loop, st, dir, &limits, &in), 0);
	assert_int_equal(intake_recover(in), 0);

	assert_int_equal(intake_import_dir(dir, id, path, sizeof(path)), 0);
	assert_int_equal(mkdir(path, 0700), 0);
	assert_int_equal(intake_upload_path(dir, id, path, sizeof(path)), 0);
	write_file(path, "[{\"email\":\"a@example.com\"},\n {\"email\":\"nope\"},\n"
			 " {\"email\":\"c@example.com\",\"name\":\"C\"}]");
	struct tx t = { .id = id, .opts = &opts };
	assert_int_equal(run_write(&loop, st, tx_insert, &t), 0);

	struct outcome o = { 0 };
	assert_int_equal(intake_start(in, id, on_validated, &o), 0);
	assert_int_equal(intake_start(in, id, on_validated, &o), -EALREADY);
	assert_true(intake_busy(in));
	run_until(&loop, &o.done);
	assert_int_equal(o.res.status, 0);
	assert_int_equal(o.res.state, IMPORT_QUEUED);
	assert_int_equal(o.res.summary.users_total, 3);
	assert_int_equal(o.res.summary.users_invalid, 1);
	assert_true(o.n_errors >= 1);
	assert_false(intake_busy(in));

	struct sqlite3 *db = store_reader(st);
	struct chunk c;
	assert_int_equal(chunk_load(db, id, 0, &c), 0);
	assert_int_equal(c.users, 2);
	assert_int_equal(c.indices[0], 0);
	assert_int_equal(c.indices[1], 2);
	chunk_done(&c);
	assert_int_equal(chunk_file_path(dir, id, 0, path, sizeof(path)), 0);
	assert_int_equal(access(path, R_OK), 0);

	/* The pipeline's view: a chunk fails as a whole. */
	struct chunk_update fail = { .error = "400: the connection does not exist" };
	t.chunk_no = 0;
	t.to = CHUNK_SUBMITTING;
	t.upd = NULL;
	assert_int_equal(run_write(&loop, st, tx_chunk, &t), 0);
	t.to = CHUNK_FAILED;
	t.upd = &fail;
	assert_int_equal(run_write(&loop, st, tx_chunk, &t), 0);
	t.to = CHUNK_COMPLETED;
	assert_int_equal(run_write(&loop, st, tx_chunk, &t), -EPERM);

	json_object *j = NULL;
	assert_int_equal(import_json(db, id, true, 3000, &j), 0);
	assert_string_equal(json_object_get_string(json_object_object_get(j, "state")), "failed");
	json_object *u = json_object_object_get(j, "users");
	assert_int_equal(json_object_get_int64(json_object_object_get(u, "failed")), 2);
	assert_int_equal(json_object_get_int64(json_object_object_get(u, "invalid")), 1);
	json_object_put(j);

	uint32_t *idx = NULL;
	size_t n = 0;
	assert_int_equal(intake_failed_indices(dir, id, &idx, &n), 0);
	assert_int_equal(n, 3);
	assert_int_equal(idx[0], 0);
	assert_int_equal(idx[1], 1);
	assert_int_equal(idx[2], 2);
	free(idx);

	json_object *errors = NULL, *warnings = NULL;
	bool truncated = true;
	assert_int_equal(intake_problems_path(dir, id, path, sizeof(path)), 0);
	assert_int_equal(intake_read_problems(path, 10, 1, 0, &errors, &warnings, &truncated), 0);
	assert_true(json_object_array_length(errors) >= 1);
	assert_false(truncated);
	json_object_put(errors);
	json_object_put(warnings);

	/* Start-up cleanup: an incomplete upload, a directory without a row. */
	char part[1024], orphan[1024];
	snprintf(part, sizeof(part), "%s/spool/abc.part", dir);
	write_file(part, "[");
	assert_int_equal(intake_import_dir(dir, "imp_00000000000000bb", orphan, sizeof(orphan)), 0);
	assert_int_equal(mkdir(orphan, 0700), 0);
	assert_int_equal(intake_recover(in), 0);
	assert_int_not_equal(access(part, F_OK), 0);
	assert_int_not_equal(access(orphan, F_OK), 0);
	assert_int_equal(intake_import_dir(dir, id, path, sizeof(path)), 0);
	assert_int_equal(access(path, F_OK), 0);

	intake_stop(in);
	assert_int_equal(intake_start(in, id, NULL, NULL), -ESHUTDOWN);
	intake_free(in);
	store_close(st);
	uv_run(&loop, UV_RUN_DEFAULT);
	assert_int_equal(uv_loop_close(&loop), 0);
}

/* A replay of a 422 reads the problems file only until both lists are
 * full; the totals (from the import's row) say when that is and whether
 * the errors were truncated. The lines after that point are never read:
 * here they would add to the lists if they were. */
static void test_read_problems_stops_when_full(void **state)
{
	(void)state;
	char path[1024];
	json_object *errors = NULL, *warnings = NULL;
	bool truncated = false;
#define E(i) "{\"index\":" #i ",\"errors\":[{\"index\":" #i ",\"code\":\"FORMAT\"}],\"warnings\":[]}\n"
#define W(i) "{\"index\":" #i ",\"errors\":[],\"warnings\":[{\"index\":" #i ",\"code\":\"MAX_LENGTH\"}]}\n"
	snprintf(path, sizeof(path), "%s/problems.ndjson", base);
	write_file(path, E(0) W(1) E(2) W(3) W(4) E(5) W(6));

	/* max_errors 2 of 3 invalid users, 4 warnings: stops after W(3). */
	assert_int_equal(intake_read_problems(path, 2, 3, 4, &errors, &warnings, &truncated), 0);
	assert_int_equal(json_object_array_length(errors), 2);
	assert_int_equal(json_object_array_length(warnings), 2);
	assert_true(truncated);
	json_object_put(errors);
	json_object_put(warnings);

	/* Totals below max_errors: complete once one invalid user and one
	 * warning are in, whatever follows. */
	assert_int_equal(intake_read_problems(path, 100, 1, 1, &errors, &warnings, &truncated), 0);
	assert_int_equal(json_object_array_length(errors), 1);
	assert_int_equal(json_object_array_length(warnings), 1);
	assert_false(truncated);
	json_object_put(errors);
	json_object_put(warnings);

	/* Exactly max_errors invalid users is not truncated. */
	assert_int_equal(intake_read_problems(path, 3, 3, 4, &errors, &warnings, &truncated), 0);
	assert_int_equal(json_object_array_length(errors), 3);
	assert_int_equal(json_object_array_length(warnings), 3);
	assert_false(truncated);
	json_object_put(errors);
	json_object_put(warnings);

	/* Nothing wanted: the file is not even opened. */
	assert_int_equal(intake_read_problems("/nonexistent/problems", 0, 3, 4, &errors, &warnings, &truncated), 0);
	assert_int_equal(json_object_array_length(errors), 0);
	assert_true(truncated);
	json_object_put(errors);
	json_object_put(warnings);
#undef E
#undef W
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_validate_commit_and_read, setup, teardown),
		cmocka_unit_test_setup_teardown(test_read_problems_stops_when_full, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
