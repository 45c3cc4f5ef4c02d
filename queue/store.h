/*
 * store — the durable state: one SQLite database in WAL mode,
 * <state_dir>/importd.db, behind one writer thread and one read connection.
 *
 * Terms:
 *   state dir  created with mode 0700; holds importd.db, the spool, chunk
 *              files and `lock`.
 *   lock       flock(LOCK_EX|LOCK_NB) on <state_dir>/lock, held for the life
 *              of the store; the holder's pid is written in it so a second
 *              daemon can name it ("state dir /x locked by pid 1234").
 *   version    PRAGMA user_version = the number of the last migration
 *              applied. A database with a version above the newest known
 *              migration was written by a newer daemon: store_open refuses
 *              it (-EPROTO) rather than risk damaging it.
 *   migration  a numbered schema step in queue/migrations.c, applied in one
 *              transaction with the version bump, at open, in order.
 *   writer     the one thread that writes: synchronous=FULL, each
 *              store_write() is one transaction (BEGIN IMMEDIATE .. COMMIT),
 *              run in submission order.
 *   reader     a second connection (read-only, synchronous reads on the loop
 *              thread) for bounded reads: a row by key, a page of 500 rows.
 *              WAL lets it read while the writer writes; it sees every
 *              transaction whose done callback has run.
 *
 * Threads: store_open/store_close/store_write/store_reader are called on the
 * loop thread. fn() runs on the writer thread and must only touch the db it
 * is given and its ctx (no uv calls, no logging of secrets). done() runs on
 * the loop thread after the COMMIT is durable (or after the ROLLBACK).
 * A queued write keeps the loop alive (like a pending uv request) until its
 * done callback has run; an idle store does not, so uv_run(UV_RUN_DEFAULT)
 * returns once nothing else is active and every write has completed.
 *
 * Adding a migration (other modules do this): append one entry to the
 * array in queue/migrations.c with the next number, e.g.
 *     { 2, "imports",
 *       "CREATE TABLE imports (id TEXT PRIMARY KEY, ...) STRICT;"
 *       "CREATE INDEX imports_state ON imports(state);", NULL },
 * Numbers strictly increase (gaps are allowed so that parallel work can
 * reserve ranges); never edit a migration that has been released, add a new
 * one. `sql` may hold several statements; `fn` (optional, on the writer
 * connection, inside the same transaction) does what SQL cannot.
 *
 * Commit latency (synchronous=FULL, WAL, one small INSERT per transaction,
 * measured by test_commit_latency in tests/unit/queue/test_store.c on the
 * build machine — ext4, 2 shared cores, under load): 50 sequential commits,
 * mean 4.4 ms, max 16 ms; 24% at most 2 ms, 68% at most 5 ms, 96% at most
 * 10 ms. Reasons for this design: a durable commit costs one or two fsyncs
 * (milliseconds), which must never stall the loop serving HTTP and Auth0
 * callbacks; one writer serialises transactions without SQLITE_BUSY
 * retries; batching several state changes into one
 * store_write() amortises the fsync, so callers should group the rows of
 * one decision into one fn.
 */
#pragma once

#include <stdint.h>
#include <uv.h>

/* sqlite3.h is included only by queue/ sources; others see the handle as
 * an incomplete type. */
struct sqlite3;

#define STORE_DB_NAME "importd.db"
#define STORE_LOCK_NAME "lock"

/* What one durable commit costs (see the figures above); live values are
 * in store_stats() and /metrics. */
#define STORE_COMMIT_LATENCY_NOTE "mean 4.4 ms, max 16 ms (ext4, synchronous=FULL)"

struct store_migration {
	int version;                     /* > 0, strictly increasing */
	const char *name;                /* short, for the log */
	const char *sql;                 /* may be NULL when fn is set */
	int (*fn)(struct sqlite3 *db);   /* may be NULL; 0 or negative */
};

/* Defined in queue/migrations.c. */
extern const struct store_migration store_migrations[];
extern const size_t store_n_migrations;

struct store;

/* Runs on the writer thread inside a transaction. Return 0 to COMMIT, or a
 * negative errno / project code to ROLLBACK. SQLite errors: map them with
 * store_errno(). */
typedef int (*store_write_fn)(struct sqlite3 *db, void *ctx);
/* Runs on the loop thread once the transaction is durable (status 0) or
 * rolled back (status < 0: fn's code, or -EIO for a failed COMMIT). */
typedef void (*store_done_fn)(int status, void *ctx);

/*
 * Creates the state dir (0700) if needed, takes the lock, opens/creates the
 * database, applies migrations, starts the writer thread.
 * Returns 0 and *ret; on failure `err` holds one line and:
 *   -EWOULDBLOCK  the lock is held by another process (its pid in err)
 *   -EPROTO       the database comes from a newer version
 *   -EIO          the database is unreadable / corrupt / a migration failed
 *   -errno        the directory or lock file could not be made
 * Every failure means exit 1 for the daemon.
 */
int store_open(uv_loop_t *loop, const char *state_dir, struct store **ret,
	       char *err, size_t errlen);

/* Finishes the queued writes (their done callbacks run), stops the writer,
 * closes both connections, releases the lock. The uv_async is closed and
 * the store freed in its close callback: run the loop afterwards. */
void store_close(struct store *st);

/* Queues fn on the writer thread. 0, or -ESHUTDOWN after store_close,
 * -ENOMEM. On failure nothing runs and done is not called. */
int store_write(struct store *st, store_write_fn fn, void *ctx, store_done_fn done);

/* The read connection for bounded reads on the loop thread. */
struct sqlite3 *store_reader(struct store *st);

/* The state dir this store holds locked (absolute). */
const char *store_state_dir(const struct store *st);
/* The schema version (user_version) after migrations. */
int store_version(const struct store *st);

/* Maps an SQLite result code to a negative errno (-EIO, -ENOMEM, -EBUSY,
 * -EEXIST for constraint violations, -ENOSPC for SQLITE_FULL). */
int store_errno(int sqlite_rc);

struct store_stats {
	uint64_t commits;           /* transactions committed */
	uint64_t rollbacks;
	uint64_t queued;            /* waiting for the writer now */
	double commit_seconds_sum;  /* fn + COMMIT wall time */
	double commit_seconds_max;
	uint64_t commit_le_ms[8];   /* histogram: <=1,2,5,10,25,50,100,+Inf ms */
};
void store_stats(const struct store *st, struct store_stats *ret);
