#include "daemon/convert/lines.h"

#include "daemon/convert/convert.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define LINES_READ (64u * 1024u)

int cv_lines_open(struct cv_lines *l, const char *path)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	gzFile gz = gzdopen(fd, "rb");
	if (!gz) {
		close(fd);
		return -ENOMEM;
	}
	gzbuffer(gz, 128u * 1024u);
	char *buf = malloc(CONVERT_LINE_MAX + LINES_READ + 1);
	if (!buf) {
		gzclose(gz);
		return -ENOMEM;
	}
	memset(l, 0, sizeof(*l));
	l->gz = gz;
	l->buf = buf;
	l->cap = CONVERT_LINE_MAX + LINES_READ;
	l->line = 1;
	return 0;
}

void cv_lines_close(struct cv_lines *l)
{
	if (l->gz)
		gzclose(l->gz);
	free(l->buf);
	memset(l, 0, sizeof(*l));
}

/* Finds the end of the record starting at l->start: index of its '\n', or
 * l->end when not in the buffer yet. */
static size_t find_end(struct cv_lines *l, bool csv)
{
	size_t i = l->scan;
	if (!csv) {
		char *nl = memchr(l->buf + i, '\n', l->end - i);
		l->scan = nl ? (size_t)(nl - l->buf) : l->end;
		return l->scan;
	}
	for (; i < l->end; i++) {
		char c = l->buf[i];
		if (c == '"')
			l->in_quotes = !l->in_quotes;
		else if (c == '\n' && !l->in_quotes)
			break;
	}
	l->scan = i;
	return i;
}

int cv_lines_next(struct cv_lines *l, bool csv, char **ret, size_t *ret_len, uint64_t *ret_line)
{
	for (;;) {
		size_t e = find_end(l, csv);
		if (e < l->end || (l->eof && l->end > l->start)) {
			char *rec = l->buf + l->start;
			size_t len = e - l->start;
			size_t consumed = e < l->end ? len + 1 : len;
			uint64_t nls = 0;
			for (size_t i = 0; i < len; i++)
				nls += rec[i] == '\n';
			if (len && rec[len - 1] == '\r')
				len--;
			rec[len] = '\0';
			*ret = rec;
			*ret_len = len;
			*ret_line = l->line;
			l->line += nls + 1;
			l->bytes += consumed;
			l->start += consumed;
			l->scan = l->start;
			l->in_quotes = false;
			if (len > CONVERT_LINE_MAX)
				return -EBADMSG;
			return 1;
		}
		if (l->eof)
			return 0;
		if (l->start > 0) {
			size_t keep = l->end - l->start;
			memmove(l->buf, l->buf + l->start, keep);
			l->scan -= l->start;
			l->end = keep;
			l->start = 0;
		}
		if (l->end >= l->cap)
			return -EBADMSG;
		size_t want = l->cap - l->end;
		if (want > LINES_READ)
			want = LINES_READ;
		int n = gzread(l->gz, l->buf + l->end, (unsigned)want);
		if (n < 0) {
			int zerr = 0;
			gzerror(l->gz, &zerr);
			return zerr == Z_ERRNO ? -EIO : -EBADMSG;
		}
		if (n == 0)
			l->eof = true;
		l->end += (size_t)n;
	}
}
