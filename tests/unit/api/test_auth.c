/* auth + secret: the bearer check and the secret type. */
#include "api/auth.h"
#include "daemon/secret.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static void test_bearer(void **state)
{
	(void)state;
	struct secret *t;
	assert_true(auth_check_bearer(NULL, NULL));
	assert_true(auth_check_bearer(NULL, "Bearer anything"));
	assert_int_equal(secret_new("tok-123", 7, &t), 0);
	assert_true(auth_check_bearer(t, "Bearer tok-123"));
	assert_true(auth_check_bearer(t, "bearer   tok-123"));
	assert_false(auth_check_bearer(t, NULL));
	assert_false(auth_check_bearer(t, ""));
	assert_false(auth_check_bearer(t, "tok-123"));
	assert_false(auth_check_bearer(t, "Basic tok-123"));
	assert_false(auth_check_bearer(t, "Bearer tok-12"));
	assert_false(auth_check_bearer(t, "Bearer tok-1234"));
	assert_false(auth_check_bearer(t, "Bearer tok-124"));
	assert_false(auth_check_bearer(t, "Bearer "));
	secret_free(t);
}

static void test_secret(void **state)
{
	(void)state;
	struct secret *s, *d;
	assert_int_equal(secret_new("", 0, &s), -EINVAL);
	assert_int_equal(secret_new("a\0b", 3, &s), -EINVAL);
	assert_int_equal(secret_new("abc", 3, &s), 0);
	assert_int_equal(secret_len(s), 3);
	assert_string_equal(secret_value(s), "abc");
	assert_true(secret_equal(s, "abc", 3));
	assert_false(secret_equal(s, "abd", 3));
	assert_false(secret_equal(s, "ab", 2));
	assert_false(secret_equal(s, "abcd", 4));
	assert_false(secret_equal(NULL, "abc", 3));
	assert_int_equal(secret_dup(s, &d), 0);
	assert_true(secret_equal(d, "abc", 3));
	secret_free(d);
	secret_free(s);
	secret_free(NULL);

	char path[] = "/tmp/importd-test-secret-XXXXXX";
	int fd = mkstemp(path);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, "from-file\r\n", 11), 11);
	close(fd);
	assert_int_equal(secret_from_file(path, &s), 0);
	assert_string_equal(secret_value(s), "from-file");
	secret_free(s);
	fd = open(path, O_WRONLY | O_TRUNC);
	close(fd);
	assert_int_equal(secret_from_file(path, &s), -EINVAL);
	unlink(path);
	assert_int_equal(secret_from_file(path, &s), -ENOENT);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_bearer),
		cmocka_unit_test(test_secret),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
