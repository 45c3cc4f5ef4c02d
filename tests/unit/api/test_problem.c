/* problem: the problem+json shape of API.md. */
#include "api/problem.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <json-c/json.h>
#include <string.h>

static const char *str(struct json_object *o, const char *k)
{
	struct json_object *v;
	return json_object_object_get_ex(o, k, &v) ? json_object_get_string(v) : NULL;
}

static void test_shape(void **state)
{
	(void)state;
	struct json_object *p = problem_new(404, "not-found", "no such import: imp_x");
	assert_string_equal(str(p, "type"), "/problems/not-found");
	assert_string_equal(str(p, "title"), "Not found");
	assert_string_equal(str(p, "detail"), "no such import: imp_x");
	struct json_object *s;
	assert_true(json_object_object_get_ex(p, "status", &s));
	assert_true(json_object_is_type(s, json_type_int));
	assert_int_equal(json_object_get_int(s), 404);
	assert_int_equal(json_object_object_length(p), 4);
	json_object_put(p);

	p = problem_newf(413, "upload-too-large", "over %d bytes", 1024);
	assert_string_equal(str(p, "detail"), "over 1024 bytes");
	assert_string_equal(str(p, "title"), "Upload too large");
	json_object_put(p);

	p = problem_new(418, "teapot", NULL);
	assert_string_equal(str(p, "title"), "Unknown");
	assert_null(str(p, "detail"));
	json_object_put(p);

	static const char *const slugs[] = { "malformed-file", "not-an-array", "empty-file", "invalid-users",
		"upload-too-large", "too-many-users", "bad-field", "unknown-tenant", "unauthorized",
		"not-found", "method-not-allowed", "conflict", "gone", "internal" };
	for (size_t i = 0; i < sizeof(slugs) / sizeof(slugs[0]); i++)
		assert_string_not_equal(problem_title(slugs[i], 999), "Unknown");
	assert_string_equal(problem_reason(405), "Method Not Allowed");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_shape),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
