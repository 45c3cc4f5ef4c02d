/* One exported user to one import user (convert.h "What conversion does"). */
#include "daemon/convert/convert.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

enum prop_kind { PROP_NONE = 0, PROP_STRING, PROP_BOOL, PROP_OBJECT, PROP_ARRAY };

static const struct {
	const char *name;
	enum prop_kind kind;
} props[] = {
	{ "email", PROP_STRING },          { "email_verified", PROP_BOOL },
	{ "phone_number", PROP_STRING },   { "phone_verified", PROP_BOOL },
	{ "user_id", PROP_STRING },        { "username", PROP_STRING },
	{ "given_name", PROP_STRING },     { "family_name", PROP_STRING },
	{ "name", PROP_STRING },           { "nickname", PROP_STRING },
	{ "picture", PROP_STRING },        { "blocked", PROP_BOOL },
	{ "password_hash", PROP_STRING },  { "custom_password_hash", PROP_OBJECT },
	{ "app_metadata", PROP_OBJECT },   { "user_metadata", PROP_OBJECT },
	{ "mfa_factors", PROP_ARRAY },
};

static enum prop_kind prop_kind(const char *name, size_t len)
{
	for (size_t i = 0; i < sizeof(props) / sizeof(props[0]); i++)
		if (strlen(props[i].name) == len && memcmp(props[i].name, name, len) == 0)
			return props[i].kind;
	return PROP_NONE;
}

__attribute__((format(printf, 2, 3)))
static void note(struct convert_notes *n, const char *fmt, ...)
{
	if (n->n < CONVERT_NOTES_MAX) {
		va_list ap;
		va_start(ap, fmt);
		vsnprintf(n->note[n->n], CONVERT_NOTE_MAX, fmt, ap);
		va_end(ap);
		n->n++;
	}
	n->total++;
}

/* The field name an exported key stands for. */
static const char *map_key(const struct convert_fields *f, const char *key)
{
	for (size_t i = 0; i < f->n; i++)
		if (f->f[i].export_as[0] && strcmp(f->f[i].export_as, key) == 0)
			return f->f[i].name;
	return key;
}

/* `v` as a value of `kind` (new reference), or NULL when it is not one. */
static json_object *coerce(json_object *v, enum prop_kind kind)
{
	enum json_type t = json_object_get_type(v);
	switch (kind) {
	case PROP_STRING:
		return t == json_type_string ? json_object_get(v) : NULL;
	case PROP_BOOL:
		if (t == json_type_boolean)
			return json_object_get(v);
		if (t == json_type_string && strcmp(json_object_get_string(v), "true") == 0)
			return json_object_new_boolean(1);
		if (t == json_type_string && strcmp(json_object_get_string(v), "false") == 0)
			return json_object_new_boolean(0);
		return NULL;
	case PROP_OBJECT:
	case PROP_ARRAY: {
		enum json_type want = kind == PROP_OBJECT ? json_type_object : json_type_array;
		if (t == want)
			return json_object_get(v);
		if (t != json_type_string)
			return NULL;
		json_object *p = json_tokener_parse(json_object_get_string(v));
		if (p && json_object_is_type(p, want))
			return p;
		json_object_put(p);
		return NULL;
	}
	case PROP_NONE:
		break;
	}
	return NULL;
}

static const char *kind_name(enum prop_kind k)
{
	return k == PROP_BOOL ? "a boolean" : k == PROP_OBJECT ? "an object" :
	       k == PROP_ARRAY ? "an array" : "a string";
}

/* Sets out[a][b]…[z] = v for a dotted name (consumes v). */
static int set_dotted(json_object *out, const char *name, json_object *v)
{
	char buf[CONVERT_NAME_MAX];
	snprintf(buf, sizeof(buf), "%s", name);
	json_object *cur = out;
	char *save = NULL, *part = strtok_r(buf, ".", &save);
	while (part) {
		char *next = strtok_r(NULL, ".", &save);
		if (!next) {
			json_object_object_add(cur, part, v);
			return 0;
		}
		json_object *child;
		if (!json_object_object_get_ex(cur, part, &child) ||
		    !json_object_is_type(child, json_type_object)) {
			child = json_object_new_object();
			if (!child)
				break;
			json_object_object_add(cur, part, child);
		}
		cur = child;
		part = next;
	}
	json_object_put(v);
	return -EINVAL;
}

static void list_add(char *list, size_t size, const char *key)
{
	size_t len = strlen(list);
	if (len + 8 >= size)
		return;
	if (len == 0)
		snprintf(list, size, "%s", key);
	else if (len + strlen(key) + 8 < size)
		snprintf(list + len, size - len, ", %s", key);
	else if (!strstr(list, ", …"))
		snprintf(list + len, size - len, ", …");
}

int convert_user(json_object *in, const struct convert_fields *f, struct convert_hashes *hashes,
		 json_object **ret_user, struct convert_notes *notes)
{
	struct convert_fields def;
	if (!f) {
		convert_fields_default(&def);
		f = &def;
	}
	memset(notes, 0, sizeof(*notes));
	*ret_user = NULL;
	if (!json_object_is_type(in, json_type_object)) {
		note(notes, "dropped: not a JSON object");
		return CONVERT_DROPPED;
	}
	json_object *out = json_object_new_object();
	if (!out)
		return -ENOMEM;
	char dropped[200] = "";
	char orig_id[300] = "";
	int r;
	json_object_object_foreach(in, key, val) {
		const char *target = map_key(f, key);
		const char *dot = strchr(target, '.');
		size_t toplen = dot ? (size_t)(dot - target) : strlen(target);
		enum prop_kind kind = prop_kind(target, toplen);
		if (kind == PROP_NONE || (dot && kind != PROP_OBJECT) ||
		    (dot && strncmp(target, "custom_password_hash", toplen) == 0)) {
			list_add(dropped, sizeof(dropped), key);
			continue;
		}
		if (!val || json_object_is_type(val, json_type_null)) {
			note(notes, "dropped %s: null", key);
			continue;
		}
		if (json_object_is_type(val, json_type_string) && json_object_get_string_len(val) == 0)
			continue; /* an empty CSV cell: absent */
		if (dot) {
			if (set_dotted(out, target, json_object_get(val)) < 0) {
				r = -ENOMEM;
				goto fail;
			}
			continue;
		}
		json_object *v = coerce(val, kind);
		if (!v) {
			note(notes, "dropped %s: not %s", key, kind_name(kind));
			continue;
		}
		if (strcmp(target, "user_id") == 0)
			snprintf(orig_id, sizeof(orig_id), "%s", json_object_get_string(v));
		json_object *old;
		if (kind == PROP_OBJECT && json_object_object_get_ex(out, target, &old) &&
		    json_object_is_type(old, json_type_object) && json_object_is_type(v, json_type_object)) {
			/* dotted parts came first: merge them into the whole object */
			json_object_object_foreach(old, k2, v2)
				if (!json_object_object_get_ex(v, k2, NULL))
					json_object_object_add(v, k2, json_object_get(v2));
		}
		json_object_object_add(out, target, v);
	}
	if (dropped[0])
		note(notes, "dropped %s (not import properties)", dropped);

	json_object *v;
	if (json_object_object_get_ex(out, "user_id", &v)) {
		const char *id = json_object_get_string(v);
		const char *bar = strchr(id, '|');
		if (strncmp(id, "auth0|", 6) == 0) {
			json_object_object_add(out, "user_id", json_object_new_string(id + 6));
			note(notes, "removed the auth0| prefix from user_id");
		} else if (bar) {
			note(notes, "dropped: user_id %.*s… belongs to identity provider %.*s; only "
			     "database users can be imported", (int)(bar - id + 1), id,
			     (int)(bar - id), id);
			r = CONVERT_DROPPED;
			goto fail;
		}
	}
	if (!json_object_object_get_ex(out, "email", NULL)) {
		note(notes, "dropped: no email (the import schema requires one)");
		r = CONVERT_DROPPED;
		goto fail;
	}
	if (hashes && orig_id[0] && !json_object_object_get_ex(out, "password_hash", NULL) &&
	    !json_object_object_get_ex(out, "custom_password_hash", NULL)) {
		char lookup_id[320], hash[512];
		if (strncmp(orig_id, "auth0|", 6) == 0)
			snprintf(lookup_id, sizeof(lookup_id), "%s", orig_id);
		else
			snprintf(lookup_id, sizeof(lookup_id), "auth0|%s", orig_id);
		r = convert_hashes_lookup(hashes, lookup_id, hash, sizeof(hash));
		if (r == 0) {
			json_object_object_add(out, "password_hash", json_object_new_string(hash));
			note(notes, "added password_hash from the hashes file");
			notes->hash_added = true;
		} else if (r != -ENOENT && r != -ENOSPC) {
			goto fail;
		}
	}
	*ret_user = out;
	return notes->total ? CONVERT_CHANGED : CONVERT_SAME;
fail:
	json_object_put(out);
	return r;
}
