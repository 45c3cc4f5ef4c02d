/*
 * router — the control API's route table: (method, path pattern) → handler.
 *
 * Terms:
 *   pattern   an absolute path whose segments are literals or "{name}"
 *             placeholders: "/v1/imports/{id}/errors". A placeholder matches
 *             one non-empty segment (no '/'); literals match exactly. No
 *             wildcards, no trailing '/' (a request for "/healthz/" is 404).
 *   param     the value a placeholder matched, looked up by name; percent-
 *             decoding is not applied (ids never need it).
 *   route     one row: method, pattern, handler, optional body sink, flags.
 *
 * Matching: literals beat placeholders segment by segment, so
 * "/v1/imports/stats" wins over "/v1/imports/{id}" whatever the order of
 * registration. A path that matches some pattern under another method gives
 * ROUTER_METHOD_NOT_ALLOWED and the methods that would match (for the
 * `Allow` header; "HEAD" is implied by "GET"). No pattern at all → not found.
 *
 * The router is pure (no MHD, no loop) so it is unit-tested alone; the
 * server (server.h) owns one and feeds it requests.
 *
 * Usage (a handler module exports its table; main registers it):
 *     static const struct api_route h_imports_routes[] = {
 *         { "POST", "/v1/imports",      h_imports_create, &imports_sink, 0 },
 *         { "GET",  "/v1/imports/{id}", h_imports_get,    NULL,          0 },
 *     };
 *     api_server_add_routes(server, h_imports_routes,
 *                           ARRAY_SIZE(h_imports_routes), imports_ctx);
 */
#pragma once

#include <stddef.h>

struct api_request;
struct api_body_sink;

/* Called once the request is complete (body received or streamed to the
 * sink). `userdata` is what was given to api_server_add_routes() with the
 * table. See server.h for what a handler may do and must return. */
typedef int (*api_handler_fn)(struct api_request *req, void *userdata);

enum api_route_flags {
	/* No Authorization needed even when a token is configured (/healthz). */
	API_ROUTE_PUBLIC = 1u << 0,
};

struct api_route {
	const char *method;             /* "GET", "POST", "DELETE", ... */
	const char *pattern;            /* also the metrics label "route" */
	api_handler_fn handler;
	/* NULL: a body is buffered in memory up to API_BODY_DEFAULT_MAX bytes
	 * (api_request_body()); otherwise streamed to the sink (server.h). */
	const struct api_body_sink *sink;
	unsigned flags;                 /* enum api_route_flags */
};

#define ROUTER_MAX_PARAMS 4
#define ROUTER_MAX_SEGMENTS 16

struct router_params {
	size_t n;
	struct {
		const char *name;       /* points into the pattern (no '{' '}') */
		size_t name_len;
		const char *value;      /* points into the matched path */
		size_t value_len;
	} p[ROUTER_MAX_PARAMS];
};

enum router_result {
	ROUTER_MATCH = 0,
	ROUTER_NOT_FOUND,
	ROUTER_METHOD_NOT_ALLOWED,
};

struct router;

int router_new(struct router **ret);
void router_free(struct router *r);

/* Adds a table (not copied: it must outlive the router, e.g. static const).
 * -EINVAL for a bad pattern (not starting with '/', unbalanced braces, too
 * many params/segments), -EEXIST when the same method+pattern is already
 * there, -ENOMEM. */
int router_add(struct router *r, const struct api_route *routes, size_t n, void *userdata);

/*
 * Finds the route for method+path (path without the query string).
 * ROUTER_MATCH: *ret_route, *ret_userdata and *ret_params set (params point
 * into path and the pattern; valid while both live).
 * ROUTER_METHOD_NOT_ALLOWED: `allow` gets "GET, HEAD, POST" style text
 * (sorted, deduplicated) when non-NULL.
 */
enum router_result router_match(const struct router *r, const char *method, const char *path,
				const struct api_route **ret_route, void **ret_userdata,
				struct router_params *ret_params, char *allow, size_t allow_len);

/* Value of a param by name as a NUL-terminated copy in buf; NULL when absent
 * or longer than buflen - 1. */
const char *router_param(const struct router_params *params, const char *name,
			 char *buf, size_t buflen);
