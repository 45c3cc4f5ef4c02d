/* Test helper: read a whole users file from memory with the streaming reader
 * and keep what the tests compare — the elements (minified, joined by '\n',
 * truncated for big files), where the first 64 start, and how it ended. */
#pragma once

#include "daemon/users/reader.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct got {
	size_t n;
	char mins[8192];   /* elements joined by '\n' (truncated for big files) */
	uint32_t lines[64];
	uint64_t offsets[64];
	int rc;            /* last users_reader_next result */
	struct users_failure f;
	enum users_format format;
	bool gzip;
};

void read_mem(const void *data, size_t len, struct got *g);
void read_str(const char *s, struct got *g);
