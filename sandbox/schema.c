#include "sandbox/schema.h"

#include <ctype.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#define PROFILE_MAX_BYTES 10240

static void add_err(json_object *errors, const char *code, const char *path, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

#include <stdarg.h>
static void add_err(json_object *errors, const char *code, const char *path, const char *fmt, ...)
{
	char msg[512];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	json_object *e = json_object_new_object();
	json_object_object_add(e, "code", json_object_new_string(code));
	json_object_object_add(e, "message", json_object_new_string(msg));
	if (path)
		json_object_object_add(e, "path", json_object_new_string(path));
	json_object_array_add(errors, e);
}

static const char *type_name(json_object *v)
{
	switch (json_object_get_type(v)) {
	case json_type_null: return "null";
	case json_type_boolean: return "boolean";
	case json_type_double: return "number";
	case json_type_int: return "integer";
	case json_type_object: return "object";
	case json_type_array: return "array";
	case json_type_string: return "string";
	}
	return "unknown";
}

static size_t utf8_chars(const char *s)
{
	size_t n = 0;
	for (; *s; s++)
		if (((unsigned char)*s & 0xc0) != 0x80)
			n++;
	return n;
}

static bool has_space(const char *s)
{
	for (; *s; s++)
		if (isspace((unsigned char)*s))
			return true;
	return false;
}

/* local@domain, no spaces, a dot inside the domain, at most 254 chars. */
static bool email_ok(const char *s)
{
	size_t len = strlen(s);
	if (len == 0 || len > 254 || has_space(s))
		return false;
	const char *at = strrchr(s, '@');
	if (!at || at == s || strchr(s, '@') != at)
		return false;
	const char *dom = at + 1;
	const char *dot = strchr(dom, '.');
	size_t dlen = strlen(dom);
	return dot && dot != dom && dom[dlen - 1] != '.';
}

/* ^\+[0-9]{1,15}$ */
static bool e164_ok(const char *s)
{
	if (s[0] != '+')
		return false;
	size_t n = 0;
	for (s++; *s; s++, n++)
		if (!isdigit((unsigned char)*s))
			return false;
	return n >= 1 && n <= 15;
}

static bool url_ok(const char *s)
{
	if (!isalpha((unsigned char)*s))
		return false;
	const char *p = s;
	while (isalnum((unsigned char)*p) || *p == '+' || *p == '-' || *p == '.')
		p++;
	return strncmp(p, "://", 3) == 0 && p[3] && !has_space(p);
}

static bool in_list(const char *s, const char *const *list)
{
	for (; *list; list++)
		if (strcmp(s, *list) == 0)
			return true;
	return false;
}

/* Where Auth0 reports a top-level property in its internal user shape. */
static void path_of(const char *field, char *buf, size_t size)
{
	static const char *const profile[] = { "email", "email_verified", "given_name",
		"family_name", "name", "nickname", "picture", "username", "phone_number",
		"phone_verified", NULL };
	if (in_list(field, profile))
		snprintf(buf, size, "identities[0].profileData.%s", field);
	else if (strcmp(field, "user_id") == 0)
		snprintf(buf, size, "identities[0].user_id");
	else
		snprintf(buf, size, "%s", field);
}

static bool expect_type(json_object *v, enum json_type t, const char *want, const char *path,
			json_object *errors)
{
	enum json_type got = json_object_get_type(v);
	if (got == t || (t == json_type_double && got == json_type_int))
		return true;
	add_err(errors, "INVALID_TYPE", path, "Expected type %s but found type %s", want,
		type_name(v));
	return false;
}

static void check_length(const char *s, size_t min, size_t max, const char *path,
			 json_object *errors)
{
	size_t n = utf8_chars(s);
	if (n < min)
		add_err(errors, "MIN_LENGTH", path, "String is too short (%zu chars), minimum %zu",
			n, min);
	else if (n > max)
		add_err(errors, "MAX_LENGTH", path, "String is too long (%zu chars), maximum %zu",
			n, max);
}

static const char *const app_reserved[] = { "__tenant", "_id", "blocked", "clientID",
	"created_at", "email_verified", "email", "globalClientID", "global_client_id",
	"identities", "lastIP", "lastLogin", "loginsCount", "metadata",
	"multifactor_last_modified", "multifactor", "updated_at", "user_id", NULL };

static void check_meta_keys(json_object *obj, const char *path, json_object *errors, int depth)
{
	if (depth > 32)
		return;
	if (json_object_is_type(obj, json_type_array)) {
		size_t n = json_object_array_length(obj);
		for (size_t i = 0; i < n; i++)
			check_meta_keys(json_object_array_get_idx(obj, i), path, errors, depth + 1);
		return;
	}
	if (!json_object_is_type(obj, json_type_object))
		return;
	json_object_object_foreach(obj, key, val) {
		if (strchr(key, '.') || strchr(key, '$')) {
			char p[300];
			snprintf(p, sizeof(p), "%s.%s", path, key);
			add_err(errors, "PATTERN", p,
				"Property name must not contain '.' or '$': %s", key);
		}
		check_meta_keys(val, path, errors, depth + 1);
	}
}

static void check_metadata(const char *field, json_object *v, json_object *errors)
{
	if (!expect_type(v, json_type_object, "object", field, errors))
		return;
	if (strcmp(field, "app_metadata") == 0) {
		json_object_object_foreach(v, key, val) {
			(void)val;
			if (in_list(key, app_reserved)) {
				char p[300];
				snprintf(p, sizeof(p), "app_metadata.%s", key);
				add_err(errors, "NOT_PASSED", p,
					"Property name is reserved: %s", key);
			}
		}
	}
	check_meta_keys(v, field, errors, 0);
}

/* An object that must have exactly one property, a string `key` inside. */
static bool mfa_item_ok(json_object *item)
{
	if (!json_object_is_type(item, json_type_object) || json_object_object_length(item) != 1)
		return false;
	json_object_object_foreach(item, kind, inner) {
		if (!json_object_is_type(inner, json_type_object) ||
		    json_object_object_length(inner) != 1)
			return false;
		const char *k = strcmp(kind, "totp") == 0 ? "secret" : "value";
		json_object *s;
		if (!json_object_object_get_ex(inner, k, &s) || !json_object_is_type(s, json_type_string))
			return false;
		const char *str = json_object_get_string(s);
		if (strcmp(kind, "totp") == 0) {
			if (!*str)
				return false;
			for (const char *c = str; *c; c++)
				if (!((*c >= 'A' && *c <= 'Z') || (*c >= '2' && *c <= '7')))
					return false;
			return true;
		}
		if (strcmp(kind, "phone") == 0)
			return e164_ok(str);
		if (strcmp(kind, "email") == 0)
			return email_ok(str);
		return false;
	}
	return false;
}

static void check_mfa(json_object *v, json_object *errors)
{
	if (!expect_type(v, json_type_array, "array", "mfa_factors", errors))
		return;
	size_t n = json_object_array_length(v);
	if (n < 1) {
		add_err(errors, "ARRAY_LENGTH_SHORT", "mfa_factors", "Array is too short (%zu), minimum 1", n);
		return;
	}
	if (n > 10) {
		add_err(errors, "ARRAY_LENGTH_LONG", "mfa_factors", "Array is too long (%zu), maximum 10", n);
		return;
	}
	for (size_t i = 0; i < n; i++) {
		if (!mfa_item_ok(json_object_array_get_idx(v, i))) {
			char p[64];
			snprintf(p, sizeof(p), "mfa_factors[%zu]", i);
			add_err(errors, "ANY_OF_MISSING", p,
				"Data does not match any schemas from 'anyOf'");
		}
	}
}

/* ^\$2[ab]\$10\$[./A-Za-z0-9]{53}$ (bcrypt_ok with `y` for custom hashes). */
static bool bcrypt_ok(const char *s, bool allow_y, bool any_cost)
{
	if (strncmp(s, "$2a$", 4) != 0 && strncmp(s, "$2b$", 4) != 0 &&
	    !(allow_y && strncmp(s, "$2y$", 4) == 0))
		return false;
	if (!isdigit((unsigned char)s[4]) || !isdigit((unsigned char)s[5]) || s[6] != '$')
		return false;
	if (!any_cost && strncmp(s + 4, "10", 2) != 0)
		return false;
	const char *r = s + 7;
	if (strlen(r) != 53)
		return false;
	for (; *r; r++)
		if (!isalnum((unsigned char)*r) && *r != '.' && *r != '/')
			return false;
	return true;
}

static bool charset_ok(const char *s, const char *encoding)
{
	if (!*s)
		return false;
	if (strcmp(encoding, "hex") == 0) {
		for (; *s; s++)
			if (!isxdigit((unsigned char)*s))
				return false;
	} else if (strcmp(encoding, "base64") == 0) {
		for (; *s; s++)
			if (!isalnum((unsigned char)*s) && *s != '+' && *s != '/' && *s != '=' &&
			    *s != '-' && *s != '_')
				return false;
	}
	return true;
}

/* $<id>$<params>$<salt>$<hash> with the given id prefix. */
static bool phc_ok(const char *s, const char *id_prefix)
{
	if (s[0] != '$' || strncmp(s + 1, id_prefix, strlen(id_prefix)) != 0)
		return false;
	int dollars = 0;
	for (const char *p = s; *p; p++)
		if (*p == '$')
			dollars++;
	return dollars >= 4 && s[strlen(s) - 1] != '$';
}

static const char *const algorithms[] = { "argon2", "bcrypt", "hmac", "ldap", "md4", "md5",
	"sha1", "sha256", "sha512", "pbkdf2", "scrypt", NULL };
static const char *const hash_encodings[] = { "base64", "hex", "utf8", NULL };
static const char *const digests[] = { "md4", "md5", "ripemd160", "sha1", "sha224", "sha256",
	"sha384", "sha512", "whirlpool", NULL };
static const char *const positions[] = { "prefix", "suffix", NULL };
static const char *const pw_encodings[] = { "ascii", "utf8", "utf16le", "ucs2", "latin1",
	"binary", NULL };

/* Checks that every property of obj is in allowed. */
static void only_props(json_object *obj, const char *const *allowed, const char *path,
		       json_object *errors)
{
	json_object_object_foreach(obj, key, val) {
		(void)val;
		if (!in_list(key, allowed))
			add_err(errors, "INVALID_FORMAT", path,
				"Additional properties not allowed: %s", key);
	}
}

/* An optional enum-valued string property; returns its value or NULL. */
static const char *enum_prop(json_object *obj, const char *key, const char *const *values,
			     const char *path, json_object *errors, bool *ret_bad)
{
	json_object *v;
	char p[128];
	if (!json_object_object_get_ex(obj, key, &v))
		return NULL;
	snprintf(p, sizeof(p), "%s.%s", path, key);
	if (!expect_type(v, json_type_string, "string", p, errors)) {
		*ret_bad = true;
		return NULL;
	}
	const char *s = json_object_get_string(v);
	if (!in_list(s, values)) {
		add_err(errors, "ENUM_MISMATCH", p, "No enum match for: \"%s\"", s);
		*ret_bad = true;
		return NULL;
	}
	return s;
}

/* A required string property "value"; returns it or NULL. */
static const char *value_prop(json_object *obj, const char *path, json_object *errors)
{
	json_object *v;
	char p[128];
	snprintf(p, sizeof(p), "%s.value", path);
	if (!json_object_object_get_ex(obj, "value", &v)) {
		add_err(errors, "OBJECT_REQUIRED", path, "Missing required property: value");
		return NULL;
	}
	if (!expect_type(v, json_type_string, "string", p, errors))
		return NULL;
	return json_object_get_string(v);
}

static void int_prop(json_object *obj, const char *key, long min, bool pow2,
		     json_object *errors)
{
	json_object *v;
	char p[128];
	if (!json_object_object_get_ex(obj, key, &v))
		return;
	snprintf(p, sizeof(p), "custom_password_hash.%s", key);
	if (!json_object_is_type(v, json_type_int)) {
		add_err(errors, "INVALID_TYPE", p, "Expected type integer but found type %s",
			type_name(v));
		return;
	}
	int64_t n = json_object_get_int64(v);
	if (n < min)
		add_err(errors, "MINIMUM", p, "Value %lld is less than minimum %ld", (long long)n, min);
	else if (pow2 && (n & (n - 1)) != 0)
		add_err(errors, "INVALID_FORMAT", p, "Value %lld is not a power of two", (long long)n);
}

static void check_custom_hash(json_object *chp, json_object *errors)
{
	static const char *const top[] = { "algorithm", "hash", "salt", "password", "keylen",
		"cost", "blockSize", "parallelization", NULL };
	static const char *const hash_props[] = { "value", "encoding", "digest", "key", NULL };
	static const char *const key_props[] = { "value", "encoding", NULL };
	static const char *const salt_props[] = { "value", "encoding", "position", NULL };
	static const char *const pw_props[] = { "encoding", NULL };
	const char *P = "custom_password_hash";
	bool bad = false;

	if (!expect_type(chp, json_type_object, "object", P, errors))
		return;
	only_props(chp, top, P, errors);

	json_object *alg_o, *hash, *salt = NULL, *pw, *key = NULL;
	const char *alg = NULL;
	if (!json_object_object_get_ex(chp, "algorithm", &alg_o))
		add_err(errors, "OBJECT_REQUIRED", P, "Missing required property: algorithm");
	else
		alg = enum_prop(chp, "algorithm", algorithms, P, errors, &bad);

	const char *value = NULL, *encoding = NULL, *digest = NULL;
	if (!json_object_object_get_ex(chp, "hash", &hash)) {
		add_err(errors, "OBJECT_REQUIRED", P, "Missing required property: hash");
		hash = NULL;
	} else if (!expect_type(hash, json_type_object, "object", "custom_password_hash.hash", errors)) {
		hash = NULL;
	} else {
		only_props(hash, hash_props, "custom_password_hash.hash", errors);
		value = value_prop(hash, "custom_password_hash.hash", errors);
		encoding = enum_prop(hash, "encoding", hash_encodings, "custom_password_hash.hash",
				     errors, &bad);
		digest = enum_prop(hash, "digest", digests, "custom_password_hash.hash", errors, &bad);
		if (json_object_object_get_ex(hash, "key", &key)) {
			if (expect_type(key, json_type_object, "object",
					"custom_password_hash.hash.key", errors)) {
				only_props(key, key_props, "custom_password_hash.hash.key", errors);
				value_prop(key, "custom_password_hash.hash.key", errors);
				enum_prop(key, "encoding", hash_encodings,
					  "custom_password_hash.hash.key", errors, &bad);
			} else {
				key = NULL;
			}
		}
	}
	if (json_object_object_get_ex(chp, "salt", &salt)) {
		if (expect_type(salt, json_type_object, "object", "custom_password_hash.salt", errors)) {
			only_props(salt, salt_props, "custom_password_hash.salt", errors);
			value_prop(salt, "custom_password_hash.salt", errors);
			enum_prop(salt, "encoding", hash_encodings, "custom_password_hash.salt",
				  errors, &bad);
			enum_prop(salt, "position", positions, "custom_password_hash.salt", errors, &bad);
		}
	} else {
		salt = NULL;
	}
	if (json_object_object_get_ex(chp, "password", &pw) &&
	    expect_type(pw, json_type_object, "object", "custom_password_hash.password", errors)) {
		only_props(pw, pw_props, "custom_password_hash.password", errors);
		enum_prop(pw, "encoding", pw_encodings, "custom_password_hash.password", errors, &bad);
	}
	int_prop(chp, "keylen", 1, false, errors);
	int_prop(chp, "cost", 2, true, errors);
	int_prop(chp, "blockSize", 1, false, errors);
	int_prop(chp, "parallelization", 1, false, errors);

	if (!alg || !hash || !value || bad)
		return;

	const char *HP = "custom_password_hash.hash";
	const char *EP = "custom_password_hash.hash.encoding";
	const char *VP = "custom_password_hash.hash.value";
	bool utf8_only = !strcmp(alg, "argon2") || !strcmp(alg, "bcrypt") || !strcmp(alg, "ldap") ||
			 !strcmp(alg, "pbkdf2");
	if (utf8_only) {
		if (encoding && strcmp(encoding, "utf8") != 0)
			add_err(errors, "ENUM_MISMATCH", EP, "No enum match for: \"%s\"", encoding);
	} else {
		if (!encoding)
			add_err(errors, "OBJECT_REQUIRED", HP, "Missing required property: encoding");
		else if (strcmp(encoding, "utf8") == 0)
			add_err(errors, "ENUM_MISMATCH", EP, "No enum match for: \"%s\"", encoding);
		else if (!charset_ok(value, encoding))
			add_err(errors, "INVALID_FORMAT", VP, "Value is not valid %s", encoding);
	}
	if (salt && (!strcmp(alg, "argon2") || !strcmp(alg, "ldap") || !strcmp(alg, "pbkdf2") ||
		     !strcmp(alg, "bcrypt")))
		add_err(errors, "NOT_PASSED", "custom_password_hash.salt",
			"Salt is not allowed with algorithm %s", alg);

	if (!strcmp(alg, "argon2")) {
		if (!phc_ok(value, "argon2id$") && !phc_ok(value, "argon2i$") &&
		    !phc_ok(value, "argon2d$"))
			add_err(errors, "PATTERN", VP, "Value is not an argon2 PHC string");
	} else if (!strcmp(alg, "bcrypt")) {
		if (!bcrypt_ok(value, true, true))
			add_err(errors, "PATTERN", VP, "Value is not a bcrypt hash");
	} else if (!strcmp(alg, "hmac")) {
		if (!digest)
			add_err(errors, "OBJECT_REQUIRED", HP, "Missing required property: digest");
		if (!key)
			add_err(errors, "OBJECT_REQUIRED", HP, "Missing required property: key");
	} else if (!strcmp(alg, "ldap")) {
		static const char *const schemes[] = { "{MD5}", "{SMD5}", "{SHA}", "{SSHA}",
			"{SHA256}", "{SSHA256}", "{SHA384}", "{SSHA384}", "{SHA512}",
			"{SSHA512}", NULL };
		bool ok = false;
		for (const char *const *s = schemes; *s; s++)
			if (strncasecmp(value, *s, strlen(*s)) == 0 && value[strlen(*s)])
				ok = true;
		if (!ok)
			add_err(errors, "PATTERN", VP, "Value is not a supported RFC 2307 hash");
	} else if (!strcmp(alg, "pbkdf2")) {
		if (!phc_ok(value, "pbkdf2"))
			add_err(errors, "PATTERN", VP, "Value is not a pbkdf2 PHC string");
	} else if (!strcmp(alg, "scrypt")) {
		if (!json_object_object_get_ex(chp, "keylen", NULL))
			add_err(errors, "OBJECT_REQUIRED", P, "Missing required property: keylen");
	}
}

static size_t profile_bytes(json_object *user)
{
	const char *s = json_object_to_json_string_ext(user,
		JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE);
	return s ? strlen(s) : 0;
}

int schema_check_user(json_object *user, json_object *errors)
{
	size_t before = json_object_array_length(errors);
	char path[128];

	if (!json_object_is_type(user, json_type_object)) {
		add_err(errors, "INVALID_TYPE", "", "Expected type object but found type %s",
			type_name(user));
		return 1;
	}
	static const char *const known[] = { "email", "email_verified", "phone_number",
		"phone_verified", "user_id", "username", "given_name", "family_name", "name",
		"nickname", "picture", "blocked", "password_hash", "custom_password_hash",
		"app_metadata", "user_metadata", "mfa_factors", NULL };
	json_object_object_foreach(user, key, val) {
		path_of(key, path, sizeof(path));
		if (!in_list(key, known)) {
			add_err(errors, "INVALID_FORMAT", "", "Additional properties not allowed: %s", key);
			continue;
		}
		if (!strcmp(key, "email_verified") || !strcmp(key, "phone_verified") ||
		    !strcmp(key, "blocked")) {
			expect_type(val, json_type_boolean, "boolean", path, errors);
		} else if (!strcmp(key, "app_metadata") || !strcmp(key, "user_metadata")) {
			check_metadata(key, val, errors);
		} else if (!strcmp(key, "custom_password_hash")) {
			check_custom_hash(val, errors);
		} else if (!strcmp(key, "mfa_factors")) {
			check_mfa(val, errors);
		} else if (expect_type(val, json_type_string, "string", path, errors)) {
			const char *s = json_object_get_string(val);
			if (!strcmp(key, "email")) {
				if (!email_ok(s))
					add_err(errors, "FORMAT", path,
						"Object didn't pass validation for format email: %s", s);
			} else if (!strcmp(key, "phone_number")) {
				if (!e164_ok(s))
					add_err(errors, "PATTERN", path,
						"String does not match pattern ^\\+[0-9]{1,15}$: %s", s);
			} else if (!strcmp(key, "user_id")) {
				check_length(s, 1, 255, path, errors);
				if (has_space(s))
					add_err(errors, "PATTERN", path,
						"String does not match pattern ^\\S*$: %s", s);
			} else if (!strcmp(key, "username")) {
				check_length(s, 1, 128, path, errors);
			} else if (!strcmp(key, "given_name") || !strcmp(key, "family_name")) {
				check_length(s, 1, 150, path, errors);
			} else if (!strcmp(key, "name") || !strcmp(key, "nickname")) {
				check_length(s, 1, 300, path, errors);
			} else if (!strcmp(key, "picture")) {
				if (!url_ok(s))
					add_err(errors, "FORMAT", path,
						"Object didn't pass validation for format url: %s", s);
			} else if (!strcmp(key, "password_hash")) {
				if (!bcrypt_ok(s, false, false))
					add_err(errors, "PATTERN", path,
						"String does not match pattern ^\\$2[ab]\\$10\\$[./A-Za-z0-9]{53}$");
			}
		}
	}
	if (!json_object_object_get_ex(user, "email", NULL))
		add_err(errors, "OBJECT_REQUIRED", "", "Missing required property: email");
	if (json_object_object_get_ex(user, "password_hash", NULL) &&
	    json_object_object_get_ex(user, "custom_password_hash", NULL))
		add_err(errors, "NOT_PASSED", "custom_password_hash",
			"Data matches schema from 'not': password_hash and custom_password_hash");
	size_t bytes = profile_bytes(user);
	if (bytes > PROFILE_MAX_BYTES)
		add_err(errors, "PROFILE_SIZE_EXCEEDED", "",
			"Profile size (%zu bytes) exceeds the maximum of %d bytes", bytes,
			PROFILE_MAX_BYTES);
	return (int)(json_object_array_length(errors) - before);
}
