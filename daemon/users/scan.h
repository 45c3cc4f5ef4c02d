/*
 * scan — the element scanner: finds where one JSON value ends in a buffer,
 * checks its syntax and UTF-8, and copies it minified (whitespace outside
 * strings removed, every other byte kept).
 *
 * It is not resumable: given the bytes from the element's first byte to the
 * end of what has been read, it answers DONE (with the end), MORE (the
 * element goes past the buffer: read more and scan again from the start) or
 * ERROR (with the position and what was expected). Strings are skipped 16
 * bytes at a time with SSE2 where available.
 */
#pragma once

#include <stddef.h>
#include <stdint.h>

enum scan_result {
	SCAN_DONE = 0,
	SCAN_MORE,
	SCAN_ERROR,
};

struct scan {
	/* in */
	char *out;          /* receives the minified element */
	size_t out_cap;     /* bytes available in out */
	unsigned max_depth; /* nesting bound: the top value is depth 1 */
	/* out */
	size_t out_len;
	size_t end;         /* DONE: bytes consumed; ERROR: position of the error */
	uint32_t newlines;  /* newlines inside the element */
	size_t last_nl;     /* position just after the last newline (valid when newlines > 0) */
	const char *expected; /* ERROR: what was expected, static string */
};

/* Scans one value starting at buf[0] (not whitespace). `eof` says no more
 * bytes will come (MORE becomes ERROR "unexpected end of file"). */
enum scan_result scan_element(struct scan *s, const char *buf, size_t len, int eof);

/* Length of the valid UTF-8 sequence at p (1..4), 0 when invalid, -1 when it
 * may be valid but is cut by the end. */
int scan_utf8_seq(const unsigned char *p, size_t avail);
