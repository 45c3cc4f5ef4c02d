/*
 * util — the emulator's small shared helpers: wall-clock time in
 * milliseconds, ISO 8601 stamps, a seedable random source, a 64-bit content
 * hash and a growable byte buffer with a maximum.
 *
 * Times are milliseconds since the UNIX epoch (int64_t). The random source
 * is process-wide and thread-safe; `--seed N` makes it repeatable.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

int64_t sbx_now_ms(void);
/* "2023-01-25T17:48:16.543Z" into buf (at least 32 bytes). */
void sbx_iso8601(int64_t ms, char *buf, size_t size);

void sbx_rand_seed(uint64_t seed);
uint64_t sbx_rand_u64(void);
/* Uniform in [0, 1). */
double sbx_rand_unit(void);
/* n random letters and digits, NUL-terminated (buf holds n + 1). */
void sbx_rand_alnum(char *buf, size_t n);

/* FNV-1a 64 over len bytes. */
uint64_t sbx_hash64(const void *data, size_t len);

/* A byte buffer that refuses to grow past max (the append fails with
 * -E2BIG and the buffer keeps what it had). Always NUL-terminated. */
struct sbx_buf {
	char *data;
	size_t len;
	size_t cap;
	size_t max;
};

void sbx_buf_init(struct sbx_buf *b, size_t max);
int sbx_buf_append(struct sbx_buf *b, const void *data, size_t len);
void sbx_buf_done(struct sbx_buf *b);

/* Case-insensitive ASCII lower-casing copy (malloc'd). */
char *sbx_strdup_lower(const char *s);
