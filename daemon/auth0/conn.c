/* conn — clock, timeouts and CA file shared by the clients (see conn.h). */
#include "daemon/auth0/conn.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

int a0_conn_init(struct a0_conn *ret, const char *ca_file, long connect_timeout_ms,
		 long timeout_ms, a0_clock_fn now_ms, void *clock_arg)
{
	memset(ret, 0, sizeof(*ret));
	if (ca_file && !(ret->ca_file = strdup(ca_file)))
		return -ENOMEM;
	ret->now_ms = now_ms ? now_ms : a0_clock_realtime_ms;
	ret->clock_arg = clock_arg;
	ret->connect_timeout_ms = connect_timeout_ms;
	ret->timeout_ms = timeout_ms;
	return 0;
}

void a0_conn_done(struct a0_conn *c)
{
	free(c->ca_file);
	c->ca_file = NULL;
}

int64_t a0_conn_now(const struct a0_conn *c)
{
	return c->now_ms(c->clock_arg);
}

void a0_conn_request_opts(const struct a0_conn *c, struct uvcurl_request_opts *o)
{
	o->connect_timeout_ms = c->connect_timeout_ms;
	o->timeout_ms = c->timeout_ms;
	o->ca_file = c->ca_file;
}
