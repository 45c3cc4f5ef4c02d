/* daemon/convert: fields, one user, the hashes index, the jq filter, whole files. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "daemon/convert/convert.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zlib.h>

static char tmpdir[256];

static int setup(void **state)
{
	snprintf(tmpdir, sizeof(tmpdir), "/tmp/test_convert.XXXXXX");
	assert_non_null(mkdtemp(tmpdir));
	return 0;
}

static int teardown(void **state)
{
	char cmd[300];
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpdir);
	assert_int_equal(system(cmd), 0);
	return 0;
}

static void write_file(const char *name, const char *text, bool gz, char *ret_path)
{
	sprintf(ret_path, "%s/%s", tmpdir, name);
	if (gz) {
		gzFile g = gzopen(ret_path, "wb");
		assert_non_null(g);
		assert_int_equal(gzwrite(g, text, (unsigned)strlen(text)), (int)strlen(text));
		assert_int_equal(gzclose(g), Z_OK);
	} else {
		FILE *f = fopen(ret_path, "w");
		assert_non_null(f);
		fputs(text, f);
		fclose(f);
	}
}

static json_object *read_json(const char *path)
{
	json_object *o = json_object_from_file(path);
	assert_non_null(o);
	return o;
}

static const char *get_str(json_object *o, const char *key)
{
	json_object *v;
	if (!json_object_object_get_ex(o, key, &v))
		return NULL;
	return json_object_get_string(v);
}

/* ---- fields ---- */

static void test_fields(void **state)
{
	struct convert_fields f;
	char err[256];
	convert_fields_default(&f);
	assert_int_equal(f.n, 14);
	assert_string_equal(f.f[0].name, "email");

	json_object *arr = json_tokener_parse(
		"[{\"name\":\"email\",\"export_as\":\"mail\"},{\"name\":\"user_metadata.plan\",\"export_as\":\"plan\"}]");
	assert_int_equal(convert_fields_parse(arr, &f, err, sizeof(err)), 0);
	assert_int_equal(f.n, 2);
	assert_string_equal(f.f[0].export_as, "mail");
	assert_int_equal(convert_fields_complete(&f), 0);
	assert_int_equal(f.n, 15); /* email already there */
	json_object *j = convert_fields_to_json(&f);
	assert_int_equal(json_object_array_length(j), 15);
	assert_string_equal(json_object_get_string(json_object_object_get(
		json_object_array_get_idx(j, 0), "export_as")), "mail");
	json_object_put(j);
	json_object_put(arr);

	const char *bad[] = { "{}", "[]", "[{\"export_as\":\"x\"}]", "[{\"name\":1}]",
			      "[{\"name\":\"a\"},{\"name\":\"a\"}]", "[{\"name\":\"a\",\"export_as\":2}]" };
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		arr = json_tokener_parse(bad[i]);
		err[0] = '\0';
		assert_int_equal(convert_fields_parse(arr, &f, err, sizeof(err)), -EINVAL);
		assert_true(err[0] != '\0');
		json_object_put(arr);
	}
	assert_int_equal(convert_fields_parse(NULL, &f, err, sizeof(err)), 0);
	assert_int_equal(f.n, 14);
}

/* ---- one user ---- */

static int conv(const char *json, const struct convert_fields *f, json_object **ret,
		struct convert_notes *notes)
{
	json_object *in = json_tokener_parse(json);
	assert_non_null(in);
	int r = convert_user(in, f, NULL, ret, notes);
	json_object_put(in);
	return r;
}

static bool has_note(const struct convert_notes *n, const char *part)
{
	for (size_t i = 0; i < n->n; i++)
		if (strstr(n->note[i], part))
			return true;
	return false;
}

static void test_user_strip_and_drop(void **state)
{
	struct convert_notes n;
	json_object *u;
	int r = conv("{\"user_id\":\"auth0|abc\",\"email\":\"a@x.io\",\"created_at\":\"2020-01-01T00:00:00Z\","
		     "\"identities\":[{\"provider\":\"auth0\"}],\"logins_count\":3,\"last_ip\":\"1.2.3.4\","
		     "\"blocked\":false,\"app_metadata\":{\"plan\":\"pro\"},\"nickname\":null}",
		     NULL, &u, &n);
	assert_int_equal(r, CONVERT_CHANGED);
	assert_string_equal(get_str(u, "user_id"), "abc");
	assert_string_equal(get_str(u, "email"), "a@x.io");
	assert_null(get_str(u, "created_at"));
	assert_null(get_str(u, "identities"));
	assert_null(get_str(u, "logins_count"));
	assert_null(get_str(u, "last_ip"));
	assert_false(json_object_object_get_ex(u, "nickname", NULL));
	assert_true(json_object_get_boolean(json_object_object_get(u, "blocked")) == 0);
	assert_true(has_note(&n, "auth0| prefix"));
	assert_true(has_note(&n, "created_at"));
	assert_true(has_note(&n, "identities"));
	assert_true(has_note(&n, "nickname: null"));
	json_object_put(u);

	/* an already clean user is SAME */
	r = conv("{\"email\":\"b@x.io\",\"user_id\":\"b1\",\"email_verified\":true}", NULL, &u, &n);
	assert_int_equal(r, CONVERT_SAME);
	assert_int_equal(n.total, 0);
	json_object_put(u);

	/* auth0|auth0|x keeps one prefix: the same id at the target */
	r = conv("{\"email\":\"c@x.io\",\"user_id\":\"auth0|auth0|c\"}", NULL, &u, &n);
	assert_string_equal(get_str(u, "user_id"), "auth0|c");
	json_object_put(u);
}

static void test_user_dropped(void **state)
{
	struct convert_notes n;
	json_object *u = (json_object *)1;
	assert_int_equal(conv("{\"user_id\":\"auth0|a\",\"phone_number\":\"+15551234\"}", NULL, &u, &n),
			 CONVERT_DROPPED);
	assert_null(u);
	assert_true(has_note(&n, "no email"));
	assert_int_equal(conv("{\"user_id\":\"google-oauth2|123\",\"email\":\"g@x.io\"}", NULL, &u, &n),
			 CONVERT_DROPPED);
	assert_true(has_note(&n, "google-oauth2"));
	assert_int_equal(conv("[1,2]", NULL, &u, &n), CONVERT_DROPPED);
}

static void test_user_export_as_and_types(void **state)
{
	struct convert_fields f;
	char err[128];
	json_object *arr = json_tokener_parse(
		"[{\"name\":\"email\",\"export_as\":\"mail\"},{\"name\":\"user_metadata.plan\",\"export_as\":\"plan\"},"
		"{\"name\":\"email_verified\",\"export_as\":\"verified\"},{\"name\":\"app_metadata\"},"
		"{\"name\":\"user_id\",\"export_as\":\"id\"}]");
	assert_int_equal(convert_fields_parse(arr, &f, err, sizeof(err)), 0);
	json_object_put(arr);
	struct convert_notes n;
	json_object *u;
	/* CSV-like strings: booleans and objects come back typed */
	int r = conv("{\"mail\":\"m@x.io\",\"plan\":\"gold\",\"verified\":\"true\","
		     "\"app_metadata\":\"{\\\"roles\\\":[\\\"a\\\"]}\",\"id\":\"auth0|m1\"}", &f, &u, &n);
	assert_int_equal(r, CONVERT_CHANGED);
	assert_string_equal(get_str(u, "email"), "m@x.io");
	assert_string_equal(get_str(u, "user_id"), "m1");
	assert_true(json_object_get_boolean(json_object_object_get(u, "email_verified")));
	json_object *um = json_object_object_get(u, "user_metadata");
	assert_string_equal(get_str(um, "plan"), "gold");
	json_object *am = json_object_object_get(u, "app_metadata");
	assert_true(json_object_is_type(am, json_type_object));
	assert_false(json_object_object_get_ex(u, "mail", NULL));
	json_object_put(u);

	/* a value of the wrong type is dropped with a note */
	r = conv("{\"mail\":\"m@x.io\",\"verified\":\"yes\"}", &f, &u, &n);
	assert_int_equal(r, CONVERT_CHANGED);
	assert_false(json_object_object_get_ex(u, "email_verified", NULL));
	assert_true(has_note(&n, "not a boolean"));
	json_object_put(u);
}

/* ---- hashes ---- */

static void test_hashes(void **state)
{
	char path[512], err[256], hash[128];
	write_file("h.ndjson",
		   "{\"_id\":{\"$oid\":\"5dea01\"},\"email\":\"a@x.io\",\"passwordHash\":\"$2b$10$aaa\"}\n"
		   "{\"_id\":{\"$oid\":\"5dea02\"},\"alt_id\":\"legacy7\",\"email\":\"b@x.io\",\"passwordHash\":\"$2b$10$bbb\"}\n"
		   "not json\n"
		   "{\"_id\":{\"$oid\":\"5dea03\"},\"email\":\"c@x.io\"}\n"
		   "{\"_id\":{\"$oid\":\"5dea01\"},\"passwordHash\":\"$2b$10$dup\"}\n"
		   "\n",
		   false, path);
	struct convert_hashes *h;
	struct convert_hashes_stats st;
	assert_int_equal(convert_hashes_open(path, tmpdir, &h, &st, err, sizeof(err)), 0);
	assert_int_equal(st.lines, 5);
	assert_int_equal(st.indexed, 2);
	assert_int_equal(st.skipped, 2);
	assert_int_equal(st.duplicates, 1);
	assert_int_equal(convert_hashes_lookup(h, "auth0|5dea01", hash, sizeof(hash)), 0);
	assert_string_equal(hash, "$2b$10$aaa");
	assert_int_equal(convert_hashes_lookup(h, "auth0|legacy7", hash, sizeof(hash)), 0);
	assert_string_equal(hash, "$2b$10$bbb");
	assert_int_equal(convert_hashes_lookup(h, "auth0|5dea02", hash, sizeof(hash)), -ENOENT);
	assert_int_equal(convert_hashes_lookup(h, "auth0|nobody", hash, sizeof(hash)), -ENOENT);
	assert_int_equal(convert_hashes_lookup(h, "auth0|5dea01", hash, 4), -ENOSPC);

	/* through convert_user: the exported auth0|oid gets the hash */
	json_object *in = json_tokener_parse("{\"user_id\":\"auth0|legacy7\",\"email\":\"b@x.io\"}"), *u;
	struct convert_notes n;
	assert_int_equal(convert_user(in, NULL, h, &u, &n), CONVERT_CHANGED);
	assert_string_equal(get_str(u, "password_hash"), "$2b$10$bbb");
	assert_true(n.hash_added);
	json_object_put(u);
	json_object_put(in);
	convert_hashes_close(h);

	/* no usable line at all */
	write_file("bad.ndjson", "{\"a\":1}\n[]\n", false, path);
	assert_int_equal(convert_hashes_open(path, tmpdir, &h, &st, err, sizeof(err)), -EBADMSG);
	assert_non_null(strstr(err, "passwordHash"));
	/* the temporary files are gone */
	char cmd[400];
	snprintf(cmd, sizeof(cmd), "test -z \"$(ls '%s' | grep hashes-)\"", tmpdir);
	assert_int_equal(system(cmd), 0);
}

static void test_hashes_many_gzip(void **state)
{
	const unsigned N = 5000;
	size_t cap = (size_t)N * 100;
	char *text = malloc(cap), path[512], err[256], hash[128], id[64], want[64];
	size_t len = 0;
	for (unsigned i = 0; i < N; i++)
		len += (size_t)snprintf(text + len, cap - len,
					"{\"_id\":{\"$oid\":\"%024x\"},\"passwordHash\":\"$2b$10$h%u\"}\n", i, i);
	write_file("many.ndjson.gz", text, true, path);
	free(text);
	struct convert_hashes *h;
	struct convert_hashes_stats st;
	assert_int_equal(convert_hashes_open(path, tmpdir, &h, &st, err, sizeof(err)), 0);
	assert_int_equal(st.indexed, N);
	for (unsigned i = 0; i < N; i++) {
		snprintf(id, sizeof(id), "auth0|%024x", i);
		snprintf(want, sizeof(want), "$2b$10$h%u", i);
		assert_int_equal(convert_hashes_lookup(h, id, hash, sizeof(hash)), 0);
		assert_string_equal(hash, want);
	}
	assert_int_equal(convert_hashes_lookup(h, "auth0|x", hash, sizeof(hash)), -ENOENT);
	convert_hashes_close(h);
}

/* ---- jq ---- */

struct outs {
	unsigned n;
	char last[256];
};

static int collect(void *ctx, const char *json, size_t len)
{
	struct outs *o = ctx;
	o->n++;
	snprintf(o->last, sizeof(o->last), "%.*s", (int)len, json);
	return 0;
}

static void test_jq(void **state)
{
	struct convert_jq *q;
	char err[256];
	err[0] = '\0';
	assert_int_equal(convert_jq_new("select(.a ==", &q, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "error"));
	assert_int_equal(convert_jq_new("nosuchfunction(1)", &q, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "nosuchfunction"));

	assert_int_equal(convert_jq_new("select(.app_metadata.plan == \"pro\")", &q, err, sizeof(err)), 0);
	const char *pro = "{\"email\":\"a@x.io\",\"app_metadata\":{\"plan\":\"pro\"}}";
	const char *free_ = "{\"email\":\"b@x.io\",\"app_metadata\":{\"plan\":\"free\"}}";
	struct outs o = { 0 };
	unsigned n;
	bool changed;
	assert_int_equal(convert_jq_apply(q, pro, strlen(pro), collect, &o, &n, &changed, err, sizeof(err)), 0);
	assert_int_equal(n, 1);
	assert_false(changed);
	assert_int_equal(convert_jq_apply(q, free_, strlen(free_), collect, &o, &n, &changed, err, sizeof(err)), 0);
	assert_int_equal(n, 0);
	assert_int_equal(o.n, 1);
	convert_jq_free(q);

	assert_int_equal(convert_jq_new(".user_metadata.migrated = true | del(.app_metadata)", &q, err, sizeof(err)), 0);
	assert_int_equal(convert_jq_apply(q, pro, strlen(pro), collect, &o, &n, &changed, err, sizeof(err)), 0);
	assert_true(changed);
	assert_string_equal(o.last, "{\"email\":\"a@x.io\",\"user_metadata\":{\"migrated\":true}}");
	convert_jq_free(q);

	assert_int_equal(convert_jq_new("error(\"nope\")", &q, err, sizeof(err)), 0);
	assert_int_equal(convert_jq_apply(q, pro, strlen(pro), collect, &o, &n, &changed, err, sizeof(err)), -EINVAL);
	assert_string_equal(err, "nope");
	convert_jq_free(q);

	assert_int_equal(convert_jq_new(".email", &q, err, sizeof(err)), 0);
	assert_int_equal(convert_jq_apply(q, pro, strlen(pro), collect, &o, &n, &changed, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "not an object"));
	convert_jq_free(q);

	assert_int_equal(convert_jq_new(".,.", &q, err, sizeof(err)), 0);
	o.n = 0;
	assert_int_equal(convert_jq_apply(q, pro, strlen(pro), collect, &o, &n, &changed, err, sizeof(err)), 0);
	assert_int_equal(n, 2);
	assert_int_equal(o.n, 2);
	convert_jq_free(q);
}

/* ---- whole files ---- */

struct seen {
	unsigned dropped, filtered, changed, malformed, filter_errors;
	char last_note[CONVERT_NOTE_MAX];
};

static int on_user(void *ctx, uint64_t index, uint64_t line, enum convert_user_result res,
		   const struct convert_notes *notes)
{
	struct seen *s = ctx;
	switch (res) {
	case CONVERT_USER_WRITTEN: s->changed++; break;
	case CONVERT_USER_DROPPED: s->dropped++; break;
	case CONVERT_USER_FILTERED_OUT: s->filtered++; break;
	case CONVERT_USER_FILTER_ERROR: s->filter_errors++; break;
	case CONVERT_USER_MALFORMED: s->malformed++; break;
	}
	if (notes->n)
		snprintf(s->last_note, sizeof(s->last_note), "%s", notes->note[notes->n - 1]);
	return 0;
}

static void test_run_ndjson_filter(void **state)
{
	char in[512], out[512], err[256];
	write_file("export.json.gz",
		   "{\"user_id\":\"auth0|1\",\"email\":\"a@x.io\",\"app_metadata\":{\"plan\":\"pro\"},\"logins_count\":2}\n"
		   "{\"user_id\":\"auth0|2\",\"email\":\"b@x.io\",\"app_metadata\":{\"plan\":\"free\"}}\n"
		   "{\"user_id\":\"auth0|3\",\"phone_number\":\"+1555\"}\n"
		   "{\"user_id\":\"auth0|4\",\"email\":\"d@x.io\",\"app_metadata\":{\"plan\":\"pro\"}}\n"
		   "{broken\n"
		   "\n",
		   true, in);
	sprintf(out, "%s/import.json", tmpdir);
	struct convert_params p = { .export_path = in, .out_path = out, .sync = true,
				    .filter = "select(.app_metadata.plan == \"pro\")" };
	struct convert_sink sink = { .on_user = on_user };
	struct seen s = { 0 };
	struct convert_summary sum;
	assert_int_equal(convert_run(&p, &sink, &s, &sum, err, sizeof(err)), 0);
	assert_int_equal(sum.format, CONVERT_FORMAT_NDJSON);
	assert_int_equal(sum.users_in, 5);
	assert_int_equal(sum.dropped, 2);
	assert_int_equal(sum.malformed, 1);
	assert_int_equal(sum.filter_kept, 2);
	assert_int_equal(sum.filter_dropped, 1);
	assert_int_equal(sum.users_out, 2);
	assert_int_equal(sum.changed, 3);
	assert_int_equal(s.filtered, 1);
	assert_int_equal(s.dropped, 1);
	assert_int_equal(s.malformed, 1);
	json_object *arr = read_json(out);
	assert_int_equal(json_object_array_length(arr), 2);
	assert_string_equal(get_str(json_object_array_get_idx(arr, 0), "user_id"), "1");
	assert_string_equal(get_str(json_object_array_get_idx(arr, 1), "user_id"), "4");
	assert_false(json_object_object_get_ex(json_object_array_get_idx(arr, 0), "logins_count", NULL));
	json_object_put(arr);

	/* a filter that does not compile fails the run before reading */
	p.filter = "select(";
	assert_int_equal(convert_run(&p, NULL, NULL, &sum, err, sizeof(err)), -EINVAL);
}

static void test_run_csv(void **state)
{
	char in[512], out[512], err[256];
	write_file("export.csv.gz",
		   "user_id,mail,email_verified,name,app_metadata,created_at\n"
		   "\"'auth0|1\",\"'a@x.io\",true,\"'Ann \"\"The Hammer\"\" Lee\",\"'{\"\"plan\"\":\"\"pro\"\"}\",2020-01-01T00:00:00.000Z\n"
		   "\"'auth0|2\",\"'b@x.io\",false,\"'Two\nLines\",,2020-01-02T00:00:00.000Z\n"
		   "\"'auth0|3\",\"'c@x.io\"\n",
		   true, in);
	sprintf(out, "%s/import-csv.json", tmpdir);
	struct convert_fields f;
	char ferr[128];
	json_object *arr = json_tokener_parse("[{\"name\":\"user_id\"},{\"name\":\"email\",\"export_as\":\"mail\"},"
		"{\"name\":\"email_verified\"},{\"name\":\"name\"},{\"name\":\"app_metadata\"},{\"name\":\"created_at\"}]");
	assert_int_equal(convert_fields_parse(arr, &f, ferr, sizeof(ferr)), 0);
	json_object_put(arr);
	struct convert_params p = { .export_path = in, .out_path = out, .fields = &f };
	struct seen s = { 0 };
	struct convert_sink sink = { .on_user = on_user };
	struct convert_summary sum;
	assert_int_equal(convert_run(&p, &sink, &s, &sum, err, sizeof(err)), 0);
	assert_int_equal(sum.format, CONVERT_FORMAT_CSV);
	assert_int_equal(sum.users_in, 3);
	assert_int_equal(sum.users_out, 2);
	assert_int_equal(sum.malformed, 1);
	arr = read_json(out);
	assert_int_equal(json_object_array_length(arr), 2);
	json_object *u0 = json_object_array_get_idx(arr, 0), *u1 = json_object_array_get_idx(arr, 1);
	assert_string_equal(get_str(u0, "user_id"), "1");
	assert_string_equal(get_str(u0, "email"), "a@x.io");
	assert_string_equal(get_str(u0, "name"), "Ann \"The Hammer\" Lee");
	assert_true(json_object_get_boolean(json_object_object_get(u0, "email_verified")));
	assert_string_equal(get_str(json_object_object_get(u0, "app_metadata"), "plan"), "pro");
	assert_false(json_object_object_get_ex(u0, "created_at", NULL));
	assert_string_equal(get_str(u1, "name"), "Two\nLines");
	assert_false(json_object_get_boolean(json_object_object_get(u1, "email_verified")));
	assert_false(json_object_object_get_ex(u1, "app_metadata", NULL));
	json_object_put(arr);
}

static void test_run_empty_and_limits(void **state)
{
	char in[512], out[512], err[256];
	write_file("empty.json.gz", "", true, in);
	sprintf(out, "%s/empty-import.json", tmpdir);
	struct convert_params p = { .export_path = in, .out_path = out };
	struct convert_summary sum;
	assert_int_equal(convert_run(&p, NULL, NULL, &sum, err, sizeof(err)), 0);
	FILE *f = fopen(out, "r");
	char buf[16] = "";
	assert_non_null(fgets(buf, sizeof(buf), f));
	fclose(f);
	assert_string_equal(buf, "[]\n");

	write_file("three.json", "{\"email\":\"a@x.io\"}\n{\"email\":\"b@x.io\"}\n{\"email\":\"c@x.io\"}\n",
		   false, in);
	p.max_users = 2;
	assert_int_equal(convert_run(&p, NULL, NULL, &sum, err, sizeof(err)), -E2BIG);
	p.export_path = "/nonexistent/x";
	assert_true(convert_run(&p, NULL, NULL, &sum, err, sizeof(err)) < 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_fields),
		cmocka_unit_test(test_user_strip_and_drop),
		cmocka_unit_test(test_user_dropped),
		cmocka_unit_test(test_user_export_as_and_types),
		cmocka_unit_test(test_hashes),
		cmocka_unit_test(test_hashes_many_gzip),
		cmocka_unit_test(test_jq),
		cmocka_unit_test(test_run_ndjson_filter),
		cmocka_unit_test(test_run_csv),
		cmocka_unit_test(test_run_empty_and_limits),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
