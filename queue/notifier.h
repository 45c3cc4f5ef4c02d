/*
 * notifier — delivers the final import object to an import's notify_url.
 *
 * Terms:
 *   notification  one row of `notifications` (migration 31): "POST the
 *                 import object of <import_id>, which entered terminal
 *                 <state>, to <url>". It is inserted by import_set_state_tx
 *                 in the transaction that enters the terminal state
 *                 (notifier_enqueue_tx), so it exists exactly when the state
 *                 change is durable, and survives restarts.
 *   delivery      one attempt: the import object (as GET /v1/imports/{id}
 *                 shows it, read from the store when the attempt starts) is
 *                 POSTed as application/json through uvcurl on the loop, with
 *                 a connect timeout of NOTIFIER_CONNECT_TIMEOUT_MS and a
 *                 total one of NOTIFIER_TIMEOUT_MS. Any 2xx answer delivers
 *                 it; anything else (other status, timeout, refused) is
 *                 retried after 2, 5, 15 and 40 s (±20 %), NOTIFIER_MAX_ATTEMPTS
 *                 attempts in all (about a minute), then given up with a
 *                 warning. The row is deleted once delivered or given up.
 *   superseded    a notification whose import is no longer in the state it
 *                 recorded (an operator retry moved it on) is dropped: the
 *                 next terminal state brings its own.
 *
 * Delivery is at least once: an attempt cut by a crash or a stop is made
 * again at the next start. Every attempt carries the header
 * `Importd-Notification: <row number>`, the same for every attempt of one
 * notification, so a receiver can drop repeats. Nothing secret is ever
 * sent (the import object holds no credential), and a URL with user
 * information is refused at POST time.
 *
 * Allowed hosts (notifier_url_allowed): the URL is parsed by libcurl's own
 * URL parser (so the host checked is the host connected to), must be
 * http(s) without user information, and its host must be loopback
 * (localhost, 127.0.0.0/8, ::1) when notify_allowed_hosts is empty, or
 * one of notify_allowed_hosts (case-insensitive) otherwise. It is checked
 * at POST time (400 bad-field) and again before every attempt (a host
 * removed from the config by a reload is no longer called).
 *
 * Lifetime: notifier_new, notifier_start (after the store is open),
 * notifier_stop (abandons the attempts in flight: they are made again at
 * the next start; closes the handles; run the loop), notifier_free after
 * store_close. All calls on the loop thread except notifier_enqueue_tx.
 */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

typedef struct sqlite3 sqlite3;
struct store;
struct config;
struct notifier;

#define NOTIFIER_MAX_ATTEMPTS 5
#define NOTIFIER_CONNECT_TIMEOUT_MS 5000L
#define NOTIFIER_TIMEOUT_MS 10000L
#define NOTIFIER_URL_MAX 2048
/* Deliveries in flight at once (over every import). */
#define NOTIFIER_MAX_BUSY 8

/* The table, for queue/migrations.c (migration 31). Times: created_at unix
 * s, next_attempt_at unix ms (0 = at once). */
#define SCHEMA_NOTIFICATIONS_SQL \
	"CREATE TABLE notifications (\n" \
	"  seq INTEGER PRIMARY KEY AUTOINCREMENT,\n" \
	"  import_id TEXT NOT NULL REFERENCES imports(id) ON DELETE CASCADE,\n" \
	"  state TEXT NOT NULL,\n" \
	"  url TEXT NOT NULL,\n" \
	"  attempts INTEGER NOT NULL DEFAULT 0,\n" \
	"  next_attempt_at INTEGER NOT NULL DEFAULT 0,\n" \
	"  last_error TEXT,\n" \
	"  created_at INTEGER NOT NULL\n" \
	");\n" \
	"CREATE INDEX notifications_due ON notifications(next_attempt_at, seq);\n"

/* Writer thread, inside the transaction that moved import `id` into a
 * terminal state: queues its delivery when it has a notify_url (nothing
 * otherwise). 0 or a negative errno. */
int notifier_enqueue_tx(sqlite3 *db, const char *id, int64_t now);

/* Notifications not delivered yet (bounded: one count on the read
 * connection), for /metrics. 0 or a negative errno. */
int notifier_pending(sqlite3 *db, int64_t *ret);

/* Whether POST /v1/imports may accept this notify_url under cfg (NULL cfg:
 * the defaults). */
bool notifier_url_allowed(const struct config *cfg, const char *url);

int notifier_new(uv_loop_t *loop, struct store *store, struct config *cfg, struct notifier **ret);
/* Starts the timer that looks for due notifications (every
 * NOTIFIER_TICK_MS; the timer does not keep the loop alive). 0 or -errno. */
int notifier_start(struct notifier *n);
/* SIGHUP: the allowed hosts of the new config apply to the next attempts. */
void notifier_set_config(struct notifier *n, struct config *cfg);
void notifier_stop(struct notifier *n);
void notifier_free(struct notifier *n);

#define NOTIFIER_TICK_MS 250
