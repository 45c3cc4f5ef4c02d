/* The export's fields list: defaults, parsing, completion, JSON. */
#include "daemon/convert/convert.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

static const char *const default_names[] = {
	"email", "email_verified", "user_id", "username", "given_name", "family_name", "name",
	"nickname", "picture", "blocked", "phone_number", "phone_verified", "app_metadata",
	"user_metadata", NULL,
};

void convert_fields_default(struct convert_fields *ret)
{
	memset(ret, 0, sizeof(*ret));
	for (size_t i = 0; default_names[i]; i++)
		snprintf(ret->f[ret->n++].name, CONVERT_NAME_MAX, "%s", default_names[i]);
}

static int find(const struct convert_fields *f, const char *name)
{
	for (size_t i = 0; i < f->n; i++)
		if (strcmp(f->f[i].name, name) == 0)
			return (int)i;
	return -1;
}

int convert_fields_parse(json_object *arr, struct convert_fields *ret, char *err, size_t errsize)
{
	if (!arr) {
		convert_fields_default(ret);
		return 0;
	}
	if (!json_object_is_type(arr, json_type_array) || json_object_array_length(arr) == 0) {
		snprintf(err, errsize, "fields must be a non-empty array of {\"name\", \"export_as\"}");
		return -EINVAL;
	}
	size_t n = json_object_array_length(arr);
	if (n > CONVERT_FIELDS_MAX) {
		snprintf(err, errsize, "at most %u fields", CONVERT_FIELDS_MAX);
		return -EINVAL;
	}
	static struct convert_fields tmp_zero;
	struct convert_fields tmp = tmp_zero;
	for (size_t i = 0; i < n; i++) {
		json_object *o = json_object_array_get_idx(arr, i), *name, *as = NULL;
		if (!json_object_is_type(o, json_type_object) ||
		    !json_object_object_get_ex(o, "name", &name) ||
		    !json_object_is_type(name, json_type_string) ||
		    json_object_get_string_len(name) == 0 ||
		    (json_object_object_get_ex(o, "export_as", &as) &&
		     !json_object_is_type(as, json_type_string))) {
			snprintf(err, errsize, "fields[%zu] must be {\"name\": string, \"export_as\": string}", i);
			return -EINVAL;
		}
		const char *s = json_object_get_string(name);
		const char *a = as ? json_object_get_string(as) : "";
		if (strlen(s) >= CONVERT_NAME_MAX || strlen(a) >= CONVERT_NAME_MAX) {
			snprintf(err, errsize, "fields[%zu]: names are at most %u bytes", i,
				 CONVERT_NAME_MAX - 1);
			return -EINVAL;
		}
		if (find(&tmp, s) >= 0) {
			snprintf(err, errsize, "fields[%zu]: \"%s\" is named twice", i, s);
			return -EINVAL;
		}
		snprintf(tmp.f[tmp.n].name, CONVERT_NAME_MAX, "%s", s);
		snprintf(tmp.f[tmp.n].export_as, CONVERT_NAME_MAX, "%s", a);
		tmp.n++;
	}
	*ret = tmp;
	return 0;
}

int convert_fields_complete(struct convert_fields *f)
{
	size_t missing = 0;
	for (size_t i = 0; default_names[i]; i++)
		missing += find(f, default_names[i]) < 0;
	if (f->n + missing > CONVERT_FIELDS_MAX)
		return -E2BIG;
	for (size_t i = 0; default_names[i]; i++) {
		if (find(f, default_names[i]) >= 0)
			continue;
		memset(&f->f[f->n], 0, sizeof(f->f[f->n]));
		snprintf(f->f[f->n].name, CONVERT_NAME_MAX, "%s", default_names[i]);
		f->n++;
	}
	return 0;
}

json_object *convert_fields_to_json(const struct convert_fields *f)
{
	json_object *arr = json_object_new_array();
	for (size_t i = 0; arr && i < f->n; i++) {
		json_object *o = json_object_new_object();
		json_object_object_add(o, "name", json_object_new_string(f->f[i].name));
		if (f->f[i].export_as[0])
			json_object_object_add(o, "export_as", json_object_new_string(f->f[i].export_as));
		json_object_array_add(arr, o);
	}
	return arr;
}
