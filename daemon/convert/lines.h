/*
 * lines — records of a (possibly gzip) text file, one at a time, in a
 * buffer of fixed size. Internal to daemon/convert.
 *
 * A record is a line without its "\n" / "\r\n"; in CSV mode a newline inside
 * a double-quoted cell belongs to the record. A record longer than
 * CONVERT_LINE_MAX is -EBADMSG (the file cannot be read further).
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <zlib.h>

struct cv_lines {
	gzFile gz;
	char *buf;
	size_t cap, start, end, scan;
	bool in_quotes; /* CSV: scan state at `scan` */
	bool eof;
	uint64_t line;  /* 1-based line where the next record starts */
	uint64_t bytes; /* decompressed bytes handed out */
};

int cv_lines_open(struct cv_lines *l, const char *path);
/* 1 and a NUL-terminated record (valid until the next call), 0 at the end,
 * negative errno on errors. *ret_line: where the record starts. */
int cv_lines_next(struct cv_lines *l, bool csv, char **ret, size_t *ret_len, uint64_t *ret_line);
void cv_lines_close(struct cv_lines *l);
