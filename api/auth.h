/*
 * auth — the control-API token check.
 *
 * When a token is configured, every endpoint but /healthz needs
 * `Authorization: Bearer <token>`. The comparison takes time that depends
 * only on the token's length, never on how much of a guess was right.
 * The token is a struct secret (never logged, never echoed).
 */
#pragma once

#include <stdbool.h>

struct secret;

/* true when token is NULL (no token configured) or when `authorization`
 * (the header value, may be NULL) is "Bearer <token>" (scheme
 * case-insensitive, one or more spaces). */
bool auth_check_bearer(const struct secret *token, const char *authorization);
