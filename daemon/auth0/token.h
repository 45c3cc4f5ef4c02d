/*
 * token — the Management API access token of one tenant (client-credentials
 * grant), cached and refreshed once for all who wait.
 *
 * POST <base>/oauth/token with grant_type=client_credentials, client_id,
 * client_secret and audience (configured, else "<base>/api/v2/" — the
 * trailing slash matters). A token is "valid" while more than a fifth of its
 * lifetime is left; past that it is refreshed. At most one grant request is
 * in flight: every waiter is called back from its answer.
 *
 * The client secret and the token live only in this module's memory (wiped
 * on free) and in the Authorization header of requests; they are never
 * logged or returned in messages.
 *
 * Times are epoch milliseconds from the configured clock.
 */
#pragma once

#include <stdint.h>

#include "daemon/auth0/classify.h"
#include "daemon/uvcurl.h"

typedef int64_t (*a0_clock_fn)(void *arg);

struct a0_token_config {
	const char *base_url;      /* no trailing slash */
	const char *audience;      /* NULL or "": <base_url>/api/v2/ */
	const char *client_id;
	const char *client_secret;
	const char *ca_file;       /* NULL: system CAs */
	long connect_timeout_ms;   /* 0: uvcurl default */
	long timeout_ms;           /* 0: uvcurl default */
	a0_clock_fn now_ms;        /* NULL: CLOCK_REALTIME */
	void *clock_arg;
};

struct a0_token;
struct a0_token_waiter;

/* result 0: a token is now available (a0_token_peek succeeds); otherwise
 * -EIO and `cls` says why (A0_RETRY, A0_WAIT, A0_IMPORT_FAILED, ...). */
typedef void (*a0_token_cb)(int result, const struct a0_class *cls, void *arg);

int a0_token_new(struct uvcurl *uc, const struct a0_token_config *cfg, struct a0_token **ret);
/* Cancels the grant in flight; waiters are dropped without callback. */
void a0_token_free(struct a0_token *t);

/* 0 and the full header line "Authorization: Bearer …" (owned by the token,
 * valid until the next call into this module) when a valid token is cached;
 * -ENOENT otherwise. */
int a0_token_peek(struct a0_token *t, const char **ret_header);
/* Waits for a token, starting the one grant request if none runs. Returns
 * -EALREADY (no callback) when a valid token is cached. */
int a0_token_wait(struct a0_token *t, a0_token_cb cb, void *arg, struct a0_token_waiter **ret);
void a0_token_waiter_cancel(struct a0_token_waiter *w);
/* Forgets the token if `header_used` is the current one (after a 401). */
void a0_token_drop(struct a0_token *t, const char *header_used);

/* For status pages: when the cached token expires (0: none), the number of
 * grant requests made, and the last grant error ("" if none; never secret). */
int64_t a0_token_expires_at(const struct a0_token *t);
unsigned a0_token_grants(const struct a0_token *t);
const char *a0_token_last_error(const struct a0_token *t);

int64_t a0_clock_realtime_ms(void *arg);
