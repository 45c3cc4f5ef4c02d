/* A node-array JSON tree of one minified element: see ujv.h. */
#include "daemon/users/ujv.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

void ujv_doc_init(struct ujv_doc *d)
{
	memset(d, 0, sizeof(*d));
}

void ujv_doc_done(struct ujv_doc *d)
{
	free(d->nodes);
	free(d->arena);
	memset(d, 0, sizeof(*d));
}

static int new_node(struct ujv_doc *d, uint32_t *ret)
{
	if (d->n == d->cap) {
		uint32_t cap = d->cap ? d->cap * 2 : 256;
		struct ujv *p = realloc(d->nodes, cap * sizeof(*p));
		if (!p)
			return -ENOMEM;
		d->nodes = p;
		d->cap = cap;
	}
	memset(&d->nodes[d->n], 0, sizeof(struct ujv));
	*ret = d->n++;
	return 0;
}

static int hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

static unsigned hex4(const char *p)
{
	return (unsigned)(hexval(p[0]) << 12 | hexval(p[1]) << 8 | hexval(p[2]) << 4 | hexval(p[3]));
}

static size_t put_utf8(char *o, unsigned cp)
{
	if (cp < 0x80) {
		o[0] = (char)cp;
		return 1;
	}
	if (cp < 0x800) {
		o[0] = (char)(0xC0 | cp >> 6);
		o[1] = (char)(0x80 | (cp & 0x3F));
		return 2;
	}
	if (cp < 0x10000) {
		o[0] = (char)(0xE0 | cp >> 12);
		o[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
		o[2] = (char)(0x80 | (cp & 0x3F));
		return 3;
	}
	o[0] = (char)(0xF0 | cp >> 18);
	o[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
	o[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
	o[3] = (char)(0x80 | (cp & 0x3F));
	return 4;
}

/* The string at src[*pos] (opening quote) into the arena; *pos after the
 * closing quote. Unescaped bytes never exceed the raw ones, so the arena
 * (sized by the caller) always has room. */
static void read_string(struct ujv_doc *d, size_t *pos, uint32_t *ret_off, uint32_t *ret_len)
{
	const char *s = d->src;
	size_t i = *pos + 1;
	char *o = d->arena + d->arena_len;
	size_t n = 0;

	for (;;) {
		const char *q = memchr(s + i, '"', d->src_len - i);
		const char *bs = memchr(s + i, '\\', (size_t)(q - (s + i)));
		if (!bs) {
			memcpy(o + n, s + i, (size_t)(q - (s + i)));
			n += (size_t)(q - (s + i));
			i = (size_t)(q - s) + 1;
			break;
		}
		memcpy(o + n, s + i, (size_t)(bs - (s + i)));
		n += (size_t)(bs - (s + i));
		i = (size_t)(bs - s) + 1;
		char c = s[i++];
		switch (c) {
		case 'b': o[n++] = '\b'; break;
		case 'f': o[n++] = '\f'; break;
		case 'n': o[n++] = '\n'; break;
		case 'r': o[n++] = '\r'; break;
		case 't': o[n++] = '\t'; break;
		case 'u': {
			unsigned cp = hex4(s + i);
			i += 4;
			if (cp >= 0xD800 && cp <= 0xDBFF && s[i] == '\\' && s[i + 1] == 'u') {
				unsigned lo = hex4(s + i + 2);
				if (lo >= 0xDC00 && lo <= 0xDFFF) {
					cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
					i += 6;
				} else
					cp = 0xFFFD;
			} else if (cp >= 0xD800 && cp <= 0xDFFF)
				cp = 0xFFFD;
			/* 6 raw bytes (12 for a pair) give at most 4 (3 for U+FFFD). */
			n += put_utf8(o + n, cp);
			break;
		}
		default: o[n++] = c; break; /* " \ / */
		}
	}
	o[n] = '\0';
	*ret_off = (uint32_t)d->arena_len;
	*ret_len = (uint32_t)n;
	d->arena_len += n + 1;
	*pos = i;
}

static int parse_value(struct ujv_doc *d, size_t *pos, uint32_t *ret, unsigned depth);

static int parse_value(struct ujv_doc *d, size_t *pos, uint32_t *ret, unsigned depth)
{
	const char *s = d->src;
	size_t i = *pos;
	uint32_t idx;
	int err;

	if (i >= d->src_len || depth > 64)
		return -EBADMSG;
	err = new_node(d, &idx);
	if (err < 0)
		return err;
	d->nodes[idx].start = d->nodes[idx].mstart = (uint32_t)i;
	switch (s[i]) {
	case '{':
	case '[': {
		bool obj = s[i] == '{';
		char close = obj ? '}' : ']';
		uint32_t prev = 0, count = 0;
		d->nodes[idx].type = obj ? UJV_OBJECT : UJV_ARRAY;
		i++;
		while (i < d->src_len && s[i] != close) {
			uint32_t key_off = 0, key_len = 0, child;
			size_t mstart = i;
			if (count > 0) {
				if (s[i] != ',')
					return -EBADMSG;
				i++;
				mstart = i;
			}
			if (obj) {
				if (s[i] != '"')
					return -EBADMSG;
				read_string(d, &i, &key_off, &key_len);
				if (i >= d->src_len || s[i] != ':')
					return -EBADMSG;
				i++;
			}
			err = parse_value(d, &i, &child, depth + 1);
			if (err < 0)
				return err;
			d->nodes[child].key = key_off;
			d->nodes[child].mstart = (uint32_t)mstart;
			if (prev)
				d->nodes[prev].next = child;
			else
				d->nodes[idx].first = child;
			prev = child;
			count++;
		}
		if (i >= d->src_len)
			return -EBADMSG;
		i++;
		d->nodes[idx].n = count;
		break;
	}
	case '"': {
		uint32_t off, len;
		read_string(d, &i, &off, &len);
		d->nodes[idx].type = UJV_STRING;
		d->nodes[idx].str = off;
		d->nodes[idx].len = len;
		break;
	}
	case 't':
		d->nodes[idx].type = UJV_BOOL;
		d->nodes[idx].b = true;
		i += 4;
		break;
	case 'f':
		d->nodes[idx].type = UJV_BOOL;
		i += 5;
		break;
	case 'n':
		d->nodes[idx].type = UJV_NULL;
		i += 4;
		break;
	default: {
		size_t b = i;
		bool integer = true;
		while (i < d->src_len && (s[i] == '-' || s[i] == '+' || s[i] == '.' || s[i] == 'e' ||
		                          s[i] == 'E' || (s[i] >= '0' && s[i] <= '9'))) {
			if (s[i] == '.' || s[i] == 'e' || s[i] == 'E')
				integer = false;
			i++;
		}
		if (i == b)
			return -EBADMSG;
		char *o = d->arena + d->arena_len;
		memcpy(o, s + b, i - b);
		o[i - b] = '\0';
		d->nodes[idx].str = (uint32_t)d->arena_len;
		d->nodes[idx].len = (uint32_t)(i - b);
		d->arena_len += i - b + 1;
		d->nodes[idx].type = UJV_DOUBLE;
		if (integer) {
			/* int64 without overflow, else a plain number. */
			const char *p = o;
			bool neg = *p == '-';
			uint64_t v = 0;
			bool ok = true;
			if (neg)
				p++;
			for (; *p; p++) {
				unsigned dgt = (unsigned)(*p - '0');
				if (v > (UINT64_MAX - dgt) / 10) {
					ok = false;
					break;
				}
				v = v * 10 + dgt;
			}
			if (ok && (neg ? v <= (uint64_t)INT64_MAX + 1 : v <= (uint64_t)INT64_MAX)) {
				d->nodes[idx].type = UJV_INT;
				d->nodes[idx].i = neg ? (int64_t)(0 - v) : (int64_t)v;
			}
		}
		break;
	}
	}
	if (i > d->src_len)
		return -EBADMSG;
	d->nodes[idx].end = (uint32_t)i;
	*pos = i;
	*ret = idx;
	return 0;
}

int ujv_parse(struct ujv_doc *d, const char *src, size_t len)
{
	size_t pos = 0;
	uint32_t root, none;
	/* Strings and numbers unescape to at most their raw size, plus a NUL
	 * each (at most one per raw byte). */
	size_t need = 2 * len + 16;

	if (len > UINT32_MAX / 4)
		return -E2BIG;
	if (need > d->arena_cap) {
		char *p = realloc(d->arena, need);
		if (!p)
			return -ENOMEM;
		d->arena = p;
		d->arena_cap = need;
	}
	d->arena_len = 0;
	d->n = 0;
	d->src = src;
	d->src_len = len;
	int err = new_node(d, &none); /* index 0 = none */
	if (err < 0)
		return err;
	err = parse_value(d, &pos, &root, 0);
	if (err < 0)
		return err;
	if (pos != len || root != 1)
		return -EBADMSG;
	return 0;
}

const struct ujv *ujv_get(const struct ujv_doc *d, const struct ujv *o, const char *key)
{
	const struct ujv *found = NULL;
	if (!o || o->type != UJV_OBJECT)
		return NULL;
	ujv_foreach(d, o, m)
		if (d->arena[m->key] == key[0] && strcmp(d->arena + m->key, key) == 0)
			found = m;
	return found;
}

const struct ujv *ujv_idx(const struct ujv_doc *d, const struct ujv *a, uint32_t i)
{
	if (!a || a->type != UJV_ARRAY)
		return NULL;
	const struct ujv *m = ujv_child(d, a);
	while (m && i--)
		m = ujv_next(d, m);
	return m;
}
