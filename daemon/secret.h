/*
 * secret — a value that must never be printed: client secrets, access
 * tokens, the control-API token.
 *
 * The type is opaque and has no print path: there is no formatter, no
 * to-JSON, no logging helper. The bytes are reachable only through
 * secret_value() (for the one call that needs them: an Authorization header,
 * a token request body) and are wiped when the secret is freed.
 *
 * Invariants: a secret is immutable once created; value is NUL-terminated
 * and may not contain NUL itself; len excludes the NUL.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>

struct secret;

/* Copies len bytes of value. 0 and *ret, -EINVAL (empty or contains NUL),
 * -ENOMEM. */
int secret_new(const char *value, size_t len, struct secret **ret);

/* Reads a secret file (at most 64 KiB); one trailing "\n" or "\r\n" is
 * removed. 0 and *ret; -errno when the file cannot be read, -EINVAL when it
 * is empty, -EFBIG when larger than the maximum. */
int secret_from_file(const char *path, struct secret **ret);

/* A new secret with the same value (configs are copied at reload). */
int secret_dup(const struct secret *s, struct secret **ret);

const char *secret_value(const struct secret *s);
size_t secret_len(const struct secret *s);

/* Compares in time that depends only on the secret's length, never on where
 * the first difference is. NULL s never matches. */
bool secret_equal(const struct secret *s, const char *value, size_t len);

/* Wipes and frees; NULL is fine. */
void secret_free(struct secret *s);
