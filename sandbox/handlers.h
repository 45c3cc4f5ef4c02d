/*
 * handlers — the emulated Auth0 endpoints: /oauth/token and the Management
 * API routes (imports, jobs, job errors, exports, users-by-email, user
 * delete), plus the signed export-file links.
 *
 * Every tenant answer carries the x-ratelimit-* headers of the one
 * tenant-wide bucket (an injected 5xx, which plays a proxy's HTML page,
 * does not). Order of checks: bucket, injected fault, route, token and
 * scope, body size, body contents.
 */
#pragma once

#include "sandbox/tenant.h"

#include <json-c/json.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct MHD_Connection;

struct request {
	struct MHD_Connection *conn;
	const char *url;         /* path only, percent-decoded */
	const char *method;
	const char *body;        /* NUL-terminated, at most the route's maximum */
	size_t body_len;
	size_t body_total;       /* bytes that arrived */
	bool body_over;          /* more arrived than the route keeps */
	int64_t arrived;
};

struct reply {
	int status;
	json_object *json;       /* the body, or */
	char *raw;               /* raw bytes */
	size_t raw_len;
	bool raw_owned;
	const char *ctype;
	bool ratelimit;
	long rl_limit, rl_remaining, rl_reset;
	long retry_after;        /* > 0: a Retry-After header */
	enum fault_action fault; /* reset: close without answering */
	double slow_seconds;     /* answer only after this long */
};

void handlers_tenant(struct tenant *t, const struct request *in, struct reply *out);
void handlers_export_file(struct tenant *t, const struct request *in, struct reply *out);

/* Turns out->json into owned raw bytes. Answers may share json-c objects
 * with the tenant (and json-c caches a serialization inside the object), so
 * every handler calls this before it lets go of the tenant lock. */
void handlers_reply_freeze(struct reply *out);

/* {"statusCode":…,"error":…,"message":…[,"errorCode":…]} */
json_object *handlers_envelope(int status, const char *message, const char *error_code);
