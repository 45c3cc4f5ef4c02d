#include "sandbox/handlers.h"

#include "daemon/log.h"
#include "sandbox/multipart.h"
#include "sandbox/util.h"

#include <ctype.h>
#include <errno.h>
#include <microhttpd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define CT_MGMT "application/json; charset=utf-8"
#define CT_JSON "application/json"

static const char *reason(int status)
{
	switch (status) {
	case 400: return "Bad Request";
	case 401: return "Unauthorized";
	case 403: return "Forbidden";
	case 404: return "Not Found";
	case 409: return "Conflict";
	case 413: return "Request Entity Too Large";
	case 429: return "Too Many Requests";
	case 500: return "Internal Server Error";
	case 502: return "Bad Gateway";
	case 503: return "Service Unavailable";
	case 504: return "Gateway Timeout";
	}
	return "Error";
}

json_object *handlers_envelope(int status, const char *message, const char *error_code)
{
	json_object *o = json_object_new_object();
	json_object_object_add(o, "statusCode", json_object_new_int(status));
	json_object_object_add(o, "error", json_object_new_string(reason(status)));
	json_object_object_add(o, "message", json_object_new_string(message));
	if (error_code)
		json_object_object_add(o, "errorCode", json_object_new_string(error_code));
	return o;
}

void handlers_reply_freeze(struct reply *out)
{
	if (!out->json)
		return;
	const char *s = json_object_to_json_string_ext(out->json,
		JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE);
	char *copy = strdup(s ? s : "");
	json_object_put(out->json);
	out->json = NULL;
	if (out->raw_owned)
		free(out->raw);
	out->raw = copy;
	out->raw_len = copy ? strlen(copy) : 0;
	out->raw_owned = copy != NULL;
}

static void set_json(struct reply *out, int status, json_object *body, const char *ctype)
{
	json_object_put(out->json);
	out->status = status;
	out->json = body;
	out->ctype = ctype;
}

static void set_error(struct reply *out, int status, const char *message, const char *code)
{
	set_json(out, status, handlers_envelope(status, message, code), CT_MGMT);
}

static const char *endpoint_of(const char *method, const char *url)
{
	if (strcmp(url, "/oauth/token") == 0)
		return "token";
	if (strcmp(url, "/api/v2/jobs/users-imports") == 0)
		return "users-imports";
	if (strcmp(url, "/api/v2/jobs/users-exports") == 0)
		return "users-exports";
	if (strncmp(url, "/api/v2/jobs/", 13) == 0) {
		const char *slash = strchr(url + 13, '/');
		if (slash && strcmp(slash, "/errors") == 0)
			return "job-errors";
		return slash ? "unknown" : "job";
	}
	if (strcmp(url, "/api/v2/users-by-email") == 0)
		return "users-by-email";
	if (strncmp(url, "/api/v2/users/", 14) == 0)
		return strcmp(method, "DELETE") == 0 ? "users-delete" : "users";
	return "unknown";
}

/* ---- faults ------------------------------------------------------------ */

static void pick_fault(struct tenant *t, const char *endpoint, enum fault_action *ret_action,
		       int *ret_status, double *ret_seconds)
{
	*ret_action = FAULT_NONE;
	for (size_t i = 0; i < t->nscripts; i++) {
		struct fault_script *s = &t->scripts[i];
		if (strcmp(s->endpoint, "any") != 0 && strcmp(s->endpoint, endpoint) != 0)
			continue;
		if (s->skip > 0) {
			s->skip--;
			continue;
		}
		*ret_action = s->action;
		*ret_status = s->status;
		*ret_seconds = s->seconds;
		if (--s->next <= 0) {
			memmove(&t->scripts[i], &t->scripts[i + 1],
				(t->nscripts - i - 1) * sizeof(t->scripts[0]));
			t->nscripts--;
		}
		return;
	}
	const struct tenant_options *o = &t->opt;
	if (o->fault_5xx > 0 && sbx_rand_unit() < o->fault_5xx) {
		*ret_action = FAULT_STATUS;
		*ret_status = 503;
	} else if (o->fault_429 > 0 && sbx_rand_unit() < o->fault_429) {
		*ret_action = FAULT_STATUS;
		*ret_status = 429;
	} else if (o->fault_reset > 0 && sbx_rand_unit() < o->fault_reset) {
		*ret_action = FAULT_RESET;
	} else if (o->fault_slow > 0 && sbx_rand_unit() < o->fault_slow) {
		*ret_action = FAULT_SLOW;
		*ret_seconds = o->slow_seconds;
	}
}

/* A rate-limit 429 (from the bucket or injected): the client must now wait. */
static void global_limit(struct tenant *t, struct reply *out, int64_t now, long retry_after)
{
	set_error(out, 429, "Global limit has been reached", "too_many_requests");
	int64_t until = (int64_t)out->rl_reset * 1000;
	if (t->opt.retry_after) {
		out->retry_after = retry_after;
		until = now + (int64_t)retry_after * 1000;
	}
	if (until > t->wait_until_ms)
		t->wait_until_ms = until;
}

/* ---- authorization ----------------------------------------------------- */

static bool has_scope(const char *granted, const char *scope)
{
	size_t n = strlen(scope);
	for (const char *p = granted; (p = strstr(p, scope)); p += n)
		if ((p == granted || p[-1] == ' ') && (p[n] == '\0' || p[n] == ' '))
			return true;
	return false;
}

/* Checks the bearer token for any of the scopes (NULL-terminated). */
static bool authorize(struct tenant *t, const struct request *in, const char *const *any,
		      int64_t now, struct reply *out)
{
	const char *h = MHD_lookup_connection_value(in->conn, MHD_HEADER_KIND, "Authorization");
	if (!h || strncasecmp(h, "Bearer ", 7) != 0) {
		set_error(out, 401, "Invalid token.", "invalid_token");
		return false;
	}
	const char *value = h + 7;
	while (*value == ' ')
		value++;
	const struct token *tok = tenant_token_find(t, value);
	if (!tok || tok->revoked) {
		set_error(out, 401, "Invalid token.", "invalid_token");
		return false;
	}
	if (tok->expires_ms <= now) {
		set_error(out, 401, "Expired token received for JSON Web Token validation", NULL);
		return false;
	}
	for (const char *const *s = any; *s; s++)
		if (has_scope(tok->scopes, *s))
			return true;
	char msg[160] = "Insufficient scope; expected any of: ";
	for (const char *const *s = any; *s; s++) {
		if (s != any)
			strncat(msg, ",", sizeof(msg) - strlen(msg) - 1);
		strncat(msg, *s, sizeof(msg) - strlen(msg) - 1);
	}
	strncat(msg, ".", sizeof(msg) - strlen(msg) - 1);
	set_error(out, 403, msg, "insufficient_scope");
	return false;
}

/* ---- /oauth/token ------------------------------------------------------ */

static int hexval(int c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	c = tolower(c);
	return c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

static char *url_decode(const char *s, size_t n)
{
	char *out = malloc(n + 1), *o = out;
	if (!out)
		return NULL;
	for (size_t i = 0; i < n; i++) {
		if (s[i] == '+') {
			*o++ = ' ';
		} else if (s[i] == '%' && i + 2 < n && hexval(s[i + 1]) >= 0 &&
			   hexval(s[i + 2]) >= 0) {
			*o++ = (char)(hexval(s[i + 1]) * 16 + hexval(s[i + 2]));
			i += 2;
		} else {
			*o++ = s[i];
		}
	}
	*o = '\0';
	return out;
}

/* The token request's fields as a json object of strings. */
static json_object *token_fields(const struct request *in)
{
	const char *ct = MHD_lookup_connection_value(in->conn, MHD_HEADER_KIND, "Content-Type");
	const char *b = in->body;
	while (*b == ' ' || *b == '\t' || *b == '\r' || *b == '\n')
		b++;
	if ((ct && strncasecmp(ct, "application/json", 16) == 0) || *b == '{') {
		json_object *o = json_tokener_parse(in->body);
		if (o && !json_object_is_type(o, json_type_object)) {
			json_object_put(o);
			o = NULL;
		}
		return o;
	}
	json_object *o = json_object_new_object();
	const char *p = in->body, *end = in->body + in->body_len;
	while (p < end) {
		const char *amp = memchr(p, '&', (size_t)(end - p));
		const char *stop = amp ? amp : end;
		const char *eq = memchr(p, '=', (size_t)(stop - p));
		if (eq) {
			char *k = url_decode(p, (size_t)(eq - p));
			char *v = url_decode(eq + 1, (size_t)(stop - eq - 1));
			if (k && v)
				json_object_object_add(o, k, json_object_new_string(v));
			free(k);
			free(v);
		}
		p = stop + 1;
	}
	return o;
}

static const char *field(json_object *o, const char *key)
{
	json_object *v;
	if (o && json_object_object_get_ex(o, key, &v) && json_object_is_type(v, json_type_string))
		return json_object_get_string(v);
	return NULL;
}

static void oauth_error(struct reply *out, int status, const char *error, const char *desc)
{
	json_object *o = json_object_new_object();
	json_object_object_add(o, "error", json_object_new_string(error));
	json_object_object_add(o, "error_description", json_object_new_string(desc));
	set_json(out, status, o, CT_JSON);
}

static void handle_token(struct tenant *t, const struct request *in, int64_t now,
			 struct reply *out)
{
	if (strcmp(in->method, "POST") != 0) {
		set_error(out, 404, "Not Found", NULL);
		return;
	}
	json_object *f = token_fields(in);
	if (!f) {
		oauth_error(out, 400, "invalid_request", "Invalid request body");
		return;
	}
	const char *grant = field(f, "grant_type"), *id = field(f, "client_id"),
		   *secret = field(f, "client_secret"), *aud = field(f, "audience"),
		   *scope = field(f, "scope");
	char want_aud[160], msg[400];
	snprintf(want_aud, sizeof(want_aud), "%s/api/v2/", t->base_url);
	if (!grant) {
		oauth_error(out, 400, "invalid_request", "Missing required parameter: grant_type");
	} else if (strcmp(grant, "client_credentials") != 0) {
		snprintf(msg, sizeof(msg), "Unsupported grant type: %s", grant);
		oauth_error(out, 403, "unauthorized_client", msg);
	} else if (!id || !secret || strcmp(id, t->opt.client_id) != 0 ||
		   strcmp(secret, t->opt.client_secret) != 0) {
		oauth_error(out, 401, "invalid_client", "Client authentication failed");
	} else if (!aud || strcmp(aud, want_aud) != 0) {
		snprintf(msg, sizeof(msg), "Service not found: %.300s", aud ? aud : "");
		oauth_error(out, 403, "access_denied", msg);
	} else {
		char granted[256] = "", missing[256] = "";
		if (scope && *scope) {
			char buf[256], *save = NULL;
			snprintf(buf, sizeof(buf), "%s", scope);
			for (char *s = strtok_r(buf, " ", &save); s; s = strtok_r(NULL, " ", &save)) {
				char *dst = has_scope(t->opt.scopes, s) ? granted : missing;
				if (*dst)
					strncat(dst, " ", 255 - strlen(dst));
				strncat(dst, s, 255 - strlen(dst));
			}
		} else {
			snprintf(granted, sizeof(granted), "%s", t->opt.scopes);
		}
		if (*missing) {
			snprintf(msg, sizeof(msg), "Client has not been granted scopes: %s", missing);
			oauth_error(out, 403, "access_denied", msg);
		} else {
			const struct token *tok = tenant_token_issue(t, granted, now);
			if (!tok) {
				oauth_error(out, 500, "server_error", "out of memory");
			} else {
				json_object *o = json_object_new_object();
				json_object_object_add(o, "access_token", json_object_new_string(tok->value));
				json_object_object_add(o, "scope", json_object_new_string(tok->scopes));
				json_object_object_add(o, "expires_in",
					json_object_new_int64((tok->expires_ms - now) / 1000));
				json_object_object_add(o, "token_type", json_object_new_string("Bearer"));
				set_json(out, 200, o, CT_JSON);
			}
		}
	}
	json_object_put(f);
}

/* ---- POST /api/v2/jobs/users-imports ------------------------------------ */

static bool conn_id_pattern_ok(const char *s, size_t len)
{
	if (len != 20 || strncmp(s, "con_", 4) != 0)
		return false;
	for (size_t i = 4; i < len; i++)
		if (!isalnum((unsigned char)s[i]))
			return false;
	return true;
}

static char *part_string(const struct multipart_part *p)
{
	char *s = malloc(p->len + 1);
	if (s) {
		memcpy(s, p->data, p->len);
		s[p->len] = '\0';
	}
	return s;
}

/* "true"/"false" (default def); -1 for anything else. */
static int part_bool(const struct multipart_part *p, int def)
{
	if (!p)
		return def;
	if (p->len == 4 && memcmp(p->data, "true", 4) == 0)
		return 1;
	if (p->len == 5 && memcmp(p->data, "false", 5) == 0)
		return 0;
	return -1;
}

/* The connection checks shared by imports and exports; -1 after an error. */
static int check_connection(const char *id, size_t len, bool need_db, struct reply *out)
{
	if (!conn_id_pattern_ok(id, len)) {
		set_error(out, 400, "Payload validation error: 'String does not match pattern "
			  "^con_[A-Za-z0-9]{16}$' on property connection_id.", "invalid_body");
		return -1;
	}
	char buf[32];
	memcpy(buf, id, len);
	buf[len] = '\0';
	int c = tenant_conn_index(buf);
	if (c < 0) {
		set_error(out, 400, "The connection does not exist.", NULL);
		return -1;
	}
	if (need_db && !tenant_connections[c].database) {
		set_error(out, 400, "Connection must be a database connection.", NULL);
		return -1;
	}
	if (need_db && !tenant_connections[c].enabled) {
		set_error(out, 400, "Connection must be enabled.", NULL);
		return -1;
	}
	return c;
}

static void handle_import(struct tenant *t, const struct request *in, int64_t now,
			  json_object *logrec, struct reply *out)
{
	static const char *const scopes[] = { "create:users", NULL };
	if (!authorize(t, in, scopes, now, out))
		return;
	if (in->body_over || in->body_total > TENANT_MAX_BODY) {
		set_json(out, 413, handlers_envelope(413,
			"Payload content length greater than maximum allowed: 512000", NULL), CT_MGMT);
		return;
	}
	const char *ct = MHD_lookup_connection_value(in->conn, MHD_HEADER_KIND, "Content-Type");
	struct multipart_part parts[MULTIPART_MAX_PARTS];
	size_t n = 0;
	if (multipart_parse(ct, in->body, in->body_len, parts, MULTIPART_MAX_PARTS, &n) < 0) {
		set_error(out, 400, "Payload validation error: 'Invalid multipart payload format'.",
			  "invalid_body");
		return;
	}
	json_object *form = json_object_new_object();
	for (size_t i = 0; i < n; i++) {
		if (strcmp(parts[i].name, "users") == 0) {
			char hex[17];
			snprintf(hex, sizeof(hex), "%016llx",
				 (unsigned long long)sbx_hash64(parts[i].data, parts[i].len));
			json_object_object_add(form, "users_bytes", json_object_new_int64((int64_t)parts[i].len));
			json_object_object_add(form, "users_hash", json_object_new_string(hex));
		} else if (parts[i].len <= 256) {
			char *s = part_string(&parts[i]);
			if (s)
				json_object_object_add(form, parts[i].name, json_object_new_string(s));
			free(s);
		}
	}
	json_object_object_add(logrec, "form", form);

	const struct multipart_part *users = multipart_find(parts, n, "users");
	const struct multipart_part *conn = multipart_find(parts, n, "connection_id");
	const struct multipart_part *ext = multipart_find(parts, n, "external_id");
	int upsert = part_bool(multipart_find(parts, n, "upsert"), 0);
	int email = part_bool(multipart_find(parts, n, "send_completion_email"), 1);
	if (!users) {
		set_error(out, 400, "Must provide 'users' file as multipart part.", "invalid_body");
		return;
	}
	if (users->len == 0) {
		set_error(out, 400, "Users file must not be empty.", "invalid_body");
		return;
	}
	if (!conn) {
		set_error(out, 400, "Must provide 'connection_id' as multipart part.", "invalid_body");
		return;
	}
	int c = check_connection(conn->data, conn->len, true, out);
	if (c < 0)
		return;
	if (upsert < 0 || email < 0) {
		set_error(out, 400, upsert < 0 ?
			"Payload validation error: 'Expected type boolean but found type string' on property upsert." :
			"Payload validation error: 'Expected type boolean but found type string' on property send_completion_email.",
			"invalid_body");
		return;
	}
	if (ext && ext->len > 255) {
		set_error(out, 400, "Payload validation error: 'String is too long (256 chars), "
			  "maximum 255' on property external_id.", "invalid_body");
		return;
	}
	if (tenant_active_imports(t, now) >= t->opt.max_active_jobs) {
		char msg[160];
		snprintf(msg, sizeof(msg), "There are %d active import users jobs, please wait until "
			 "some of them are finished and try again", t->opt.max_active_jobs);
		set_error(out, 429, msg, "too_many_requests");
		t->stats.active_jobs_429++;
		return;
	}
	char *ext_s = ext ? part_string(ext) : NULL;
	struct job *j = tenant_import_create(t, c, users->data, users->len, upsert == 1, email == 1,
					     ext_s, now);
	free(ext_s);
	if (!j) {
		set_error(out, 500, "Internal error", NULL);
		return;
	}
	json_object_object_add(logrec, "job_id", json_object_new_string(j->id));
	set_json(out, 202, tenant_job_json(t, j, j->created_ms), CT_MGMT);
	log_info("sandbox", "import job %s: %d users, %zu bytes, upsert=%s", j->id, j->nusers,
		 j->users_len, j->upsert ? "true" : "false");
}

/* ---- jobs ---------------------------------------------------------------- */

static bool job_id_ok(const char *s, size_t len)
{
	if (len != 20 || strncmp(s, "job_", 4) != 0)
		return false;
	for (size_t i = 4; i < len; i++)
		if (!isalnum((unsigned char)s[i]))
			return false;
	return true;
}

static struct job *find_job(struct tenant *t, const struct request *in, struct reply *out)
{
	const char *id = in->url + 13;
	const char *slash = strchr(id, '/');
	size_t len = slash ? (size_t)(slash - id) : strlen(id);
	char buf[32];
	if (!job_id_ok(id, len)) {
		set_error(out, 400, "Path validation error: 'String does not match pattern "
			  "^job_[A-Za-z0-9]{16}$' on property id.", "invalid_uri");
		return NULL;
	}
	memcpy(buf, id, len);
	buf[len] = '\0';
	struct job *j = tenant_job_find(t, buf);
	if (!j)
		set_error(out, 404, "Job not found.", "inexistent_job");
	return j;
}

static void handle_job(struct tenant *t, const struct request *in, int64_t now, bool errors,
		       struct reply *out)
{
	static const char *const scopes[] = { "create:users", "read:users", NULL };
	if (!authorize(t, in, scopes, now, out))
		return;
	struct job *j = find_job(t, in, out);
	if (!j)
		return;
	if (!errors) {
		set_json(out, 200, tenant_job_json(t, j, now), CT_MGMT);
		return;
	}
	if (!j->processed) {
		/* still running: the job object, as Auth0 sometimes answers */
		set_json(out, 200, tenant_job_json(t, j, now), CT_JSON);
		return;
	}
	if (j->failed || !j->errors || json_object_array_length(j->errors) == 0) {
		out->status = 204;
		return;
	}
	set_json(out, 200, json_object_get(j->errors), CT_JSON);
}

/* ---- exports --------------------------------------------------------------- */

static void handle_export(struct tenant *t, const struct request *in, int64_t now,
			  struct reply *out)
{
	static const char *const scopes[] = { "read:users", NULL };
	if (!authorize(t, in, scopes, now, out))
		return;
	json_object *body = in->body_len ? json_tokener_parse(in->body) : json_object_new_object();
	json_object *v, *fields = NULL;
	const char *format = "json";
	long limit = 0;
	int c = -1;
	if (!body || !json_object_is_type(body, json_type_object)) {
		set_error(out, 400, "Payload validation error: 'Invalid JSON payload'.", "invalid_body");
		goto out;
	}
	if (json_object_object_get_ex(body, "connection_id", &v)) {
		const char *s = json_object_get_string(v);
		if (!json_object_is_type(v, json_type_string))
			s = "";
		c = check_connection(s, strlen(s), false, out);
		if (c < 0)
			goto out;
	}
	if (json_object_object_get_ex(body, "format", &v)) {
		format = json_object_get_string(v);
		if (!json_object_is_type(v, json_type_string) ||
		    (strcmp(format, "json") != 0 && strcmp(format, "csv") != 0)) {
			set_error(out, 400, "Payload validation error: 'No enum match for: "
				  "\"format\"' on property format.", "invalid_body");
			goto out;
		}
	}
	if (json_object_object_get_ex(body, "limit", &v)) {
		if (!json_object_is_type(v, json_type_int) || json_object_get_int64(v) < 1) {
			set_error(out, 400, "Payload validation error: 'Expected type integer "
				  "of at least 1' on property limit.", "invalid_body");
			goto out;
		}
		limit = (long)json_object_get_int64(v);
	}
	if (json_object_object_get_ex(body, "fields", &fields)) {
		bool ok = json_object_is_type(fields, json_type_array);
		size_t n = ok ? json_object_array_length(fields) : 0;
		for (size_t i = 0; ok && i < n; i++) {
			json_object *f = json_object_array_get_idx(fields, i), *name, *as;
			ok = json_object_is_type(f, json_type_object) &&
			     json_object_object_get_ex(f, "name", &name) &&
			     json_object_is_type(name, json_type_string) &&
			     (!json_object_object_get_ex(f, "export_as", &as) ||
			      json_object_is_type(as, json_type_string));
		}
		if (!ok || n == 0) {
			set_error(out, 400, "Payload validation error: 'Invalid fields' on property "
				  "fields.", "invalid_body");
			goto out;
		}
		if (strcmp(format, "csv") == 0 && n > 30) {
			set_error(out, 400, "Payload validation error: 'Array is too long (more than "
				  "30 fields) for the csv format' on property fields.", "invalid_body");
			goto out;
		}
	} else {
		fields = NULL;
	}
	struct job *j = tenant_export_create(t, c, format, fields, limit, now);
	if (!j) {
		set_error(out, 500, "Internal error", NULL);
		goto out;
	}
	set_json(out, 200, tenant_job_json(t, j, j->created_ms), CT_MGMT);
out:
	json_object_put(body);
}

/* ---- users --------------------------------------------------------------- */

static void handle_users_by_email(struct tenant *t, const struct request *in, int64_t now,
				  struct reply *out)
{
	static const char *const scopes[] = { "read:users", NULL };
	if (!authorize(t, in, scopes, now, out))
		return;
	const char *email = MHD_lookup_connection_value(in->conn, MHD_GET_ARGUMENT_KIND, "email");
	if (!email || !*email) {
		set_error(out, 400, "Query validation error: 'Missing required property: email' "
			  "on property email.", "invalid_query_string");
		return;
	}
	json_object *list = json_object_new_array();
	for (int c = 0; c < TENANT_CONNECTIONS; c++) {
		struct user *u = tenant_user_by_email(t, c, email);
		if (u)
			json_object_array_add(list, tenant_user_json(t, u));
	}
	set_json(out, 200, list, CT_MGMT);
}

static void handle_user_delete(struct tenant *t, const struct request *in, int64_t now,
			       struct reply *out)
{
	static const char *const scopes[] = { "delete:users", NULL };
	if (!authorize(t, in, scopes, now, out))
		return;
	struct user *u = tenant_user_by_id(t, in->url + 14);
	if (u)
		tenant_user_delete(t, u, now);
	out->status = 204;
	out->ctype = CT_MGMT;
}

/* ---- dispatch -------------------------------------------------------------- */

void handlers_tenant(struct tenant *t, const struct request *in, struct reply *out)
{
	const char *endpoint = endpoint_of(in->method, in->url);
	tenant_lock();
	int64_t now = sbx_now_ms();
	tenant_advance(t, now);
	json_object *logrec = tenant_log_request(t, in->method, in->url, endpoint, in->arrived,
						 in->body_total);
	/* when the whole request was in and the tenant was ours */
	json_object_object_add(logrec, "handled_ms", json_object_new_int64(now));
	long remaining, reset, retry_after;
	bool ok = tenant_bucket_take(t, now, &remaining, &reset, &retry_after);
	out->ratelimit = true;
	out->rl_limit = t->opt.burst;
	out->rl_remaining = remaining;
	out->rl_reset = reset;
	enum fault_action action = FAULT_NONE;
	int fstatus = 0;
	double fseconds = 0;
	if (!ok) {
		t->stats.rate_limited++;
		global_limit(t, out, now, retry_after);
		goto done;
	}
	pick_fault(t, endpoint, &action, &fstatus, &fseconds);
	if (action != FAULT_NONE)
		json_object_object_add(logrec, "fault", json_object_new_string(
			action == FAULT_STATUS ? "status" : action == FAULT_SLOW ? "slow" :
			action == FAULT_RESET ? "reset" : "reset-after"));
	if (action == FAULT_RESET) {
		t->stats.faults_reset++;
		out->fault = FAULT_RESET;
		json_object_object_add(logrec, "status", json_object_new_int(0));
		handlers_reply_freeze(out);
		tenant_unlock();
		return;
	}
	if (action == FAULT_STATUS) {
		if (fstatus == 429) {
			t->stats.faults_429++;
			global_limit(t, out, now, retry_after);
		} else if (fstatus >= 500) {
			/* a proxy's page: HTML, no rate-limit headers */
			static const char page[] = "<html><head><title>503 Service Temporarily "
				"Unavailable</title></head><body><center><h1>Service Unavailable</h1>"
				"</center></body></html>\n";
			t->stats.faults_5xx++;
			out->status = fstatus;
			out->raw = (char *)page;
			out->raw_len = sizeof(page) - 1;
			out->ctype = "text/html";
			out->ratelimit = false;
		} else {
			set_error(out, fstatus, "Injected fault", NULL);
		}
		goto done;
	}
	if (action == FAULT_SLOW) {
		t->stats.faults_slow++;
		out->slow_seconds = fseconds;
	}
	if (action == FAULT_RESET_AFTER) {
		t->stats.faults_reset++;
		out->fault = FAULT_RESET_AFTER;
	}

	if (strcmp(endpoint, "token") == 0)
		handle_token(t, in, now, out);
	else if (strcmp(endpoint, "users-imports") == 0 && strcmp(in->method, "POST") == 0)
		handle_import(t, in, now, logrec, out);
	else if (strcmp(endpoint, "users-exports") == 0 && strcmp(in->method, "POST") == 0)
		handle_export(t, in, now, out);
	else if (strcmp(endpoint, "job") == 0 && strcmp(in->method, "GET") == 0)
		handle_job(t, in, now, false, out);
	else if (strcmp(endpoint, "job-errors") == 0 && strcmp(in->method, "GET") == 0)
		handle_job(t, in, now, true, out);
	else if (strcmp(endpoint, "users-by-email") == 0 && strcmp(in->method, "GET") == 0)
		handle_users_by_email(t, in, now, out);
	else if (strcmp(endpoint, "users-delete") == 0)
		handle_user_delete(t, in, now, out);
	else
		set_error(out, 404, "Not Found", NULL);
done:
	{
		char key[8];
		json_object *cnt;
		snprintf(key, sizeof(key), "%d", out->status);
		json_object_object_add(logrec, "status", json_object_new_int(out->status));
		if (json_object_object_get_ex(t->status_counts, key, &cnt))
			json_object_set_int64(cnt, json_object_get_int64(cnt) + 1);
		else
			json_object_object_add(t->status_counts, key, json_object_new_int64(1));
	}
	/* the answer is ready (jobs that ended were processed on the way) */
	json_object_object_add(logrec, "answered_ms", json_object_new_int64(sbx_now_ms()));
	handlers_reply_freeze(out);
	tenant_unlock();
}

/* ---- the export file host ------------------------------------------------- */

static void xml_error(struct reply *out, int status, const char *code, const char *message)
{
	char *buf = NULL;
	int n = asprintf(&buf, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>%s</Code>"
			 "<Message>%s</Message></Error>\n", code, message);
	if (n < 0)
		buf = NULL;
	out->status = status;
	out->raw = buf;
	out->raw_len = buf ? (size_t)n : 0;
	out->raw_owned = buf != NULL;
	out->ctype = "application/xml";
}

void handlers_export_file(struct tenant *t, const struct request *in, struct reply *out)
{
	const char *name = in->url + 11;
	const char *dot = strchr(name, '.');
	char id[32];
	size_t len = dot ? (size_t)(dot - name) : strlen(name);
	if (len >= sizeof(id) || strcmp(in->method, "GET") != 0) {
		xml_error(out, 404, "NoSuchKey", "The specified key does not exist.");
		return;
	}
	memcpy(id, name, len);
	id[len] = '\0';
	const char *expires = MHD_lookup_connection_value(in->conn, MHD_GET_ARGUMENT_KIND, "Expires");
	const char *sig = MHD_lookup_connection_value(in->conn, MHD_GET_ARGUMENT_KIND, "Signature");
	tenant_lock();
	int64_t now = sbx_now_ms();
	tenant_advance(t, now);
	const struct job *j = NULL;
	int r = tenant_export_check(t, id, expires, sig, now, &j);
	if (r == -ENOENT) {
		xml_error(out, 404, "NoSuchKey", "The specified key does not exist.");
	} else if (r < 0) {
		xml_error(out, 403, "AccessDenied", "Request has expired");
	} else {
		out->raw = malloc(j->file_len ? j->file_len : 1);
		if (out->raw) {
			memcpy(out->raw, j->file, j->file_len);
			out->raw_len = j->file_len;
			out->raw_owned = true;
			out->status = 200;
			out->ctype = "application/gzip";
		} else {
			xml_error(out, 500, "InternalError", "out of memory");
		}
	}
	tenant_unlock();
}
