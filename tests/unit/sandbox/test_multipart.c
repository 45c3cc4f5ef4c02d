/* sandbox/multipart: framing, names, files, and every way to be malformed. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "sandbox/multipart.h"

#include <errno.h>
#include <string.h>

#define CT "multipart/form-data; boundary=XyZ"

static int parse(const char *ct, const char *body, struct multipart_part *parts, size_t *n)
{
	return multipart_parse(ct, body, strlen(body), parts, MULTIPART_MAX_PARTS, n);
}

static void test_two_parts(void **state)
{
	struct multipart_part p[MULTIPART_MAX_PARTS];
	size_t n = 0;
	const char *body =
		"--XyZ\r\nContent-Disposition: form-data; name=\"users\"; filename=\"u.json\"\r\n"
		"Content-Type: application/json\r\n\r\n[{\"email\":\"a@b.co\"}]\r\n"
		"--XyZ\r\nContent-Disposition: form-data; name=\"connection_id\"\r\n\r\n"
		"con_AAAAAAAAAAAAAAAA\r\n--XyZ--\r\n";
	assert_int_equal(parse(CT, body, p, &n), 0);
	assert_int_equal(n, 2);
	assert_string_equal(p[0].name, "users");
	assert_true(p[0].is_file);
	assert_int_equal(p[0].len, strlen("[{\"email\":\"a@b.co\"}]"));
	assert_memory_equal(p[0].data, "[{", 2);
	assert_false(p[1].is_file);
	assert_int_equal(p[1].len, 20);
	const struct multipart_part *c = multipart_find(p, n, "connection_id");
	assert_non_null(c);
	assert_null(multipart_find(p, n, "upsert"));
}

static void test_quoted_boundary_preamble_and_empty_part(void **state)
{
	struct multipart_part p[MULTIPART_MAX_PARTS];
	size_t n = 0;
	const char *body = "preamble\r\n--a b\r\ncontent-disposition: form-data; name=users; "
			   "filename=x\r\n\r\n\r\n--a b--";
	assert_int_equal(parse("Multipart/Form-Data; charset=x; boundary=\"a b\"", body, p, &n), 0);
	assert_int_equal(n, 1);
	assert_int_equal(p[0].len, 0);
	assert_true(p[0].is_file);
}

static void test_data_may_contain_dashes_and_crlf(void **state)
{
	struct multipart_part p[MULTIPART_MAX_PARTS];
	size_t n = 0;
	const char *body = "--XyZ\r\nContent-Disposition: form-data; name=\"a\"\r\n\r\n"
			   "line\r\n--XyZnot\r\n--Xy\r\n--XyZ--";
	/* "\r\n--XyZ" followed by "not" is still a delimiter by RFC 2046 rules
	 * only when followed by CRLF or "--"; this parser is stricter: framing
	 * must be exact, so the body is malformed */
	assert_int_equal(parse(CT, body, p, &n), -EINVAL);
	body = "--XyZ\r\nContent-Disposition: form-data; name=\"a\"\r\n\r\nx\r\n-- XyZ\r\n--XyZ--";
	assert_int_equal(parse(CT, body, p, &n), 0);
	assert_int_equal(p[0].len, strlen("x\r\n-- XyZ"));
}

static void test_malformed(void **state)
{
	struct multipart_part p[MULTIPART_MAX_PARTS];
	size_t n = 0;
	const char *ok = "--XyZ\r\nContent-Disposition: form-data; name=\"a\"\r\n\r\nx\r\n--XyZ--";
	assert_int_equal(parse(NULL, ok, p, &n), -EINVAL);
	assert_int_equal(parse("application/json", ok, p, &n), -EINVAL);
	assert_int_equal(parse("multipart/form-data", ok, p, &n), -EINVAL);
	assert_int_equal(parse("multipart/form-data; boundary=", ok, p, &n), -EINVAL);
	assert_int_equal(parse(CT, "", p, &n), -EINVAL);
	assert_int_equal(parse(CT, "garbage", p, &n), -EINVAL);
	/* no close delimiter */
	assert_int_equal(parse(CT, "--XyZ\r\nContent-Disposition: form-data; name=\"a\"\r\n\r\nx", p, &n), -EINVAL);
	/* no name, no disposition, not form-data, unterminated quote */
	assert_int_equal(parse(CT, "--XyZ\r\nContent-Disposition: form-data\r\n\r\nx\r\n--XyZ--", p, &n), -EINVAL);
	assert_int_equal(parse(CT, "--XyZ\r\nContent-Type: text/plain\r\n\r\nx\r\n--XyZ--", p, &n), -EINVAL);
	assert_int_equal(parse(CT, "--XyZ\r\nContent-Disposition: attachment; name=a\r\n\r\nx\r\n--XyZ--", p, &n), -EINVAL);
	assert_int_equal(parse(CT, "--XyZ\r\nContent-Disposition: form-data; name=\"a\r\n\r\nx\r\n--XyZ--", p, &n), -EINVAL);
	/* a header line without a colon; headers never end */
	assert_int_equal(parse(CT, "--XyZ\r\nbogus\r\n\r\nx\r\n--XyZ--", p, &n), -EINVAL);
	assert_int_equal(parse(CT, "--XyZ\r\nContent-Disposition: form-data; name=a\r\n", p, &n), -EINVAL);
	/* something other than CRLF after a delimiter */
	assert_int_equal(parse(CT, "--XyZjunk\r\nContent-Disposition: form-data; name=a\r\n\r\nx\r\n--XyZ--", p, &n), -EINVAL);
	/* a boundary over 70 characters */
	char ct[200] = "multipart/form-data; boundary=";
	memset(ct + strlen(ct), 'b', 71);
	assert_int_equal(parse(ct, ok, p, &n), -EINVAL);
}

static void test_too_many_parts(void **state)
{
	static char body[8192];
	struct multipart_part p[2];
	size_t n = 0;
	body[0] = '\0';
	for (int i = 0; i < 3; i++)
		strcat(body, "--XyZ\r\nContent-Disposition: form-data; name=\"a\"\r\n\r\nx\r\n");
	strcat(body, "--XyZ--");
	assert_int_equal(multipart_parse(CT, body, strlen(body), p, 2, &n), -EINVAL);
	assert_int_equal(multipart_parse(CT, body, strlen(body) - 7, p, 2, &n), -EINVAL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_two_parts),
		cmocka_unit_test(test_quoted_boundary_preamble_and_empty_part),
		cmocka_unit_test(test_data_may_contain_dashes_and_crlf),
		cmocka_unit_test(test_malformed),
		cmocka_unit_test(test_too_many_parts),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
