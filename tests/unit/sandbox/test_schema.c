/* sandbox/schema: the emulator's reading of Auth0's user schema, one rule
 * per check, with Auth0's codes and internal paths. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "sandbox/schema.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define BCRYPT "$2b$10$abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0"

/* The codes of the errors for one user, "A,B" (or "" when valid). */
static void codes_of(const char *json, char *buf, size_t size, char *path, size_t psize)
{
	json_object *user = json_tokener_parse(json);
	json_object *errs = json_object_new_array();
	assert_non_null(user);
	schema_check_user(user, errs);
	buf[0] = '\0';
	if (path)
		path[0] = '\0';
	for (size_t i = 0; i < json_object_array_length(errs); i++) {
		json_object *e = json_object_array_get_idx(errs, i), *v;
		json_object_object_get_ex(e, "code", &v);
		if (i)
			strncat(buf, ",", size - strlen(buf) - 1);
		strncat(buf, json_object_get_string(v), size - strlen(buf) - 1);
		if (path && i == 0 && json_object_object_get_ex(e, "path", &v))
			snprintf(path, psize, "%s", json_object_get_string(v));
	}
	json_object_put(errs);
	json_object_put(user);
}

#define EXPECT(json, want) do { \
		char got_[256]; \
		codes_of(json, got_, sizeof(got_), NULL, 0); \
		if (strcmp(got_, want) != 0) \
			fail_msg("%s: got '%s', want '%s'", json, got_, want); \
	} while (0)

static void test_valid_users(void **state)
{
	EXPECT("{\"email\":\"a@example.com\"}", "");
	EXPECT("{\"email\":\"a@example.com\",\"email_verified\":true,\"phone_number\":\"+15551234567\","
	       "\"phone_verified\":false,\"user_id\":\"abc\",\"username\":\"ab\",\"given_name\":\"A\","
	       "\"family_name\":\"B\",\"name\":\"A B\",\"nickname\":\"ab\",\"picture\":\"https://x.y/p.png\","
	       "\"blocked\":false,\"password_hash\":\"" BCRYPT "\",\"app_metadata\":{\"plan\":1},"
	       "\"user_metadata\":{\"x\":{\"y\":[1]}},"
	       "\"mfa_factors\":[{\"totp\":{\"secret\":\"JBSWY3DPEHPK3PXP\"}},{\"phone\":{\"value\":\"+331\"}},"
	       "{\"email\":{\"value\":\"m@example.com\"}}]}", "");
}

static void test_required_types_and_unknown(void **state)
{
	char got[256], path[128];
	EXPECT("[]", "INVALID_TYPE");
	EXPECT("{}", "OBJECT_REQUIRED");
	EXPECT("{\"email\":1}", "INVALID_TYPE");
	EXPECT("{\"email\":\"a@example.com\",\"blocked\":\"no\"}", "INVALID_TYPE");
	EXPECT("{\"email\":\"a@example.com\",\"Email\":\"x\"}", "INVALID_FORMAT");
	codes_of("{\"email\":\"nope\"}", got, sizeof(got), path, sizeof(path));
	assert_string_equal(got, "FORMAT");
	assert_string_equal(path, "identities[0].profileData.email");
	codes_of("{\"email\":\"a@example.com\",\"user_id\":\"a b\"}", got, sizeof(got), path, sizeof(path));
	assert_string_equal(got, "PATTERN");
	assert_string_equal(path, "identities[0].user_id");
}

static void test_formats_and_lengths(void **state)
{
	EXPECT("{\"email\":\"a b@example.com\"}", "FORMAT");
	EXPECT("{\"email\":\"a@example\"}", "FORMAT");
	EXPECT("{\"email\":\"a@example.com\",\"phone_number\":\"+1234567890123456\"}", "PATTERN");
	EXPECT("{\"email\":\"a@example.com\",\"picture\":\"not a url\"}", "FORMAT");
	EXPECT("{\"email\":\"a@example.com\",\"username\":\"\"}", "MIN_LENGTH");
	char buf[1200];
	snprintf(buf, sizeof(buf), "{\"email\":\"a@example.com\",\"name\":\"%0301d\"}", 0);
	EXPECT(buf, "MAX_LENGTH");
	/* 150 multi-byte characters are 150 characters, not 300 */
	char name[512] = "";
	for (int i = 0; i < 150; i++)
		strcat(name, "\xc3\xa9");
	snprintf(buf, sizeof(buf), "{\"email\":\"a@example.com\",\"given_name\":\"%s\"}", name);
	EXPECT(buf, "");
}

static void test_hashes(void **state)
{
	EXPECT("{\"email\":\"a@example.com\",\"password_hash\":\"$2y$10$abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0\"}", "PATTERN");
	EXPECT("{\"email\":\"a@example.com\",\"password_hash\":\"" BCRYPT "\",\"custom_password_hash\":"
	       "{\"algorithm\":\"bcrypt\",\"hash\":{\"value\":\"" BCRYPT "\"}}}", "NOT_PASSED");
	EXPECT("{\"email\":\"a@example.com\",\"custom_password_hash\":{\"algorithm\":\"bcrypt\","
	       "\"hash\":{\"value\":\"$2y$10$abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0\"}}}", "");
	EXPECT("{\"email\":\"a@example.com\",\"custom_password_hash\":{\"algorithm\":\"rot13\","
	       "\"hash\":{\"value\":\"x\"}}}", "ENUM_MISMATCH");
	EXPECT("{\"email\":\"a@example.com\",\"custom_password_hash\":{\"algorithm\":\"md5\","
	       "\"hash\":{\"value\":\"abcd\"}}}", "OBJECT_REQUIRED");
	EXPECT("{\"email\":\"a@example.com\",\"custom_password_hash\":{\"algorithm\":\"md5\","
	       "\"hash\":{\"value\":\"abcd\",\"encoding\":\"hex\"},\"salt\":{\"value\":\"s\"}}}", "");
	EXPECT("{\"email\":\"a@example.com\",\"custom_password_hash\":{\"algorithm\":\"hmac\","
	       "\"hash\":{\"value\":\"abcd\",\"encoding\":\"hex\"}}}", "OBJECT_REQUIRED,OBJECT_REQUIRED");
	EXPECT("{\"email\":\"a@example.com\",\"custom_password_hash\":{\"algorithm\":\"scrypt\","
	       "\"hash\":{\"value\":\"abcd\",\"encoding\":\"base64\"}}}", "OBJECT_REQUIRED");
	EXPECT("{\"email\":\"a@example.com\",\"custom_password_hash\":{\"algorithm\":\"ldap\","
	       "\"hash\":{\"value\":\"{CRYPT}abc\"}}}", "PATTERN");
	EXPECT("{\"email\":\"a@example.com\",\"custom_password_hash\":{\"algorithm\":\"pbkdf2\","
	       "\"hash\":{\"value\":\"$pbkdf2-sha512$i=100000,l=64$c2FsdA$aGFzaA\"}}}", "");
	EXPECT("{\"email\":\"a@example.com\",\"custom_password_hash\":{\"algorithm\":\"argon2\","
	       "\"hash\":{\"value\":\"$argon2id$v=19$m=65536,t=2,p=1$c2FsdA$aGFzaA\"},"
	       "\"salt\":{\"value\":\"x\"}}}", "NOT_PASSED");
	EXPECT("{\"email\":\"a@example.com\",\"custom_password_hash\":{\"algorithm\":\"sha256\","
	       "\"hash\":{\"value\":\"abcd\",\"encoding\":\"hex\"},\"cost\":3}}", "INVALID_FORMAT");
}

static void test_metadata_mfa_and_size(void **state)
{
	EXPECT("{\"email\":\"a@example.com\",\"app_metadata\":{\"loginsCount\":1}}", "NOT_PASSED");
	EXPECT("{\"email\":\"a@example.com\",\"user_metadata\":{\"a\":{\"$b\":1}}}", "PATTERN");
	EXPECT("{\"email\":\"a@example.com\",\"user_metadata\":[]}", "INVALID_TYPE");
	EXPECT("{\"email\":\"a@example.com\",\"mfa_factors\":[]}", "ARRAY_LENGTH_SHORT");
	EXPECT("{\"email\":\"a@example.com\",\"mfa_factors\":[{\"totp\":{\"secret\":\"abc\"}}]}", "ANY_OF_MISSING");
	EXPECT("{\"email\":\"a@example.com\",\"mfa_factors\":[{\"sms\":{\"value\":\"+1\"}}]}", "ANY_OF_MISSING");
	char *big = malloc(12000);
	assert_non_null(big);
	int n = snprintf(big, 12000, "{\"email\":\"a@example.com\",\"user_metadata\":{\"x\":\"");
	memset(big + n, 'y', 10300);
	strcpy(big + n + 10300, "\"}}");
	EXPECT(big, "PROFILE_SIZE_EXCEEDED");
	free(big);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_valid_users),
		cmocka_unit_test(test_required_types_and_unknown),
		cmocka_unit_test(test_formats_and_lengths),
		cmocka_unit_test(test_hashes),
		cmocka_unit_test(test_metadata_mfa_and_size),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
