/*
 * reader — a users file as a stream of elements, one user at a time.
 *
 * Layers: source (a file descriptor, through zlib when the first bytes are
 * the gzip magic) → text window (at most USERS_ELEMENT_MAX + READER_READ
 * bytes) → format (JSON array or NDJSON, told by the first byte after an
 * optional UTF-8 BOM and whitespace, else CSV) → element scanner (scan.h),
 * which checks the JSON syntax and UTF-8 of one element and copies it
 * minified; for CSV, the row splitter and converter (csv.h), whose element
 * is the JSON user a row becomes (longer than the row, unlike JSON's).
 *
 * Memory is bounded whatever the file size. A malformed file stops the
 * reader with a users_failure (offset, line, column in the decompressed
 * text, and what was expected).
 */
#pragma once

#include "daemon/users/users.h"

#include <stdint.h>
#include <stdio.h>

struct users_reader;

struct users_element {
	const char *min;   /* the element minified, NUL-terminated; valid until the next call */
	size_t min_len;
	size_t raw_len;    /* bytes in the file, whitespace included (CSV: the row without its line break) */
	uint32_t index;    /* 0-based */
	uint32_t line;     /* 1-based line of its first byte */
	uint64_t offset;   /* byte offset of its first byte in the text */
};

/* "-" reads stdin (not closed at the end). */
int users_reader_open(const char *path, struct users_reader **ret);
/* Reads from memory (tests, fuzzing): the bytes must outlive the reader. */
int users_reader_open_mem(const void *data, size_t len, struct users_reader **ret);
void users_reader_free(struct users_reader *r);

/* 1: *ret_elem holds the next user; 0: end of file; < 0: failure, see
 * users_reader_failure(). After 0 or < 0 every later call returns the same. */
int users_reader_next(struct users_reader *r, struct users_element *ret_elem);

const struct users_failure *users_reader_failure(const struct users_reader *r);
enum users_format users_reader_format(const struct users_reader *r);
bool users_reader_gzip(const struct users_reader *r);
uint64_t users_reader_bytes_in(const struct users_reader *r);   /* file bytes read */
uint64_t users_reader_bytes_text(const struct users_reader *r); /* decompressed bytes consumed */
uint64_t users_reader_size(const struct users_reader *r);       /* file size, 0 when unknown */

/* Fills a failure (kind, slug, error, message) — shared with the callers. */
void users_failure_set(struct users_failure *f, enum users_failure_kind kind,
                       int error, uint64_t offset, uint32_t line,
                       uint32_t column, const char *fmt, ...)
	__attribute__((format(printf, 7, 8)));
