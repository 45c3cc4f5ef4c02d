/* store: state dir and lock, migrations and version refusal, the writer
 * thread's commit/rollback and done callbacks on the loop. */
#include "queue/store.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static char base[64];
static char dir[128];
static char err[512];

static int setup(void **state)
{
	(void)state;
	snprintf(base, sizeof(base), "/tmp/importd-test-store-XXXXXX");
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

static void close_and_drain(uv_loop_t *loop, struct store *st)
{
	store_close(st);
	uv_run(loop, UV_RUN_DEFAULT);
}

static void test_open_lock(void **state)
{
	(void)state;
	uv_loop_t loop;
	struct store *st, *st2;
	assert_int_equal(uv_loop_init(&loop), 0);
	assert_int_equal(store_open(&loop, dir, &st, err, sizeof(err)), 0);
	struct stat sb;
	assert_int_equal(stat(dir, &sb), 0);
	assert_int_equal(sb.st_mode & 0777, 0700);
	assert_int_equal(store_version(st), store_migrations[store_n_migrations - 1].version);
	assert_string_equal(store_state_dir(st), dir);

	/* A second open (another open file description) finds the lock. */
	assert_int_equal(store_open(&loop, dir, &st2, err, sizeof(err)), -EWOULDBLOCK);
	char pid[32];
	snprintf(pid, sizeof(pid), "pid %ld", (long)getpid());
	assert_non_null(strstr(err, pid));
	close_and_drain(&loop, st);

	/* Released at close; reopening keeps the version. */
	assert_int_equal(store_open(&loop, dir, &st, err, sizeof(err)), 0);
	assert_int_equal(store_version(st), store_migrations[store_n_migrations - 1].version);
	close_and_drain(&loop, st);
	assert_int_equal(uv_loop_close(&loop), 0);
}

static void test_newer_version(void **state)
{
	(void)state;
	uv_loop_t loop;
	struct store *st;
	char path[256];
	assert_int_equal(mkdir(dir, 0700), 0);
	snprintf(path, sizeof(path), "%s/%s", dir, STORE_DB_NAME);
	sqlite3 *db;
	assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
	assert_int_equal(sqlite3_exec(db, "PRAGMA user_version = 9999", NULL, NULL, NULL), SQLITE_OK);
	sqlite3_close(db);
	assert_int_equal(uv_loop_init(&loop), 0);
	assert_int_equal(store_open(&loop, dir, &st, err, sizeof(err)), -EPROTO);
	assert_non_null(strstr(err, "9999"));
	assert_int_equal(uv_loop_close(&loop), 0);
}

static void test_garbage(void **state)
{
	(void)state;
	uv_loop_t loop;
	struct store *st;
	char path[256];
	assert_int_equal(mkdir(dir, 0700), 0);
	snprintf(path, sizeof(path), "%s/%s", dir, STORE_DB_NAME);
	FILE *f = fopen(path, "w");
	for (int i = 0; i < 100; i++)
		fputs("this is not a database, not at all. ", f);
	fclose(f);
	assert_int_equal(uv_loop_init(&loop), 0);
	assert_int_equal(store_open(&loop, dir, &st, err, sizeof(err)), -EIO);
	assert_non_null(strstr(err, "importd.db"));
	assert_int_equal(uv_loop_close(&loop), 0);
}

struct wctx {
	const char *key;
	int fail;
	int done_status;
	int done_calls;
	int order;
};

static int counter;

static int write_meta(struct sqlite3 *db, void *arg)
{
	struct wctx *w = arg;
	sqlite3_stmt *s;
	int rc = sqlite3_prepare_v2(db, "INSERT INTO meta (key, value) VALUES (?, 'v')", -1, &s, NULL);
	if (rc != SQLITE_OK)
		return store_errno(rc);
	sqlite3_bind_text(s, 1, w->key, -1, SQLITE_STATIC);
	rc = sqlite3_step(s);
	sqlite3_finalize(s);
	if (rc != SQLITE_DONE)
		return store_errno(rc);
	return w->fail ? -ECANCELED : 0;
}

static void on_done(int status, void *arg)
{
	struct wctx *w = arg;
	w->done_status = status;
	w->done_calls++;
	w->order = ++counter;
}

static int count_key(struct store *st, const char *key)
{
	sqlite3_stmt *s;
	assert_int_equal(sqlite3_prepare_v2(store_reader(st), "SELECT count(*) FROM meta WHERE key = ?", -1, &s, NULL),
			 SQLITE_OK);
	sqlite3_bind_text(s, 1, key, -1, SQLITE_STATIC);
	assert_int_equal(sqlite3_step(s), SQLITE_ROW);
	int n = sqlite3_column_int(s, 0);
	sqlite3_finalize(s);
	return n;
}

static void stop_when_done(uv_idle_t *h)
{
	struct wctx *w = h->data;
	if (w[0].done_calls && w[1].done_calls && w[2].done_calls)
		uv_close((uv_handle_t *)h, NULL);
}

static void test_writer(void **state)
{
	(void)state;
	uv_loop_t loop;
	struct store *st;
	assert_int_equal(uv_loop_init(&loop), 0);
	assert_int_equal(store_open(&loop, dir, &st, err, sizeof(err)), 0);
	struct wctx w[3] = { { .key = "a" }, { .key = "b", .fail = 1 }, { .key = "a" } };
	counter = 0;
	for (int i = 0; i < 3; i++)
		assert_int_equal(store_write(st, write_meta, &w[i], on_done), 0);
	uv_idle_t idle;
	uv_idle_init(&loop, &idle);
	idle.data = w;
	uv_idle_start(&idle, stop_when_done);
	uv_run(&loop, UV_RUN_DEFAULT);
	assert_int_equal(w[0].done_status, 0);
	assert_int_equal(w[1].done_status, -ECANCELED);
	assert_int_equal(w[2].done_status, -EEXIST); /* constraint → rolled back */
	assert_int_equal(w[0].order, 1);
	assert_int_equal(w[1].order, 2);
	assert_int_equal(w[2].order, 3);
	assert_int_equal(count_key(st, "a"), 1);
	assert_int_equal(count_key(st, "b"), 0);
	struct store_stats ss;
	store_stats(st, &ss);
	assert_int_equal(ss.commits, 1);
	assert_int_equal(ss.rollbacks, 2);
	assert_int_equal(ss.queued, 0);

	/* Queued writes finish at close, their callbacks run. */
	struct wctx late = { .key = "late" };
	assert_int_equal(store_write(st, write_meta, &late, on_done), 0);
	store_close(st);
	assert_int_equal(late.done_calls, 1);
	assert_int_equal(late.done_status, 0);
	assert_int_equal(store_write(st, write_meta, &late, on_done), -ESHUTDOWN);
	uv_run(&loop, UV_RUN_DEFAULT);
	assert_int_equal(uv_loop_close(&loop), 0);
}

/* A loop with no other handle: queued writes keep it running until their
 * done callbacks (and the writes those queue) have run; an idle store then
 * lets uv_run return. */
struct chain {
	struct store *st;
	struct wctx w[2];
	int step;
};

static int chain_write(struct sqlite3 *db, void *arg)
{
	struct chain *c = arg;
	return write_meta(db, &c->w[c->step]);
}

static void chain_done(int status, void *arg)
{
	struct chain *c = arg;
	c->w[c->step].done_status = status;
	c->w[c->step].done_calls++;
	if (++c->step < 2)
		assert_int_equal(store_write(c->st, chain_write, c, chain_done), 0);
}

static void test_write_keeps_loop_alive(void **state)
{
	(void)state;
	uv_loop_t loop;
	struct chain c = { .w = { { .key = "first" }, { .key = "second" } } };
	assert_int_equal(uv_loop_init(&loop), 0);
	assert_int_equal(store_open(&loop, dir, &c.st, err, sizeof(err)), 0);
	assert_int_equal(uv_run(&loop, UV_RUN_NOWAIT), 0); /* idle: not alive */
	assert_int_equal(store_write(c.st, chain_write, &c, chain_done), 0);
	assert_int_not_equal(uv_loop_alive(&loop), 0);
	assert_int_equal(uv_run(&loop, UV_RUN_DEFAULT), 0);
	assert_int_equal(c.step, 2);
	assert_int_equal(c.w[0].done_status, 0);
	assert_int_equal(c.w[1].done_status, 0);
	assert_int_equal(count_key(c.st, "second"), 1);
	assert_int_equal(uv_loop_alive(&loop), 0);
	close_and_drain(&loop, c.st);
	assert_int_equal(uv_loop_close(&loop), 0);
}

/* Commit latency: N single-row transactions, synchronous=FULL. Prints the
 * figures quoted in store.h. */
struct bench {
	struct store *st;
	int left;
	char key[32];
	int n;
};

static int bench_write(struct sqlite3 *db, void *arg)
{
	struct bench *b = arg;
	char sql[96];
	snprintf(sql, sizeof(sql), "INSERT INTO meta (key, value) VALUES ('bench%d', 'x')", b->n);
	return store_errno(sqlite3_exec(db, sql, NULL, NULL, NULL));
}

static void bench_done(int status, void *arg)
{
	struct bench *b = arg;
	assert_int_equal(status, 0);
	if (--b->left > 0) {
		b->n++;
		assert_int_equal(store_write(b->st, bench_write, b, bench_done), 0);
	}
}

static void test_commit_latency(void **state)
{
	(void)state;
	uv_loop_t loop;
	struct bench b = { .left = 50 };
	assert_int_equal(uv_loop_init(&loop), 0);
	assert_int_equal(store_open(&loop, dir, &b.st, err, sizeof(err)), 0);
	assert_int_equal(store_write(b.st, bench_write, &b, bench_done), 0);
	uv_run(&loop, UV_RUN_DEFAULT);
	struct store_stats ss;
	store_stats(b.st, &ss);
	printf("# store commit latency over %llu commits: mean %.2f ms, max %.2f ms; <=1ms %llu, <=2ms %llu, "
	       "<=5ms %llu, <=10ms %llu, <=25ms %llu, more %llu\n",
	       (unsigned long long)ss.commits, ss.commit_seconds_sum * 1000 / (double)ss.commits,
	       ss.commit_seconds_max * 1000, (unsigned long long)ss.commit_le_ms[0],
	       (unsigned long long)ss.commit_le_ms[1], (unsigned long long)ss.commit_le_ms[2],
	       (unsigned long long)ss.commit_le_ms[3], (unsigned long long)ss.commit_le_ms[4],
	       (unsigned long long)(ss.commit_le_ms[5] + ss.commit_le_ms[6] + ss.commit_le_ms[7]));
	close_and_drain(&loop, b.st);
	assert_int_equal(uv_loop_close(&loop), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_open_lock, setup, teardown),
		cmocka_unit_test_setup_teardown(test_newer_version, setup, teardown),
		cmocka_unit_test_setup_teardown(test_garbage, setup, teardown),
		cmocka_unit_test_setup_teardown(test_writer, setup, teardown),
		cmocka_unit_test_setup_teardown(test_write_keeps_loop_alive, setup, teardown),
		cmocka_unit_test_setup_teardown(test_commit_latency, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
