/* classify — Auth0 answer → verdict (see classify.h). */
#include "daemon/auth0/classify.h"

#include <errno.h>
#include <json-c/json.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

const char *a0_verdict_name(enum a0_verdict v)
{
	switch (v) {
	case A0_OK: return "ok";
	case A0_WAIT: return "wait";
	case A0_TOO_MANY_JOBS: return "too-many-jobs";
	case A0_RETRY: return "retry";
	case A0_TOO_LARGE: return "too-large";
	case A0_REFRESH: return "refresh";
	case A0_IMPORT_FAILED: return "import-failed";
	case A0_REJECTED: return "rejected";
	case A0_NOT_FOUND: return "not-found";
	}
	return "?";
}

static bool looks_like_html(const char *body, size_t len, const char *ct)
{
	if (ct && strncasecmp(ct, "text/html", 9) == 0)
		return true;
	size_t i = 0;
	while (i < len && (body[i] == ' ' || body[i] == '\n' || body[i] == '\r' || body[i] == '\t'))
		i++;
	return i < len && body[i] == '<';
}

/* Copies printable text, bounded; control characters become spaces. */
static void copy_text(char *dst, size_t cap, const char *src, size_t len)
{
	size_t j = 0;
	for (size_t i = 0; i < len && j + 1 < cap; i++) {
		unsigned char c = (unsigned char)src[i];
		dst[j++] = (c < 0x20 || c == 0x7f) ? ' ' : (char)c;
	}
	dst[j] = '\0';
}

/* Reads message/error_description/error and errorCode/error from a JSON
 * error envelope. */
static void parse_envelope(const char *body, size_t len, struct a0_class *c)
{
	if (!body || len == 0 || len > 65536)
		return;
	json_tokener *tok = json_tokener_new();
	if (!tok)
		return;
	json_object *o = json_tokener_parse_ex(tok, body, (int)len);
	json_tokener_free(tok);
	if (!o)
		return;
	if (json_object_is_type(o, json_type_object)) {
		json_object *m = NULL, *code = NULL;
		if (!json_object_object_get_ex(o, "message", &m))
			json_object_object_get_ex(o, "error_description", &m);
		if (m && json_object_is_type(m, json_type_string))
			copy_text(c->message, sizeof(c->message), json_object_get_string(m),
				  (size_t)json_object_get_string_len(m));
		if (!json_object_object_get_ex(o, "errorCode", &code))
			json_object_object_get_ex(o, "error", &code);
		if (code && json_object_is_type(code, json_type_string))
			copy_text(c->error_code, sizeof(c->error_code), json_object_get_string(code),
				  (size_t)json_object_get_string_len(code));
	}
	json_object_put(o);
}

static bool is_connection_message(const char *m)
{
	return strcasestr(m, "connection") != NULL;
}

void a0_classify(const struct a0_answer *a, int64_t now_ms, struct a0_class *ret)
{
	struct a0_class c;
	memset(&c, 0, sizeof(c));
	const char *body = a->body ? a->body : "";
	size_t len = a->body ? a->body_len : 0;

	if (a->result < 0) {
		c.verdict = A0_RETRY;
		snprintf(c.message, sizeof(c.message), "transport error: %s", strerror(-a->result));
		*ret = c;
		return;
	}
	long st = a->status;
	bool html = looks_like_html(body, len, a->content_type);
	if (!html)
		parse_envelope(body, len, &c);

	if (st >= 200 && st < 300) {
		c.verdict = A0_OK;
		c.message[0] = '\0';
	} else if (st == 429) {
		if (strstr(c.message, A0_TOO_MANY_JOBS_MARK)) {
			c.verdict = A0_TOO_MANY_JOBS;
		} else {
			c.verdict = A0_WAIT;
			if (a->rl.has_retry_after)
				c.wait_until_ms = a->rl.retry_after_ms;
			else if (a->rl.has_reset)
				c.wait_until_ms = a->rl.reset_ms;
			else
				c.wait_until_ms = now_ms + 1000;
			if (c.wait_until_ms < now_ms)
				c.wait_until_ms = now_ms;
			/* Never trust a wait longer than an hour. */
			if (c.wait_until_ms > now_ms + 3600 * 1000)
				c.wait_until_ms = now_ms + 3600 * 1000;
		}
	} else if (st == 413) {
		c.verdict = A0_TOO_LARGE;
	} else if (st >= 500 || st < 200 || html) {
		c.verdict = A0_RETRY;
	} else if (st == 401 || st == 403) {
		if (a->token_endpoint)
			c.verdict = A0_IMPORT_FAILED; /* the grant itself was refused */
		else
			c.verdict = a->token_refreshed ? A0_IMPORT_FAILED : A0_REFRESH;
	} else if (st == 404) {
		c.verdict = A0_NOT_FOUND;
	} else if (st == 400 && (a->token_endpoint || is_connection_message(c.message))) {
		c.verdict = A0_IMPORT_FAILED;
	} else if (st == 408) {
		c.verdict = A0_RETRY;
	} else if (st >= 300 && st < 400) {
		c.verdict = A0_REJECTED;
	} else {
		c.verdict = A0_REJECTED;
	}
	if (c.verdict != A0_OK && c.message[0] == '\0') {
		if (html)
			snprintf(c.message, sizeof(c.message), "HTTP %ld (HTML page)", st);
		else
			snprintf(c.message, sizeof(c.message), "HTTP %ld", st);
	}
	*ret = c;
}
