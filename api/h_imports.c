#include "api/h_imports.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include <json-c/json.h>

#include "api/problem.h"
#include "api/router.h"
#include "api/server.h"
#include "api/upload.h"
#include "daemon/config.h"
#include "daemon/log.h"
#include "daemon/metrics.h"
#include "queue/import.h"
#include "queue/intake.h"
#include "queue/notifier.h"
#include "queue/store.h"
#include "queue/undo.h"

#define WAIT_DEFAULT 30
#define WAIT_MAX 3600
#define MAX_ERRORS_DEFAULT 1000
#define MAX_ERRORS_MAX 100000
#define LIST_LIMIT_DEFAULT 50
#define LIST_LIMIT_MAX 500
#define IDEMPOTENCY_KEY_MAX 255
#define EXTERNAL_ID_MAX 256

/* An Idempotency-Key between the end of its body and its commit. */
struct inflight_key {
	struct inflight_key *next;
	char key[IDEMPOTENCY_KEY_MAX + 1];
};

struct h_imports {
	struct store *store;
	struct intake *intake;
	struct inflight_key *keys;
};

static int64_t now_s(void)
{
	return (int64_t)time(NULL);
}

int h_imports_new(struct store *store, struct intake *intake, struct h_imports **ret)
{
	struct h_imports *h = calloc(1, sizeof(*h));
	if (!h)
		return -ENOMEM;
	h->store = store;
	h->intake = intake;
	*ret = h;
	return 0;
}

void h_imports_free(struct h_imports *h)
{
	if (!h)
		return;
	while (h->keys) {
		struct inflight_key *k = h->keys;
		h->keys = k->next;
		free(k);
	}
	free(h);
}

static bool key_inflight(const struct h_imports *h, const char *key)
{
	for (const struct inflight_key *k = h->keys; k; k = k->next)
		if (strcmp(k->key, key) == 0)
			return true;
	return false;
}

static void key_remove(struct h_imports *h, const char *key)
{
	for (struct inflight_key **p = &h->keys; *p; p = &(*p)->next) {
		if (strcmp((*p)->key, key) == 0) {
			struct inflight_key *k = *p;
			*p = k->next;
			free(k);
			return;
		}
	}
}

/* ---- the import object, with live validation progress ------------------- */

static int import_json_live(struct h_imports *h, const char *id, bool with_jobs, json_object **ret)
{
	json_object *o = NULL;
	int r = import_json(store_reader(h->store), id, with_jobs, now_s(), &o);
	if (r < 0)
		return r;
	undo_json_add(store_reader(h->store), id, o);
	uint64_t bytes, total, users, invalid;
	if (intake_progress(h->intake, id, &bytes, &total, &users, &invalid) == 0) {
		json_object *u = json_object_object_get(o, "users");
		json_object_object_add(u, "total", json_object_new_int64((int64_t)users));
		json_object_object_add(u, "invalid", json_object_new_int64((int64_t)invalid));
		json_object_object_add(u, "pending", json_object_new_int64((int64_t)(users - invalid)));
		double p = total > 0 ? (double)bytes / (double)total : 0.0;
		if (p > 1.0)
			p = 1.0;
		char buf[16];
		snprintf(buf, sizeof(buf), "%.4f", p);
		json_object_object_add(o, "progress", json_object_new_double_s(p, buf));
	}
	*ret = o;
	return 0;
}

static void add_location(struct api_request *req, const char *id)
{
	char loc[64];
	snprintf(loc, sizeof(loc), "/v1/imports/%s", id);
	api_response_header(req, "Location", loc);
}

static int answer_import(struct h_imports *h, struct api_request *req, unsigned status, const char *id)
{
	json_object *o = NULL;
	int r = import_json_live(h, id, true, &o);
	if (r < 0)
		return api_respond_problem(req, 500, "internal", "cannot read import %s", id);
	add_location(req, id);
	return api_respond_json(req, status, o);
}

/* 422: the import is kept as `rejected`. errors/warnings are borrowed. */
static int answer_invalid(struct h_imports *h, struct api_request *req, const char *id,
			  int64_t errors_total, json_object *errors, bool truncated,
			  json_object *warnings, int64_t warnings_total)
{
	json_object *p = problem_newf(422, "invalid-users", "%" PRId64 " user%s invalid; nothing was queued",
				      errors_total, errors_total == 1 ? " is" : "s are");
	if (!p)
		return -ENOMEM;
	json_object_object_add(p, "import_id", json_object_new_string(id));
	json_object_object_add(p, "errors", json_object_get(errors));
	json_object_object_add(p, "errors_total", json_object_new_int64(errors_total));
	json_object_object_add(p, "truncated", json_object_new_boolean(truncated));
	json_object_object_add(p, "warnings", json_object_get(warnings));
	json_object_object_add(p, "warnings_total", json_object_new_int64(warnings_total));
	add_location(req, id);
	return api_respond_problem_json(req, 422, p);
}

/* A bad file (400/413) from the import's stored error. */
static int answer_file_problem(struct api_request *req, const char *error_json)
{
	json_object *p = error_json ? json_tokener_parse(error_json) : NULL;
	if (!p)
		return api_respond_problem(req, 500, "internal", "validation failed");
	json_object *st = json_object_object_get(p, "status");
	unsigned status = st ? (unsigned)json_object_get_int(st) : 400;
	return api_respond_problem_json(req, status, p);
}

/* The answer an import's outcome calls for (also used for replays). */
static int answer_outcome(struct h_imports *h, struct api_request *req, const char *id)
{
	json_object *o = NULL;
	int r = import_json_live(h, id, true, &o);
	if (r < 0)
		return api_respond_problem(req, 500, "internal", "cannot read import %s", id);
	const char *state = json_object_get_string(json_object_object_get(o, "state"));
	json_object *err = json_object_object_get(o, "error");
	if (strcmp(state, "rejected") == 0 && err) {
		r = answer_file_problem(req, json_object_to_json_string_ext(err, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE));
		json_object_put(o);
		return r;
	}
	if (strcmp(state, "failed") == 0 && err && json_object_object_get(o, "users") &&
	    json_object_get_int64(json_object_object_get(json_object_object_get(o, "chunks"), "total")) == 0) {
		json_object_put(o);
		return api_respond_problem(req, 500, "internal", "validation of import %s failed", id);
	}
	if (strcmp(state, "rejected") == 0) {
		struct import_row row;
		json_object *errors = NULL, *warnings = NULL;
		bool truncated = false;
		char path[1024];
		json_object_put(o);
		if (import_load(store_reader(h->store), id, &row) < 0 ||
		    intake_problems_path(store_state_dir(h->store), id, path, sizeof(path)) < 0 ||
		    intake_read_problems(path, row.max_errors, row.users_invalid, row.warnings_total, &errors,
					 &warnings, &truncated) < 0)
			return api_respond_problem(req, 500, "internal", "cannot read the problems of %s", id);
		r = answer_invalid(h, req, id, row.users_invalid, errors, truncated, warnings,
				   row.warnings_total);
		json_object_put(errors);
		json_object_put(warnings);
		return r;
	}
	add_location(req, id);
	return api_respond_json(req, strcmp(state, "validated") == 0 ? 200 : 202, o);
}

/* ---- POST /v1/imports ----------------------------------------------------- */

struct create {
	int refs;
	struct h_imports *h;
	struct api_request *req;       /* NULL once answered or gone */
	uv_timer_t timer;
	bool timer_started;
	char id[IMPORT_ID_LEN + 1];
	struct import_options opts;
	char *strings[8];              /* copies behind opts */
	char *idem_key;
	char sha[65];
	uint64_t bytes;
	unsigned wait;
	/* The upload (the request's ctx) is in a worker: the request must
	 * outlive it even if the client leaves. */
	bool committing_file;
	bool gone;
};

static void create_unref(struct create *c)
{
	if (--c->refs > 0)
		return;
	for (size_t i = 0; i < sizeof(c->strings) / sizeof(c->strings[0]); i++)
		free(c->strings[i]);
	free(c->idem_key);
	free(c);
}

static void create_release_req(struct create *c)
{
	if (!c->req)
		return;
	struct api_request *req = c->req;
	c->req = NULL;
	api_request_unref(req);
}

static void timer_closed(uv_handle_t *h)
{
	create_unref(h->data);
}

static void create_stop_timer(struct create *c)
{
	if (c->timer_started && !uv_is_closing((uv_handle_t *)&c->timer)) {
		uv_timer_stop(&c->timer);
		uv_close((uv_handle_t *)&c->timer, timer_closed);
	}
}

static void create_gone(void *arg)
{
	struct create *c = arg;
	c->gone = true;
	create_stop_timer(c);
	if (!c->committing_file)
		create_release_req(c);
}

static void create_fail(struct create *c, unsigned status, const char *slug, const char *detail)
{
	if (c->req)
		api_respond_problem(c->req, status, slug, "%s", detail);
	create_stop_timer(c);
	create_release_req(c);
}

static void create_validated(void *ctx, const struct intake_result *res)
{
	struct create *c = ctx;
	if (c->req) {
		if (res->status < 0 && res->state == IMPORT_VALIDATING) {
			api_respond_problem(c->req, 503, "unavailable", "validation of %s was interrupted; it resumes at the next start",
					    c->id);
		} else if (res->state == IMPORT_REJECTED && res->failure.kind == USERS_FAILURE_NONE) {
			answer_invalid(c->h, c->req, c->id, (int64_t)res->summary.users_invalid, res->errors,
				       res->truncated, res->warnings, (int64_t)res->summary.warnings_total);
		} else {
			answer_outcome(c->h, c->req, c->id);
		}
	}
	create_stop_timer(c);
	create_release_req(c);
	create_unref(c);
}

static void create_timeout(uv_timer_t *t)
{
	struct create *c = t->data;
	if (c->req)
		answer_import(c->h, c->req, 202, c->id);
	create_stop_timer(c);
	create_release_req(c);
}

static int create_insert(struct sqlite3 *db, void *ctx)
{
	struct create *c = ctx;
	return import_insert_tx(db, c->id, &c->opts, c->idem_key, c->sha, (int64_t)c->bytes, now_s());
}

static void create_inserted(int status, void *ctx)
{
	struct create *c = ctx;
	if (c->idem_key)
		key_remove(c->h, c->idem_key);
	if (status < 0) {
		log_error("api", "import %s: cannot commit: %s", c->id, strerror(-status));
		create_fail(c, 500, "internal", "the import could not be stored");
		create_unref(c);
		return;
	}
	int r = intake_start(c->h->intake, c->id, create_validated, c);
	if (r < 0) {
		log_error("api", "import %s: cannot start validation: %s", c->id, strerror(-r));
		create_fail(c, 503, "unavailable", "validation could not start; it resumes at the next start");
		create_unref(c);
		return;
	}
	/* The intake's reference replaces the flow's. */
	if (!c->req)
		return;
	if (c->wait == 0) {
		answer_import(c->h, c->req, 202, c->id);
		create_release_req(c);
		return;
	}
	uv_timer_init(api_request_loop(c->req), &c->timer);
	c->timer.data = c;
	c->timer_started = true;
	c->refs++;
	uv_timer_start(&c->timer, create_timeout, (uint64_t)c->wait * 1000, 0);
}

static void create_file_committed(int status, void *ctx)
{
	struct create *c = ctx;
	c->committing_file = false;
	/* A client that left still gets its import made: the upload is
	 * durable, and a retry with the same Idempotency-Key finds it. */
	if (c->gone)
		create_release_req(c);
	if (status < 0) {
		if (c->idem_key)
			key_remove(c->h, c->idem_key);
		log_error("api", "import %s: cannot make the upload durable: %s", c->id, strerror(-status));
		create_fail(c, 500, "internal", "the upload could not be stored");
		create_unref(c);
		return;
	}
	int r = store_write(c->h->store, create_insert, c, create_inserted);
	if (r < 0) {
		if (c->idem_key)
			key_remove(c->h, c->idem_key);
		create_fail(c, 503, "unavailable", "the store is not accepting writes");
		create_unref(c);
	}
}

static int parse_bool(const char *s, bool *ret)
{
	if (strcmp(s, "true") == 0)
		*ret = true;
	else if (strcmp(s, "false") == 0)
		*ret = false;
	else
		return -EINVAL;
	return 0;
}

static int parse_uint(const char *s, uint64_t max, uint64_t *ret)
{
	char *end;
	if (!*s || *s == '-' || *s == '+')
		return -EINVAL;
	errno = 0;
	unsigned long long v = strtoull(s, &end, 10);
	if (errno || *end || v > max)
		return -EINVAL;
	*ret = v;
	return 0;
}

static bool token_ok(const char *s, size_t max)
{
	size_t n = strlen(s);
	if (n == 0 || n > max)
		return false;
	for (size_t i = 0; i < n; i++) {
		char ch = s[i];
		if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
		      ch == '_' || ch == '-'))
			return false;
	}
	return true;
}

static bool printable(const char *s, size_t max)
{
	size_t n = strlen(s);
	if (n > max)
		return false;
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f)
			return false;
	return true;
}

static char *keep(struct create *c, const char *s)
{
	if (!s)
		return NULL;
	for (size_t i = 0; i < sizeof(c->strings) / sizeof(c->strings[0]); i++) {
		if (!c->strings[i]) {
			c->strings[i] = strdup(s);
			return c->strings[i];
		}
	}
	return NULL;
}

/* Fills c from the fields; answers 400 and returns -EINVAL on a bad one. */
static int create_parse(struct create *c, struct api_request *req, struct upload *u,
			const struct config *cfg)
{
	const char *v;
	uint64_t n;
	bool b;

	if ((v = upload_unknown_field(u)))
		return api_respond_problem(req, 400, "bad-field", "unknown field '%.64s'", v), -EINVAL;
	const char *ctype = api_request_header(req, "Content-Type");
	if (!upload_has_file(u) && !(ctype && strncasecmp(ctype, "multipart/", 10) == 0))
		return api_respond_problem(req, 400, "empty-file", "the body is empty: it should be the users file"),
		       -EINVAL;
	if (!upload_has_file(u))
		return api_respond_problem(req, 400, "bad-field",
					   "the users file is missing: send it as the part 'users' or as the body"),
		       -EINVAL;

	v = upload_field(u, UPLOAD_CONNECTION_ID);
	if (!v)
		return api_respond_problem(req, 400, "bad-field", "connection_id is required"), -EINVAL;
	if (!token_ok(v, 64))
		return api_respond_problem(req, 400, "bad-field", "connection_id is not a connection id"), -EINVAL;
	c->opts.connection_id = keep(c, v);

	v = upload_field(u, UPLOAD_TENANT);
	if (!v)
		v = "default";
	if (!token_ok(v, CONFIG_TENANT_NAME_MAX))
		return api_respond_problem(req, 400, "bad-field", "tenant must match [a-z0-9_-]{1,32}"), -EINVAL;
	if (!cfg || !config_tenant(cfg, v))
		return api_respond_problem(req, 400, "unknown-tenant", "no tenant named '%s' is configured", v),
		       -EINVAL;
	c->opts.tenant = keep(c, v);

	static const struct {
		enum upload_field f;
		const char *name;
	} bools[] = { { UPLOAD_UPSERT, "upsert" },
		      { UPLOAD_SEND_COMPLETION_EMAIL, "send_completion_email" },
		      { UPLOAD_DRY_RUN, "dry_run" } };
	for (size_t i = 0; i < sizeof(bools) / sizeof(bools[0]); i++) {
		b = false;
		v = upload_field(u, bools[i].f);
		if (v && parse_bool(v, &b) < 0)
			return api_respond_problem(req, 400, "bad-field", "%s must be true or false", bools[i].name),
			       -EINVAL;
		if (bools[i].f == UPLOAD_UPSERT)
			c->opts.upsert = b;
		else if (bools[i].f == UPLOAD_SEND_COMPLETION_EMAIL)
			c->opts.send_completion_email = b;
		else
			c->opts.dry_run = b;
	}
	c->opts.strip_auth0_prefix = -1;
	v = upload_field(u, UPLOAD_STRIP_AUTH0_PREFIX);
	if (v) {
		if (parse_bool(v, &b) < 0)
			return api_respond_problem(req, 400, "bad-field", "strip_auth0_prefix must be true or false"),
			       -EINVAL;
		c->opts.strip_auth0_prefix = b;
	}
	v = upload_field(u, UPLOAD_ON_INVALID);
	if (v && strcmp(v, "reject") != 0 && strcmp(v, "skip") != 0)
		return api_respond_problem(req, 400, "bad-field", "on_invalid must be reject or skip"), -EINVAL;
	c->opts.on_invalid = keep(c, v ? v : "reject");
	v = upload_field(u, UPLOAD_UNSUPPORTED_HASH);
	if (v && strcmp(v, "reject") != 0 && strcmp(v, "strip") != 0)
		return api_respond_problem(req, 400, "bad-field", "unsupported_hash must be reject or strip"), -EINVAL;
	c->opts.unsupported_hash = keep(c, v ? v : "reject");

	v = upload_field(u, UPLOAD_EXTERNAL_ID);
	if (v && (!*v || !printable(v, EXTERNAL_ID_MAX)))
		return api_respond_problem(req, 400, "bad-field", "external_id must be 1 to %d printable characters",
					   EXTERNAL_ID_MAX),
		       -EINVAL;
	c->opts.external_id = keep(c, v);
	v = upload_field(u, UPLOAD_NOTIFY_URL);
	if (v && !notifier_url_allowed(cfg, v))
		return api_respond_problem(req, 400, "bad-field",
					   "notify_url must be an http(s) URL without user information to a host "
					   "notify_allowed_hosts allows (by default loopback only)"),
		       -EINVAL;
	c->opts.notify_url = keep(c, v);

	c->opts.max_errors = MAX_ERRORS_DEFAULT;
	v = upload_field(u, UPLOAD_MAX_ERRORS);
	if (v) {
		if (parse_uint(v, MAX_ERRORS_MAX, &n) < 0)
			return api_respond_problem(req, 400, "bad-field", "max_errors must be an integer from 0 to %d",
						   MAX_ERRORS_MAX),
			       -EINVAL;
		c->opts.max_errors = (int64_t)n;
	}
	c->wait = WAIT_DEFAULT;
	v = upload_field(u, UPLOAD_WAIT);
	if (v) {
		if (parse_uint(v, WAIT_MAX, &n) < 0)
			return api_respond_problem(req, 400, "bad-field", "wait must be a number of seconds from 0 to %d",
						   WAIT_MAX),
			       -EINVAL;
		c->wait = (unsigned)n;
	}
	return 0;
}

static void add_str_or_null(json_object *o, const char *k, const char *v)
{
	json_object_object_add(o, k, v ? json_object_new_string(v) : NULL);
}

/* Folds the normalised options into the upload's digest, so an
 * Idempotency-Key repeat with the same file but another connection,
 * tenant, upsert, ... is a different body (409), not a replay. `wait`
 * only changes when the answer comes, so it is left out. */
static int create_hash_options(struct create *c, struct upload *u)
{
	const struct import_options *o = &c->opts;
	json_object *j = json_object_new_object();
	if (!j)
		return -ENOMEM;
	add_str_or_null(j, "connection_id", o->connection_id);
	add_str_or_null(j, "tenant", o->tenant);
	json_object_object_add(j, "upsert", json_object_new_boolean(o->upsert));
	json_object_object_add(j, "send_completion_email", json_object_new_boolean(o->send_completion_email));
	add_str_or_null(j, "external_id", o->external_id);
	add_str_or_null(j, "on_invalid", o->on_invalid);
	add_str_or_null(j, "unsupported_hash", o->unsupported_hash);
	json_object_object_add(j, "strip_auth0_prefix",
			       o->strip_auth0_prefix < 0 ? NULL : json_object_new_boolean(o->strip_auth0_prefix));
	add_str_or_null(j, "notify_url", o->notify_url);
	json_object_object_add(j, "dry_run", json_object_new_boolean(o->dry_run));
	json_object_object_add(j, "max_errors", json_object_new_int64(o->max_errors));
	size_t len = 0;
	const char *text = json_object_to_json_string_length(j, JSON_C_TO_STRING_PLAIN, &len);
	int r = text ? upload_hash_fields(u, text, len) : -ENOMEM;
	json_object_put(j);
	return r;
}

static int h_create(struct api_request *req, void *ud)
{
	struct h_imports *h = ud;
	struct upload *u = upload_of(req);
	struct config *cfg = api_request_config(req);
	struct create *c;
	int r;

	if (!u)
		return -EINVAL;
	c = calloc(1, sizeof(*c));
	if (!c)
		return -ENOMEM;
	c->refs = 1;
	c->h = h;
	if (create_parse(c, req, u, cfg) < 0)
		goto discard;
	if (upload_bytes(u) == 0) {
		api_respond_problem(req, 400, "empty-file", "the users file is empty");
		goto discard;
	}

	r = create_hash_options(c, u);
	if (r < 0)
		goto fail;

	const char *key = api_request_header(req, "Idempotency-Key");
	if (key) {
		if (!*key || !printable(key, IDEMPOTENCY_KEY_MAX)) {
			api_respond_problem(req, 400, "bad-field", "Idempotency-Key must be 1 to %d printable characters",
					    IDEMPOTENCY_KEY_MAX);
			goto discard;
		}
		if (key_inflight(h, key)) {
			api_response_header(req, "Retry-After", "1");
			api_respond_problem(req, 409, "conflict", "a request with this Idempotency-Key is still running");
			goto discard;
		}
		struct import_row first;
		uint64_t ttl = cfg ? cfg->idempotency_ttl : 86400;
		r = import_find_by_idempotency_key(store_reader(h->store), key, now_s() - (int64_t)ttl, &first);
		if (r == 0) {
			if (strcmp(first.body_sha256, upload_sha256(u)) != 0) {
				api_respond_problem(req, 409, "conflict",
						    "this Idempotency-Key was used with a different body (import %s)",
						    first.id);
			} else if (first.state == IMPORT_VALIDATING) {
				api_response_header(req, "Retry-After", "1");
				api_respond_problem(req, 409, "conflict",
						    "the first request with this Idempotency-Key (import %s) is still running",
						    first.id);
			} else {
				answer_outcome(h, req, first.id);
			}
			goto discard;
		}
		c->idem_key = strdup(key);
		struct inflight_key *k = calloc(1, sizeof(*k));
		if (!c->idem_key || !k) {
			free(k);
			r = -ENOMEM;
			goto fail;
		}
		snprintf(k->key, sizeof(k->key), "%s", key);
		k->next = h->keys;
		h->keys = k;
	}

	snprintf(c->sha, sizeof(c->sha), "%s", upload_sha256(u));
	c->bytes = upload_bytes(u);
	r = import_id_generate(c->id);
	if (r < 0)
		goto fail_key;
	c->req = api_request_ref(req);
	api_request_on_gone(req, create_gone, c);
	c->committing_file = true;
	r = upload_commit_file(api_request_loop(req), u, store_state_dir(h->store), c->id,
			       create_file_committed, c);
	if (r < 0) {
		c->committing_file = false;
		c->req = NULL;
		api_request_unref(req);
		goto fail_key;
	}
	return 0;

fail_key:
	if (c->idem_key)
		key_remove(h, c->idem_key);
fail:
	upload_discard(u);
	create_unref(c);
	return r;
discard:
	upload_discard(u);
	create_unref(c);
	return 0;
}

/* ---- GET /v1/imports/{id}, GET /v1/imports ------------------------------- */

static const char *id_param(struct api_request *req, char *buf, size_t len)
{
	return api_request_param(req, "id", buf, len);
}

static int h_get(struct api_request *req, void *ud)
{
	struct h_imports *h = ud;
	char id[64];
	json_object *o = NULL;
	if (!id_param(req, id, sizeof(id)))
		return api_respond_problem(req, 404, "not-found", "no such import");
	int r = import_json_live(h, id, true, &o);
	if (r == -ENOENT)
		return api_respond_problem(req, 404, "not-found", "no import %s", id);
	if (r < 0)
		return r;
	return api_respond_json(req, 200, o);
}

static int h_list(struct api_request *req, void *ud)
{
	struct h_imports *h = ud;
	const char *state = api_request_query(req, "state");
	const char *external_id = api_request_query(req, "external_id");
	const char *v;
	uint64_t limit = LIST_LIMIT_DEFAULT, cursor = 0;
	enum import_state s;
	json_object *o = NULL;

	if (state && import_state_from_name(state, &s) < 0)
		return api_respond_problem(req, 400, "bad-field", "state '%.32s' is not an import state", state);
	if ((v = api_request_query(req, "limit")) && (parse_uint(v, LIST_LIMIT_MAX, &limit) < 0 || limit == 0))
		return api_respond_problem(req, 400, "bad-field", "limit must be an integer from 1 to %d",
					   LIST_LIMIT_MAX);
	if ((v = api_request_query(req, "cursor")) && *v && parse_uint(v, INT64_MAX, &cursor) < 0)
		return api_respond_problem(req, 400, "bad-field", "cursor is not one this server gave");
	if (external_id && !*external_id)
		external_id = NULL;
	int r = import_list_json(store_reader(h->store), state, external_id, (int64_t)cursor, (int)limit,
				 now_s(), &o);
	if (r < 0)
		return r;
	return api_respond_json(req, 200, o);
}

static int h_jobs(struct api_request *req, void *ud)
{
	struct h_imports *h = ud;
	char id[64];
	const char *v;
	uint64_t limit = LIST_LIMIT_DEFAULT, cursor = 0;
	bool has_cursor = false;
	json_object *o = NULL;

	if (!id_param(req, id, sizeof(id)))
		return api_respond_problem(req, 404, "not-found", "no such import");
	if ((v = api_request_query(req, "limit")) && (parse_uint(v, LIST_LIMIT_MAX, &limit) < 0 || limit == 0))
		return api_respond_problem(req, 400, "bad-field", "limit must be an integer from 1 to %d",
					   LIST_LIMIT_MAX);
	if ((v = api_request_query(req, "cursor")) && *v) {
		if (parse_uint(v, INT64_MAX, &cursor) < 0)
			return api_respond_problem(req, 400, "bad-field", "cursor is not one this server gave");
		has_cursor = true;
	}
	int r = import_jobs_json(store_reader(h->store), id, has_cursor ? (int64_t)cursor : -1, (int)limit, &o);
	if (r == -ENOENT)
		return api_respond_problem(req, 404, "not-found", "no import %s", id);
	if (r < 0)
		return r;
	return api_respond_json(req, 200, o);
}

/* ---- GET /v1/imports/{id}/errors (streamed) ------------------------------ */

enum errors_phase { PHASE_OPEN, PHASE_VALIDATION, PHASE_AUTH0, PHASE_CHUNKS, PHASE_CLOSE, PHASE_END };

struct errors_stream {
	struct h_imports *h;
	char id[IMPORT_ID_LEN + 1];
	bool warnings;     /* ?severity=warning */
	bool ndjson;       /* ?format=ndjson */
	bool first;
	enum errors_phase phase;
	FILE *problems;
	char *line;
	size_t line_cap;
	int64_t last_idx;  /* auth0 paging */
	int64_t last_chunk;
	struct chunk chunk; /* a failed chunk being listed */
	bool chunk_loaded;
	int64_t chunk_pos;
	char *chunk_error;
	char *out;         /* pending output */
	size_t out_len, out_off, out_cap;
};

static void errors_stream_free(void *arg)
{
	struct errors_stream *s = arg;
	if (s->problems)
		fclose(s->problems);
	free(s->line);
	chunk_done(&s->chunk);
	free(s->chunk_error);
	free(s->out);
	free(s);
}

static int out_append(struct errors_stream *s, const char *data, size_t len)
{
	if (s->out_len + len > s->out_cap) {
		size_t cap = s->out_cap ? s->out_cap : 16384;
		while (cap < s->out_len + len)
			cap *= 2;
		char *p = realloc(s->out, cap);
		if (!p)
			return -ENOMEM;
		s->out = p;
		s->out_cap = cap;
	}
	memcpy(s->out + s->out_len, data, len);
	s->out_len += len;
	return 0;
}

static int out_entry(struct errors_stream *s, json_object *entry)
{
	const char *text = json_object_to_json_string_ext(entry, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE);
	int r = 0;
	if (!s->ndjson && !s->first)
		r = out_append(s, ",", 1);
	s->first = false;
	if (r == 0)
		r = out_append(s, text, strlen(text));
	if (r == 0 && s->ndjson)
		r = out_append(s, "\n", 1);
	return r;
}

static json_object *user_json(const char *email, const char *user_id)
{
	json_object *u = json_object_new_object();
	json_object_object_add(u, "email", email ? json_object_new_string(email) : NULL);
	json_object_object_add(u, "user_id", user_id ? json_object_new_string(user_id) : NULL);
	return u;
}

static int errors_auth0_row(void *ctx, int64_t idx, const char *email, const char *user_id,
			    const char *errors_json)
{
	struct errors_stream *s = ctx;
	s->last_idx = idx;
	json_object *e = json_object_new_object();
	json_object_object_add(e, "index", json_object_new_int64(idx));
	json_object_object_add(e, "user", user_json(email, user_id));
	json_object_object_add(e, "source", json_object_new_string("auth0"));
	json_object *errs = errors_json ? json_tokener_parse(errors_json) : NULL;
	json_object_object_add(e, "errors", errs ? errs : json_object_new_array());
	int r = out_entry(s, e);
	json_object_put(e);
	return r;
}

/* Produces some output (bounded: ~64 entries or one page of rows). */
static int errors_refill(struct errors_stream *s)
{
	/* The problems file keeps both lists per user; the answer has one
	 * shape whatever the severity (API.md): entries list their problems
	 * under "errors", and so does the document. */
	const char *key = s->warnings ? "warnings" : "errors";
	struct sqlite3 *db = store_reader(s->h->store);
	int r = 0;

	switch (s->phase) {
	case PHASE_OPEN:
		if (!s->ndjson) {
			char head[96];
			snprintf(head, sizeof(head), "{\"import_id\":\"%s\",\"errors\":[", s->id);
			r = out_append(s, head, strlen(head));
		}
		s->phase = PHASE_VALIDATION;
		return r;
	case PHASE_VALIDATION:
		for (int n = 0; n < 64; n++) {
			ssize_t len = s->problems ? getline(&s->line, &s->line_cap, s->problems) : -1;
			if (len <= 0 || s->line[len - 1] != '\n') {
				/* The end, or a line still being written. */
				s->phase = s->warnings ? PHASE_CLOSE : PHASE_AUTH0;
				return 0;
			}
			json_object *o = json_tokener_parse(s->line);
			json_object *list = o ? json_object_object_get(o, key) : NULL;
			if (list && json_object_array_length(list) > 0) {
				json_object *e = json_object_new_object();
				json_object_object_add(e, "index", json_object_get(json_object_object_get(o, "index")));
				json_object_object_add(e, "user", json_object_get(json_object_object_get(o, "user")));
				json_object_object_add(e, "source", json_object_new_string("validation"));
				json_object_object_add(e, "errors", json_object_get(list));
				r = out_entry(s, e);
				json_object_put(e);
			}
			json_object_put(o);
			if (r < 0)
				return r;
		}
		return 0;
	case PHASE_AUTH0: {
		int rows = auth0_user_errors_page(db, s->id, s->last_idx, 200, errors_auth0_row, s);
		if (rows < 0)
			return rows;
		if (rows < 200)
			s->phase = PHASE_CHUNKS;
		return 0;
	}
	case PHASE_CHUNKS: {
		if (!s->chunk_loaded) {
			free(s->chunk_error);
			s->chunk_error = NULL;
			r = chunk_next_failed(db, s->id, s->last_chunk, &s->chunk, &s->chunk_error);
			if (r == -ENOENT) {
				s->phase = PHASE_CLOSE;
				return 0;
			}
			if (r < 0)
				return r;
			s->last_chunk = s->chunk.chunk_no;
			s->chunk_loaded = true;
			s->chunk_pos = 0;
		}
		for (int n = 0; n < 256 && s->chunk_pos < s->chunk.users && r == 0; n++, s->chunk_pos++) {
			json_object *e = json_object_new_object(), *errs = json_object_new_array();
			json_object *p = json_object_new_object();
			uint32_t idx = s->chunk.indices[s->chunk_pos];
			json_object_object_add(p, "index", json_object_new_int64(idx));
			json_object_object_add(p, "path", json_object_new_string(""));
			json_object_object_add(p, "code", json_object_new_string("CHUNK_FAILED"));
			json_object_object_add(p, "message",
					       json_object_new_string(s->chunk_error ? s->chunk_error : "the chunk failed"));
			json_object_array_add(errs, p);
			json_object_object_add(e, "index", json_object_new_int64(idx));
			json_object_object_add(e, "user", user_json(NULL, NULL));
			json_object_object_add(e, "source", json_object_new_string("auth0"));
			json_object_object_add(e, "errors", errs);
			r = out_entry(s, e);
			json_object_put(e);
		}
		if (s->chunk_pos >= s->chunk.users) {
			chunk_done(&s->chunk);
			s->chunk_loaded = false;
		}
		return r;
	}
	case PHASE_CLOSE:
		s->phase = PHASE_END;
		return s->ndjson ? 0 : out_append(s, "]}\n", 3);
	case PHASE_END:
	default:
		return 0;
	}
}

/* Refills per read: each is at most 64 lines of the problems file or one
 * page of rows, so one call reads at most ~1024 lines however many of them
 * the severity filter skips. */
#define ERRORS_REFILLS_PER_READ 16

static long errors_read(void *arg, uint64_t pos, char *buf, size_t max)
{
	struct errors_stream *s = arg;
	int refills = 0;
	while (s->out_off == s->out_len) {
		s->out_off = s->out_len = 0;
		if (s->phase == PHASE_END)
			return 0;
		if (refills++ == ERRORS_REFILLS_PER_READ)
			return API_STREAM_LATER; /* the loop gets a turn */
		int r = errors_refill(s);
		if (r < 0) {
			log_warn("api", "import %s: errors stream aborted: %s", s->id, strerror(-r));
			return -1;
		}
	}
	size_t n = s->out_len - s->out_off;
	if (n > max)
		n = max;
	memcpy(buf, s->out + s->out_off, n);
	s->out_off += n;
	return (long)n;
}

static int h_errors(struct api_request *req, void *ud)
{
	struct h_imports *h = ud;
	char id[64], path[1024];
	struct import_row row;
	const char *sev = api_request_query(req, "severity");
	const char *fmt = api_request_query(req, "format");

	if (!id_param(req, id, sizeof(id)) || import_load(store_reader(h->store), id, &row) < 0)
		return api_respond_problem(req, 404, "not-found", "no such import");
	if (sev && strcmp(sev, "error") != 0 && strcmp(sev, "warning") != 0)
		return api_respond_problem(req, 400, "bad-field", "severity must be error or warning");
	if (fmt && strcmp(fmt, "json") != 0 && strcmp(fmt, "ndjson") != 0)
		return api_respond_problem(req, 400, "bad-field", "format must be json or ndjson");
	struct errors_stream *s = calloc(1, sizeof(*s));
	if (!s)
		return -ENOMEM;
	s->h = h;
	snprintf(s->id, sizeof(s->id), "%s", row.id);
	s->warnings = sev && strcmp(sev, "warning") == 0;
	s->ndjson = fmt && strcmp(fmt, "ndjson") == 0;
	s->first = true;
	s->last_idx = -1;
	s->last_chunk = -1;
	if (intake_problems_path(store_state_dir(h->store), row.id, path, sizeof(path)) == 0)
		s->problems = fopen(path, "re");
	return api_respond_stream(req, 200, s->ndjson ? "application/x-ndjson" : "application/json",
				  errors_read, s, errors_stream_free);
}

/* ---- GET /v1/imports/{id}/failed-users ------------------------------------ */

struct failed_users {
	struct h_imports *h;
	struct api_request *req;
	uv_work_t work;
	char id[IMPORT_ID_LEN + 1];
	char state_dir[1024];
	char out_path[1100];
	int status;
	FILE *out;
};

static void failed_users_free(void *arg)
{
	struct failed_users *f = arg;
	if (f->out)
		fclose(f->out);
	if (f->out_path[0])
		unlink(f->out_path);
	free(f);
}

static int write_to_file(void *ctx, const void *buf, size_t len)
{
	FILE *f = ctx;
	return fwrite(buf, 1, len, f) == len ? 0 : -EIO;
}

static void failed_users_work(uv_work_t *w)
{
	struct failed_users *f = w->data;
	uint32_t *idx = NULL;
	size_t n = 0;
	char upload[1100];
	unsigned char rnd[8];
	int r;

	r = intake_failed_indices(f->state_dir, f->id, &idx, &n);
	if (r < 0)
		goto out;
	if (getrandom(rnd, sizeof(rnd), 0) != (ssize_t)sizeof(rnd)) {
		r = -EIO;
		goto out;
	}
	snprintf(f->out_path, sizeof(f->out_path), "%s/spool/failed-%02x%02x%02x%02x%02x%02x%02x%02x.json",
		 f->state_dir, rnd[0], rnd[1], rnd[2], rnd[3], rnd[4], rnd[5], rnd[6], rnd[7]);
	f->out = fopen(f->out_path, "w+e");
	if (!f->out) {
		r = -errno;
		f->out_path[0] = '\0';
		goto out;
	}
	intake_upload_path(f->state_dir, f->id, upload, sizeof(upload));
	r = users_extract(upload, idx, n, write_to_file, f->out);
	if (r == 0 && (fflush(f->out) != 0 || fseek(f->out, 0, SEEK_SET) != 0))
		r = -EIO;
out:
	free(idx);
	f->status = r;
}

static long failed_users_read(void *arg, uint64_t pos, char *buf, size_t max)
{
	struct failed_users *f = arg;
	size_t n = fread(buf, 1, max, f->out);
	if (n == 0 && ferror(f->out))
		return -1;
	return (long)n;
}

static void failed_users_after(uv_work_t *w, int status)
{
	struct failed_users *f = w->data;
	struct api_request *req = f->req;
	int r = status < 0 ? status : f->status;
	if (r == -ENOENT) {
		api_respond_problem(req, 410, "gone", "the upload of import %s is no longer kept", f->id);
		failed_users_free(f);
	} else if (r < 0) {
		log_error("api", "import %s: failed users: %s", f->id, strerror(-r));
		api_respond_problem(req, 500, "internal", "cannot read the failed users of %s", f->id);
		failed_users_free(f);
	} else if (api_respond_stream(req, 200, "application/json", failed_users_read, f, failed_users_free) < 0) {
		/* the stream owns f even on error */
	}
	api_request_unref(req);
}

static int h_failed_users(struct api_request *req, void *ud)
{
	struct h_imports *h = ud;
	struct config *cfg = api_request_config(req);
	char id[64], upload[1100];
	struct import_row row;

	if (!id_param(req, id, sizeof(id)) || import_load(store_reader(h->store), id, &row) < 0)
		return api_respond_problem(req, 404, "not-found", "no such import");
	if (row.state == IMPORT_VALIDATING)
		return api_response_header(req, "Retry-After", "1"),
		       api_respond_problem(req, 409, "conflict", "import %s is still validating", id);
	uint64_t retention = cfg ? cfg->spool_retention : 7 * 86400;
	intake_upload_path(store_state_dir(h->store), row.id, upload, sizeof(upload));
	if ((row.finished_at > 0 && now_s() > row.finished_at + (int64_t)retention) || access(upload, R_OK) < 0)
		return api_respond_problem(req, 410, "gone", "the upload of import %s is no longer kept", id);
	struct failed_users *f = calloc(1, sizeof(*f));
	if (!f)
		return -ENOMEM;
	f->h = h;
	snprintf(f->id, sizeof(f->id), "%s", row.id);
	snprintf(f->state_dir, sizeof(f->state_dir), "%s", store_state_dir(h->store));
	f->work.data = f;
	f->req = api_request_ref(req);
	int r = uv_queue_work(api_request_loop(req), &f->work, failed_users_work, failed_users_after);
	if (r < 0) {
		api_request_unref(req);
		free(f);
		return r;
	}
	return 0;
}

/* ---- DELETE /v1/imports/{id} ---------------------------------------------- */

struct cancel {
	struct h_imports *h;
	struct api_request *req;
	char id[IMPORT_ID_LEN + 1];
	int result;
	enum import_state state;
};

static int cancel_write(struct sqlite3 *db, void *ctx)
{
	struct cancel *c = ctx;
	c->result = import_cancel_tx(db, c->id, now_s(), &c->state);
	/* Refusals are answers, not failures: commit nothing, but say so. */
	return c->result < 0 ? c->result : 0;
}

static void cancel_done(int status, void *ctx)
{
	struct cancel *c = ctx;
	if (status == -EPERM)
		api_respond_problem(c->req, 409, "conflict", "import %s has already ended", c->id);
	else if (status == -ENOENT)
		api_respond_problem(c->req, 404, "not-found", "no import %s", c->id);
	else if (status < 0)
		api_respond_problem(c->req, 500, "internal", "cannot cancel import %s", c->id);
	else if (c->result == 1 && c->state == IMPORT_CANCELLED)
		answer_import(c->h, c->req, 200, c->id);
	else
		answer_import(c->h, c->req, 202, c->id);
	api_request_unref(c->req);
	free(c);
}

static int h_cancel(struct api_request *req, void *ud)
{
	struct h_imports *h = ud;
	char id[64];
	struct import_row row;
	if (!id_param(req, id, sizeof(id)) || import_load(store_reader(h->store), id, &row) < 0)
		return api_respond_problem(req, 404, "not-found", "no such import");
	struct cancel *c = calloc(1, sizeof(*c));
	if (!c)
		return -ENOMEM;
	c->h = h;
	snprintf(c->id, sizeof(c->id), "%s", row.id);
	c->req = api_request_ref(req);
	int r = store_write(h->store, cancel_write, c, cancel_done);
	if (r < 0) {
		api_request_unref(req);
		free(c);
		return r;
	}
	return 0;
}

/* ---- POST /v1/imports/{id}/retry ----------------------------------------- */

struct retry {
	struct h_imports *h;
	struct api_request *req;
	char id[IMPORT_ID_LEN + 1];
	int64_t chunks, users;
};

static int retry_write(struct sqlite3 *db, void *ctx)
{
	struct retry *t = ctx;
	return import_retry_tx(db, t->id, now_s(), &t->chunks, &t->users);
}

static void retry_done(int status, void *ctx)
{
	struct retry *t = ctx;
	if (status == -EPERM)
		api_respond_problem(t->req, 409, "conflict",
				    "import %s cannot be retried: only a failed or completed_with_errors import "
				    "without an import-wide error can", t->id);
	else if (status == -ENODATA)
		api_respond_problem(t->req, 409, "conflict",
				    "import %s has no chunk that failed for a transient reason: nothing to retry "
				    "(users Auth0 rejected are in /failed-users, to fix and resubmit)", t->id);
	else if (status == -ENOENT)
		api_respond_problem(t->req, 404, "not-found", "no import %s", t->id);
	else if (status < 0)
		api_respond_problem(t->req, 500, "internal", "cannot retry import %s", t->id);
	else {
		log_info("api", "import %s: retry of %" PRId64 " chunks (%" PRId64 " users)", t->id, t->chunks,
			 t->users);
		answer_import(t->h, t->req, 202, t->id);
	}
	api_request_unref(t->req);
	free(t);
}

/* The chunk files of an import are there (not swept by spool_retention). */
static bool chunks_kept(const char *state_dir, const struct import_row *row, uint64_t retention)
{
	char dir[1100];
	if (row->finished_at > 0 && now_s() > row->finished_at + (int64_t)retention)
		return false;
	if (intake_import_dir(state_dir, row->id, dir, sizeof(dir)) < 0)
		return false;
	size_t l = strlen(dir);
	if (l + 8 > sizeof(dir))
		return false;
	memcpy(dir + l, "/chunks", 8);
	return access(dir, R_OK | X_OK) == 0;
}

static int h_retry(struct api_request *req, void *ud)
{
	struct h_imports *h = ud;
	struct config *cfg = api_request_config(req);
	char id[64];
	struct import_row row;
	if (!id_param(req, id, sizeof(id)) || import_load(store_reader(h->store), id, &row) < 0)
		return api_respond_problem(req, 404, "not-found", "no such import");
	if (row.state != IMPORT_FAILED && row.state != IMPORT_COMPLETED_WITH_ERRORS)
		return api_respond_problem(req, 409, "conflict", "import %s is %s: only a failed or "
					   "completed_with_errors import can be retried", id,
					   import_state_name(row.state));
	if (!chunks_kept(store_state_dir(h->store), &row, cfg ? cfg->spool_retention : 7 * 86400))
		return api_respond_problem(req, 410, "gone", "the chunk files of import %s are no longer kept "
					   "(spool_retention): resubmit its /failed-users instead", id);
	struct retry *t = calloc(1, sizeof(*t));
	if (!t)
		return -ENOMEM;
	t->h = h;
	snprintf(t->id, sizeof(t->id), "%s", row.id);
	t->req = api_request_ref(req);
	int r = store_write(h->store, retry_write, t, retry_done);
	if (r < 0) {
		api_request_unref(req);
		free(t);
		return r;
	}
	return 0;
}

static const struct api_route h_imports_routes[] = {
	{ "POST", "/v1/imports", h_create, &upload_sink, 0 },
	{ "GET", "/v1/imports", h_list, NULL, 0 },
	{ "GET", "/v1/imports/{id}", h_get, NULL, 0 },
	{ "DELETE", "/v1/imports/{id}", h_cancel, NULL, 0 },
	{ "GET", "/v1/imports/{id}/errors", h_errors, NULL, 0 },
	{ "GET", "/v1/imports/{id}/jobs", h_jobs, NULL, 0 },
	{ "GET", "/v1/imports/{id}/failed-users", h_failed_users, NULL, 0 },
	{ "POST", "/v1/imports/{id}/retry", h_retry, NULL, 0 },
};

/* /metrics: imports by state, users by outcome (bounded store reads). */
static void imports_collect(struct metrics *m, void *arg)
{
	struct h_imports *h = arg;
	int64_t by_state[IMPORT_STATE_COUNT];
	struct import_users u;
	if (import_totals_load(store_reader(h->store), by_state, &u) < 0)
		return;
	static const char *const state_lbl[] = { "state" };
	static const char *const outcome_lbl[] = { "outcome" };
	struct metric *gi = metrics_gauge(m, "importd_imports", "Imports by state", 1, state_lbl);
	struct metric *gu = metrics_gauge(m, "importd_users", "Users of all imports by outcome", 1, outcome_lbl);
	for (int s = 0; gi && s < IMPORT_STATE_COUNT; s++)
		metric_set(gi, (double)by_state[s], (const char *[]){ import_state_name((enum import_state)s) });
	if (!gu)
		return;
	const struct {
		const char *name;
		int64_t v;
	} outcomes[] = {
		{ "invalid", u.invalid },   { "inserted", u.inserted }, { "updated", u.updated },
		{ "failed", u.failed },     { "pending", u.pending },   { "not_submitted", u.not_submitted },
		{ "assumed", u.assumed },
	};
	for (size_t i = 0; i < sizeof(outcomes) / sizeof(outcomes[0]); i++)
		metric_set(gu, (double)outcomes[i].v, (const char *[]){ outcomes[i].name });
	int64_t pending = 0;
	struct metric *gn = metrics_gauge(m, "importd_notifications_pending",
					  "notify_url deliveries not made yet (waiting, or retrying after a failure)",
					  0, NULL);
	if (gn && notifier_pending(store_reader(h->store), &pending) == 0)
		metric_set(gn, (double)pending, NULL);
}

int h_imports_add_metrics(struct metrics *m, struct h_imports *h)
{
	return m ? metrics_add_collector(m, imports_collect, h) : 0;
}

int h_imports_register(struct api_server *server, struct h_imports *h)
{
	return api_server_add_routes(server, h_imports_routes,
				     sizeof(h_imports_routes) / sizeof(h_imports_routes[0]), h);
}
