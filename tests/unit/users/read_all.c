#include "tests/unit/users/read_all.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <string.h>
#include <cmocka.h>

void read_mem(const void *data, size_t len, struct got *g)
{
	struct users_reader *r;
	struct users_element e;
	size_t o = 0;

	memset(g, 0, sizeof(*g));
	assert_int_equal(users_reader_open_mem(data, len, &r), 0);
	for (;;) {
		int rc = users_reader_next(r, &e);
		g->rc = rc;
		if (rc <= 0)
			break;
		assert_int_equal(e.index, g->n);
		assert_int_equal(strlen(e.min), e.min_len);
		if (g->n < 64) {
			g->lines[g->n] = e.line;
			g->offsets[g->n] = e.offset;
		}
		if (o + e.min_len + 2 < sizeof(g->mins)) {
			if (g->n)
				g->mins[o++] = '\n';
			memcpy(g->mins + o, e.min, e.min_len);
			o += e.min_len;
			g->mins[o] = '\0';
		}
		g->n++;
	}
	if (g->rc < 0)
		g->f = *users_reader_failure(r);
	g->format = users_reader_format(r);
	g->gzip = users_reader_gzip(r);
	/* A finished reader keeps answering the same. */
	assert_int_equal(users_reader_next(r, &e), g->rc);
	users_reader_free(r);
}

void read_str(const char *s, struct got *g)
{
	read_mem(s, strlen(s), g);
}
