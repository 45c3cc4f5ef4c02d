/* Streaming users-file reader: see reader.h. */
#include "daemon/users/reader.h"
#include "daemon/users/csv.h"
#include "daemon/users/scan.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#define READER_READ   (256u * 1024u)          /* one read into the text window */
#define WINDOW_CAP    (USERS_ELEMENT_MAX + READER_READ)
#define ZIN_CAP       (64u * 1024u)           /* compressed input buffer */

enum reader_state {
	RS_START = 0,
	RS_ARRAY_FIRST,
	RS_ARRAY_NEXT,
	RS_ARRAY_END,
	RS_NDJSON,
	RS_CSV_HEADER,
	RS_CSV,
	RS_END,
	RS_FAILED,
};

struct users_reader {
	/* source */
	int fd;
	bool own_fd;
	const unsigned char *mem;
	size_t mem_len, mem_pos;
	bool raw_eof;              /* the file has no more bytes */
	unsigned char *zin;        /* raw bytes read ahead (gzip input, or the first block) */
	size_t zin_len, zin_pos;   /* plain files: pending first bytes */
	bool gzip;
	bool z_init;
	bool z_done;               /* last gzip member ended */
	z_stream z;
	uint64_t bytes_in, size;
	bool text_eof;             /* no more text will come */

	/* text window [start, end) of win; win[0] is text offset win_base */
	char *win;
	size_t win_cap;            /* WINDOW_CAP, or less for small in-memory input */
	size_t out_cap;            /* USERS_ELEMENT_MAX, or less likewise */
	size_t start, end;
	uint64_t win_base;
	uint32_t line;             /* line of win[start] */
	uint64_t line_start;       /* text offset where that line starts */
	uint32_t last_elem_end_line; /* NDJSON: line where the previous user ended */

	enum reader_state state;
	enum users_format format;
	char *out;                 /* the current element, minified */
	struct csv *csv;           /* CSV: the header and the current row */
	uint32_t index;
	int result;
	struct users_failure failure;
};

const char *users_format_name(enum users_format f)
{
	switch (f) {
	case USERS_FORMAT_JSON_ARRAY: return "json";
	case USERS_FORMAT_NDJSON: return "ndjson";
	case USERS_FORMAT_CSV: return "csv";
	default: return "unknown";
	}
}

static const char *failure_slug(enum users_failure_kind kind)
{
	switch (kind) {
	case USERS_FAILURE_MALFORMED: return "malformed-file";
	case USERS_FAILURE_NOT_AN_ARRAY: return "not-an-array";
	case USERS_FAILURE_EMPTY: return "empty-file";
	case USERS_FAILURE_TOO_MANY_USERS: return "too-many-users";
	case USERS_FAILURE_CANCELLED: return "cancelled";
	case USERS_FAILURE_IO: return "internal";
	default: return NULL;
	}
}

void users_failure_set(struct users_failure *f, enum users_failure_kind kind,
                       int error, uint64_t offset, uint32_t line,
                       uint32_t column, const char *fmt, ...)
{
	va_list ap;

	f->kind = kind;
	f->slug = failure_slug(kind);
	f->error = error;
	f->offset = offset;
	f->line = line;
	f->column = column;
	va_start(ap, fmt);
	vsnprintf(f->message, sizeof(f->message), fmt, ap);
	va_end(ap);
}

/* Malformed at text offset `off`, on `line` which starts at `lstart`. */
static int fail_at(struct users_reader *r, enum users_failure_kind kind,
                   uint64_t off, uint32_t line, uint64_t lstart, const char *fmt, ...)
	__attribute__((format(printf, 6, 7)));
static int fail_at(struct users_reader *r, enum users_failure_kind kind,
                   uint64_t off, uint32_t line, uint64_t lstart, const char *fmt, ...)
{
	va_list ap;
	char msg[sizeof(r->failure.message)];

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	users_failure_set(&r->failure, kind, -EBADMSG, off, line,
	                  (uint32_t)(off - lstart + 1), "%s", msg);
	r->state = RS_FAILED;
	r->result = -EBADMSG;
	return r->result;
}

/* Malformed at the current position: "expected <what>" (eof: "unexpected end of file: ..."). */
static int fail_here(struct users_reader *r, bool eof, const char *what)
{
	return fail_at(r, USERS_FAILURE_MALFORMED, r->win_base + r->start, r->line,
	               r->line_start, "%sexpected %s", eof ? "unexpected end of file: " : "", what);
}

static int fail_io(struct users_reader *r, int err, const char *what)
{
	users_failure_set(&r->failure, USERS_FAILURE_IO, err, r->win_base + r->start,
	                  r->line, (uint32_t)(r->win_base + r->start - r->line_start + 1),
	                  "%s: %s", what, strerror(-err));
	r->state = RS_FAILED;
	r->result = err;
	return err;
}

/* Raw bytes of the file. Returns bytes read, 0 at end, < 0 errno. */
static ssize_t raw_read(struct users_reader *r, unsigned char *dst, size_t cap)
{
	if (r->raw_eof)
		return 0;
	if (r->mem) {
		size_t n = r->mem_len - r->mem_pos;
		if (n > cap)
			n = cap;
		memcpy(dst, r->mem + r->mem_pos, n);
		r->mem_pos += n;
		if (n == 0)
			r->raw_eof = true;
		r->bytes_in += n;
		return (ssize_t)n;
	}
	for (;;) {
		ssize_t n = read(r->fd, dst, cap);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		if (n == 0)
			r->raw_eof = true;
		r->bytes_in += (uint64_t)n;
		return n;
	}
}

/* Text bytes: inflated when gzip. Returns bytes, 0 at end, < 0 failure set. */
static ssize_t text_read(struct users_reader *r, char *dst, size_t cap)
{
	if (!r->gzip) {
		if (r->zin_pos < r->zin_len) {
			size_t n = r->zin_len - r->zin_pos;
			if (n > cap)
				n = cap;
			memcpy(dst, r->zin + r->zin_pos, n);
			r->zin_pos += n;
			return (ssize_t)n;
		}
		ssize_t n = raw_read(r, (unsigned char *)dst, cap);
		if (n < 0)
			return fail_io(r, (int)n, "reading the users file");
		return n;
	}
	if (r->z_done)
		return 0;
	r->z.next_out = (unsigned char *)dst;
	r->z.avail_out = (uInt)cap;
	while (r->z.avail_out == cap) {
		if (r->z.avail_in == 0) {
			ssize_t n = raw_read(r, r->zin, ZIN_CAP);
			if (n < 0)
				return fail_io(r, (int)n, "reading the users file");
			r->z.next_in = r->zin;
			r->z.avail_in = (uInt)n;
		}
		int zr = inflate(&r->z, Z_NO_FLUSH);
		if (zr == Z_STREAM_END) {
			/* Another gzip member may follow (concatenated gzip files). */
			if (r->z.avail_in == 0) {
				ssize_t n = raw_read(r, r->zin, ZIN_CAP);
				if (n < 0)
					return fail_io(r, (int)n, "reading the users file");
				r->z.next_in = r->zin;
				r->z.avail_in = (uInt)n;
			}
			if (r->z.avail_in == 0) {
				r->z_done = true;
				break;
			}
			if (r->z.avail_in >= 1 && r->z.next_in[0] != 0x1f) {
				fail_at(r, USERS_FAILURE_MALFORMED, r->win_base + r->end,
				        r->line, r->line_start,
				        "trailing data after the gzip stream (at compressed byte %llu)",
				        (unsigned long long)(r->bytes_in - r->z.avail_in));
				r->failure.line = 0;
				r->failure.column = 0;
				return -1;
			}
			inflateReset(&r->z);
			continue;
		}
		if (zr == Z_BUF_ERROR && r->z.avail_in == 0 && r->raw_eof) {
			fail_at(r, USERS_FAILURE_MALFORMED, r->win_base + r->end, r->line,
			        r->line_start, "truncated gzip stream: the file ends after %llu compressed bytes",
			        (unsigned long long)r->bytes_in);
			r->failure.line = 0;
			r->failure.column = 0;
			return -1;
		}
		if (zr != Z_OK && zr != Z_BUF_ERROR) {
			fail_at(r, USERS_FAILURE_MALFORMED, r->win_base + r->end, r->line,
			        r->line_start, "corrupt gzip data: %s",
			        r->z.msg ? r->z.msg : "inflate failed");
			r->failure.line = 0;
			r->failure.column = 0;
			return -1;
		}
	}
	return (ssize_t)(cap - r->z.avail_out);
}

/* Moves [start, end) to the front and reads more. 0, or < 0 (failure set).
 * Sets text_eof when nothing more will come. */
static int fill(struct users_reader *r)
{
	if (r->text_eof)
		return 0;
	if (r->start > 0) {
		memmove(r->win, r->win + r->start, r->end - r->start);
		r->win_base += r->start;
		r->end -= r->start;
		r->start = 0;
	}
	while (r->end < r->win_cap) {
		ssize_t n = text_read(r, r->win + r->end, r->win_cap - r->end);
		if (n < 0)
			return r->result;
		if (n == 0) {
			r->text_eof = true;
			break;
		}
		r->end += (size_t)n;
		if (r->end - r->start >= READER_READ)
			break;
	}
	return 0;
}

/* Skips whitespace (counting lines). Returns the next byte, -1 at end of
 * text, or -2 on failure. */
static int peek_nonws(struct users_reader *r)
{
	for (;;) {
		while (r->start < r->end) {
			unsigned char c = (unsigned char)r->win[r->start];
			if (c == '\n') {
				r->start++;
				r->line++;
				r->line_start = r->win_base + r->start;
			} else if (c == ' ' || c == '\t' || c == '\r')
				r->start++;
			else
				return c;
		}
		if (r->text_eof)
			return -1;
		if (fill(r) < 0)
			return -2;
	}
}

/* win_cap/out_cap: smaller for a small plain input in memory (it can hold
 * no bigger element), so tests and fuzzing do not allocate 2 MiB per run. */
static int alloc_reader(struct users_reader **ret, size_t win_cap, size_t out_cap)
{
	struct users_reader *r = calloc(1, sizeof(*r));
	if (!r)
		return -ENOMEM;
	r->fd = -1;
	r->win_cap = win_cap;
	r->out_cap = out_cap;
	r->win = malloc(win_cap);
	r->out = malloc(out_cap + 1);
	r->zin = malloc(ZIN_CAP);
	if (!r->win || !r->out || !r->zin) {
		users_reader_free(r);
		return -ENOMEM;
	}
	r->line = 1;
	*ret = r;
	return 0;
}

/* Reads the first raw bytes to tell gzip from text. */
static int sniff(struct users_reader *r)
{
	while (r->zin_len < 2 && !r->raw_eof) {
		ssize_t n = raw_read(r, r->zin + r->zin_len, ZIN_CAP - r->zin_len);
		if (n < 0)
			return (int)n;
		r->zin_len += (size_t)n;
	}
	if (r->zin_len >= 2 && r->zin[0] == 0x1f && r->zin[1] == 0x8b) {
		r->gzip = true;
		memset(&r->z, 0, sizeof(r->z));
		if (inflateInit2(&r->z, 16 + MAX_WBITS) != Z_OK)
			return -ENOMEM;
		r->z_init = true;
		r->z.next_in = r->zin;
		r->z.avail_in = (uInt)r->zin_len;
		r->zin_len = 0;
	}
	return 0;
}

int users_reader_open(const char *path, struct users_reader **ret)
{
	struct users_reader *r = NULL;
	struct stat st;
	int err = alloc_reader(&r, WINDOW_CAP, USERS_ELEMENT_MAX);
	if (err < 0)
		return err;
	if (strcmp(path, "-") == 0) {
		r->fd = STDIN_FILENO;
		r->own_fd = false;
	} else {
		r->fd = open(path, O_RDONLY | O_CLOEXEC);
		if (r->fd < 0) {
			err = -errno;
			goto fail;
		}
		r->own_fd = true;
	}
	if (fstat(r->fd, &st) == 0 && S_ISREG(st.st_mode))
		r->size = (uint64_t)st.st_size;
	(void)posix_fadvise(r->fd, 0, 0, POSIX_FADV_SEQUENTIAL);
	err = sniff(r);
	if (err < 0)
		goto fail;
	*ret = r;
	return 0;
fail:
	users_reader_free(r);
	return err;
}

int users_reader_open_mem(const void *data, size_t len, struct users_reader **ret)
{
	struct users_reader *r = NULL;
	const unsigned char *b = data;
	bool gz = len >= 2 && b[0] == 0x1f && b[1] == 0x8b;
	size_t win_cap = WINDOW_CAP, out_cap = USERS_ELEMENT_MAX;
	if (!gz && len + 16 < WINDOW_CAP) {
		win_cap = len + 16;
		out_cap = len + 16 < USERS_ELEMENT_MAX ? len + 16 : USERS_ELEMENT_MAX;
	}
	int err = alloc_reader(&r, win_cap, out_cap);
	if (err < 0)
		return err;
	r->mem = data;
	r->mem_len = len;
	r->size = len;
	err = sniff(r);
	if (err < 0) {
		users_reader_free(r);
		return err;
	}
	*ret = r;
	return 0;
}

void users_reader_free(struct users_reader *r)
{
	if (!r)
		return;
	if (r->z_init)
		inflateEnd(&r->z);
	if (r->own_fd && r->fd >= 0)
		close(r->fd);
	free(r->win);
	free(r->out);
	free(r->zin);
	csv_free(r->csv);
	free(r);
}

/* Scans the element at win[start]. 1 and *e filled, or < 0. */
static int read_element(struct users_reader *r, struct users_element *e)
{
	struct scan s = { .out = r->out, .out_cap = r->out_cap, .max_depth = USERS_DEPTH_MAX };

	for (;;) {
		size_t avail = r->end - r->start;
		int eof = r->text_eof;
		enum scan_result res = scan_element(&s, r->win + r->start, avail, eof);
		if (res == SCAN_DONE) {
			r->out[s.out_len] = '\0';
			e->min = r->out;
			e->min_len = s.out_len;
			e->raw_len = s.end;
			e->index = r->index++;
			e->line = r->line;
			e->offset = r->win_base + r->start;
			if (s.newlines) {
				r->line += s.newlines;
				r->line_start = r->win_base + r->start + s.last_nl;
			}
			r->start += s.end;
			r->last_elem_end_line = r->line;
			return 1;
		}
		if (res == SCAN_ERROR) {
			uint32_t line = r->line + s.newlines;
			uint64_t lstart = s.newlines ? r->win_base + r->start + s.last_nl : r->line_start;
			uint64_t off = r->win_base + r->start + s.end;
			if (strncmp(s.expected, "more: ", 6) == 0)
				return fail_at(r, USERS_FAILURE_MALFORMED, off, line, lstart,
				               "unexpected end of file inside user %u (it starts at line %u)",
				               r->index, r->line);
			return fail_at(r, USERS_FAILURE_MALFORMED, off, line, lstart,
			               "in user %u: expected %s", r->index, s.expected);
		}
		/* SCAN_MORE */
		if (avail >= USERS_ELEMENT_MAX)
			return fail_at(r, USERS_FAILURE_MALFORMED, r->win_base + r->start, r->line,
			               r->line_start,
			               "user %u is larger than %u bytes", r->index, USERS_ELEMENT_MAX);
		if (fill(r) < 0)
			return r->result;
	}
}

/* ---- CSV (csv.h) ---- */

#define NOT_USERS_FILE "expected '[' (a JSON array of users), '{' (NDJSON, one user per line) " \
	"or a CSV header row naming import properties (such as email)"

/* Malformed at byte `pos` of the row at win[start]. */
static int fail_in_row(struct users_reader *r, enum users_failure_kind kind, size_t pos,
                       const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
static int fail_in_row(struct users_reader *r, enum users_failure_kind kind, size_t pos,
                       const char *fmt, ...)
{
	uint32_t line = r->line;
	uint64_t lstart = r->line_start;
	char msg[sizeof(r->failure.message)];
	va_list ap;

	for (size_t k = 0; k < pos && r->start + k < r->end; k++) {
		if (r->win[r->start + k] == '\n') {
			line++;
			lstart = r->win_base + r->start + k + 1;
		}
	}
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	return fail_at(r, kind, r->win_base + r->start + pos, line, lstart, "%s", msg);
}

/* Splits the row at win[start]. 1: split (*s); < 0: failure set (a bad
 * header row is "not a users file"). */
static int read_row(struct users_reader *r, struct csv_split *s, bool header)
{
	enum users_failure_kind kind = header ? USERS_FAILURE_NOT_AN_ARRAY : USERS_FAILURE_MALFORMED;

	for (;;) {
		size_t avail = r->end - r->start;
		enum scan_result res = csv_split_row(r->csv, r->win + r->start, avail, r->text_eof, s);
		if (res == SCAN_DONE)
			return 1;
		if (res == SCAN_ERROR) {
			if (s->error == -ENOMEM)
				return fail_io(r, -ENOMEM, "reading a CSV row");
			if (header)
				return fail_in_row(r, kind, s->err, "%s (the first row is no CSV header: %s)",
				                   NOT_USERS_FILE, s->why);
			return fail_in_row(r, kind, s->err, "in the row of user %u: %s%s", r->index,
			                   strncmp(s->why, "unexpected", 10) == 0 ? "" : "expected ", s->why);
		}
		/* SCAN_MORE */
		if (avail >= USERS_ELEMENT_MAX || r->text_eof) {
			if (header)
				return fail_in_row(r, kind, 0, "%s (no header row ends within %u bytes)",
				                   NOT_USERS_FILE, USERS_ELEMENT_MAX);
			return fail_in_row(r, kind, 0, "the row of user %u is larger than %u bytes",
			                   r->index, USERS_ELEMENT_MAX);
		}
		if (fill(r) < 0)
			return r->result;
	}
}

/* Moves past a row that was split. */
static void skip_row(struct users_reader *r, const struct csv_split *s)
{
	if (s->newlines) {
		r->line += s->newlines;
		r->line_start = r->win_base + r->start + s->last_nl;
	}
	r->start += s->end;
}

static int read_csv_row(struct users_reader *r, struct users_element *e);

static int read_csv_header(struct users_reader *r, struct users_element *e)
{
	struct csv_split s;
	char msg[200];
	size_t pos = 0;
	int rc = read_row(r, &s, true);
	if (rc < 0)
		return rc;
	rc = csv_header(r->csv, &pos, msg, sizeof(msg));
	if (rc == -ENOENT)
		return fail_in_row(r, USERS_FAILURE_NOT_AN_ARRAY, 0, "%s%s%s%s", NOT_USERS_FILE,
		                   msg[0] ? " (" : "", msg, msg[0] ? ")" : "");
	if (rc == -EBADMSG)
		return fail_in_row(r, USERS_FAILURE_MALFORMED, pos, "%s", msg);
	if (rc < 0)
		return fail_io(r, rc, "reading the header row");
	r->format = USERS_FORMAT_CSV;
	r->state = RS_CSV;
	skip_row(r, &s);
	return read_csv_row(r, e);
}

static int read_csv_row(struct users_reader *r, struct users_element *e)
{
	struct csv_split s;
	char msg[200];
	const char *json;
	size_t len, pos = 0;

	for (;;) {
		if (r->start == r->end && !r->text_eof && fill(r) < 0)
			return r->result;
		if (r->start == r->end) {
			r->state = RS_END;
			return 0;
		}
		int rc = read_row(r, &s, false);
		if (rc < 0)
			return rc;
		if (csv_blank(r->csv)) {
			skip_row(r, &s);
			continue;
		}
		rc = csv_convert(r->csv, &json, &len, &pos, msg, sizeof(msg));
		if (rc == -EBADMSG)
			return fail_in_row(r, USERS_FAILURE_MALFORMED, pos, "in the row of user %u: %s",
			                   r->index, msg);
		if (rc == -E2BIG)
			return fail_in_row(r, USERS_FAILURE_MALFORMED, 0,
			                   "user %u is larger than %u bytes as JSON", r->index,
			                   USERS_ELEMENT_MAX);
		if (rc < 0)
			return fail_io(r, rc, "converting a CSV row");
		e->min = json;
		e->min_len = len;
		e->raw_len = s.content_end;
		e->index = r->index++;
		e->line = r->line;
		e->offset = r->win_base + r->start;
		skip_row(r, &s);
		return 1;
	}
}

int users_reader_next(struct users_reader *r, struct users_element *e)
{
	int c;

	switch (r->state) {
	case RS_END:
		return 0;
	case RS_FAILED:
		return r->result;
	case RS_START:
		while (r->end - r->start < 3 && !r->text_eof)
			if (fill(r) < 0)
				return r->result;
		if (r->end - r->start >= 3 && memcmp(r->win + r->start, "\xEF\xBB\xBF", 3) == 0) {
			r->start += 3;
			r->line_start = 3;
		}
		c = peek_nonws(r);
		if (c == -2)
			return r->result;
		if (c == -1)
			return fail_at(r, USERS_FAILURE_EMPTY, r->win_base + r->start, r->line,
			               r->line_start, "%s", "the file is empty");
		if (c == '[') {
			r->format = USERS_FORMAT_JSON_ARRAY;
			r->state = RS_ARRAY_FIRST;
			r->start++;
			return users_reader_next(r, e);
		}
		if (c == '{') {
			r->format = USERS_FORMAT_NDJSON;
			r->state = RS_NDJSON;
			r->last_elem_end_line = 0;
			return users_reader_next(r, e);
		}
		/* Anything else may be a CSV header row. */
		if (csv_new(&r->csv) < 0)
			return fail_io(r, -ENOMEM, "reading the header row");
		r->state = RS_CSV_HEADER;
		return users_reader_next(r, e);
	case RS_CSV_HEADER:
		return read_csv_header(r, e);
	case RS_CSV:
		return read_csv_row(r, e);
	case RS_ARRAY_FIRST:
		c = peek_nonws(r);
		if (c == -2)
			return r->result;
		if (c == -1)
			return fail_here(r, true, "a user or ']'");
		if (c == ']') {
			r->start++;
			r->state = RS_ARRAY_END;
			return users_reader_next(r, e);
		}
		r->state = RS_ARRAY_NEXT;
		return read_element(r, e);
	case RS_ARRAY_NEXT:
		c = peek_nonws(r);
		if (c == -2)
			return r->result;
		if (c == -1)
			return fail_here(r, true, "',' or ']' after a user");
		if (c == ']') {
			r->start++;
			r->state = RS_ARRAY_END;
			return users_reader_next(r, e);
		}
		if (c != ',')
			return fail_here(r, false, "',' or ']' after a user");
		r->start++;
		c = peek_nonws(r);
		if (c == -2)
			return r->result;
		if (c == -1)
			return fail_here(r, true, "a user after ','");
		if (c == ']')
			return fail_here(r, false, "a user after ',' (no trailing comma before ']')");
		return read_element(r, e);
	case RS_ARRAY_END:
		c = peek_nonws(r);
		if (c == -2)
			return r->result;
		if (c != -1)
			return fail_here(r, false, "the end of the file after the closing ']'");
		r->state = RS_END;
		return 0;
	case RS_NDJSON:
		c = peek_nonws(r);
		if (c == -2)
			return r->result;
		if (c == -1) {
			r->state = RS_END;
			return 0;
		}
		if (r->last_elem_end_line && r->line == r->last_elem_end_line)
			return fail_here(r, false, "a new line after a user (NDJSON has one user per line)");
		return read_element(r, e);
	}
	return -EINVAL;
}

const struct users_failure *users_reader_failure(const struct users_reader *r)
{
	return &r->failure;
}

enum users_format users_reader_format(const struct users_reader *r)
{
	return r->format;
}

bool users_reader_gzip(const struct users_reader *r)
{
	return r->gzip;
}

uint64_t users_reader_bytes_in(const struct users_reader *r)
{
	return r->bytes_in;
}

uint64_t users_reader_bytes_text(const struct users_reader *r)
{
	return r->win_base + r->start;
}

uint64_t users_reader_size(const struct users_reader *r)
{
	return r->size;
}
