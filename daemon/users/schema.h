/*
 * schema — the Auth0 bulk-import user schema as a table (AUTH0.md, "The
 * users file").
 *
 * Each object the schema knows (the user, custom_password_hash and its
 * parts, an MFA factor) is a schema_table: its properties, each with a name
 * (exact, case-sensitive), a kind, whether it is required, length bounds in
 * characters (Unicode code points), an enum, a nested table for closed
 * objects, and a hook for the rules a table cannot say (formats, hash
 * algorithms, metadata keys). Tables are closed: a property not listed is
 * UNKNOWN_PROPERTY. The hooks live in validate.c, which walks the tables.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct ujv;
struct validate;

enum schema_kind {
	SCHEMA_STRING = 0,
	SCHEMA_BOOLEAN,
	SCHEMA_INTEGER,
	SCHEMA_OBJECT,  /* closed when `object` is set, free-form (metadata) otherwise */
	SCHEMA_ARRAY,
};

/* Runs once the value has the right kind; `path` is its JSON pointer. */
typedef void schema_hook(struct validate *v, const char *path, const struct ujv *val);

struct schema_table;

struct schema_prop {
	const char *name;
	enum schema_kind kind;
	bool required;
	uint32_t min_len;                 /* strings, characters; 0: none */
	uint32_t max_len;                 /* strings, characters; 0: none */
	uint32_t warn_len;                /* strings: a warning above this; 0: none */
	const char *const *enum_values;   /* strings: NULL-terminated; NULL: any */
	const struct schema_table *object;/* SCHEMA_OBJECT: its closed table */
	schema_hook *check;
};

struct schema_table {
	const char *what;                 /* "user", "custom_password_hash", ... */
	const struct schema_prop *props;
	size_t n;
	const char *const *names;         /* the props' names, for hints */
};

extern const struct schema_table schema_user;
extern const struct schema_table schema_mfa_factor;

/* The supported custom_password_hash algorithms, NULL-terminated. */
extern const char *const schema_hash_algorithms[];
/* app_metadata keys Auth0 reserves, NULL-terminated. */
extern const char *const schema_app_metadata_reserved[];

const struct schema_prop *schema_find(const struct schema_table *t, const char *name);

/* Hooks, implemented in validate.c. */
schema_hook validate_hook_email;
schema_hook validate_hook_phone;
schema_hook validate_hook_user_id;
schema_hook validate_hook_url;
schema_hook validate_hook_password_hash;
schema_hook validate_hook_custom_password_hash;
schema_hook validate_hook_app_metadata;
schema_hook validate_hook_user_metadata;
schema_hook validate_hook_mfa_factors;
schema_hook validate_hook_totp_secret;
schema_hook validate_hook_positive;
schema_hook validate_hook_cost;
