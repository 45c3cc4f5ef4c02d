#include "sandbox/multipart.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#define MAX_BOUNDARY 70

/* Finds the boundary parameter of a multipart/form-data content type. */
static int boundary_of(const char *ct, char *ret, size_t size)
{
	if (!ct)
		return -EINVAL;
	while (*ct == ' ' || *ct == '\t')
		ct++;
	if (strncasecmp(ct, "multipart/form-data", 19) != 0)
		return -EINVAL;
	const char *p = ct + 19;
	while (*p) {
		while (*p == ';' || *p == ' ' || *p == '\t')
			p++;
		if (strncasecmp(p, "boundary=", 9) == 0) {
			p += 9;
			size_t n = 0;
			if (*p == '"') {
				p++;
				while (p[n] && p[n] != '"')
					n++;
				if (p[n] != '"')
					return -EINVAL;
			} else {
				while (p[n] && p[n] != ';' && p[n] != ' ' && p[n] != '\t')
					n++;
			}
			if (n == 0 || n > MAX_BOUNDARY || n >= size)
				return -EINVAL;
			memcpy(ret, p, n);
			ret[n] = '\0';
			return 0;
		}
		while (*p && *p != ';')
			p++;
	}
	return -EINVAL;
}

/* Value of a parameter such as name="users" inside a header value. */
static int param_of(const char *hdr, size_t hlen, const char *key, char *ret, size_t size,
		    bool *ret_found)
{
	size_t klen = strlen(key);
	*ret_found = false;
	for (size_t i = 0; i + klen + 1 <= hlen; i++) {
		/* parameter names start after ';' or whitespace */
		if (i > 0 && hdr[i - 1] != ';' && hdr[i - 1] != ' ' && hdr[i - 1] != '\t')
			continue;
		if (strncasecmp(hdr + i, key, klen) != 0 || hdr[i + klen] != '=')
			continue;
		const char *v = hdr + i + klen + 1;
		size_t left = hlen - (i + klen + 1), n = 0;
		if (left > 0 && *v == '"') {
			v++;
			left--;
			while (n < left && v[n] != '"')
				n++;
			if (n == left)
				return -EINVAL;
		} else {
			while (n < left && v[n] != ';' && v[n] != ' ' && v[n] != '\t')
				n++;
		}
		*ret_found = true;
		if (n >= size)
			return -EINVAL;
		memcpy(ret, v, n);
		ret[n] = '\0';
		return 0;
	}
	return 0;
}

/* Parses the header block [h, h+len) of one part. */
static int part_headers(const char *h, size_t len, struct multipart_part *part)
{
	bool have_cd = false;
	size_t i = 0;
	while (i < len) {
		const char *eol = memmem(h + i, len - i, "\r\n", 2);
		size_t llen = eol ? (size_t)(eol - (h + i)) : len - i;
		const char *line = h + i;
		const char *colon = memchr(line, ':', llen);
		if (!colon)
			return -EINVAL;
		size_t nlen = (size_t)(colon - line);
		if (nlen == 19 && strncasecmp(line, "Content-Disposition", 19) == 0) {
			const char *v = colon + 1;
			size_t vlen = llen - nlen - 1;
			while (vlen && (*v == ' ' || *v == '\t')) {
				v++;
				vlen--;
			}
			if (vlen < 9 || strncasecmp(v, "form-data", 9) != 0)
				return -EINVAL;
			bool found;
			char fname[256];
			if (param_of(v, vlen, "name", part->name, sizeof(part->name), &found) < 0 ||
			    !found || part->name[0] == '\0')
				return -EINVAL;
			if (param_of(v, vlen, "filename", fname, sizeof(fname), &found) < 0) {
				/* a very long file name is still a file */
				found = true;
			}
			part->is_file = found;
			have_cd = true;
		}
		i += llen + 2;
	}
	return have_cd ? 0 : -EINVAL;
}

int multipart_parse(const char *content_type, const char *body, size_t len,
		    struct multipart_part *ret_parts, size_t max_parts, size_t *ret_n)
{
	char boundary[MAX_BOUNDARY + 1];
	char delim[MAX_BOUNDARY + 5];
	if (boundary_of(content_type, boundary, sizeof(boundary)) < 0)
		return -EINVAL;
	/* delim = "\r\n--" boundary; the first one may lack the CRLF */
	int dlen = snprintf(delim, sizeof(delim), "\r\n--%s", boundary);
	size_t n = 0;
	const char *end = body + len;
	const char *p;
	if (len >= (size_t)dlen - 2 && memcmp(body, delim + 2, (size_t)dlen - 2) == 0) {
		p = body + dlen - 2;
	} else {
		p = memmem(body, len, delim, (size_t)dlen);
		if (!p)
			return -EINVAL;
		p += dlen;
	}
	for (;;) {
		/* after a delimiter: "--" closes, else transport padding then CRLF */
		if (end - p >= 2 && p[0] == '-' && p[1] == '-')
			break;
		while (p < end && (*p == ' ' || *p == '\t'))
			p++;
		if (end - p < 2 || p[0] != '\r' || p[1] != '\n')
			return -EINVAL;
		p += 2;
		struct multipart_part part;
		memset(&part, 0, sizeof(part));
		const char *hend;
		if (end - p >= 2 && p[0] == '\r' && p[1] == '\n') {
			hend = p; /* no headers at all */
		} else {
			hend = memmem(p, (size_t)(end - p), "\r\n\r\n", 4);
			if (!hend)
				return -EINVAL;
		}
		if (part_headers(p, (size_t)(hend - p), &part) < 0)
			return -EINVAL;
		const char *data = hend + (hend == p ? 2 : 4);
		if (data > end)
			return -EINVAL;
		const char *next = memmem(data, (size_t)(end - data), delim, (size_t)dlen);
		if (!next)
			return -EINVAL;
		if (n == max_parts)
			return -EINVAL;
		part.data = data;
		part.len = (size_t)(next - data);
		ret_parts[n++] = part;
		p = next + dlen;
	}
	*ret_n = n;
	return 0;
}

const struct multipart_part *multipart_find(const struct multipart_part *parts, size_t n,
					    const char *name)
{
	for (size_t i = 0; i < n; i++)
		if (strcmp(parts[i].name, name) == 0)
			return &parts[i];
	return NULL;
}
