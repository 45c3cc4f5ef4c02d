/*
 * responder — a tiny scripted HTTP server for unit tests (libmicrohttpd,
 * thread per connection). Replies are data: queue them with responder_push()
 * (served in order; the default reply once the queue is empty), and assert
 * on what the server received with responder_seen().
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>

#define RESPONDER_MAX_HEADERS 8

struct responder_reply {
	int status;
	const char *headers[RESPONDER_MAX_HEADERS]; /* "Name: value" */
	const char *body;
	unsigned delay_ms;  /* wait before answering */
	bool reset;         /* drop the connection without an answer */
};

struct responder_seen {
	char method[16];
	char url[1024];       /* path and query */
	char authorization[2048];
	char content_type[256];
	size_t body_len;
	char *body;           /* NUL-terminated, first 1 MiB */
};

struct responder;

int responder_start(struct responder **ret, unsigned *ret_port);
void responder_stop(struct responder *r);
void responder_push(struct responder *r, const struct responder_reply *reply);
void responder_set_default(struct responder *r, const struct responder_reply *reply);
size_t responder_count(struct responder *r);
/* A copy owned by the responder, valid until responder_stop. */
const struct responder_seen *responder_seen(struct responder *r, size_t i);
