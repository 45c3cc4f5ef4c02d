#include "api/problem.h"

#include <json-c/json.h>
#include <stdio.h>
#include <string.h>

static const struct {
	const char *slug;
	const char *title;
} titles[] = {
	{ "malformed-file", "The users file is not valid JSON, NDJSON or CSV" },
	{ "not-an-array", "The users file is not an array of users" },
	{ "empty-file", "The users file holds no users" },
	{ "invalid-users", "Some users are invalid" },
	{ "upload-too-large", "Upload too large" },
	{ "too-many-users", "Too many users in one import" },
	{ "bad-field", "A request field has a bad value" },
	{ "unknown-tenant", "Unknown tenant" },
	{ "unauthorized", "Missing or wrong API token" },
	{ "not-found", "Not found" },
	{ "method-not-allowed", "Method not allowed" },
	{ "conflict", "Conflict" },
	{ "gone", "Gone" },
	{ "internal", "Internal error" },
	{ "bad-request", "Bad request" },
	{ "unavailable", "Service unavailable" },
};

const char *problem_reason(unsigned status)
{
	switch (status) {
	case 200: return "OK";
	case 201: return "Created";
	case 202: return "Accepted";
	case 204: return "No Content";
	case 400: return "Bad Request";
	case 401: return "Unauthorized";
	case 403: return "Forbidden";
	case 404: return "Not Found";
	case 405: return "Method Not Allowed";
	case 409: return "Conflict";
	case 410: return "Gone";
	case 413: return "Content Too Large";
	case 415: return "Unsupported Media Type";
	case 422: return "Unprocessable Content";
	case 429: return "Too Many Requests";
	case 500: return "Internal Server Error";
	case 503: return "Service Unavailable";
	default: return "Unknown";
	}
}

const char *problem_title(const char *slug, unsigned status)
{
	for (size_t i = 0; slug && i < sizeof(titles) / sizeof(titles[0]); i++)
		if (strcmp(titles[i].slug, slug) == 0)
			return titles[i].title;
	return problem_reason(status);
}

struct json_object *problem_new(unsigned status, const char *slug, const char *detail)
{
	char type[96];
	struct json_object *o = json_object_new_object();
	if (!o)
		return NULL;
	snprintf(type, sizeof(type), "/problems/%s", slug ? slug : "internal");
	json_object_object_add(o, "type", json_object_new_string(type));
	json_object_object_add(o, "title", json_object_new_string(problem_title(slug, status)));
	json_object_object_add(o, "status", json_object_new_int((int)status));
	if (detail)
		json_object_object_add(o, "detail", json_object_new_string(detail));
	return o;
}

struct json_object *problem_newf(unsigned status, const char *slug, const char *fmt, ...)
{
	char detail[1024];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(detail, sizeof(detail), fmt, ap);
	va_end(ap);
	return problem_new(status, slug, detail);
}
