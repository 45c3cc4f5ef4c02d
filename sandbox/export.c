#include "sandbox/export.h"

#include "sandbox/tenant.h"
#include "sandbox/util.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#define EXPORT_MAX_BYTES (256u << 20)

static const char *const default_fields[] = { "user_id", "email", "email_verified", "username",
	"phone_number", "phone_verified", "name", "given_name", "family_name", "nickname",
	"picture", "created_at", "updated_at", NULL };

static bool is_date_field(const char *name)
{
	return strcmp(name, "created_at") == 0 || strcmp(name, "updated_at") == 0 ||
	       strcmp(name, "last_login") == 0;
}

/* The value of field `name` for user u (new reference), or NULL. Dotted
 * names reach into objects (user_metadata.plan). */
static json_object *field_value(const struct tenant *t, const struct user *u, const char *name)
{
	char buf[300];
	if (strcmp(name, "user_id") == 0) {
		snprintf(buf, sizeof(buf), "auth0|%s", u->user_id);
		return json_object_new_string(buf);
	}
	if (strcmp(name, "created_at") == 0 || strcmp(name, "updated_at") == 0) {
		sbx_iso8601(name[0] == 'c' ? u->created_ms : u->updated_ms, buf, sizeof(buf));
		return json_object_new_string(buf);
	}
	if (strcmp(name, "password_hash") == 0 || strcmp(name, "custom_password_hash") == 0)
		return NULL;
	if (strcmp(name, "identities") == 0 || strcmp(name, "name") == 0 ||
	    strcmp(name, "nickname") == 0) {
		json_object *full = tenant_user_json(t, u), *v = NULL;
		if (json_object_object_get_ex(full, name, &v))
			json_object_get(v);
		json_object_put(full);
		return v;
	}
	json_object *cur = u->profile;
	snprintf(buf, sizeof(buf), "%s", name);
	char *save = NULL;
	for (char *part = strtok_r(buf, ".", &save); part; part = strtok_r(NULL, ".", &save)) {
		if (!json_object_is_type(cur, json_type_object) ||
		    !json_object_object_get_ex(cur, part, &cur))
			return NULL;
	}
	return json_object_get(cur);
}

static int csv_value(struct sbx_buf *b, const char *name, json_object *v)
{
	if (!v)
		return 0;
	enum json_type ty = json_object_get_type(v);
	if (ty == json_type_boolean || ty == json_type_int || ty == json_type_double ||
	    ty == json_type_null) {
		const char *s = json_object_to_json_string_ext(v, JSON_C_TO_STRING_PLAIN);
		return sbx_buf_append(b, s, strlen(s));
	}
	const char *s = ty == json_type_string ? json_object_get_string(v) :
		json_object_to_json_string_ext(v, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE);
	if (ty == json_type_string && is_date_field(name))
		return sbx_buf_append(b, s, strlen(s));
	int r = sbx_buf_append(b, "\"'", 2);
	for (const char *p = s; r == 0 && *p; p++)
		r = *p == '"' ? sbx_buf_append(b, "\"\"", 2) : sbx_buf_append(b, p, 1);
	return r ? r : sbx_buf_append(b, "\"", 1);
}

static int gzip_bytes(const char *in, size_t len, unsigned char **ret, size_t *ret_len)
{
	z_stream zs;
	memset(&zs, 0, sizeof(zs));
	if (deflateInit2(&zs, Z_DEFAULT_COMPRESSION, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) != Z_OK)
		return -ENOMEM;
	uLong bound = deflateBound(&zs, (uLong)len) + 32;
	unsigned char *out = malloc(bound);
	if (!out) {
		deflateEnd(&zs);
		return -ENOMEM;
	}
	zs.next_in = (Bytef *)in;
	zs.avail_in = (uInt)len;
	zs.next_out = out;
	zs.avail_out = (uInt)bound;
	int r = deflate(&zs, Z_FINISH);
	size_t n = zs.total_out;
	deflateEnd(&zs);
	if (r != Z_STREAM_END) {
		free(out);
		return -EIO;
	}
	*ret = out;
	*ret_len = n;
	return 0;
}

int export_file_build(struct tenant *t, const struct job *j, unsigned char **ret_data,
		      size_t *ret_len)
{
	/* names asked for and what they are exported as */
	const char *names[64], *as[64];
	size_t nf = 0;
	if (j->fields) {
		size_t n = json_object_array_length(j->fields);
		for (size_t i = 0; i < n && nf < 64; i++) {
			json_object *f = json_object_array_get_idx(j->fields, i), *v;
			if (!json_object_object_get_ex(f, "name", &v))
				continue;
			names[nf] = json_object_get_string(v);
			as[nf] = json_object_object_get_ex(f, "export_as", &v) ?
				json_object_get_string(v) : names[nf];
			nf++;
		}
	} else {
		for (; default_fields[nf]; nf++)
			names[nf] = as[nf] = default_fields[nf];
	}
	bool csv = strcmp(j->format, "csv") == 0;
	struct sbx_buf b;
	int r = 0;
	sbx_buf_init(&b, EXPORT_MAX_BYTES);
	if (csv) {
		for (size_t i = 0; r == 0 && i < nf; i++) {
			if (i)
				r = sbx_buf_append(&b, ",", 1);
			if (r == 0)
				r = sbx_buf_append(&b, as[i], strlen(as[i]));
		}
		if (r == 0)
			r = sbx_buf_append(&b, "\n", 1);
	}
	long written = 0;
	for (size_t k = 0; r == 0 && k < t->nusers; k++) {
		const struct user *u = t->users[k];
		if (u->deleted || (j->conn >= 0 && u->conn != j->conn))
			continue;
		if (j->limit > 0 && written >= j->limit)
			break;
		if (csv) {
			for (size_t i = 0; r == 0 && i < nf; i++) {
				json_object *v = field_value(t, u, names[i]);
				if (i)
					r = sbx_buf_append(&b, ",", 1);
				if (r == 0)
					r = csv_value(&b, names[i], v);
				json_object_put(v);
			}
		} else {
			json_object *line = json_object_new_object();
			for (size_t i = 0; i < nf; i++) {
				json_object *v = field_value(t, u, names[i]);
				if (v)
					json_object_object_add(line, as[i], v);
			}
			const char *s = json_object_to_json_string_ext(line,
				JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE);
			r = sbx_buf_append(&b, s, strlen(s));
			json_object_put(line);
		}
		if (r == 0)
			r = sbx_buf_append(&b, "\n", 1);
		written++;
	}
	if (r == 0)
		r = gzip_bytes(b.data ? b.data : "", b.len, ret_data, ret_len);
	sbx_buf_done(&b);
	return r;
}
