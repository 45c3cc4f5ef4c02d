/*
 * conn — the connection settings the token and the Management clients both
 * keep (internal to daemon/auth0): the clock, libcurl's connect and total
 * timeouts, and the CA file.
 *
 * Times are epoch milliseconds from the clock (CLOCK_REALTIME when none is
 * configured); timeouts are milliseconds, 0 meaning uvcurl's default. The CA
 * file is an owned copy, NULL for the system CAs.
 */
#pragma once

#include <stdint.h>

#include "daemon/auth0/token.h"
#include "daemon/uvcurl.h"

struct a0_conn {
	char *ca_file;
	long connect_timeout_ms, timeout_ms;
	a0_clock_fn now_ms;
	void *clock_arg;
};

/* Fills ret from the configured values (now_ms NULL: CLOCK_REALTIME).
 * Returns 0 or -ENOMEM; ret is left empty (safe to a0_conn_done) on failure. */
int a0_conn_init(struct a0_conn *ret, const char *ca_file, long connect_timeout_ms,
		 long timeout_ms, a0_clock_fn now_ms, void *clock_arg);
void a0_conn_done(struct a0_conn *c);

/* The clock's current time. */
int64_t a0_conn_now(const struct a0_conn *c);

/* Sets the timeouts and CA file of a request's options. */
void a0_conn_request_opts(const struct a0_conn *c, struct uvcurl_request_opts *o);
