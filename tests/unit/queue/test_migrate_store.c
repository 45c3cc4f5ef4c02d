/* migrate_store: export and migration rows through the store (migration 21)
 * and their JSON; sched_tenant_take, the bucket shared with exports and undo. */
#include "queue/migrate_store.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "queue/migrate.h"
#include "queue/sched.h"
#include "queue/store.h"

static char base[64], dir[128], err[512];

static int setup(void **state)
{
	snprintf(base, sizeof(base), "/tmp/importd-test-migrate-XXXXXX");
	assert_non_null(mkdtemp(base));
	snprintf(dir, sizeof(dir), "%s/state", base);
	return 0;
}

static int teardown(void **state)
{
	char cmd[160];
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", base);
	assert_int_equal(system(cmd), 0);
	return 0;
}

static int step;

static int write_rows(struct sqlite3 *db, void *ctx)
{
	struct export_row ex = { .id = "exp_0123456789abcdef", .tenant = "source",
				 .connection_id = "con_SandboxUsers0001", .format = "json",
				 .fields = "[{\"name\":\"email\"}]", .migration_id = "mig_0123456789abcdef" };
	struct migration_row m = { .id = "mig_0123456789abcdef", .source_tenant = "source",
				   .source_connection_id = "con_SandboxUsers0001",
				   .target_tenant = "default", .target_connection_id = "con_SandboxUsers0002",
				   .filter = "select(.email)", .export_id = "exp_0123456789abcdef" };
	int r = migration_insert_tx(db, &m, 1700000000);
	if (r == 0)
		r = export_insert_tx(db, &ex, 1700000000);
	if (r == 0)
		r = export_update_tx(db, ex.id, "running", "job_abcdefghijklmnop", -1, -1, NULL, 1700000001);
	if (r == 0)
		r = export_update_tx(db, ex.id, "completed", NULL, 42, 1234, NULL, 1700000002);
	if (r == 0)
		r = migration_update_tx(db, m.id, "completed", NULL,
					"{\"users_in\":42,\"users_out\":40,\"changed\":40,\"dropped\":2,"
					"\"filter\":{\"kept\":30,\"dropped\":10}}", NULL, 1700000003);
	if (r == 0 && export_update_tx(db, "exp_nope", "failed", NULL, -1, -1, NULL, 1) != -ENOENT)
		r = -EINVAL;
	return r;
}

static void written(int status, void *ctx)
{
	assert_int_equal(status, 0);
	step++;
}

static const char *str_at(json_object *o, const char *a, const char *b)
{
	json_object *v = o;
	if (!json_object_object_get_ex(v, a, &v))
		return NULL;
	if (b && !json_object_object_get_ex(v, b, &v))
		return NULL;
	return json_object_get_string(v);
}

static void test_rows_and_json(void **state)
{
	uv_loop_t loop;
	struct store *st;
	assert_int_equal(uv_loop_init(&loop), 0);
	assert_int_equal(store_open(&loop, dir, &st, err, sizeof(err)), 0);
	assert_true(store_version(st) >= 21);
	step = 0;
	assert_int_equal(store_write(st, write_rows, NULL, written), 0);
	store_close(st);
	uv_run(&loop, UV_RUN_DEFAULT);
	assert_int_equal(step, 1);

	assert_int_equal(store_open(&loop, dir, &st, err, sizeof(err)), 0);
	json_object *o;
	assert_int_equal(export_json(store_reader(st), "exp_0123456789abcdef", &o), 0);
	assert_string_equal(str_at(o, "state", NULL), "completed");
	assert_string_equal(str_at(o, "auth0_job_id", NULL), "job_abcdefghijklmnop");
	assert_string_equal(str_at(o, "users", NULL), "42");
	assert_string_equal(str_at(o, "created_at", NULL), "2023-11-14T22:13:20Z");
	assert_int_equal(json_object_array_length(json_object_object_get(o, "fields")), 1);
	json_object_put(o);
	assert_int_equal(export_json(store_reader(st), "exp_nope", &o), -ENOENT);

	assert_int_equal(migration_json(store_reader(st), "mig_0123456789abcdef", &o), 0);
	assert_string_equal(str_at(o, "state", NULL), "completed");
	json_object *stages = json_object_object_get(o, "stages");
	assert_string_equal(str_at(stages, "export", "state"), "completed");
	assert_string_equal(str_at(stages, "convert", "users_out"), "40");
	assert_string_equal(str_at(stages, "filter", "kept"), "30");
	assert_null(json_object_object_get(stages, "import"));
	assert_null(json_object_object_get(o, "import_id"));
	json_object_put(o);

	char state_buf[16], fmt[8], *fields = NULL;
	assert_int_equal(export_load_brief(store_reader(st), "exp_0123456789abcdef", state_buf,
					   sizeof(state_buf), fmt, sizeof(fmt), &fields), 0);
	assert_string_equal(fields, "[{\"name\":\"email\"}]");
	free(fields);

	int n = 0;
	struct export_row r;
	assert_int_equal(export_load(store_reader(st), "exp_0123456789abcdef", &r), 0);
	assert_int_equal(r.bytes, 1234);
	export_row_done(&r);
	(void)n;
	store_close(st);
	uv_run(&loop, UV_RUN_DEFAULT);
	assert_int_equal(uv_loop_close(&loop), 0);
}

static void test_sched_take(void **state)
{
	struct sched *s;
	struct sched_tenant *t;
	struct sched_config cfg = { .seed = 1 };
	assert_int_equal(sched_new(&cfg, &s), 0);
	assert_int_equal(sched_tenant_add(s, "default", &(struct sched_tenant_config){0}, &t), 0);
	int64_t now = 1000000, at = 0;
	assert_int_equal(sched_tenant_take(t, now, &at), 0);
	/* before the first answer only one request is in flight */
	assert_int_equal(sched_tenant_take(t, now, &at), -EAGAIN);
	assert_true(at == INT64_MAX);
	struct ratelimit_info rl = { .has_limit = true, .limit = 10, .has_remaining = true, .remaining = 9 };
	sched_observe(t, now, &rl, 0);
	assert_int_equal(sched_tenant_take(t, now, &at), 0);
	assert_int_equal(sched_tenant_inflight(t), 1);
	sched_free(s);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_rows_and_json, setup, teardown),
		cmocka_unit_test(test_sched_take),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
