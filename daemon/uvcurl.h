/*
 * uvcurl — libcurl multi driven by the libuv loop. Knows nothing of Auth0.
 *
 * Terms:
 *   uvcurl   one curl multi handle bound to one uv loop: a uv_poll per socket
 *            curl asks about (curl_multi_socket_action) and ONE uv_timer for
 *            curl's timeout.
 *   request  one HTTP transfer. It is started with uvcurl_request_start(),
 *            and its completion callback runs on the loop exactly once,
 *            unless the request is cancelled first (uvcurl_request_cancel:
 *            no callback) or the uvcurl is closed (callback with
 *            -ECANCELED). The request is freed when the callback returns:
 *            never keep the pointer past it.
 *
 * Every transfer has a connect timeout and a total timeout (milliseconds,
 * defaults below), TLS peer and host verification on, http/https only, no
 * redirects followed, no "Expect: 100-continue". The response body is kept
 * in memory up to `max_body` bytes (or written to `body_fd`); more is the
 * error -EMSGSIZE. Response headers are those of the final response, looked
 * up case-insensitively.
 *
 * Results (uvcurl_request_result): 0 when an HTTP answer arrived, whatever
 * its status; otherwise -ETIMEDOUT, -ECONNREFUSED, -ECONNRESET (sent or
 * received nothing / connection dropped), -EHOSTUNREACH (resolve failure),
 * -EPROTO (TLS or protocol failure), -EMSGSIZE (body over max), -ECANCELED,
 * -EIO (anything else).
 *
 * Lifetime: uvcurl_close() cancels what is running (callbacks with
 * -ECANCELED), closes every uv handle and frees itself in the last close
 * callback, then calls `done_cb` — after which uv_loop_close() succeeds.
 */
#pragma once

#include <curl/curl.h>
#include <stdbool.h>
#include <stddef.h>
#include <uv.h>

#define UVCURL_DEFAULT_CONNECT_TIMEOUT_MS 10000L
#define UVCURL_DEFAULT_TIMEOUT_MS 60000L
#define UVCURL_DEFAULT_MAX_BODY (1024u * 1024u)
/* Response headers kept per request (bytes, all lines together). */
#define UVCURL_MAX_HEADER_BYTES (64u * 1024u)

struct uvcurl;
struct uvcurl_request;

typedef void (*uvcurl_done_cb)(struct uvcurl_request *req, void *arg);
typedef void (*uvcurl_closed_cb)(void *arg);

struct uvcurl_request_opts {
	const char *method;        /* "GET" (default), "POST", "PUT", "DELETE" */
	const char *url;           /* http:// or https:// */
	const char *const *headers; /* NULL-terminated "Name: value" lines, or NULL */
	const void *body;          /* request body (copied), or NULL */
	size_t body_len;
	curl_mime *mime;           /* multipart body; ownership passes to the request
	                            * on success (not on failure) */
	long connect_timeout_ms;   /* 0: default */
	long timeout_ms;           /* 0: default */
	size_t max_body;           /* 0: default */
	int body_fd;               /* >= 0: write the body there instead (max_body
	                            * still applies); use -1 otherwise */
	const char *ca_file;       /* extra CA bundle, or NULL for the system one */
	bool fresh_connect;        /* never reuse a connection: libcurl silently
	                            * resends a request whose reused connection
	                            * died unanswered, which a non-idempotent POST
	                            * must not suffer */
};

int uvcurl_new(uv_loop_t *loop, struct uvcurl **ret);
/* Cancels every request (callbacks run with -ECANCELED), then closes the
 * handles; `done_cb` (may be NULL) runs once everything is freed. */
void uvcurl_close(struct uvcurl *uc, uvcurl_closed_cb done_cb, void *arg);
/* Number of requests started and not yet completed. */
size_t uvcurl_active(const struct uvcurl *uc);

int uvcurl_request_start(struct uvcurl *uc, const struct uvcurl_request_opts *opts,
			 uvcurl_done_cb cb, void *arg, struct uvcurl_request **ret);
/* Abandons a request: its callback never runs. Only before the callback. */
void uvcurl_request_cancel(struct uvcurl_request *req);

/* Accessors, valid inside the completion callback. */
int uvcurl_request_result(const struct uvcurl_request *req);
long uvcurl_request_status(const struct uvcurl_request *req);
/* Case-insensitive; the value with surrounding blanks trimmed, or NULL. */
const char *uvcurl_request_header(const struct uvcurl_request *req, const char *name);
/* Body as received, NUL-terminated (len excludes the NUL); empty with body_fd. */
const char *uvcurl_request_body(const struct uvcurl_request *req, size_t *ret_len);
/* Bytes of body received (also with body_fd). */
size_t uvcurl_request_body_size(const struct uvcurl_request *req);
/* Bytes of request body uploaded. */
size_t uvcurl_request_upload_size(const struct uvcurl_request *req);
/* Human text for a failed transfer ("" when none); never contains headers. */
const char *uvcurl_request_error(const struct uvcurl_request *req);
