/* The import schema as tables: see schema.h and AUTH0.md. */
#include "daemon/users/schema.h"

#include <string.h>

#define COUNT(a) (sizeof(a) / sizeof((a)[0]))

static const char *const encodings3[] = { "base64", "hex", "utf8", NULL };
static const char *const digests[] = {
	"md4", "md5", "ripemd160", "sha1", "sha224", "sha256", "sha384", "sha512", "whirlpool", NULL,
};
static const char *const positions[] = { "prefix", "suffix", NULL };
static const char *const password_encodings[] = {
	"ascii", "utf8", "utf16le", "ucs2", "latin1", "binary", NULL,
};

const char *const schema_hash_algorithms[] = {
	"argon2", "bcrypt", "hmac", "ldap", "md4", "md5", "sha1", "sha256", "sha512",
	"pbkdf2", "scrypt", NULL,
};

const char *const schema_app_metadata_reserved[] = {
	"__tenant", "_id", "blocked", "clientID", "created_at", "email_verified", "email",
	"globalClientID", "global_client_id", "identities", "lastIP", "lastLogin",
	"loginsCount", "metadata", "multifactor_last_modified", "multifactor",
	"updated_at", "user_id", NULL,
};

/* custom_password_hash.hash.key */
static const struct schema_prop key_props[] = {
	{ .name = "value", .kind = SCHEMA_STRING, .required = true },
	{ .name = "encoding", .kind = SCHEMA_STRING, .enum_values = encodings3 },
};
static const char *const key_names[] = { "value", "encoding" };
static const struct schema_table key_table = { "custom_password_hash.hash.key", key_props, COUNT(key_props), key_names };

/* custom_password_hash.hash */
static const struct schema_prop hash_props[] = {
	{ .name = "value", .kind = SCHEMA_STRING, .required = true },
	{ .name = "encoding", .kind = SCHEMA_STRING, .enum_values = encodings3 },
	{ .name = "digest", .kind = SCHEMA_STRING, .enum_values = digests },
	{ .name = "key", .kind = SCHEMA_OBJECT, .object = &key_table },
};
static const char *const hash_names[] = { "value", "encoding", "digest", "key" };
static const struct schema_table hash_table = { "custom_password_hash.hash", hash_props, COUNT(hash_props), hash_names };

/* custom_password_hash.salt */
static const struct schema_prop salt_props[] = {
	{ .name = "value", .kind = SCHEMA_STRING, .required = true },
	{ .name = "encoding", .kind = SCHEMA_STRING, .enum_values = encodings3 },
	{ .name = "position", .kind = SCHEMA_STRING, .enum_values = positions },
};
static const char *const salt_names[] = { "value", "encoding", "position" };
static const struct schema_table salt_table = { "custom_password_hash.salt", salt_props, COUNT(salt_props), salt_names };

/* custom_password_hash.password */
static const struct schema_prop password_props[] = {
	{ .name = "encoding", .kind = SCHEMA_STRING, .enum_values = password_encodings },
};
static const char *const password_names[] = { "encoding" };
static const struct schema_table password_table = { "custom_password_hash.password", password_props, COUNT(password_props), password_names };

/* custom_password_hash; the per-algorithm rules are in its hook. */
static const struct schema_prop custom_hash_props[] = {
	{ .name = "algorithm", .kind = SCHEMA_STRING, .required = true },
	{ .name = "hash", .kind = SCHEMA_OBJECT, .required = true, .object = &hash_table },
	{ .name = "salt", .kind = SCHEMA_OBJECT, .object = &salt_table },
	{ .name = "password", .kind = SCHEMA_OBJECT, .object = &password_table },
	{ .name = "keylen", .kind = SCHEMA_INTEGER, .check = validate_hook_positive },
	{ .name = "cost", .kind = SCHEMA_INTEGER, .check = validate_hook_cost },
	{ .name = "blockSize", .kind = SCHEMA_INTEGER, .check = validate_hook_positive },
	{ .name = "parallelization", .kind = SCHEMA_INTEGER, .check = validate_hook_positive },
};
static const char *const custom_hash_names[] = {
	"algorithm", "hash", "salt", "password", "keylen", "cost", "blockSize", "parallelization",
};
static const struct schema_table custom_hash_table = { "custom_password_hash", custom_hash_props, COUNT(custom_hash_props), custom_hash_names };

/* mfa_factors[i] members */
static const struct schema_prop totp_props[] = {
	{ .name = "secret", .kind = SCHEMA_STRING, .required = true, .min_len = 1, .check = validate_hook_totp_secret },
};
static const char *const totp_names[] = { "secret" };
static const struct schema_table totp_table = { "totp", totp_props, COUNT(totp_props), totp_names };

static const struct schema_prop phone_factor_props[] = {
	{ .name = "value", .kind = SCHEMA_STRING, .required = true, .check = validate_hook_phone },
};
static const char *const value_names[] = { "value" };
static const struct schema_table phone_factor_table = { "phone", phone_factor_props, COUNT(phone_factor_props), value_names };

static const struct schema_prop email_factor_props[] = {
	{ .name = "value", .kind = SCHEMA_STRING, .required = true, .check = validate_hook_email },
};
static const struct schema_table email_factor_table = { "email", email_factor_props, COUNT(email_factor_props), value_names };

static const struct schema_prop mfa_factor_props[] = {
	{ .name = "totp", .kind = SCHEMA_OBJECT, .object = &totp_table },
	{ .name = "phone", .kind = SCHEMA_OBJECT, .object = &phone_factor_table },
	{ .name = "email", .kind = SCHEMA_OBJECT, .object = &email_factor_table },
};
static const char *const mfa_factor_names[] = { "totp", "phone", "email" };
const struct schema_table schema_mfa_factor = { "mfa_factors item", mfa_factor_props, COUNT(mfa_factor_props), mfa_factor_names };

/* The user. */
static const struct schema_prop user_props[] = {
	{ .name = "email", .kind = SCHEMA_STRING, .required = true, .check = validate_hook_email },
	{ .name = "email_verified", .kind = SCHEMA_BOOLEAN },
	{ .name = "phone_number", .kind = SCHEMA_STRING, .check = validate_hook_phone },
	{ .name = "phone_verified", .kind = SCHEMA_BOOLEAN },
	{ .name = "user_id", .kind = SCHEMA_STRING, .min_len = 1, .max_len = 255, .check = validate_hook_user_id },
	{ .name = "username", .kind = SCHEMA_STRING, .min_len = 1, .max_len = 128, .warn_len = 15 },
	{ .name = "given_name", .kind = SCHEMA_STRING, .min_len = 1, .max_len = 150 },
	{ .name = "family_name", .kind = SCHEMA_STRING, .min_len = 1, .max_len = 150 },
	{ .name = "name", .kind = SCHEMA_STRING, .min_len = 1, .max_len = 300 },
	{ .name = "nickname", .kind = SCHEMA_STRING, .min_len = 1, .max_len = 300 },
	{ .name = "picture", .kind = SCHEMA_STRING, .check = validate_hook_url },
	{ .name = "blocked", .kind = SCHEMA_BOOLEAN },
	{ .name = "password_hash", .kind = SCHEMA_STRING, .check = validate_hook_password_hash },
	{ .name = "custom_password_hash", .kind = SCHEMA_OBJECT, .object = &custom_hash_table,
	  .check = validate_hook_custom_password_hash },
	{ .name = "app_metadata", .kind = SCHEMA_OBJECT, .check = validate_hook_app_metadata },
	{ .name = "user_metadata", .kind = SCHEMA_OBJECT, .check = validate_hook_user_metadata },
	{ .name = "mfa_factors", .kind = SCHEMA_ARRAY, .check = validate_hook_mfa_factors },
};
static const char *const user_names[] = {
	"email", "email_verified", "phone_number", "phone_verified", "user_id", "username",
	"given_name", "family_name", "name", "nickname", "picture", "blocked", "password_hash",
	"custom_password_hash", "app_metadata", "user_metadata", "mfa_factors",
};
const struct schema_table schema_user = { "user", user_props, COUNT(user_props), user_names };

const struct schema_prop *schema_find(const struct schema_table *t, const char *name)
{
	/* Tables are small (at most 17): compare the first byte before the rest. */
	for (size_t i = 0; i < t->n; i++)
		if (t->props[i].name[0] == name[0] && strcmp(t->props[i].name, name) == 0)
			return &t->props[i];
	return NULL;
}
