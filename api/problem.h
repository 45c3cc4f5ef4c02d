/*
 * problem — RFC 9457 application/problem+json bodies, as API.md says:
 *   {"type": "/problems/<slug>", "title": "...", "status": 400, "detail": "..."}
 *
 * Terms:
 *   slug    the stable machine name of the problem ("not-found"). The table
 *           in problem.c gives each known slug its title; an unknown slug
 *           gets the HTTP reason phrase as title.
 *   detail  one human sentence about this occurrence. Never a secret, never
 *           a stack trace, never raw input longer than a short excerpt.
 *
 * Known slugs (API.md): malformed-file, not-an-array, empty-file,
 * invalid-users, upload-too-large, too-many-users, bad-field, unknown-tenant,
 * unauthorized, not-found, method-not-allowed, conflict, gone, internal;
 * plus bad-request (a malformed HTTP request) and unavailable (503).
 *
 * The object returned is a json-c object the caller may extend with more
 * members (offset, line, column, errors[], errors_total, ...) before
 * answering with api_respond_problem_json() (server.h).
 *
 * Usage:
 *     struct json_object *p = problem_new(400, "malformed-file",
 *                                          "unexpected ',' at line 3");
 *     json_object_object_add(p, "line", json_object_new_int64(3));
 *     return api_respond_problem_json(req, 400, p);   // takes ownership
 */
#pragma once

#include <stdarg.h>

struct json_object;

#define PROBLEM_CONTENT_TYPE "application/problem+json"

/* New problem object (refcount 1) or NULL on ENOMEM. detail may be NULL
 * (then no "detail" member). */
struct json_object *problem_new(unsigned status, const char *slug, const char *detail);
struct json_object *problem_newf(unsigned status, const char *slug, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* Title for a slug ("Not found"); never NULL. */
const char *problem_title(const char *slug, unsigned status);

/* HTTP reason phrase ("Not Found") for a status; "Unknown" otherwise. */
const char *problem_reason(unsigned status);
