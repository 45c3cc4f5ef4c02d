/* server: libmicrohttpd driven by the libuv loop, the request object, and
 * the checks every request goes through (route, method, token, size).
 *
 * MHD lets a response be queued only from inside its access handler. An
 * answer made elsewhere (a store commit, a timer) is therefore kept in the
 * request and the connection resumed; MHD then calls the access handler
 * again and it is queued there. */
#include "api/server.h"
#include "api/auth.h"
#include "api/handlers.h"
#include "api/problem.h"
#include "daemon/config.h"
#include "daemon/log.h"
#include "daemon/metrics.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <json-c/json.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#define MAX_EXTRA_HEADERS 8
/* A chunked body past its limit is read and thrown away up to this much
 * more, so the client can still read the 413; then the connection drops. */
#define DISCARD_SLACK (64u * 1024u * 1024u)

struct status_contributor {
	void (*fn)(struct json_object *status, void *arg);
	void *arg;
};

struct api_server {
	uv_loop_t *loop;
	struct MHD_Daemon *mhd;
	uv_poll_t poll;
	uv_timer_t timer;
	int handles_open;
	bool stopping;
	bool in_run;              /* inside MHD_run */
	bool rerun;               /* kicked from inside MHD_run */
	int listen_fd;
	char *unix_path;          /* to unlink at stop */
	char address[128];

	struct router *router;
	struct config *config;
	struct metrics *metrics;
	struct store *store;
	uint64_t started_at_ms;
	struct metric *m_requests;
	struct metric *m_duration;

	struct api_request *live; /* requests MHD still knows */
	struct status_contributor *contrib;
	size_t n_contrib;
};

struct api_request {
	int refs;
	struct api_server *srv;          /* NULL once the request ended */
	struct MHD_Connection *conn;     /* NULL once the request ended */
	struct api_request *next, *prev; /* srv->live */
	char *method;
	char *path;
	const struct api_route *route;
	void *userdata;
	struct router_params params;
	struct config *config;           /* referenced for the request's life */
	double t_start;

	/* body */
	uint64_t limit;
	uint64_t received;
	char *body;                      /* buffered body (no sink) */
	size_t body_len;
	struct MHD_PostProcessor *pp;
	bool raw_sink;
	char *part_key;
	char *part_filename;
	bool part_open;
	bool part_is_file;
	char *field;
	size_t field_len;

	/* state */
	bool body_failed;                /* stop feeding; answer at the end */
	bool body_done;
	bool handled;                    /* handler was called */
	bool suspended;
	bool in_callback;                /* inside the access handler */
	bool queued;                     /* response handed to MHD */
	bool gone;
	bool aborted;
	struct MHD_Response *resp;
	unsigned status;
	size_t n_headers;
	char *hname[MAX_EXTRA_HEADERS];
	char *hvalue[MAX_EXTRA_HEADERS];

	void *ctx;
	void (*ctx_free)(void *);
	void (*on_gone)(void *);
	void *on_gone_arg;
};

static void server_kick(struct api_server *s);

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* ---- request lifetime -------------------------------------------------- */

struct api_request *api_request_ref(struct api_request *req)
{
	if (req)
		req->refs++;
	return req;
}

static void request_free(struct api_request *req)
{
	if (req->ctx_free) {
		void (*fn)(void *) = req->ctx_free;
		req->ctx_free = NULL;
		fn(req->ctx);
	}
	if (req->resp)
		MHD_destroy_response(req->resp);
	for (size_t i = 0; i < req->n_headers; i++) {
		free(req->hname[i]);
		free(req->hvalue[i]);
	}
	config_unref(req->config);
	free(req->body);
	free(req->part_key);
	free(req->part_filename);
	free(req->field);
	free(req->method);
	free(req->path);
	free(req);
}

void api_request_unref(struct api_request *req)
{
	if (req && --req->refs == 0)
		request_free(req);
}

static void request_abort_body(struct api_request *req)
{
	if (req->aborted)
		return;
	req->aborted = true;
	if (req->route && req->route->sink && req->route->sink->abort && !req->body_done)
		req->route->sink->abort(req);
}

static void request_gone(struct api_request *req)
{
	if (req->gone)
		return;
	req->gone = true;
	if (req->on_gone) {
		void (*fn)(void *) = req->on_gone;
		req->on_gone = NULL;
		fn(req->on_gone_arg);
	}
}

static const char *method_label(const char *m)
{
	static const char *const known[] = { "GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS" };
	for (size_t i = 0; i < sizeof(known) / sizeof(known[0]); i++)
		if (strcmp(m, known[i]) == 0)
			return known[i];
	return "other";
}

/* MHD_OPTION_NOTIFY_COMPLETED: the request is over (answered, client gone,
 * or daemon stopping). */
static void on_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
			 enum MHD_RequestTerminationCode toe)
{
	struct api_server *s = cls;
	struct api_request *req = *con_cls;
	(void)conn;
	if (!req)
		return;
	*con_cls = NULL;
	if (req->pp) {
		MHD_destroy_post_processor(req->pp);
		req->pp = NULL;
	}
	if (!req->body_done)
		request_abort_body(req);
	if (toe != MHD_REQUEST_TERMINATED_COMPLETED_OK || !req->queued)
		request_gone(req);
	req->gone = true;
	if (s->metrics) {
		char status[8];
		snprintf(status, sizeof(status), "%u", req->queued ? req->status : 0);
		const char *route = req->route ? req->route->pattern : "unmatched";
		metric_add(s->m_requests, 1, (const char *[]){ route, method_label(req->method), status });
		metric_observe(s->m_duration, now_s() - req->t_start, (const char *[]){ route });
	}
	/* The request's ctx (an upload being made durable, say) lives as long
	 * as the request: a handler flow may still hold a reference and use it
	 * from a worker, so it is freed in request_free, not here. */
	/* unlink from live */
	if (req->prev)
		req->prev->next = req->next;
	else
		s->live = req->next;
	if (req->next)
		req->next->prev = req->prev;
	req->next = req->prev = NULL;
	req->conn = NULL;
	req->srv = NULL;
	api_request_unref(req);
}

/* ---- lookups ----------------------------------------------------------- */

struct config *api_request_config(const struct api_request *req) { return req->config; }
struct store *api_request_store(const struct api_request *req) { return req->srv ? req->srv->store : NULL; }
struct metrics *api_request_metrics(const struct api_request *req) { return req->srv ? req->srv->metrics : NULL; }
uv_loop_t *api_request_loop(const struct api_request *req) { return req->srv ? req->srv->loop : NULL; }
const char *api_request_method(const struct api_request *req) { return req->method; }
const char *api_request_path(const struct api_request *req) { return req->path; }
const char *api_request_route(const struct api_request *req) { return req->route ? req->route->pattern : NULL; }

const char *api_request_param(const struct api_request *req, const char *name, char *buf, size_t buflen)
{
	return router_param(&req->params, name, buf, buflen);
}

const char *api_request_query(const struct api_request *req, const char *name)
{
	if (!req->conn)
		return NULL;
	return MHD_lookup_connection_value(req->conn, MHD_GET_ARGUMENT_KIND, name);
}

const char *api_request_header(const struct api_request *req, const char *name)
{
	if (!req->conn)
		return NULL;
	return MHD_lookup_connection_value(req->conn, MHD_HEADER_KIND, name);
}

const char *api_request_body(const struct api_request *req, size_t *ret_len)
{
	if (ret_len)
		*ret_len = req->body ? req->body_len : 0;
	return req->body;
}

uint64_t api_request_body_bytes(const struct api_request *req) { return req->received; }

void api_request_set_ctx(struct api_request *req, void *ctx, void (*free_fn)(void *))
{
	if (req->ctx_free && req->ctx != ctx)
		req->ctx_free(req->ctx);
	req->ctx = ctx;
	req->ctx_free = free_fn;
}

void *api_request_ctx(const struct api_request *req) { return req->ctx; }
void api_request_set_body_limit(struct api_request *req, uint64_t max) { req->limit = max; }

void api_request_on_gone(struct api_request *req, void (*fn)(void *), void *arg)
{
	req->on_gone = fn;
	req->on_gone_arg = arg;
}

bool api_request_answered(const struct api_request *req) { return req->resp || req->queued || req->gone; }
bool api_request_gone(const struct api_request *req) { return req->gone; }

/* ---- answers ----------------------------------------------------------- */

int api_response_header(struct api_request *req, const char *name, const char *value)
{
	if (req->gone)
		return -ECONNRESET;
	if (req->resp || req->queued)
		return -EALREADY;
	if (req->n_headers == MAX_EXTRA_HEADERS)
		return -ENOSPC;
	char *n = strdup(name), *v = strdup(value);
	if (!n || !v) {
		free(n);
		free(v);
		return -ENOMEM;
	}
	req->hname[req->n_headers] = n;
	req->hvalue[req->n_headers] = v;
	req->n_headers++;
	return 0;
}

/* Takes resp; hands it to MHD now (inside the access handler) or resumes
 * the suspended connection so MHD calls the handler again. */
static int answer(struct api_request *req, unsigned status, const char *content_type,
		  struct MHD_Response *resp)
{
	if (!resp)
		return -ENOMEM;
	if (req->gone || !req->conn) {
		MHD_destroy_response(resp);
		return -ECONNRESET;
	}
	if (req->resp || req->queued) {
		MHD_destroy_response(resp);
		return -EALREADY;
	}
	if (content_type)
		MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, content_type);
	for (size_t i = 0; i < req->n_headers; i++)
		MHD_add_response_header(resp, req->hname[i], req->hvalue[i]);
	req->resp = resp;
	req->status = status;
	if (req->suspended && !req->in_callback) {
		req->suspended = false;
		MHD_resume_connection(req->conn);
		if (req->srv)
			server_kick(req->srv);
	}
	return 0;
}

int api_respond_buffer(struct api_request *req, unsigned status, const char *content_type,
		       char *buf, size_t len)
{
	struct MHD_Response *r = MHD_create_response_from_buffer(len, buf, MHD_RESPMEM_MUST_FREE);
	if (!r)
		free(buf);
	return answer(req, status, content_type, r);
}

int api_respond_text(struct api_request *req, unsigned status, const char *content_type,
		     const char *text, size_t len)
{
	char *copy = malloc(len + 1);
	if (!copy)
		return -ENOMEM;
	memcpy(copy, text, len);
	copy[len] = '\0';
	return api_respond_buffer(req, status, content_type, copy, len);
}

static int respond_json_typed(struct api_request *req, unsigned status, const char *ctype,
			      struct json_object *body)
{
	if (!body)
		return -ENOMEM;
	size_t len;
	const char *s = json_object_to_json_string_length(body, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE, &len);
	char *copy = s ? malloc(len + 2) : NULL;
	if (!copy) {
		json_object_put(body);
		return -ENOMEM;
	}
	memcpy(copy, s, len);
	copy[len] = '\n';
	copy[len + 1] = '\0';
	json_object_put(body);
	return api_respond_buffer(req, status, ctype, copy, len + 1);
}

int api_respond_json(struct api_request *req, unsigned status, struct json_object *body)
{
	return respond_json_typed(req, status, "application/json", body);
}

int api_respond_problem_json(struct api_request *req, unsigned status, struct json_object *problem)
{
	return respond_json_typed(req, status, PROBLEM_CONTENT_TYPE, problem);
}

int api_respond_problem(struct api_request *req, unsigned status, const char *slug, const char *fmt, ...)
{
	char detail[1024];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(detail, sizeof(detail), fmt, ap);
	va_end(ap);
	return api_respond_problem_json(req, status, problem_new(status, slug, detail));
}

struct stream_arg {
	long (*read)(void *arg, uint64_t pos, char *buf, size_t max);
	void *arg;
	void (*free_fn)(void *arg);
	struct api_server *srv;  /* outlives the response: MHD frees it at stop */
};

static ssize_t stream_read(void *cls, uint64_t pos, char *buf, size_t max)
{
	struct stream_arg *a = cls;
	long n = a->read(a->arg, pos, buf, max);
	if (n == 0)
		return MHD_CONTENT_READER_END_OF_STREAM;
	if (n == API_STREAM_LATER) {
		/* No data yet: in external polling mode MHD calls the reader
		 * again at its next run, which the kick schedules for the next
		 * turn of the loop (other handles get theirs first). */
		server_kick(a->srv);
		return 0;
	}
	if (n < 0)
		return MHD_CONTENT_READER_END_WITH_ERROR;
	return n;
}

static void stream_free(void *cls)
{
	struct stream_arg *a = cls;
	if (a->free_fn)
		a->free_fn(a->arg);
	free(a);
}

int api_respond_stream(struct api_request *req, unsigned status, const char *content_type,
		       long (*read)(void *arg, uint64_t pos, char *buf, size_t max),
		       void *arg, void (*free_fn)(void *arg))
{
	struct stream_arg *a = malloc(sizeof(*a));
	if (!a) {
		if (free_fn)
			free_fn(arg);
		return -ENOMEM;
	}
	a->read = read;
	a->arg = arg;
	a->free_fn = free_fn;
	a->srv = req->srv;
	struct MHD_Response *r = MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 32 * 1024,
								   stream_read, a, stream_free);
	if (!r) {
		stream_free(a);
		return -ENOMEM;
	}
	return answer(req, status, content_type, r);
}

/* ---- body handling ----------------------------------------------------- */

static void body_fail(struct api_request *req, unsigned status, const char *slug, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
static void body_fail(struct api_request *req, unsigned status, const char *slug, const char *fmt, ...)
{
	if (!req->body_failed) {
		req->body_failed = true;
		if (!req->resp) {
			char detail[512];
			va_list ap;
			va_start(ap, fmt);
			vsnprintf(detail, sizeof(detail), fmt, ap);
			va_end(ap);
			api_respond_problem_json(req, status, problem_new(status, slug, detail));
		}
		request_abort_body(req);
	}
}

/* A sink callback's result: negative stops the body (500 unless answered). */
static bool sink_ok(struct api_request *req, int r)
{
	if (r >= 0 && !req->resp)
		return true;
	if (!req->resp)
		body_fail(req, 500, "internal", "the upload could not be stored");
	else {
		req->body_failed = true;
		request_abort_body(req);
	}
	return false;
}

static bool part_finish(struct api_request *req)
{
	const struct api_body_sink *sink = req->route->sink;
	if (!req->part_open)
		return true;
	req->part_open = false;
	int r = 0;
	if (req->part_is_file) {
		if (sink->file_end)
			r = sink->file_end(req, req->part_key);
	} else if (sink->field) {
		r = sink->field(req, req->part_key, req->field ? req->field : "", req->field_len);
	}
	req->field_len = 0;
	return sink_ok(req, r);
}

static enum MHD_Result post_iter(void *cls, enum MHD_ValueKind kind, const char *key,
				 const char *filename, const char *content_type,
				 const char *transfer_encoding, const char *data, uint64_t off, size_t size)
{
	struct api_request *req = cls;
	const struct api_body_sink *sink = req->route->sink;
	(void)kind;
	(void)transfer_encoding;
	if (req->body_failed)
		return MHD_NO;
	if (!key)
		key = "";
	bool new_part = off == 0 && (!req->part_open || size > 0 || strcmp(req->part_key, key) != 0 ||
				     (filename != NULL) != req->part_is_file);
	if (req->part_open && strcmp(req->part_key, key) != 0)
		new_part = true;
	if (new_part) {
		if (!part_finish(req))
			return MHD_NO;
		free(req->part_key);
		free(req->part_filename);
		req->part_key = strdup(key);
		req->part_filename = filename ? strdup(filename) : NULL;
		req->part_is_file = filename != NULL;
		req->part_open = true;
		req->field_len = 0;
		if (!req->part_key || (filename && !req->part_filename)) {
			body_fail(req, 500, "internal", "out of memory");
			return MHD_NO;
		}
		if (req->part_is_file && !sink->file_data) {
			body_fail(req, 400, "bad-field", "unexpected file part '%s'", key);
			return MHD_NO;
		}
	}
	if (req->part_is_file) {
		int r = sink->file_data(req, req->part_key, req->part_filename, content_type, data, size, off);
		return sink_ok(req, r) ? MHD_YES : MHD_NO;
	}
	if (req->field_len + size > API_FIELD_MAX) {
		body_fail(req, 400, "bad-field", "field '%s' is longer than %u bytes", key, API_FIELD_MAX);
		return MHD_NO;
	}
	if (!req->field && !(req->field = malloc(API_FIELD_MAX + 1))) {
		body_fail(req, 500, "internal", "out of memory");
		return MHD_NO;
	}
	memcpy(req->field + req->field_len, data, size);
	req->field_len += size;
	req->field[req->field_len] = '\0';
	return MHD_YES;
}

/* A body for the form parser: multipart always; urlencoded only where the
 * route takes no raw body (where it does, the body is the raw file: curl
 * --data-binary sends any file as urlencoded). */
static bool is_form(const struct api_body_sink *sink, const char *ctype)
{
	if (!ctype)
		return false;
	if (strncasecmp(ctype, "multipart/form-data", 19) == 0)
		return true;
	return strncasecmp(ctype, "application/x-www-form-urlencoded", 33) == 0 && !sink->raw;
}

/* Body bytes of this call; counts them and feeds sink or buffer. */
static void body_feed(struct api_request *req, const char *data, size_t size)
{
	req->received += size;
	if (req->body_failed)
		return;
	if (req->received > req->limit) {
		body_fail(req, 413, "upload-too-large", "the body is larger than %llu bytes",
			  (unsigned long long)req->limit);
		return;
	}
	const struct api_body_sink *sink = req->route->sink;
	if (!sink) {
		char *b = realloc(req->body, req->body_len + size + 1);
		if (!b) {
			body_fail(req, 500, "internal", "out of memory");
			return;
		}
		req->body = b;
		memcpy(b + req->body_len, data, size);
		req->body_len += size;
		b[req->body_len] = '\0';
		return;
	}
	if (req->pp) {
		if (MHD_post_process(req->pp, data, size) != MHD_YES && !req->body_failed)
			body_fail(req, 400, "bad-field", "the form body could not be parsed");
		return;
	}
	if (!sink->raw) {
		body_fail(req, 400, "bad-field", "this endpoint takes a multipart/form-data body");
		return;
	}
	sink_ok(req, sink->raw(req, data, size));
}

static bool body_end(struct api_request *req)
{
	if (req->body_failed)
		return false;
	if (req->pp) {
		MHD_destroy_post_processor(req->pp);
		req->pp = NULL;
		if (req->body_failed || !part_finish(req))
			return false;
	}
	req->body_done = true;
	return true;
}

/* ---- the access handler ------------------------------------------------ */

static enum MHD_Result queue(struct api_request *req)
{
	unsigned status = req->status;
	struct MHD_Response *resp = req->resp;
	req->resp = NULL;
	req->queued = true;
	enum MHD_Result r = MHD_queue_response(req->conn, status, resp);
	MHD_destroy_response(resp);
	return r;
}

/* First call of a request: route, method, token, size, sink->begin. */
static void request_start(struct api_server *s, struct api_request *req)
{
	char allow[128];
	enum router_result rr = router_match(s->router, req->method, req->path, &req->route,
					     &req->userdata, &req->params, allow, sizeof(allow));
	if (rr == ROUTER_NOT_FOUND) {
		req->route = NULL;
		api_respond_problem(req, 404, "not-found", "no such endpoint: %s", req->path);
		return;
	}
	if (rr == ROUTER_METHOD_NOT_ALLOWED) {
		req->route = NULL;
		api_response_header(req, "Allow", allow);
		api_respond_problem(req, 405, "method-not-allowed", "%s is not allowed on %s (allowed: %s)",
				    req->method, req->path, allow);
		return;
	}
	if (!(req->route->flags & API_ROUTE_PUBLIC) &&
	    !auth_check_bearer(req->config->api_token, api_request_header(req, MHD_HTTP_HEADER_AUTHORIZATION))) {
		api_response_header(req, "WWW-Authenticate", "Bearer");
		api_respond_problem(req, 401, "unauthorized",
				    "this endpoint needs 'Authorization: Bearer <token>' with the configured API token");
		return;
	}
	req->limit = API_BODY_DEFAULT_MAX;
	const struct api_body_sink *sink = req->route->sink;
	if (sink && sink->begin) {
		int r = sink->begin(req, req->userdata);
		if (req->resp)
			return;
		if (r < 0) {
			api_respond_problem(req, 500, "internal", "the request could not be started");
			return;
		}
	}
	const char *cl = api_request_header(req, MHD_HTTP_HEADER_CONTENT_LENGTH);
	if (cl) {
		unsigned long long n = strtoull(cl, NULL, 10);
		if (n > req->limit) {
			api_respond_problem(req, 413, "upload-too-large",
					    "the body (%llu bytes) is larger than the limit of %llu bytes", n,
					    (unsigned long long)req->limit);
			request_abort_body(req);
			return;
		}
	}
	if (sink && is_form(sink, api_request_header(req, MHD_HTTP_HEADER_CONTENT_TYPE))) {
		req->pp = MHD_create_post_processor(req->conn, 64 * 1024, post_iter, req);
		if (!req->pp) {
			api_respond_problem(req, 400, "bad-field", "the form body's Content-Type cannot be parsed");
			request_abort_body(req);
		}
	}
}

static void request_handle(struct api_request *req)
{
	req->handled = true;
	int r = req->route->handler(req, req->userdata);
	if (!req->resp && !req->queued && r < 0) {
		log_warn("api", "%s %s: handler failed: %s", req->method, req->path, strerror(-r));
		api_respond_problem(req, 500, "internal", "the request failed");
	}
}

static enum MHD_Result on_access(void *cls, struct MHD_Connection *conn, const char *url,
				 const char *method, const char *version, const char *upload_data,
				 size_t *upload_data_size, void **con_cls)
{
	struct api_server *s = cls;
	struct api_request *req = *con_cls;
	(void)version;
	if (!req) {
		req = calloc(1, sizeof(*req));
		if (!req)
			return MHD_NO;
		req->refs = 1;
		req->srv = s;
		req->conn = conn;
		req->t_start = now_s();
		req->method = strdup(method);
		req->path = strdup(url);
		req->config = config_ref(s->config);
		if (!req->method || !req->path) {
			request_free(req);
			return MHD_NO;
		}
		req->next = s->live;
		if (s->live)
			s->live->prev = req;
		s->live = req;
		*con_cls = req;
		req->in_callback = true;
		if (s->stopping)
			api_respond_problem(req, 503, "unavailable", "the daemon is stopping");
		else
			request_start(s, req);
		req->in_callback = false;
		if (req->resp)
			return queue(req);
		return MHD_YES;
	}
	if (req->queued)
		return MHD_YES; /* discarding the rest of a body we already answered */
	req->in_callback = true;
	if (*upload_data_size > 0) {
		size_t n = *upload_data_size;
		*upload_data_size = 0;
		if (req->resp && !req->body_failed) {
			/* Answered early (from another callback): the rest of the
			 * body is not the sink's business any more. */
			req->body_failed = true;
			request_abort_body(req);
		}
		body_feed(req, upload_data, n);
		req->in_callback = false;
		if (req->body_failed && req->received > req->limit + (uint64_t)DISCARD_SLACK)
			return MHD_NO;
		return MHD_YES;
	}
	/* The body is complete (or this is a resumed request). */
	if (!req->handled && !req->resp && body_end(req))
		request_handle(req);
	req->in_callback = false;
	if (req->resp)
		return queue(req);
	if (!req->suspended && !req->gone) {
		req->suspended = true;
		MHD_suspend_connection(conn);
	}
	return MHD_YES;
}

/* ---- loop glue --------------------------------------------------------- */

static void on_timer(uv_timer_t *t);

static void server_run(struct api_server *s)
{
	if (!s->mhd)
		return;
	s->in_run = true;
	MHD_run(s->mhd);
	s->in_run = false;
	MHD_UNSIGNED_LONG_LONG to;
	if (s->rerun) {
		s->rerun = false;
		if (!s->stopping)
			uv_timer_start(&s->timer, on_timer, 0, 0);
	} else if (MHD_get_timeout(s->mhd, &to) == MHD_YES)
		uv_timer_start(&s->timer, on_timer, to, 0);
	else
		uv_timer_stop(&s->timer);
}

static void on_timer(uv_timer_t *t) { server_run(t->data); }

static void on_poll(uv_poll_t *p, int status, int events)
{
	(void)status;
	(void)events;
	server_run(p->data);
}

/* Runs MHD on the next loop iteration (after a resume). */
static void server_kick(struct api_server *s)
{
	if (!s->mhd || s->stopping)
		return;
	if (s->in_run)
		s->rerun = true; /* server_run sets the timer once MHD_run returns */
	else
		uv_timer_start(&s->timer, on_timer, 0, 0);
}

static void on_mhd_log(void *cls, const char *fmt, va_list ap)
{
	char msg[512];
	(void)cls;
	vsnprintf(msg, sizeof(msg), fmt, ap);
	size_t n = strlen(msg);
	while (n && (msg[n - 1] == '\n' || msg[n - 1] == '\r'))
		msg[--n] = '\0';
	log_debug("api", "microhttpd: %s", msg);
}

/* Binds our own listening socket (TCP or unix) for MHD_OPTION_LISTEN_SOCKET:
 * port 0 and unix paths are then ours to report. */
static int bind_listen(struct api_server *s, const char *addr, char *err, size_t errlen)
{
	union {
		struct sockaddr sa;
		struct sockaddr_in in4;
		struct sockaddr_in6 in6;
		struct sockaddr_un un;
	} a;
	socklen_t alen;
	int fd = -1, r;
	memset(&a, 0, sizeof(a));
	if (strncmp(addr, "unix:", 5) == 0) {
		const char *path = addr + 5;
		if (strlen(path) >= sizeof(a.un.sun_path)) {
			snprintf(err, errlen, "unix socket path too long: %s", path);
			return -EINVAL;
		}
		a.un.sun_family = AF_UNIX;
		strcpy(a.un.sun_path, path);
		alen = sizeof(a.un);
		struct stat st;
		if (lstat(path, &st) == 0 && S_ISSOCK(st.st_mode))
			unlink(path); /* a stale socket; the state-dir lock guards against a live one */
	} else {
		char host[64];
		const char *colon;
		if (addr[0] == '[') {
			const char *rb = strchr(addr, ']');
			if (!rb || rb[1] != ':' || (size_t)(rb - addr - 1) >= sizeof(host))
				goto bad;
			memcpy(host, addr + 1, (size_t)(rb - addr - 1));
			host[rb - addr - 1] = '\0';
			colon = rb + 1;
			a.in6.sin6_family = AF_INET6;
			if (inet_pton(AF_INET6, host, &a.in6.sin6_addr) != 1)
				goto bad;
			a.in6.sin6_port = htons((uint16_t)atoi(colon + 1));
			alen = sizeof(a.in6);
		} else {
			colon = strrchr(addr, ':');
			if (!colon || (size_t)(colon - addr) >= sizeof(host))
				goto bad;
			memcpy(host, addr, (size_t)(colon - addr));
			host[colon - addr] = '\0';
			a.in4.sin_family = AF_INET;
			if (inet_pton(AF_INET, host, &a.in4.sin_addr) != 1)
				goto bad;
			a.in4.sin_port = htons((uint16_t)atoi(colon + 1));
			alen = sizeof(a.in4);
		}
	}
	fd = socket(a.sa.sa_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0)
		goto sys;
	if (a.sa.sa_family != AF_UNIX) {
		int one = 1;
		setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
		if (a.sa.sa_family == AF_INET6)
			setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
	}
	if (bind(fd, &a.sa, alen) < 0 || listen(fd, 128) < 0)
		goto sys;
	if (a.sa.sa_family == AF_UNIX) {
		chmod(a.un.sun_path, 0660);
		s->unix_path = strdup(a.un.sun_path);
		snprintf(s->address, sizeof(s->address), "unix:%s", a.un.sun_path);
	} else {
		if (getsockname(fd, &a.sa, &alen) < 0)
			goto sys;
		char ip[INET6_ADDRSTRLEN];
		if (a.sa.sa_family == AF_INET) {
			inet_ntop(AF_INET, &a.in4.sin_addr, ip, sizeof(ip));
			snprintf(s->address, sizeof(s->address), "%s:%u", ip, ntohs(a.in4.sin_port));
		} else {
			inet_ntop(AF_INET6, &a.in6.sin6_addr, ip, sizeof(ip));
			snprintf(s->address, sizeof(s->address), "[%s]:%u", ip, ntohs(a.in6.sin6_port));
		}
	}
	s->listen_fd = fd;
	return 0;
bad:
	snprintf(err, errlen, "bad listen address %s", addr);
	return -EINVAL;
sys:
	r = -errno;
	snprintf(err, errlen, "cannot listen on %s: %s", addr, strerror(errno));
	if (fd >= 0)
		close(fd);
	return r;
}

static void on_handle_closed(uv_handle_t *h)
{
	struct api_server *s = h->data;
	if (--s->handles_open > 0)
		return;
	router_free(s->router);
	config_unref(s->config);
	free(s->contrib);
	free(s->unix_path);
	free(s);
}

int api_server_start(const struct api_server_options *opts, struct api_server **ret, char *err, size_t errlen)
{
	int r;
	struct api_server *s = calloc(1, sizeof(*s));
	if (!s)
		return -ENOMEM;
	s->loop = opts->loop;
	s->listen_fd = -1;
	s->config = config_ref(opts->config);
	s->metrics = opts->metrics;
	s->store = opts->store;
	s->started_at_ms = opts->started_at_ms;
	if ((r = router_new(&s->router)) < 0)
		goto fail;
	if ((r = router_add(s->router, h_status_routes, h_status_n_routes, s)) < 0 ||
	    (r = router_add(s->router, h_metrics_routes, h_metrics_n_routes, s)) < 0) {
		snprintf(err, errlen, "cannot register the built-in routes: %s", strerror(-r));
		goto fail;
	}
	if (s->metrics) {
		static const char *const lbl[] = { "route", "method", "status" };
		static const double buckets[] = { 0.001, 0.005, 0.025, 0.1, 0.5, 2.5, 10 };
		s->m_requests = metrics_counter(s->metrics, "importd_http_requests_total",
						"HTTP requests answered by the control API", 3, lbl);
		s->m_duration = metrics_histogram(s->metrics, "importd_http_request_duration_seconds",
						  "Time from request headers to the end of the answer", 1, lbl,
						  sizeof(buckets) / sizeof(buckets[0]), buckets);
	}
	if ((r = bind_listen(s, opts->listen, err, errlen)) < 0)
		goto fail;
	s->mhd = MHD_start_daemon(MHD_USE_EPOLL | MHD_ALLOW_SUSPEND_RESUME | MHD_USE_ERROR_LOG, 0,
				  NULL, NULL, on_access, s,
				  MHD_OPTION_LISTEN_SOCKET, s->listen_fd,
				  MHD_OPTION_NOTIFY_COMPLETED, on_completed, s,
				  MHD_OPTION_EXTERNAL_LOGGER, on_mhd_log, s,
				  MHD_OPTION_CONNECTION_LIMIT, (unsigned)1000,
				  MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)120,
				  MHD_OPTION_END);
	if (!s->mhd) {
		snprintf(err, errlen, "cannot start the HTTP server on %s", opts->listen);
		r = -EIO;
		goto fail;
	}
	const union MHD_DaemonInfo *info = MHD_get_daemon_info(s->mhd, MHD_DAEMON_INFO_EPOLL_FD);
	if (!info) {
		snprintf(err, errlen, "microhttpd has no epoll fd");
		r = -EIO;
		goto fail;
	}
	if ((r = uv_poll_init(s->loop, &s->poll, info->epoll_fd)) < 0) {
		snprintf(err, errlen, "uv_poll_init: %s", uv_strerror(r));
		goto fail;
	}
	s->handles_open++;
	s->poll.data = s;
	uv_timer_init(s->loop, &s->timer);
	s->handles_open++;
	s->timer.data = s;
	uv_poll_start(&s->poll, UV_READABLE, on_poll);
	server_run(s);
	*ret = s;
	return 0;
fail:
	if (s->mhd)
		MHD_stop_daemon(s->mhd); /* also closes listen_fd */
	else if (s->listen_fd >= 0)
		close(s->listen_fd);
	if (s->unix_path)
		unlink(s->unix_path);
	if (s->handles_open) {
		/* poll was initialised: free through the close callback */
		uv_close((uv_handle_t *)&s->poll, on_handle_closed);
		return r;
	}
	router_free(s->router);
	config_unref(s->config);
	free(s->unix_path);
	free(s);
	return r;
}

const char *api_server_address(const struct api_server *s) { return s->address; }

int api_server_add_routes(struct api_server *s, const struct api_route *routes, size_t n, void *userdata)
{
	return router_add(s->router, routes, n, userdata);
}

int api_server_add_status(struct api_server *s, void (*fn)(struct json_object *status, void *arg), void *arg)
{
	struct status_contributor *c = realloc(s->contrib, (s->n_contrib + 1) * sizeof(*c));
	if (!c)
		return -ENOMEM;
	s->contrib = c;
	c[s->n_contrib].fn = fn;
	c[s->n_contrib].arg = arg;
	s->n_contrib++;
	return 0;
}

void api_server_status_contribute(struct api_server *s, struct json_object *status)
{
	for (size_t i = 0; i < s->n_contrib; i++)
		s->contrib[i].fn(status, s->contrib[i].arg);
}

struct api_server *api_request_server(const struct api_request *req) { return req->srv; }
uint64_t api_server_started_at_ms(const struct api_server *s) { return s->started_at_ms; }
struct store *api_server_store(const struct api_server *s) { return s->store; }

void api_server_set_config(struct api_server *s, struct config *cfg)
{
	struct config *old = s->config;
	s->config = config_ref(cfg);
	config_unref(old);
}

void api_server_set_store(struct api_server *s, struct store *store) { s->store = store; }

void api_server_stop(struct api_server *s)
{
	if (!s || s->stopping)
		return;
	s->stopping = true;
	/* Suspended requests: tell their owners, answer 503, resume so MHD can
	 * close them (it refuses to stop with suspended connections). */
	for (struct api_request *req = s->live; req; req = req->next) {
		if (!req->suspended)
			continue;
		request_gone(req);
		req->gone = false; /* let the 503 through */
		api_respond_problem(req, 503, "unavailable", "the daemon is stopping");
		req->gone = true;
	}
	MHD_run(s->mhd);
	MHD_stop_daemon(s->mhd); /* closes connections (on_completed for each) and the listen fd */
	s->mhd = NULL;
	s->listen_fd = -1;
	if (s->unix_path)
		unlink(s->unix_path);
	uv_poll_stop(&s->poll);
	uv_timer_stop(&s->timer);
	uv_close((uv_handle_t *)&s->poll, on_handle_closed);
	uv_close((uv_handle_t *)&s->timer, on_handle_closed);
}
