/*
 * classify — the ONE place that maps an Auth0 answer to what to do next.
 *
 * An answer is a transport result (0 or a negative errno from uvcurl), an
 * HTTP status, the body and the rate-limit headers. Verdicts:
 *
 *   A0_OK            2xx (including 204).
 *   A0_WAIT          rate-limit 429: wait until `wait_until_ms` (Retry-After
 *                    when present, else x-ratelimit-reset, else one second).
 *   A0_TOO_MANY_JOBS the "There are 2 active import users jobs" 429: the
 *                    tenant's concurrent-jobs cap was hit (told apart by the
 *                    message, never by the status alone).
 *   A0_RETRY         transient: 5xx (JSON or a proxy's HTML page), timeouts,
 *                    resets, refused connections, other 429s without the
 *                    rate-limit shape; back off with jitter.
 *   A0_TOO_LARGE     413: the request body was too big; split the chunk.
 *   A0_REFRESH       401 (or 403) with a token not yet refreshed: drop the
 *                    token, get a new one, retry once.
 *   A0_IMPORT_FAILED the whole import cannot go on: a 400 about the
 *                    connection, a 401/403 after a token refresh, a token
 *                    grant refused. `message` keeps Auth0's words.
 *   A0_REJECTED      a permanent 4xx about this request only (e.g. "Users
 *                    file must not be empty."); retrying will not help.
 *   A0_NOT_FOUND     404 (unknown or expired job).
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "daemon/auth0/ratelimit.h"

enum a0_verdict {
	A0_OK = 0,
	A0_WAIT,
	A0_TOO_MANY_JOBS,
	A0_RETRY,
	A0_TOO_LARGE,
	A0_REFRESH,
	A0_IMPORT_FAILED,
	A0_REJECTED,
	A0_NOT_FOUND,
};

struct a0_answer {
	int result;               /* transport: 0 or negative errno */
	long status;              /* HTTP status when result == 0 */
	const char *body;         /* may be NULL */
	size_t body_len;
	const char *content_type; /* may be NULL */
	struct ratelimit_info rl;
	bool token_refreshed;     /* the request already ran with a fresh token */
	bool token_endpoint;      /* the answer is from /oauth/token */
};

#define A0_MESSAGE_MAX 512

struct a0_class {
	enum a0_verdict verdict;
	int64_t wait_until_ms;          /* A0_WAIT */
	char message[A0_MESSAGE_MAX];   /* Auth0's message, or a description */
	char error_code[64];            /* errorCode / error, when given */
};

/* Never fails; `now_ms` is epoch milliseconds. */
void a0_classify(const struct a0_answer *a, int64_t now_ms, struct a0_class *ret);

const char *a0_verdict_name(enum a0_verdict v);

/* The message of the too-many-jobs 429, as a substring. */
#define A0_TOO_MANY_JOBS_MARK "active import users jobs"
