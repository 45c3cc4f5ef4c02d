/*
 * server — the control API's HTTP server: libmicrohttpd without a thread of
 * its own, driven by the one libuv loop.
 *
 * MHD runs with MHD_USE_EPOLL and MHD_ALLOW_SUSPEND_RESUME; its epoll fd sits
 * in a uv_poll, MHD_get_timeout() arms a uv_timer, and MHD_run() is called
 * on either. Every callback below therefore runs ON THE LOOP THREAD: no
 * blocking call (no fsync, no durable commit, no scan of input-sized files).
 *
 * Terms:
 *   request   struct api_request: one HTTP request from the first header
 *             to the end of its answer (or the client's disconnect).
 *   handler   api_handler_fn (router.h), called once the request is
 *             complete: its body was buffered (no sink) or streamed (sink).
 *   answer    one api_respond_*() call. A request is answered at most once;
 *             later calls return -EALREADY.
 *   suspend   a handler that returns without answering leaves the
 *             connection suspended (MHD_suspend_connection); it answers
 *             later from any loop callback and the server resumes it.
 *   gone      the client disconnected or the server is stopping; the
 *             request's on_gone callback runs once, api_respond_*() returns
 *             -ECONNRESET afterwards, and the memory stays valid until the
 *             last api_request_unref().
 *
 * What the server does before any handler runs:
 *   - 404 not-found for an unknown path, 405 method-not-allowed with
 *     `Allow` for a known path under another method (problem+json);
 *   - 401 unauthorized when a token is configured and the route is not
 *     API_ROUTE_PUBLIC and `Authorization: Bearer <token>` does not match
 *     (constant-time compare, auth.h);
 *   - 413 upload-too-large when the body exceeds the request's limit (a
 *     Content-Length over it is refused before reading);
 *   - metrics: http_requests_total{route,method,status} and a duration
 *     histogram (unmatched paths are counted under route "unmatched").
 *
 * (a) Synchronous answers:
 *
 *     static int h_ping(struct api_request *req, void *ud)
 *     {
 *         struct json_object *o = json_object_new_object();
 *         json_object_object_add(o, "pong", json_object_new_boolean(1));
 *         api_response_header(req, "Cache-Control", "no-store");
 *         return api_respond_json(req, 200, o);      // takes o
 *     }
 *
 *   Handlers return 0 (answered, or deliberately suspended) or a negative
 *   errno; a negative return with no answer yet sends 500 internal.
 *
 * (b) Streaming bodies: give the route a sink. begin() runs when headers are
 *     known (before the body), may set a limit and per-request state, and
 *     may answer at once (e.g. 400 bad-field from a query parameter); the
 *     rest of the body is then discarded. Raw bodies arrive through raw(),
 *     multipart/form-data bodies through field() for text fields (each whole, at most API_FIELD_MAX bytes, else 400
 *     bad-field) and file_data()/file_end() for file parts. Past the limit
 *     the server answers 413 upload-too-large and calls sink->abort().
 *     An x-www-form-urlencoded body goes to raw() when the sink has one
 *     (`curl --data-binary @file` labels any file so; a file the route
 *     takes as its body is never a form), else through field().
 *     A callback returning negative stops the body: the server answers 500
 *     unless the callback already answered, then calls sink->abort().
 *     When the body is complete, the route's handler runs as usual.
 *
 *     static int up_begin(struct api_request *req, void *ud)
 *     {
 *         struct upload *u = upload_new(ud);
 *         api_request_set_ctx(req, u, upload_free);   // freed at the end
 *         api_request_set_body_limit(req, cfg->max_upload_bytes);
 *         return 0;
 *     }
 *     static int up_file(struct api_request *req, const char *field,
 *                        const char *filename, const char *ctype,
 *                        const char *data, size_t len, uint64_t off)
 *     {
 *         struct upload *u = api_request_ctx(req);
 *         return upload_append(u, data, len);         // bounded write
 *     }
 *     static const struct api_body_sink up_sink = {
 *         .begin = up_begin, .raw = up_raw, .field = up_field,
 *         .file_data = up_file, .file_end = up_file_end, .abort = up_abort,
 *     };
 *
 * (c) Asynchronous answers: take a reference, register on_gone, return 0
 *     without answering. Later, from any loop callback, answer and unref.
 *     If the client goes away first, on_gone runs (cancel your timer there);
 *     the request memory stays valid until your unref, and answering it
 *     returns -ECONNRESET harmlessly.
 *
 *     static int h_create(struct api_request *req, void *ud)
 *     {
 *         struct job *j = job_new(req);               // keeps req
 *         api_request_ref(req);
 *         api_request_on_gone(req, job_on_gone, j);
 *         return store_write(st, job_write, j, job_committed);
 *     }
 *     static void job_committed(int status, void *ctx)  // on the loop
 *     {
 *         struct job *j = ctx;
 *         if (status == 0)
 *             api_response_header(j->req, "Location", j->location);
 *         api_respond_json(j->req, status ? 500 : 202, job_to_json(j));
 *         api_request_unref(j->req);                 // last use of req
 *         job_free(j);
 *     }
 *
 *     A suspended request is answered only by its owner: the server never
 *     times it out by itself, except at stop (api_server_stop), which calls
 *     on_gone for every open request.
 *
 * (d) Lookups: api_request_param() (path {id}), api_request_query(),
 *     api_request_header(), api_request_method(), api_request_path().
 *     Strings returned are valid while the request is not gone (copy them
 *     before a suspension if you need them after on_gone).
 */
#pragma once

#include "api/router.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

struct json_object;
struct config;
struct metrics;
struct store;

/* Body limit for routes without a sink (JSON request bodies). */
#define API_BODY_DEFAULT_MAX (1024u * 1024u)
/* Largest text field of a multipart or urlencoded body. */
#define API_FIELD_MAX 8192u

struct api_body_sink {
	/* Headers known, no body yet. May answer (then the body is discarded).
	 * NULL: nothing to do. */
	int (*begin)(struct api_request *req, void *userdata);
	/* Raw body bytes, in order; total so far is within the limit. NULL:
	 * raw bodies are refused with 400 bad-field. */
	int (*raw)(struct api_request *req, const char *data, size_t len);
	/* A whole text field of a form body (value NUL-terminated; len
	 * excludes the NUL). NULL: fields are ignored. */
	int (*field)(struct api_request *req, const char *name, const char *value, size_t len);
	/* Bytes of a file part; off is the offset in the part. The first call
	 * of a part has off == 0 (len may be 0 for an empty file). NULL: file
	 * parts are refused with 400 bad-field. */
	int (*file_data)(struct api_request *req, const char *field, const char *filename,
			 const char *content_type, const char *data, size_t len, uint64_t off);
	/* The file part named `field` is complete. */
	int (*file_end)(struct api_request *req, const char *field);
	/* The body will not complete (limit, client gone, callback error,
	 * server stop): undo partial work. Runs at most once, before the ctx
	 * free function. */
	void (*abort)(struct api_request *req);
};

struct api_server_options {
	uv_loop_t *loop;
	const char *listen;             /* "127.0.0.1:8484", "[::1]:0", "unix:/p" */
	struct config *config;          /* current config; a reference is taken */
	struct metrics *metrics;        /* may be NULL */
	struct store *store;            /* may be NULL (readyz says 503) */
	uint64_t started_at_ms;         /* uv_now-free wall clock, for uptime */
};

struct api_server;

/* Binds and starts serving. Routes of h_status/h_metrics are registered
 * here; others via api_server_add_routes() (before or after start).
 * -EADDRINUSE, -EACCES, -EINVAL (bad listen), -ENOMEM; `err` says which. */
int api_server_start(const struct api_server_options *opts, struct api_server **ret,
		     char *err, size_t errlen);

/* The address actually bound: "127.0.0.1:40123", "[::1]:40123", "unix:/p". */
const char *api_server_address(const struct api_server *s);

int api_server_add_routes(struct api_server *s, const struct api_route *routes, size_t n,
			  void *userdata);

/* Swaps in a new config (SIGHUP): token and limits apply to new requests. */
void api_server_set_config(struct api_server *s, struct config *cfg);
/* The store/readiness used by /readyz and /v1/status. */
void api_server_set_store(struct api_server *s, struct store *store);

/* Adds a contributor to GET /v1/status: fn adds members to the status
 * object (e.g. per-tenant token state, queue depth). Never secrets. */
int api_server_add_status(struct api_server *s, void (*fn)(struct json_object *status, void *arg),
			  void *arg);

/* Stops accepting; open requests see on_gone; suspended ones are resumed and
 * closed. The uv handles are closed and `s` is freed in their close
 * callbacks: run the loop afterwards. `s` must not be used after this. */
void api_server_stop(struct api_server *s);

/* ---- the request ------------------------------------------------------- */

/* The server a request came through (NULL once the request ended). */
struct api_server *api_request_server(const struct api_request *req);

struct api_request *api_request_ref(struct api_request *req);
void api_request_unref(struct api_request *req);

/* The server's current config (a borrowed pointer, valid during this
 * callback; config_ref() it to keep it across a suspension). */
struct config *api_request_config(const struct api_request *req);
struct store *api_request_store(const struct api_request *req);
struct metrics *api_request_metrics(const struct api_request *req);
uv_loop_t *api_request_loop(const struct api_request *req);

const char *api_request_method(const struct api_request *req);
const char *api_request_path(const struct api_request *req);
/* The route's pattern ("/v1/imports/{id}"), NULL before routing. */
const char *api_request_route(const struct api_request *req);
/* Path parameter as a copy in buf (NULL if absent or too long). */
const char *api_request_param(const struct api_request *req, const char *name,
			      char *buf, size_t buflen);
/* Query parameter (decoded), NULL when absent; "" for "?flag". */
const char *api_request_query(const struct api_request *req, const char *name);
/* Header (case-insensitive name), NULL when absent. */
const char *api_request_header(const struct api_request *req, const char *name);

/* Buffered body of a route without a sink (NULL and 0 when none); at most
 * API_BODY_DEFAULT_MAX bytes, and body[len] == '\0' for convenience. */
const char *api_request_body(const struct api_request *req, size_t *ret_len);
/* Bytes of body received so far (raw or multipart, before decoding). */
uint64_t api_request_body_bytes(const struct api_request *req);

/* Per-request state for the handler/sink; free_fn runs when the last
 * reference to the request is dropped (after abort() if any), so a flow
 * holding a reference may keep using it after the connection ended.
 * Replaces a previous ctx (freeing it). */
void api_request_set_ctx(struct api_request *req, void *ctx, void (*free_fn)(void *));
void *api_request_ctx(const struct api_request *req);
/* Changes the body limit (bytes); only meaningful in sink->begin(). */
void api_request_set_body_limit(struct api_request *req, uint64_t max);

/* Called once when the client goes away or the server stops before the
 * request was answered. Runs on the loop. */
void api_request_on_gone(struct api_request *req, void (*fn)(void *arg), void *arg);
/* true once answered or gone. */
bool api_request_answered(const struct api_request *req);
bool api_request_gone(const struct api_request *req);

/* ---- answers: each returns 0, -EALREADY (answered), -ECONNRESET (gone),
 *      -ENOMEM. Ownership of bodies passes to the call even on error. ----- */

/* Adds a header to the coming answer (Location, Allow, Retry-After, ...).
 * Up to 8 extra headers. */
int api_response_header(struct api_request *req, const char *name, const char *value);

/* application/json; takes ownership of body (json_object_put). */
int api_respond_json(struct api_request *req, unsigned status, struct json_object *body);
/* application/problem+json from a problem object (problem.h); takes it. */
int api_respond_problem_json(struct api_request *req, unsigned status, struct json_object *problem);
/* Shorthand: problem_new(status, slug, printf(fmt, ...)) and answer. */
int api_respond_problem(struct api_request *req, unsigned status, const char *slug,
			const char *fmt, ...) __attribute__((format(printf, 4, 5)));
/* Any content type; the text is copied. */
int api_respond_text(struct api_request *req, unsigned status, const char *content_type,
		     const char *text, size_t len);
/* Any content type; takes ownership of a malloc'd buffer. */
int api_respond_buffer(struct api_request *req, unsigned status, const char *content_type,
		       char *buf, size_t len);

/* A streamed answer (NDJSON, large arrays) of unknown length (chunked).
 * read() runs on the loop whenever the socket can take more: it writes at
 * most max bytes to buf and returns the count, 0 at the end,
 * API_STREAM_LATER when it spent its budget of work without producing a
 * byte (it is called again at the next turn of the loop, after other
 * connections had theirs), or another negative value to abort the
 * connection. It must produce data without blocking and do bounded work
 * per call whatever the input size (bounded store reads are fine).
 * free_fn(arg) runs when the answer is done. */
#define API_STREAM_LATER (-EAGAIN)
int api_respond_stream(struct api_request *req, unsigned status, const char *content_type,
		       long (*read)(void *arg, uint64_t pos, char *buf, size_t max),
		       void *arg, void (*free_fn)(void *arg));
