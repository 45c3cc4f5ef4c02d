/*
 * multipart — a strict, bounded multipart/form-data parser for the
 * emulator's import endpoint (RFC 7578 over RFC 2046 framing).
 *
 * The whole body is in memory (the endpoint refuses more than 512000 bytes
 * before parsing). Parts point into the body; nothing is copied. A body
 * that is not well-framed multipart — no boundary, a missing close
 * delimiter, a part without Content-Disposition form-data and a name, more
 * than MULTIPART_MAX_PARTS parts — is -EINVAL.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>

#define MULTIPART_MAX_PARTS 32
#define MULTIPART_MAX_NAME 64

struct multipart_part {
	char name[MULTIPART_MAX_NAME];
	bool is_file;           /* a filename= parameter was present */
	const char *data;
	size_t len;
};

/* content_type is the request's Content-Type header (may be NULL). */
int multipart_parse(const char *content_type, const char *body, size_t len,
		    struct multipart_part *ret_parts, size_t max_parts, size_t *ret_n);

/* The first part with this name, or NULL. */
const struct multipart_part *multipart_find(const struct multipart_part *parts, size_t n,
					    const char *name);
