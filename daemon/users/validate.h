/*
 * validate — one user against the import schema (schema.h) and the
 * import's policies (users_options).
 *
 * A `struct validate` collects the user's problems (errors and warnings, at
 * most VALIDATE_PROBLEMS_MAX; strings in its own arena) and the facts the
 * caller needs next: the email / user_id / username for duplicate checks,
 * and whether the element must be rewritten (an unsupported hash stripped,
 * the auth0| prefix stripped). It holds pointers into the ujv_doc, so it
 * lives no longer than the parse. Rules that need more than one user
 * (duplicates) or the final bytes (profile size) are added by the caller
 * with validate_add() before validate_finish().
 */
#pragma once

#include "daemon/users/ujv.h"
#include "daemon/users/users.h"

#include <stdbool.h>
#include <stddef.h>

#define VALIDATE_PROBLEMS_MAX 64
#define VALIDATE_ARENA        16384
#define VALIDATE_PATH_MAX     512

struct validate {
	const struct users_options *opts;
	const struct ujv_doc *doc;      /* the user being checked */
	struct users_problem problems[VALIDATE_PROBLEMS_MAX];
	size_t n;
	size_t n_errors, n_warnings;   /* set by validate_finish */
	size_t dropped;                /* problems past VALIDATE_PROBLEMS_MAX */
	char arena[VALIDATE_ARENA];
	size_t arena_len;
	/* facts */
	const char *email;             /* NULL unless a string */
	const char *user_id;           /* after stripping "auth0|" when it will be */
	const char *username;
	const char *strip_key;         /* "password_hash" / "custom_password_hash" to remove, or NULL */
	const struct ujv *strip_member; /* its member node */
	const struct ujv *user_id_node; /* the user_id member (for the prefix rewrite) */
	bool strip_prefix;             /* user_id loses its "auth0|" */
};

/* Resets v and checks the user parsed in doc (any JSON value: a non-object
 * is INVALID_TYPE). */
void validate_user(struct validate *v, const struct ujv_doc *doc, const struct users_options *opts);

/* Resets v with no user (for a problem found before parsing). */
void validate_reset(struct validate *v, const struct users_options *opts);

/* Adds a problem; message is printf-like. hint may be NULL. */
void validate_add(struct validate *v, bool warning, const char *path, const char *code,
                  const char *hint, const char *fmt, ...)
	__attribute__((format(printf, 6, 7)));

/* Errors first, then warnings (each in the order found); counts set. */
void validate_finish(struct validate *v);

/* Characters (Unicode code points) of a UTF-8 string. */
size_t validate_utf8_chars(const char *s);

/* Appends "/<escaped key>" (JSON pointer, RFC 6901) to base into out. */
void validate_path_join(char *out, size_t size, const char *base, const char *key);
