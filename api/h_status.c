/* GET /healthz, GET /readyz, GET /v1/status. */
#include "api/handlers.h"
#include "api/problem.h"
#include "daemon/config.h"
#include "queue/chunk.h"
#include "queue/import.h"
#include "queue/store.h"

#include "build_config.h"

#include <json-c/json.h>
#include <string.h>
#include <time.h>

static uint64_t wall_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static void rfc3339(uint64_t ms, char *buf, size_t len)
{
	time_t t = (time_t)(ms / 1000);
	struct tm tm;
	gmtime_r(&t, &tm);
	strftime(buf, len, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

/* Queue depth is counted on the loop, so each figure stops at this many
 * rows: a figure equal to it means "at least" (and "capped" says so). */
#define QUEUE_COUNT_CAP 10000

static int count_import(const struct import_row *row, void *ctx)
{
	(void)row;
	int64_t *n = ctx;
	return ++*n >= QUEUE_COUNT_CAP;
}

static int count_chunk(const struct chunk *c, void *ctx)
{
	(void)c;
	int64_t *n = ctx;
	++*n;
	return 0;
}

/* "queue": imports in each active state and chunks waiting to be submitted. */
static struct json_object *queue_json(struct store *st)
{
	static const enum import_state active[] = { IMPORT_VALIDATING, IMPORT_QUEUED, IMPORT_RUNNING,
						    IMPORT_CANCELLING };
	struct sqlite3 *db = store_reader(st);
	struct json_object *q = json_object_new_object(), *imports = json_object_new_object();
	bool capped = false;
	for (size_t i = 0; i < sizeof(active) / sizeof(active[0]); i++) {
		int64_t n = 0;
		if (import_foreach_in_state(db, active[i], count_import, &n) < 0)
			continue;
		capped |= n >= QUEUE_COUNT_CAP;
		json_object_object_add(imports, import_state_name(active[i]), json_object_new_int64(n));
	}
	json_object_object_add(q, "imports", imports);
	int64_t chunks = 0;
	if (chunk_foreach_in_state(db, CHUNK_QUEUED, QUEUE_COUNT_CAP, count_chunk, &chunks) == 0) {
		capped |= chunks >= QUEUE_COUNT_CAP;
		json_object_object_add(q, "chunks_queued", json_object_new_int64(chunks));
	}
	json_object_object_add(q, "capped", json_object_new_boolean(capped));
	return q;
}

static int h_healthz(struct api_request *req, void *ud)
{
	(void)ud;
	return api_respond_text(req, 200, "text/plain; charset=utf-8", "ok\n", 3);
}

static int h_readyz(struct api_request *req, void *ud)
{
	struct api_server *s = ud;
	if (!api_server_store(s))
		return api_respond_problem(req, 503, "unavailable", "the store is not open yet");
	return api_respond_text(req, 200, "text/plain; charset=utf-8", "ready\n", 6);
}

static int h_status(struct api_request *req, void *ud)
{
	struct api_server *s = ud;
	const struct config *cfg = api_request_config(req);
	struct store *st = api_server_store(s);
	char when[32];
	uint64_t started = api_server_started_at_ms(s);
	struct json_object *o = json_object_new_object();
	if (!o)
		return -ENOMEM;
	json_object_object_add(o, "version", json_object_new_string(IMPORTD_VERSION));
	rfc3339(started, when, sizeof(when));
	json_object_object_add(o, "started_at", json_object_new_string(when));
	json_object_object_add(o, "uptime_seconds", json_object_new_int64((int64_t)((wall_ms() - started) / 1000)));
	json_object_object_add(o, "ready", json_object_new_boolean(st != NULL));
	json_object_object_add(o, "sandbox", json_object_new_boolean(cfg->sandbox));
	if (st) {
		struct store_stats ss;
		store_stats(st, &ss);
		struct json_object *so = json_object_new_object();
		json_object_object_add(so, "schema_version", json_object_new_int(store_version(st)));
		json_object_object_add(so, "commits", json_object_new_int64((int64_t)ss.commits));
		json_object_object_add(so, "writes_queued", json_object_new_int64((int64_t)ss.queued));
		json_object_object_add(o, "store", so);
		json_object_object_add(o, "queue", queue_json(st));
	}
	struct json_object *tenants = json_object_new_array();
	for (size_t i = 0; i < cfg->n_tenants; i++) {
		const struct tenant_config *t = &cfg->tenants[i];
		struct json_object *to = json_object_new_object();
		json_object_object_add(to, "name", json_object_new_string(t->name));
		json_object_object_add(to, "base_url", json_object_new_string(t->base_url));
		json_object_object_add(to, "audience", t->audience ? json_object_new_string(t->audience) : NULL);
		json_object_object_add(to, "credentials_configured",
				       json_object_new_boolean(t->client_id && t->client_secret));
		json_object_object_add(to, "max_concurrent_jobs", json_object_new_int((int)t->max_concurrent_jobs));
		json_object_object_add(to, "max_requests_per_second",
				       t->max_rps > 0 ? json_object_new_double(t->max_rps) : NULL);
		json_object_array_add(tenants, to);
	}
	json_object_object_add(o, "tenants", tenants);
	api_server_status_contribute(s, o);
	api_response_header(req, "Cache-Control", "no-store");
	return api_respond_json(req, 200, o);
}

const struct api_route h_status_routes[] = {
	{ "GET", "/healthz", h_healthz, NULL, API_ROUTE_PUBLIC },
	{ "GET", "/readyz", h_readyz, NULL, 0 },
	{ "GET", "/v1/status", h_status, NULL, 0 },
};
const size_t h_status_n_routes = sizeof(h_status_routes) / sizeof(h_status_routes[0]);
