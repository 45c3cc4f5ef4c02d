/* store: the state-dir lock, the SQLite database and its one writer thread.
 * The only file (with migrations' users in queue/) that includes sqlite3.h. */
#include "queue/store.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

struct write_item {
	struct write_item *next;
	store_write_fn fn;
	store_done_fn done;
	void *ctx;
	int status;
};

struct store {
	uv_loop_t *loop;
	char *state_dir;
	int lock_fd;
	sqlite3 *wdb; /* writer thread's connection */
	sqlite3 *rdb; /* loop thread's read connection */
	int version;

	pthread_t thread;
	bool thread_started;
	pthread_mutex_t mu;
	pthread_cond_t cond;
	struct write_item *todo, **todo_tail;   /* for the writer */
	struct write_item *done, **done_tail;   /* for the loop */
	bool stopping;                          /* writer: finish todo and exit */
	bool closed;                            /* store_close called */
	uv_async_t async;                       /* ref'd while pending > 0 */
	uint64_t pending;                       /* loop thread: written, done not yet run */

	struct store_stats stats;               /* under mu */
};

int store_errno(int rc)
{
	switch (rc & 0xff) {
	case SQLITE_OK:
	case SQLITE_DONE:
	case SQLITE_ROW:
		return 0;
	case SQLITE_NOMEM:
		return -ENOMEM;
	case SQLITE_BUSY:
	case SQLITE_LOCKED:
		return -EBUSY;
	case SQLITE_CONSTRAINT:
		return -EEXIST;
	case SQLITE_FULL:
		return -ENOSPC;
	case SQLITE_PERM:
	case SQLITE_READONLY:
	case SQLITE_AUTH:
		return -EACCES;
	case SQLITE_NOTFOUND:
		return -ENOENT;
	default:
		return -EIO;
	}
}

static double now_seconds(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void record_latency(struct store *st, double secs)
{
	static const double le_ms[] = { 1, 2, 5, 10, 25, 50, 100 };
	double ms = secs * 1000.0;
	size_t i = 0;
	while (i < sizeof(le_ms) / sizeof(le_ms[0]) && ms > le_ms[i])
		i++;
	st->stats.commit_le_ms[i]++;
	st->stats.commit_seconds_sum += secs;
	if (secs > st->stats.commit_seconds_max)
		st->stats.commit_seconds_max = secs;
}

/* One transaction on the writer connection. */
static int run_one(struct store *st, struct write_item *it)
{
	char *msg = NULL;
	int rc = sqlite3_exec(st->wdb, "BEGIN IMMEDIATE", NULL, NULL, &msg);
	sqlite3_free(msg);
	if (rc != SQLITE_OK)
		return store_errno(rc);
	int r = it->fn(st->wdb, it->ctx);
	if (r < 0) {
		sqlite3_exec(st->wdb, "ROLLBACK", NULL, NULL, NULL);
		return r;
	}
	rc = sqlite3_exec(st->wdb, "COMMIT", NULL, NULL, NULL);
	if (rc != SQLITE_OK) {
		sqlite3_exec(st->wdb, "ROLLBACK", NULL, NULL, NULL);
		return -EIO;
	}
	return 0;
}

static void *writer_main(void *arg)
{
	struct store *st = arg;
	pthread_mutex_lock(&st->mu);
	for (;;) {
		while (!st->todo && !st->stopping)
			pthread_cond_wait(&st->cond, &st->mu);
		struct write_item *it = st->todo;
		if (!it)
			break; /* stopping and nothing left */
		st->todo = it->next;
		if (!st->todo)
			st->todo_tail = &st->todo;
		pthread_mutex_unlock(&st->mu);

		double t0 = now_seconds();
		it->status = run_one(st, it);
		double dt = now_seconds() - t0;

		pthread_mutex_lock(&st->mu);
		st->stats.queued--;
		if (it->status == 0) {
			st->stats.commits++;
			record_latency(st, dt);
		} else
			st->stats.rollbacks++;
		it->next = NULL;
		*st->done_tail = it;
		st->done_tail = &it->next;
		pthread_mutex_unlock(&st->mu);
		uv_async_send(&st->async);
		pthread_mutex_lock(&st->mu);
	}
	pthread_mutex_unlock(&st->mu);
	return NULL;
}

/* Loop thread: the wake-up handle keeps the loop alive exactly while a
 * write is queued or its done callback has not run yet, so a loop with no
 * other handle still sees every write complete, and an idle store never
 * holds the loop open. */
static void update_ref(struct store *st)
{
	if (st->pending > 0 && !st->closed)
		uv_ref((uv_handle_t *)&st->async);
	else
		uv_unref((uv_handle_t *)&st->async);
}

/* Loop thread: run done callbacks of committed items, in order. */
static void drain_done(struct store *st)
{
	pthread_mutex_lock(&st->mu);
	struct write_item *list = st->done;
	st->done = NULL;
	st->done_tail = &st->done;
	pthread_mutex_unlock(&st->mu);
	while (list) {
		struct write_item *n = list->next;
		st->pending--; /* before done(), which may queue the next write */
		if (list->done)
			list->done(list->status, list->ctx);
		free(list);
		list = n;
	}
	update_ref(st);
}

static void on_async(uv_async_t *a)
{
	drain_done(a->data);
}

/* ---- the lock ---------------------------------------------------------- */

static int lock_take(struct store *st, char *err, size_t errlen)
{
	char path[PATH_MAX];
	snprintf(path, sizeof(path), "%s/%s", st->state_dir, STORE_LOCK_NAME);
	int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (fd < 0) {
		int r = -errno;
		snprintf(err, errlen, "cannot open %s: %s", path, strerror(errno));
		return r;
	}
	if (flock(fd, LOCK_EX | LOCK_NB) < 0) {
		int r = -errno;
		if (errno == EWOULDBLOCK) {
			char buf[32] = "";
			ssize_t n = pread(fd, buf, sizeof(buf) - 1, 0);
			long pid = n > 0 ? strtol(buf, NULL, 10) : 0;
			if (pid > 0)
				snprintf(err, errlen, "state dir %s is locked by another daemon (pid %ld)",
					 st->state_dir, pid);
			else
				snprintf(err, errlen, "state dir %s is locked by another daemon (pid unknown)",
					 st->state_dir);
			r = -EWOULDBLOCK;
		} else
			snprintf(err, errlen, "cannot lock %s: %s", path, strerror(errno));
		close(fd);
		return r;
	}
	char pid[32];
	int n = snprintf(pid, sizeof(pid), "%ld\n", (long)getpid());
	if (ftruncate(fd, 0) < 0 || pwrite(fd, pid, (size_t)n, 0) != n) {
		int r = -errno;
		snprintf(err, errlen, "cannot write %s: %s", path, strerror(errno));
		close(fd);
		return r;
	}
	st->lock_fd = fd;
	return 0;
}

/* ---- opening ----------------------------------------------------------- */

static int exec_sql(sqlite3 *db, const char *sql, char *err, size_t errlen, const char *what)
{
	char *msg = NULL;
	int rc = sqlite3_exec(db, sql, NULL, NULL, &msg);
	if (rc != SQLITE_OK) {
		snprintf(err, errlen, "%s: %s", what, msg ? msg : sqlite3_errstr(rc));
		sqlite3_free(msg);
		return store_errno(rc) == -ENOMEM ? -ENOMEM : -EIO;
	}
	return 0;
}

static int read_version(sqlite3 *db, int *ret, char *err, size_t errlen)
{
	sqlite3_stmt *s = NULL;
	int rc = sqlite3_prepare_v2(db, "PRAGMA user_version", -1, &s, NULL);
	if (rc == SQLITE_OK && (rc = sqlite3_step(s)) == SQLITE_ROW) {
		*ret = sqlite3_column_int(s, 0);
		sqlite3_finalize(s);
		return 0;
	}
	snprintf(err, errlen, "cannot read the database: %s", sqlite3_errmsg(db));
	sqlite3_finalize(s);
	return -EIO;
}

static int migrate(struct store *st, const char *path, char *err, size_t errlen)
{
	int v, r;
	if ((r = read_version(st->wdb, &v, err, errlen)) < 0)
		return r;
	int newest = store_n_migrations ? store_migrations[store_n_migrations - 1].version : 0;
	if (v > newest) {
		snprintf(err, errlen, "%s has schema version %d, newer than this daemon's %d: "
			 "refusing to open it (run the newer daemon)", path, v, newest);
		return -EPROTO;
	}
	for (size_t i = 0; i < store_n_migrations; i++) {
		const struct store_migration *m = &store_migrations[i];
		if (m->version <= v)
			continue;
		char what[PATH_MAX + 128], bump[64];
		snprintf(what, sizeof(what), "%s: migration %d (%s)", path, m->version, m->name);
		if ((r = exec_sql(st->wdb, "BEGIN IMMEDIATE", err, errlen, what)) < 0)
			return r;
		if (m->sql && (r = exec_sql(st->wdb, m->sql, err, errlen, what)) < 0)
			goto fail;
		if (m->fn && (r = m->fn(st->wdb)) < 0) {
			snprintf(err, errlen, "%s: %s", what, strerror(-r));
			goto fail;
		}
		snprintf(bump, sizeof(bump), "PRAGMA user_version = %d", m->version);
		if ((r = exec_sql(st->wdb, bump, err, errlen, what)) < 0 ||
		    (r = exec_sql(st->wdb, "COMMIT", err, errlen, what)) < 0)
			goto fail;
		v = m->version;
		continue;
fail:
		sqlite3_exec(st->wdb, "ROLLBACK", NULL, NULL, NULL);
		return r == -ENOMEM ? r : -EIO;
	}
	st->version = v;
	return 0;
}

static void store_free(struct store *st)
{
	if (st->rdb)
		sqlite3_close(st->rdb);
	if (st->wdb)
		sqlite3_close(st->wdb);
	if (st->lock_fd >= 0)
		close(st->lock_fd); /* releases the flock */
	pthread_mutex_destroy(&st->mu);
	pthread_cond_destroy(&st->cond);
	free(st->state_dir);
	free(st);
}

static void on_async_closed(uv_handle_t *h)
{
	store_free(h->data);
}

int store_open(uv_loop_t *loop, const char *state_dir, struct store **ret, char *err, size_t errlen)
{
	char path[PATH_MAX];
	int r;
	struct store *st = calloc(1, sizeof(*st));
	if (!st)
		return -ENOMEM;
	st->loop = loop;
	st->lock_fd = -1;
	st->todo_tail = &st->todo;
	st->done_tail = &st->done;
	pthread_mutex_init(&st->mu, NULL);
	pthread_cond_init(&st->cond, NULL);
	if (!(st->state_dir = strdup(state_dir))) {
		r = -ENOMEM;
		goto fail;
	}
	if (mkdir(state_dir, 0700) < 0 && errno != EEXIST) {
		r = -errno;
		snprintf(err, errlen, "cannot create state dir %s: %s", state_dir, strerror(errno));
		goto fail;
	}
	if ((r = lock_take(st, err, errlen)) < 0)
		goto fail;
	snprintf(path, sizeof(path), "%s/%s", state_dir, STORE_DB_NAME);
	int rc = sqlite3_open_v2(path, &st->wdb, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, NULL);
	if (rc != SQLITE_OK) {
		snprintf(err, errlen, "cannot open %s: %s", path,
			 st->wdb ? sqlite3_errmsg(st->wdb) : sqlite3_errstr(rc));
		r = -EIO;
		goto fail;
	}
	sqlite3_busy_timeout(st->wdb, 5000);
	/* journal_mode is the first statement touching the file: a file that
	 * is not a database fails here. */
	if ((r = exec_sql(st->wdb, "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL;"
			  "PRAGMA foreign_keys=ON;", err, errlen, path)) < 0)
		goto fail;
	if ((r = migrate(st, path, err, errlen)) < 0)
		goto fail;
	rc = sqlite3_open_v2(path, &st->rdb, SQLITE_OPEN_READONLY, NULL);
	if (rc != SQLITE_OK) {
		snprintf(err, errlen, "cannot open %s for reading: %s", path,
			 st->rdb ? sqlite3_errmsg(st->rdb) : sqlite3_errstr(rc));
		r = -EIO;
		goto fail;
	}
	sqlite3_busy_timeout(st->rdb, 1000);
	if ((r = uv_async_init(loop, &st->async, on_async)) < 0) {
		snprintf(err, errlen, "uv_async_init: %s", uv_strerror(r));
		goto fail;
	}
	st->async.data = st;
	update_ref(st); /* idle: nothing pending yet */
	if ((r = pthread_create(&st->thread, NULL, writer_main, st)) != 0) {
		snprintf(err, errlen, "cannot start the store writer: %s", strerror(r));
		r = -r;
		uv_close((uv_handle_t *)&st->async, on_async_closed);
		return r;
	}
	st->thread_started = true;
	*ret = st;
	return 0;
fail:
	store_free(st);
	return r;
}

void store_close(struct store *st)
{
	if (!st || st->closed)
		return;
	st->closed = true;
	pthread_mutex_lock(&st->mu);
	st->stopping = true;
	pthread_cond_signal(&st->cond);
	pthread_mutex_unlock(&st->mu);
	if (st->thread_started)
		pthread_join(st->thread, NULL);
	drain_done(st);
	uv_close((uv_handle_t *)&st->async, on_async_closed);
}

int store_write(struct store *st, store_write_fn fn, void *ctx, store_done_fn done)
{
	if (!st || st->closed)
		return -ESHUTDOWN;
	struct write_item *it = calloc(1, sizeof(*it));
	if (!it)
		return -ENOMEM;
	it->fn = fn;
	it->ctx = ctx;
	it->done = done;
	pthread_mutex_lock(&st->mu);
	*st->todo_tail = it;
	st->todo_tail = &it->next;
	st->stats.queued++;
	pthread_cond_signal(&st->cond);
	pthread_mutex_unlock(&st->mu);
	st->pending++;
	update_ref(st);
	return 0;
}

sqlite3 *store_reader(struct store *st) { return st->rdb; }
const char *store_state_dir(const struct store *st) { return st->state_dir; }
int store_version(const struct store *st) { return st->version; }

void store_stats(const struct store *st, struct store_stats *ret)
{
	pthread_mutex_lock((pthread_mutex_t *)&st->mu);
	*ret = st->stats;
	pthread_mutex_unlock((pthread_mutex_t *)&st->mu);
}
