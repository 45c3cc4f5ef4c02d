/* mgmt — Auth0 Management API calls (see mgmt.h). */
#include "daemon/auth0/mgmt.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "daemon/users/users.h"

/* The users library sizes chunks for the worst multipart this file can
 * send; what we send must never be larger. */
_Static_assert(A0_IMPORT_MULTIPART_OVERHEAD_MAX <= USERS_MULTIPART_OVERHEAD,
	       "multipart overhead exceeds what the chunk budget assumes");
_Static_assert(A0_IMPORT_MAX_REQUEST_BYTES == USERS_REQUEST_MAX, "request maximum");
_Static_assert(A0_EXTERNAL_ID_MAX <= USERS_MULTIPART_EXTERNAL_ID_MAX, "external_id maximum");

/* libcurl's multipart boundary: 24 dashes and 16 random characters. */
#define MIME_BOUNDARY_LEN 40u
#define JOB_MAX_BODY (256u * 1024u)
/* Errors of one job: up to ~500 KB of users echoed back, plus messages. */
#define ERRORS_MAX_BODY (16u * 1024u * 1024u)
#define DOWNLOAD_TIMEOUT_MS (10L * 60L * 1000L)

struct a0_client {
	struct uvcurl *uc;
	struct a0_token *token;
	char *base_url;
	char *ca_file;
	long connect_timeout_ms, timeout_ms;
	a0_clock_fn now_ms;
	void *clock_arg;
	a0_observer_fn observer;
	void *observer_arg;
	struct a0_call *calls;
};

struct a0_call {
	struct a0_client *c;
	struct a0_call *prev, *next;
	enum a0_call_kind kind;
	char *url;
	char *body;            /* export create */
	struct a0_import_params params;
	char *users_path, *connection_id, *external_id;
	int fd;
	size_t max_bytes;
	a0_done_cb cb;
	void *arg;
	struct uvcurl_request *req;
	struct a0_token_waiter *waiter;
	bool refreshed;
	char *bearer_used;
	unsigned requests;
	size_t request_bytes;
};

static int64_t client_now(const struct a0_client *c)
{
	return c->now_ms(c->clock_arg);
}

int a0_client_new(struct uvcurl *uc, const struct a0_client_config *cfg, struct a0_client **ret)
{
	if (!uc || !cfg || !cfg->base_url)
		return -EINVAL;
	struct a0_client *c = calloc(1, sizeof(*c));
	if (!c)
		return -ENOMEM;
	c->uc = uc;
	c->now_ms = cfg->now_ms ? cfg->now_ms : a0_clock_realtime_ms;
	c->clock_arg = cfg->clock_arg;
	c->connect_timeout_ms = cfg->connect_timeout_ms;
	c->timeout_ms = cfg->timeout_ms;
	c->base_url = strdup(cfg->base_url);
	c->ca_file = cfg->ca_file ? strdup(cfg->ca_file) : NULL;
	if (!c->base_url || (cfg->ca_file && !c->ca_file)) {
		a0_client_free(c);
		return -ENOMEM;
	}
	size_t bl = strlen(c->base_url);
	while (bl > 0 && c->base_url[bl - 1] == '/')
		c->base_url[--bl] = '\0';
	struct a0_token_config tc = {
		.base_url = c->base_url,
		.audience = cfg->audience,
		.client_id = cfg->client_id,
		.client_secret = cfg->client_secret,
		.ca_file = cfg->ca_file,
		.connect_timeout_ms = cfg->connect_timeout_ms,
		.timeout_ms = cfg->timeout_ms,
		.now_ms = c->now_ms,
		.clock_arg = c->clock_arg,
	};
	int r = a0_token_new(uc, &tc, &c->token);
	if (r < 0) {
		a0_client_free(c);
		return r;
	}
	*ret = c;
	return 0;
}

static void call_free(struct a0_call *call)
{
	struct a0_client *c = call->c;
	if (call->prev)
		call->prev->next = call->next;
	else if (c->calls == call)
		c->calls = call->next;
	if (call->next)
		call->next->prev = call->prev;
	if (call->req)
		uvcurl_request_cancel(call->req);
	if (call->waiter)
		a0_token_waiter_cancel(call->waiter);
	free(call->url);
	free(call->body);
	free(call->users_path);
	free(call->connection_id);
	free(call->external_id);
	if (call->bearer_used) {
		explicit_bzero(call->bearer_used, strlen(call->bearer_used));
		free(call->bearer_used);
	}
	free(call);
}

void a0_client_free(struct a0_client *c)
{
	if (!c)
		return;
	while (c->calls)
		call_free(c->calls);
	a0_token_free(c->token);
	free(c->base_url);
	free(c->ca_file);
	free(c);
}

bool a0_client_idle(const struct a0_client *c)
{
	return !c || !c->calls;
}

void a0_client_set_observer(struct a0_client *c, a0_observer_fn fn, void *arg)
{
	c->observer = fn;
	c->observer_arg = arg;
}

struct a0_token *a0_client_token(struct a0_client *c)
{
	return c->token;
}

void a0_call_cancel(struct a0_call *call)
{
	if (call)
		call_free(call);
}

/* --- multipart sizing ---------------------------------------------------- */

static size_t text_part_bytes(const char *name, size_t value_len)
{
	/* --B\r\n Content-Disposition: form-data; name="N"\r\n \r\n V\r\n */
	return 2 + MIME_BOUNDARY_LEN + 2 +
	       strlen("Content-Disposition: form-data; name=\"\"\r\n") + strlen(name) + 2 +
	       value_len + 2;
}

size_t a0_import_request_bytes(const struct a0_import_params *p, size_t users_bytes)
{
	size_t n = 2 + MIME_BOUNDARY_LEN + 2 +
		   strlen("Content-Disposition: form-data; name=\"users\"; filename=\"users.json\"\r\n") +
		   strlen("Content-Type: application/json\r\n") + 2 + users_bytes + 2;
	n += text_part_bytes("connection_id", p->connection_id ? strlen(p->connection_id) : 0);
	n += text_part_bytes("upsert", p->upsert ? 4 : 5);
	if (p->external_id && p->external_id[0])
		n += text_part_bytes("external_id", strlen(p->external_id));
	n += text_part_bytes("send_completion_email", p->send_completion_email ? 4 : 5);
	n += 2 + MIME_BOUNDARY_LEN + 2 + 2; /* --B--\r\n */
	return n;
}

static curl_mime *import_mime(const struct a0_call *call)
{
	curl_mime *m = curl_mime_init(NULL);
	if (!m)
		return NULL;
	curl_mimepart *p = curl_mime_addpart(m);
	if (!p || curl_mime_name(p, "users") != CURLE_OK ||
	    curl_mime_filedata(p, call->users_path) != CURLE_OK ||
	    curl_mime_filename(p, "users.json") != CURLE_OK ||
	    curl_mime_type(p, "application/json") != CURLE_OK)
		goto fail;
	struct {
		const char *name, *value;
	} parts[] = {
		{"connection_id", call->connection_id},
		{"upsert", call->params.upsert ? "true" : "false"},
		{"external_id", call->external_id},
		{"send_completion_email", call->params.send_completion_email ? "true" : "false"},
	};
	for (size_t i = 0; i < sizeof(parts) / sizeof(parts[0]); i++) {
		if (!parts[i].value || !parts[i].value[0])
			continue;
		p = curl_mime_addpart(m);
		if (!p || curl_mime_name(p, parts[i].name) != CURLE_OK ||
		    curl_mime_data(p, parts[i].value, CURL_ZERO_TERMINATED) != CURLE_OK)
			goto fail;
	}
	return m;
fail:
	curl_mime_free(m);
	return NULL;
}

/* --- parsing --------------------------------------------------------------- */

static void copy_str(json_object *o, const char *key, char *dst, size_t cap)
{
	json_object *v;
	if (json_object_object_get_ex(o, key, &v) && json_object_is_type(v, json_type_string))
		snprintf(dst, cap, "%s", json_object_get_string(v));
}

static long get_long(json_object *o, const char *key, long dflt)
{
	json_object *v;
	if (json_object_object_get_ex(o, key, &v) &&
	    (json_object_is_type(v, json_type_int) || json_object_is_type(v, json_type_double)))
		return (long)json_object_get_int64(v);
	return dflt;
}

static void job_from_object(json_object *o, struct a0_job *j)
{
	memset(j, 0, sizeof(*j));
	j->percentage_done = -1;
	j->time_left_seconds = -1;
	copy_str(o, "id", j->id, sizeof(j->id));
	copy_str(o, "type", j->type, sizeof(j->type));
	copy_str(o, "status", j->status, sizeof(j->status));
	copy_str(o, "connection_id", j->connection_id, sizeof(j->connection_id));
	copy_str(o, "created_at", j->created_at, sizeof(j->created_at));
	copy_str(o, "external_id", j->external_id, sizeof(j->external_id));
	j->percentage_done = (int)get_long(o, "percentage_done", -1);
	j->time_left_seconds = get_long(o, "time_left_seconds", -1);
	json_object *s;
	if (json_object_object_get_ex(o, "summary", &s) && json_object_is_type(s, json_type_object)) {
		j->has_summary = true;
		j->inserted = get_long(s, "inserted", 0);
		j->updated = get_long(s, "updated", 0);
		j->failed = get_long(s, "failed", 0);
		j->total = get_long(s, "total", 0);
	}
	json_object *sd;
	if (json_object_object_get_ex(o, "status_details", &sd) && sd) {
		if (json_object_is_type(sd, json_type_string))
			snprintf(j->status_details, sizeof(j->status_details), "%s",
				 json_object_get_string(sd));
		else
			snprintf(j->status_details, sizeof(j->status_details), "%s",
				 json_object_to_json_string_ext(sd, JSON_C_TO_STRING_PLAIN));
	}
	json_object *loc;
	if (json_object_object_get_ex(o, "location", &loc) && json_object_is_type(loc, json_type_string))
		j->location = strdup(json_object_get_string(loc));
}

static json_object *parse_json(const char *body, size_t len)
{
	if (!body || len == 0 || len > INT32_MAX)
		return NULL;
	json_tokener *tok = json_tokener_new();
	if (!tok)
		return NULL;
	json_object *o = json_tokener_parse_ex(tok, body, (int)len);
	if (o && json_tokener_get_error(tok) != json_tokener_success) {
		json_object_put(o);
		o = NULL;
	}
	json_tokener_free(tok);
	return o;
}

int a0_job_parse(const char *body, size_t len, struct a0_job *ret)
{
	json_object *o = parse_json(body, len);
	if (!o || !json_object_is_type(o, json_type_object)) {
		json_object_put(o);
		return -EBADMSG;
	}
	job_from_object(o, ret);
	json_object_put(o);
	return 0;
}

void a0_job_done(struct a0_job *job)
{
	if (job) {
		free(job->location);
		job->location = NULL;
	}
}

/* --- the call machine -------------------------------------------------- */

static int call_send(struct a0_call *call, const char *bearer);
static int call_get_token(struct a0_call *call);

static void call_finish(struct a0_call *call, struct a0_result *res)
{
	res->kind = call->kind;
	res->requests = call->requests;
	res->request_bytes = call->request_bytes;
	a0_done_cb cb = call->cb;
	void *arg = call->arg;
	call->req = NULL;
	call->waiter = NULL;
	call_free(call);
	cb(res, arg);
	a0_job_done(&res->job);
	if (res->errors)
		json_object_put(res->errors);
}

static void finish_with(struct a0_call *call, const struct a0_class *cls, int result)
{
	struct a0_result res;
	memset(&res, 0, sizeof(res));
	res.cls = *cls;
	res.result = result;
	call_finish(call, &res);
}

static void token_ready(int result, const struct a0_class *cls, void *arg)
{
	struct a0_call *call = arg;
	call->waiter = NULL;
	if (result < 0) {
		finish_with(call, cls, result);
		return;
	}
	int r = call_get_token(call);
	if (r < 0) {
		struct a0_class c = {.verdict = A0_RETRY};
		snprintf(c.message, sizeof(c.message), "cannot start request: %s", strerror(-r));
		finish_with(call, &c, r);
	}
}

/* Sends with a cached token, or waits for one. */
static int call_get_token(struct a0_call *call)
{
	const char *bearer;
	for (;;) {
		if (a0_token_peek(call->c->token, &bearer) == 0)
			return call_send(call, bearer);
		int r = a0_token_wait(call->c->token, token_ready, call, &call->waiter);
		if (r == -EALREADY)
			continue;
		return r;
	}
}

static void call_done(struct uvcurl_request *req, void *arg)
{
	struct a0_call *call = arg;
	struct a0_client *c = call->c;
	call->req = NULL;
	int64_t now = client_now(c);
	if (call->kind != A0_CALL_EXPORT)
		call->request_bytes = uvcurl_request_upload_size(req);
	size_t len = 0;
	const char *body = uvcurl_request_body(req, &len);
	struct a0_answer a = {
		.result = uvcurl_request_result(req),
		.status = uvcurl_request_status(req),
		.body = body,
		.body_len = len,
		.content_type = uvcurl_request_header(req, "content-type"),
		.token_refreshed = call->refreshed,
	};
	ratelimit_parse(uvcurl_request_header(req, "x-ratelimit-limit"),
			uvcurl_request_header(req, "x-ratelimit-remaining"),
			uvcurl_request_header(req, "x-ratelimit-reset"),
			uvcurl_request_header(req, "retry-after"), now, &a.rl);
	struct a0_class cls;
	a0_classify(&a, now, &cls);
	if (call->kind == A0_CALL_DOWNLOAD) {
		/* The file host is not Auth0: a 401/403 there is an expired link. */
		if (cls.verdict == A0_REFRESH)
			cls.verdict = A0_REJECTED;
	} else if (c->observer) {
		struct a0_observation obs = {
			.kind = call->kind,
			.status = a.result < 0 ? 0 : a.status,
			.result = a.result,
			.rl = &a.rl,
			.cls = &cls,
			.request_bytes = call->request_bytes,
		};
		c->observer(&obs, c->observer_arg);
	}
	if (cls.verdict == A0_REFRESH && !call->refreshed) {
		call->refreshed = true;
		a0_token_drop(c->token, call->bearer_used);
		int r = call_get_token(call);
		if (r == 0)
			return;
		cls.verdict = A0_RETRY;
		snprintf(cls.message, sizeof(cls.message), "cannot start request: %s", strerror(-r));
	}

	struct a0_result res;
	memset(&res, 0, sizeof(res));
	res.cls = cls;
	res.status = a.status;
	res.result = a.result;
	res.rl = a.rl;
	res.download_bytes = uvcurl_request_body_size(req);
	if (cls.verdict == A0_OK) {
		switch (call->kind) {
		case A0_CALL_IMPORT:
		case A0_CALL_JOB:
		case A0_CALL_EXPORT:
			if (a0_job_parse(body, len, &res.job) == 0 && res.job.id[0]) {
				res.has_job = true;
			} else {
				a0_job_done(&res.job);
				res.cls.verdict = A0_RETRY;
				snprintf(res.cls.message, sizeof(res.cls.message),
					 "HTTP %ld answer is not a job object", a.status);
			}
			break;
		case A0_CALL_JOB_ERRORS:
			if (a.status == 204 || len == 0)
				break;
			{
				json_object *o = parse_json(body, len);
				if (o && json_object_is_type(o, json_type_array)) {
					res.errors = o;
				} else if (o && json_object_is_type(o, json_type_object)) {
					job_from_object(o, &res.job);
					res.has_job = true;
					json_object_put(o);
				} else {
					json_object_put(o);
					res.cls.verdict = A0_RETRY;
					snprintf(res.cls.message, sizeof(res.cls.message),
						 "job errors answer is neither a list nor a job");
				}
			}
			break;
		case A0_CALL_USERS_BY_EMAIL: {
			json_object *o = parse_json(body, len);
			if (o && json_object_is_type(o, json_type_array)) {
				res.errors = o;
			} else {
				json_object_put(o);
				res.cls.verdict = A0_RETRY;
				snprintf(res.cls.message, sizeof(res.cls.message),
					 "users-by-email answer is not a list");
			}
			break;
		}
		case A0_CALL_DOWNLOAD:
		case A0_CALL_USER_DELETE:
			break;
		}
	}
	call_finish(call, &res);
}

static int call_send(struct a0_call *call, const char *bearer)
{
	struct a0_client *c = call->c;
	const char *hdrs[4] = {0};
	size_t nh = 0;
	if (call->kind != A0_CALL_DOWNLOAD) {
		if (bearer) {
			char *b = strdup(bearer);
			if (!b)
				return -ENOMEM;
			if (call->bearer_used) {
				explicit_bzero(call->bearer_used, strlen(call->bearer_used));
				free(call->bearer_used);
			}
			call->bearer_used = b;
			hdrs[nh++] = call->bearer_used;
		}
		hdrs[nh++] = "Accept: application/json";
	}
	struct uvcurl_request_opts o = {
		.method = "GET",
		.url = call->url,
		.headers = hdrs,
		.connect_timeout_ms = c->connect_timeout_ms,
		.timeout_ms = c->timeout_ms,
		.max_body = JOB_MAX_BODY,
		.body_fd = -1,
		.ca_file = c->ca_file,
	};
	call->request_bytes = 0;
	switch (call->kind) {
	case A0_CALL_IMPORT:
		o.method = "POST";
		/* A lost answer must reach us, not be resent by libcurl. */
		o.fresh_connect = true;
		o.mime = import_mime(call);
		if (!o.mime)
			return -ENOMEM;
		break;
	case A0_CALL_EXPORT:
		o.method = "POST";
		hdrs[nh++] = "Content-Type: application/json";
		o.body = call->body;
		o.body_len = strlen(call->body);
		call->request_bytes = o.body_len;
		break;
	case A0_CALL_JOB_ERRORS:
		o.max_body = ERRORS_MAX_BODY;
		break;
	case A0_CALL_DOWNLOAD:
		o.max_body = call->max_bytes;
		o.body_fd = call->fd;
		if (o.timeout_ms <= 0 || o.timeout_ms < DOWNLOAD_TIMEOUT_MS)
			o.timeout_ms = DOWNLOAD_TIMEOUT_MS;
		break;
	case A0_CALL_USER_DELETE:
		o.method = "DELETE";
		break;
	case A0_CALL_JOB:
	case A0_CALL_USERS_BY_EMAIL:
		break;
	}
	int r = uvcurl_request_start(c->uc, &o, call_done, call, &call->req);
	if (r < 0) {
		curl_mime_free(o.mime);
		return r;
	}
	call->requests++;
	return 0;
}

static int call_new(struct a0_client *c, enum a0_call_kind kind, a0_done_cb cb, void *arg,
		    struct a0_call **ret)
{
	if (!c || !cb)
		return -EINVAL;
	struct a0_call *call = calloc(1, sizeof(*call));
	if (!call)
		return -ENOMEM;
	call->c = c;
	call->kind = kind;
	call->cb = cb;
	call->arg = arg;
	call->fd = -1;
	call->next = c->calls;
	if (c->calls)
		c->calls->prev = call;
	c->calls = call;
	*ret = call;
	return 0;
}

static int call_start(struct a0_call *call, struct a0_call **ret)
{
	int r = call->kind == A0_CALL_DOWNLOAD ? call_send(call, NULL) : call_get_token(call);
	if (r < 0) {
		call->req = NULL;
		call->waiter = NULL;
		call_free(call);
		return r;
	}
	if (ret)
		*ret = call;
	return 0;
}

static bool valid_job_id(const char *id)
{
	if (!id || !id[0] || strlen(id) > 60)
		return false;
	for (const char *p = id; *p; p++)
		if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
		      (*p >= '0' && *p <= '9') || *p == '_' || *p == '-'))
			return false;
	return true;
}

int a0_import_submit(struct a0_client *c, const struct a0_import_params *p, a0_done_cb cb,
		     void *arg, struct a0_call **ret)
{
	if (!p || !p->users_path || !p->connection_id ||
	    (p->external_id && strlen(p->external_id) > A0_EXTERNAL_ID_MAX))
		return -EINVAL;
	struct a0_call *call;
	int r = call_new(c, A0_CALL_IMPORT, cb, arg, &call);
	if (r < 0)
		return r;
	call->params = *p;
	call->users_path = strdup(p->users_path);
	call->connection_id = strdup(p->connection_id);
	call->external_id = p->external_id ? strdup(p->external_id) : NULL;
	if (asprintf(&call->url, "%s/api/v2/jobs/users-imports", c->base_url) < 0)
		call->url = NULL;
	if (!call->users_path || !call->connection_id || !call->url ||
	    (p->external_id && !call->external_id)) {
		call_free(call);
		return -ENOMEM;
	}
	call->params.users_path = call->users_path;
	call->params.connection_id = call->connection_id;
	call->params.external_id = call->external_id;
	return call_start(call, ret);
}

static int job_call(struct a0_client *c, enum a0_call_kind kind, const char *job_id,
		    const char *suffix, a0_done_cb cb, void *arg, struct a0_call **ret)
{
	if (!valid_job_id(job_id))
		return -EINVAL;
	struct a0_call *call;
	int r = call_new(c, kind, cb, arg, &call);
	if (r < 0)
		return r;
	if (asprintf(&call->url, "%s/api/v2/jobs/%s%s", c->base_url, job_id, suffix) < 0) {
		call->url = NULL;
		call_free(call);
		return -ENOMEM;
	}
	return call_start(call, ret);
}

int a0_job_get(struct a0_client *c, const char *job_id, a0_done_cb cb, void *arg,
	       struct a0_call **ret)
{
	return job_call(c, A0_CALL_JOB, job_id, "", cb, arg, ret);
}

int a0_job_errors(struct a0_client *c, const char *job_id, a0_done_cb cb, void *arg,
		  struct a0_call **ret)
{
	return job_call(c, A0_CALL_JOB_ERRORS, job_id, "/errors", cb, arg, ret);
}

int a0_export_create(struct a0_client *c, const char *json_body, a0_done_cb cb, void *arg,
		     struct a0_call **ret)
{
	if (!json_body)
		return -EINVAL;
	struct a0_call *call;
	int r = call_new(c, A0_CALL_EXPORT, cb, arg, &call);
	if (r < 0)
		return r;
	call->body = strdup(json_body);
	if (asprintf(&call->url, "%s/api/v2/jobs/users-exports", c->base_url) < 0)
		call->url = NULL;
	if (!call->body || !call->url) {
		call_free(call);
		return -ENOMEM;
	}
	return call_start(call, ret);
}

int a0_download(struct a0_client *c, const char *url, int fd, size_t max_bytes, a0_done_cb cb,
		void *arg, struct a0_call **ret)
{
	if (!url || fd < 0 || max_bytes == 0)
		return -EINVAL;
	if (strncmp(url, "https://", 8) != 0 && strncmp(url, "http://", 7) != 0)
		return -EINVAL;
	struct a0_call *call;
	int r = call_new(c, A0_CALL_DOWNLOAD, cb, arg, &call);
	if (r < 0)
		return r;
	call->url = strdup(url);
	call->fd = fd;
	call->max_bytes = max_bytes;
	if (!call->url) {
		call_free(call);
		return -ENOMEM;
	}
	return call_start(call, ret);
}

/* RFC 3986 percent-encoding of everything but unreserved characters. */
static char *url_escape(const char *s)
{
	static const char hex[] = "0123456789ABCDEF";
	size_t n = strlen(s);
	char *out = malloc(n * 3 + 1), *w = out;
	if (!out)
		return NULL;
	for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
		if ((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
		    *p == '-' || *p == '_' || *p == '.' || *p == '~') {
			*w++ = (char)*p;
		} else {
			*w++ = '%';
			*w++ = hex[*p >> 4];
			*w++ = hex[*p & 15];
		}
	}
	*w = '\0';
	return out;
}

static int users_call(struct a0_client *c, enum a0_call_kind kind, const char *prefix,
		      const char *value, a0_done_cb cb, void *arg, struct a0_call **ret)
{
	if (!value || !value[0] || strlen(value) > 1024)
		return -EINVAL;
	char *esc = url_escape(value);
	if (!esc)
		return -ENOMEM;
	struct a0_call *call;
	int r = call_new(c, kind, cb, arg, &call);
	if (r < 0) {
		free(esc);
		return r;
	}
	r = asprintf(&call->url, "%s%s%s", c->base_url, prefix, esc);
	free(esc);
	if (r < 0) {
		call->url = NULL;
		call_free(call);
		return -ENOMEM;
	}
	return call_start(call, ret);
}

int a0_users_by_email(struct a0_client *c, const char *email, a0_done_cb cb, void *arg,
		      struct a0_call **ret)
{
	return users_call(c, A0_CALL_USERS_BY_EMAIL, "/api/v2/users-by-email?email=", email, cb, arg, ret);
}

int a0_user_delete(struct a0_client *c, const char *user_id, a0_done_cb cb, void *arg,
		   struct a0_call **ret)
{
	return users_call(c, A0_CALL_USER_DELETE, "/api/v2/users/", user_id, cb, arg, ret);
}
