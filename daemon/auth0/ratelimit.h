/*
 * ratelimit — the rate-limit facts one Auth0 answer carries.
 *
 * Auth0 sends on every Management API answer `x-ratelimit-limit` (bucket
 * size), `x-ratelimit-remaining` (tokens left) and `x-ratelimit-reset` (UNIX
 * time in seconds when tokens are added); a 429 may carry `Retry-After`
 * (delta seconds or an HTTP-date). Any of them may be missing (proxy pages,
 * the token endpoint). Times here are UNIX epoch milliseconds.
 */
#pragma once

#include <stdbool.h>
#include <stdint.h>

struct ratelimit_info {
	bool has_limit, has_remaining, has_reset, has_retry_after;
	long limit;              /* bucket size */
	long remaining;          /* tokens left after this request */
	int64_t reset_ms;        /* when tokens are added (epoch ms) */
	int64_t retry_after_ms;  /* absolute: now + Retry-After (epoch ms) */
};

/* Parses the four header values (each may be NULL). Malformed values are
 * ignored (their has_ flag stays false); never fails. */
void ratelimit_parse(const char *limit, const char *remaining, const char *reset,
		     const char *retry_after, int64_t now_ms, struct ratelimit_info *ret);

/* Retry-After alone: delta-seconds or HTTP-date (IMF-fixdate, RFC 850,
 * asctime) → 0 and the absolute time, or -EINVAL. */
int ratelimit_parse_retry_after(const char *value, int64_t now_ms, int64_t *ret_at_ms);
