/* notifier: the notify_url deliveries, from the `notifications` table to
 * the receivers, with bounded retries (see queue/notifier.h). */
#include "queue/notifier.h"

#include <curl/curl.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/random.h>
#include <time.h>

#include <json-c/json.h>
#include <sqlite3.h>

#include "build_config.h"
#include "daemon/config.h"
#include "daemon/log.h"
#include "daemon/uvcurl.h"
#include "queue/import.h"
#include "queue/store.h"

/* Waits after failed attempt 1, 2, 3, 4 (ms, before jitter). */
static const int64_t backoff_ms[NOTIFIER_MAX_ATTEMPTS - 1] = { 2000, 5000, 15000, 40000 };

enum outcome {
	OUT_DELIVERED,   /* delete */
	OUT_DROP,        /* delete: superseded, gone, host no longer allowed */
	OUT_GIVE_UP,     /* delete: attempts exhausted */
	OUT_RETRY,       /* update attempts, next_attempt_at, last_error */
};

struct delivery {
	struct notifier *n;
	int64_t seq;
	char import_id[IMPORT_ID_LEN + 1];
	char state[32];
	int64_t attempts;            /* before this one */
	struct uvcurl_request *req;  /* while the POST runs */
	bool writing;                /* its store write is pending */
	enum outcome outcome;
	int64_t next_attempt_ms;
	char error[256];
};

struct notifier {
	uv_loop_t *loop;
	struct store *store;
	struct config *cfg;          /* a reference */
	struct uvcurl *uc;
	uv_timer_t timer;
	bool timer_live;
	bool stopping;
	struct delivery *busy[NOTIFIER_MAX_BUSY];
};

static int64_t now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ---- the table ----------------------------------------------------------- */

int notifier_enqueue_tx(sqlite3 *db, const char *id, int64_t now)
{
	sqlite3_stmt *st = NULL;
	int rc = sqlite3_prepare_v2(db,
				    "INSERT INTO notifications (import_id, state, url, created_at) "
				    "SELECT id, state, notify_url, ?2 FROM imports "
				    "WHERE id = ?1 AND notify_url IS NOT NULL AND notify_url <> ''",
				    -1, &st, NULL);
	if (rc != SQLITE_OK)
		return store_errno(rc);
	sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 2, now);
	rc = sqlite3_step(st);
	sqlite3_finalize(st);
	return rc == SQLITE_DONE ? 0 : store_errno(rc);
}

int notifier_pending(sqlite3 *db, int64_t *ret)
{
	sqlite3_stmt *st = NULL;
	int rc = sqlite3_prepare_v2(db, "SELECT count(*) FROM notifications", -1, &st, NULL);
	if (rc != SQLITE_OK)
		return store_errno(rc);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW)
		*ret = sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	return rc == SQLITE_ROW ? 0 : store_errno(rc);
}

/* ---- allowed hosts ------------------------------------------------------- */

static bool host_listed(const struct config *cfg, const char *host)
{
	if (!cfg || cfg->n_notify_allowed_hosts == 0)
		return config_host_is_loopback(host);
	for (size_t i = 0; i < cfg->n_notify_allowed_hosts; i++)
		if (strcasecmp(cfg->notify_allowed_hosts[i], host) == 0)
			return true;
	return false;
}

bool notifier_url_allowed(const struct config *cfg, const char *url)
{
	bool ok = false;
	char *scheme = NULL, *user = NULL, *host = NULL;
	if (!url || strlen(url) > NOTIFIER_URL_MAX)
		return false;
	for (const char *p = url; *p; p++)
		if ((unsigned char)*p <= 0x20 || *p == 0x7f)
			return false;
	CURLU *u = curl_url();
	if (!u)
		return false;
	if (curl_url_set(u, CURLUPART_URL, url, 0) != CURLUE_OK)
		goto out;
	if (curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) != CURLUE_OK ||
	    (strcmp(scheme, "http") != 0 && strcmp(scheme, "https") != 0))
		goto out;
	/* Credentials in the URL would be stored and shown in the import. */
	if (curl_url_get(u, CURLUPART_USER, &user, 0) == CURLUE_OK)
		goto out;
	if (curl_url_get(u, CURLUPART_HOST, &host, 0) != CURLUE_OK || !*host)
		goto out;
	size_t n = strlen(host);
	if (host[0] == '[' && n > 2 && host[n - 1] == ']') {
		/* "[::1]" → "::1" (a zone id is not part of the host) */
		memmove(host, host + 1, n - 2);
		host[n - 2] = '\0';
	}
	ok = host_listed(cfg, host);
out:
	curl_free(scheme);
	curl_free(user);
	curl_free(host);
	curl_url_cleanup(u);
	return ok;
}

/* ---- store writes after an attempt --------------------------------------- */

static void tick(struct notifier *n);

static int outcome_fn(sqlite3 *db, void *ctx)
{
	struct delivery *d = ctx;
	sqlite3_stmt *st = NULL;
	const char *sql = d->outcome == OUT_RETRY
		? "UPDATE notifications SET attempts = ?2, next_attempt_at = ?3, last_error = ?4 WHERE seq = ?1"
		: "DELETE FROM notifications WHERE seq = ?1";
	int rc = sqlite3_prepare_v2(db, sql, -1, &st, NULL);
	if (rc != SQLITE_OK)
		return store_errno(rc);
	sqlite3_bind_int64(st, 1, d->seq);
	if (d->outcome == OUT_RETRY) {
		sqlite3_bind_int64(st, 2, d->attempts + 1);
		sqlite3_bind_int64(st, 3, d->next_attempt_ms);
		sqlite3_bind_text(st, 4, d->error, -1, SQLITE_STATIC);
	}
	rc = sqlite3_step(st);
	sqlite3_finalize(st);
	return rc == SQLITE_DONE ? 0 : store_errno(rc);
}

static void busy_remove(struct notifier *n, struct delivery *d)
{
	for (size_t i = 0; i < NOTIFIER_MAX_BUSY; i++)
		if (n->busy[i] == d)
			n->busy[i] = NULL;
}

static void outcome_done(int status, void *ctx)
{
	struct delivery *d = ctx;
	struct notifier *n = d->n;
	if (status < 0)
		log_error("queue", "import %s: cannot record its notification: %s, ignoring (it is made again)",
			  d->import_id, strerror(-status));
	busy_remove(n, d);
	free(d);
	if (!n->stopping)
		tick(n);
}

/* Records the outcome; the delivery stays busy (not picked again) until
 * the write has committed. */
static void finish(struct delivery *d, enum outcome o)
{
	struct notifier *n = d->n;
	d->outcome = o;
	if (o == OUT_RETRY) {
		int64_t base = backoff_ms[d->attempts < NOTIFIER_MAX_ATTEMPTS - 1 ? d->attempts : 0];
		unsigned short rnd = 0;
		if (getrandom(&rnd, sizeof(rnd), GRND_NONBLOCK) != (ssize_t)sizeof(rnd))
			rnd = 32768;
		/* ±20 % */
		d->next_attempt_ms = now_ms() + base * 8 / 10 + base * 4 / 10 * rnd / 65535;
	}
	d->writing = true;
	int r = store_write(n->store, outcome_fn, d, outcome_done);
	if (r < 0) {
		log_error("queue", "import %s: cannot record its notification: %s, ignoring", d->import_id,
			  strerror(-r));
		busy_remove(n, d);
		free(d);
	}
}

/* ---- one attempt ----------------------------------------------------------- */

static void post_done(struct uvcurl_request *req, void *arg)
{
	struct delivery *d = arg;
	d->req = NULL;
	int res = uvcurl_request_result(req);
	long status = uvcurl_request_status(req);
	if ((res == 0 || res == -EMSGSIZE) && status >= 200 && status < 300) {
		log_info("queue", "import %s: notification of %s delivered (attempt %" PRId64 ", HTTP %ld)",
			 d->import_id, d->state, d->attempts + 1, status);
		finish(d, OUT_DELIVERED);
		return;
	}
	if (res == 0 || res == -EMSGSIZE)
		snprintf(d->error, sizeof(d->error), "HTTP %ld", status);
	else
		snprintf(d->error, sizeof(d->error), "%s%s%s", strerror(-res),
			 *uvcurl_request_error(req) ? ": " : "", uvcurl_request_error(req));
	if (d->attempts + 1 >= NOTIFIER_MAX_ATTEMPTS) {
		log_warn("queue", "import %s: notification of %s not delivered after %d attempts (%s), giving up",
			 d->import_id, d->state, NOTIFIER_MAX_ATTEMPTS, d->error);
		finish(d, OUT_GIVE_UP);
		return;
	}
	log_info("queue", "import %s: notification of %s failed (attempt %" PRId64 ": %s), retrying",
		 d->import_id, d->state, d->attempts + 1, d->error);
	finish(d, OUT_RETRY);
}

/* Starts the attempt of the row just read, or records at once why none is
 * made (dropped). */
static void attempt(struct notifier *n, struct delivery *d, const char *url)
{
	json_object *o = NULL;
	if (!notifier_url_allowed(n->cfg, url)) {
		log_warn("queue", "import %s: its notify_url host is no longer allowed by notify_allowed_hosts, "
			 "dropping the notification", d->import_id);
		finish(d, OUT_DROP);
		return;
	}
	int r = import_json(store_reader(n->store), d->import_id, true, now_ms() / 1000, &o);
	if (r < 0) {
		if (r != -ENOENT)
			log_error("queue", "import %s: cannot read it for its notification: %s, dropping it",
				  d->import_id, strerror(-r));
		finish(d, OUT_DROP);
		return;
	}
	json_object *js = NULL;
	if (!json_object_object_get_ex(o, "state", &js) || strcmp(json_object_get_string(js), d->state) != 0) {
		log_info("queue", "import %s: left %s before its notification went out, dropping it",
			 d->import_id, d->state);
		json_object_put(o);
		finish(d, OUT_DROP);
		return;
	}
	size_t len = 0;
	const char *body = json_object_to_json_string_length(o, JSON_C_TO_STRING_PLAIN, &len);
	char seqh[64];
	snprintf(seqh, sizeof(seqh), "Importd-Notification: %" PRId64, d->seq);
	const char *headers[] = { "Content-Type: application/json",
				  "User-Agent: auth0-importd/" IMPORTD_VERSION, seqh, NULL };
	struct uvcurl_request_opts opts = {
		.method = "POST",
		.url = url,
		.headers = headers,
		.body = body,
		.body_len = len,
		.connect_timeout_ms = NOTIFIER_CONNECT_TIMEOUT_MS,
		.timeout_ms = NOTIFIER_TIMEOUT_MS,
		.max_body = 64 * 1024,
		.body_fd = -1,
	};
	r = uvcurl_request_start(n->uc, &opts, post_done, d, &d->req);
	json_object_put(o);
	if (r < 0) {
		snprintf(d->error, sizeof(d->error), "cannot start the request: %s", strerror(-r));
		finish(d, d->attempts + 1 >= NOTIFIER_MAX_ATTEMPTS ? OUT_GIVE_UP : OUT_RETRY);
	}
}

static bool is_busy(const struct notifier *n, int64_t seq)
{
	for (size_t i = 0; i < NOTIFIER_MAX_BUSY; i++)
		if (n->busy[i] && n->busy[i]->seq == seq)
			return true;
	return false;
}

static int free_slot(const struct notifier *n)
{
	for (size_t i = 0; i < NOTIFIER_MAX_BUSY; i++)
		if (!n->busy[i])
			return (int)i;
	return -1;
}

/* Starts the due notifications that are not in flight, while slots last. */
static void tick(struct notifier *n)
{
	if (n->stopping || free_slot(n) < 0)
		return;
	sqlite3 *db = store_reader(n->store);
	sqlite3_stmt *st = NULL;
	if (sqlite3_prepare_v2(db, "SELECT seq, import_id, state, url, attempts FROM notifications "
				   "WHERE next_attempt_at <= ?1 ORDER BY next_attempt_at, seq LIMIT ?2",
			       -1, &st, NULL) != SQLITE_OK)
		return;
	sqlite3_bind_int64(st, 1, now_ms());
	sqlite3_bind_int(st, 2, 2 * NOTIFIER_MAX_BUSY);
	/* Rows are copied first: an attempt may read the store itself. */
	struct row {
		int64_t seq, attempts;
		char id[IMPORT_ID_LEN + 1], state[32], url[NOTIFIER_URL_MAX + 1];
	} *rows = NULL;
	size_t nrows = 0;
	while (sqlite3_step(st) == SQLITE_ROW && nrows < NOTIFIER_MAX_BUSY) {
		int64_t seq = sqlite3_column_int64(st, 0);
		if (is_busy(n, seq))
			continue;
		struct row *nr = realloc(rows, (nrows + 1) * sizeof(*rows));
		if (!nr)
			break;
		rows = nr;
		struct row *r = &rows[nrows++];
		r->seq = seq;
		snprintf(r->id, sizeof(r->id), "%s", (const char *)sqlite3_column_text(st, 1));
		snprintf(r->state, sizeof(r->state), "%s", (const char *)sqlite3_column_text(st, 2));
		snprintf(r->url, sizeof(r->url), "%s", (const char *)sqlite3_column_text(st, 3));
		r->attempts = sqlite3_column_int64(st, 4);
	}
	sqlite3_finalize(st);
	for (size_t i = 0; i < nrows; i++) {
		int slot = free_slot(n);
		if (slot < 0)
			break;
		struct delivery *d = calloc(1, sizeof(*d));
		if (!d)
			break;
		d->n = n;
		d->seq = rows[i].seq;
		d->attempts = rows[i].attempts;
		snprintf(d->import_id, sizeof(d->import_id), "%s", rows[i].id);
		snprintf(d->state, sizeof(d->state), "%s", rows[i].state);
		n->busy[slot] = d;
		attempt(n, d, rows[i].url);
	}
	free(rows);
}

static void on_timer(uv_timer_t *t)
{
	tick(t->data);
}

/* ---- lifetime -------------------------------------------------------------- */

int notifier_new(uv_loop_t *loop, struct store *store, struct config *cfg, struct notifier **ret)
{
	struct notifier *n = calloc(1, sizeof(*n));
	if (!n)
		return -ENOMEM;
	n->loop = loop;
	n->store = store;
	n->cfg = cfg ? config_ref(cfg) : NULL;
	int r = uvcurl_new(loop, &n->uc);
	if (r < 0) {
		config_unref(n->cfg);
		free(n);
		return r;
	}
	*ret = n;
	return 0;
}

int notifier_start(struct notifier *n)
{
	int r = uv_timer_init(n->loop, &n->timer);
	if (r < 0)
		return r;
	n->timer.data = n;
	n->timer_live = true;
	uv_unref((uv_handle_t *)&n->timer);
	return uv_timer_start(&n->timer, on_timer, 0, NOTIFIER_TICK_MS);
}

void notifier_set_config(struct notifier *n, struct config *cfg)
{
	if (!n || !cfg)
		return;
	struct config *old = n->cfg;
	n->cfg = config_ref(cfg);
	config_unref(old);
}

void notifier_stop(struct notifier *n)
{
	if (!n || n->stopping)
		return;
	n->stopping = true;
	if (n->timer_live) {
		uv_timer_stop(&n->timer);
		uv_close((uv_handle_t *)&n->timer, NULL);
		n->timer_live = false;
	}
	/* Attempts in flight are abandoned (made again at the next start);
	 * deliveries with a write pending are freed by its callback. */
	for (size_t i = 0; i < NOTIFIER_MAX_BUSY; i++) {
		struct delivery *d = n->busy[i];
		if (!d || d->writing)
			continue;
		if (d->req)
			uvcurl_request_cancel(d->req);
		n->busy[i] = NULL;
		free(d);
	}
	uvcurl_close(n->uc, NULL, NULL);
	n->uc = NULL;
}

void notifier_free(struct notifier *n)
{
	if (!n)
		return;
	for (size_t i = 0; i < NOTIFIER_MAX_BUSY; i++)
		free(n->busy[i]);
	config_unref(n->cfg);
	free(n);
}
