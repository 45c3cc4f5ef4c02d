/* "Did you mean" and the duplicate detector. */
#include "daemon/users/dedup.h"
#include "daemon/users/hint.h"
#include "daemon/users/schema.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

static const struct {
	const char *name;
	const char *expect; /* NULL: no hint */
} cases[] = {
	{ "Email_Verified", "email_verified" },
	{ "emailVerified", "email_verified" },
	{ "EMAIL", "email" },
	{ "Given Name", "given_name" },
	{ "givenName", "given_name" },
	{ "userId", "user_id" },
	{ "UserID", "user_id" },
	{ "user-id", "user_id" },
	{ "user_metdata", "user_metadata" },
	{ "user_meta_data", "user_metadata" },
	{ "usr_metadata", "user_metadata" },
	{ "app_metdata", "app_metadata" },
	{ "appMetadata", "app_metadata" },
	{ "pasword_hash", "password_hash" },
	{ "passwordHash", "password_hash" },
	{ "custom_passwrod_hash", "custom_password_hash" },
	{ "phone", "phone_number" },
	{ "phoneNumber", "phone_number" },
	{ "first_name", "given_name" },
	{ "lastName", "family_name" },
	{ "surname", "family_name" },
	{ "id", "user_id" },
	{ "nick_name", "nickname" },
	{ "emial", "email" },
	{ "blockd", "blocked" },
	{ "mfa", "mfa_factors" },
	{ "password", "custom_password_hash" },
	{ "zzzzzzzz", NULL },
	{ "x", NULL },
	{ "", NULL },
	{ "created_at", NULL },
};

static void test_user_hints(void **state)
{
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const char *h = hint_property(cases[i].name, schema_user.names, schema_user.n);
		if ((h == NULL) != (cases[i].expect == NULL) ||
		    (h && strcmp(h, cases[i].expect) != 0))
			fail_msg("%s: expected %s, got %s", cases[i].name,
			         cases[i].expect ? cases[i].expect : "(none)", h ? h : "(none)");
	}
	(void)state;
}

static void test_distance(void **state)
{
	assert_int_equal(hint_distance("", ""), 0);
	assert_int_equal(hint_distance("abc", "abc"), 0);
	assert_int_equal(hint_distance("abc", "acb"), 1);
	assert_int_equal(hint_distance("kitten", "sitting"), 3);
	assert_int_equal(hint_distance("a", ""), 1);
	char longs[100];
	memset(longs, 'a', 99);
	longs[99] = '\0';
	assert_int_equal(hint_distance(longs, "a"), SIZE_MAX);
	assert_null(hint_property(longs, schema_user.names, schema_user.n));
	assert_true(hint_folded_equal("Given Name", "given_name"));
	assert_false(hint_folded_equal("given", "given_name"));
	(void)state;
}

static void test_dedup(void **state)
{
	struct dedup *d;
	bool seen;
	size_t n = 400000; /* crosses the recent table's flush several times */

	assert_int_equal(dedup_new(&d), 0);
	for (size_t i = 0; i < n; i++) {
		uint64_t h = (uint64_t)i * 0x9E3779B97F4A7C15ULL + 7;
		assert_int_equal(dedup_add(d, h, &seen), 0);
		if (seen)
			fail_msg("false duplicate at %zu", i);
	}
	for (size_t i = 0; i < n; i += 7) {
		uint64_t h = (uint64_t)i * 0x9E3779B97F4A7C15ULL + 7;
		assert_int_equal(dedup_add(d, h, &seen), 0);
		assert_true(seen);
	}
	/* 8 bytes per key plus the fixed table and one growth step. */
	assert_true(dedup_bytes(d) <= n * 8 + (2u << 20) + (1u << 20) + 8);
	dedup_free(d);

	assert_int_equal(dedup_hash(DEDUP_EMAIL, "Ann@X.co"), dedup_hash(DEDUP_EMAIL, "ann@x.CO"));
	assert_int_not_equal(dedup_hash(DEDUP_USER_ID, "Ab"), dedup_hash(DEDUP_USER_ID, "ab"));
	assert_int_equal(dedup_hash(DEDUP_USERNAME, "Bob"), dedup_hash(DEDUP_USERNAME, "bob"));
	assert_int_not_equal(dedup_hash(DEDUP_EMAIL, "bob"), dedup_hash(DEDUP_USERNAME, "bob"));
	(void)state;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_user_hints),
		cmocka_unit_test(test_distance),
		cmocka_unit_test(test_dedup),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
