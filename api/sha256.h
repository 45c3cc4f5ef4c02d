/*
 * sha256 — FIPS 180-4 SHA-256, incremental, for the Idempotency-Key check
 * (the same key with a different body is a conflict). Fed as the upload
 * streams in, so no second read of the file is needed.
 */
#pragma once

#include <stddef.h>
#include <stdint.h>

struct sha256 {
	uint32_t h[8];
	uint64_t len;       /* bytes hashed so far */
	uint8_t buf[64];
	size_t used;
};

void sha256_init(struct sha256 *s);
void sha256_update(struct sha256 *s, const void *data, size_t len);
/* 64 lowercase hex characters and a NUL into hex. */
void sha256_final_hex(struct sha256 *s, char hex[65]);
