#include "api/router.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct segment {
	const char *s;
	size_t len;
	bool param; /* "{name}": s/len is the name */
};

struct entry {
	const struct api_route *route;
	void *userdata;
	struct segment seg[ROUTER_MAX_SEGMENTS];
	size_t n_seg;
};

struct router {
	struct entry *e;
	size_t n;
};

int router_new(struct router **ret)
{
	struct router *r = calloc(1, sizeof(*r));
	if (!r)
		return -ENOMEM;
	*ret = r;
	return 0;
}

void router_free(struct router *r)
{
	if (!r)
		return;
	free(r->e);
	free(r);
}

/* Splits a path into segments; "/" alone has none. -EINVAL when too many or
 * when an inner segment is empty ("//", trailing '/'). */
static int split(const char *path, struct segment *seg, size_t *ret_n, bool pattern)
{
	size_t n = 0;
	if (path[0] != '/')
		return -EINVAL;
	const char *p = path + 1;
	if (*p == '\0') {
		*ret_n = 0;
		return 0;
	}
	for (;;) {
		size_t len = strcspn(p, "/");
		if (len == 0 || n == ROUTER_MAX_SEGMENTS)
			return -EINVAL;
		seg[n].s = p;
		seg[n].len = len;
		seg[n].param = false;
		if (pattern) {
			const char *open = memchr(p, '{', len), *close = memchr(p, '}', len);
			if (open || close) {
				if (p[0] != '{' || p[len - 1] != '}' || len < 3 ||
				    memchr(p + 1, '{', len - 2) || memchr(p + 1, '}', len - 2))
					return -EINVAL;
				seg[n].s = p + 1;
				seg[n].len = len - 2;
				seg[n].param = true;
			}
		}
		n++;
		p += len;
		if (*p == '\0')
			break;
		p++; /* '/' */
	}
	*ret_n = n;
	return 0;
}

int router_add(struct router *r, const struct api_route *routes, size_t n, void *userdata)
{
	struct entry *e = realloc(r->e, (r->n + n) * sizeof(*e));
	if (!e)
		return -ENOMEM;
	r->e = e;
	for (size_t i = 0; i < n; i++) {
		struct entry *x = &r->e[r->n];
		memset(x, 0, sizeof(*x));
		x->route = &routes[i];
		x->userdata = userdata;
		if (!routes[i].method || !routes[i].pattern || !routes[i].handler ||
		    split(routes[i].pattern, x->seg, &x->n_seg, true) < 0)
			return -EINVAL;
		size_t params = 0;
		for (size_t k = 0; k < x->n_seg; k++)
			params += x->seg[k].param;
		if (params > ROUTER_MAX_PARAMS)
			return -EINVAL;
		for (size_t k = 0; k < r->n; k++)
			if (strcmp(r->e[k].route->method, routes[i].method) == 0 &&
			    strcmp(r->e[k].route->pattern, routes[i].pattern) == 0)
				return -EEXIST;
		r->n++;
	}
	return 0;
}

/* Score of a match: one bit per segment, set where a literal matched, high
 * bits first, so literals beat placeholders segment by segment. -1 when no
 * match. */
static long long match_score(const struct entry *x, const struct segment *seg, size_t n)
{
	if (x->n_seg != n)
		return -1;
	long long score = 0;
	for (size_t i = 0; i < n; i++) {
		score <<= 1;
		if (x->seg[i].param)
			continue;
		if (x->seg[i].len != seg[i].len || memcmp(x->seg[i].s, seg[i].s, seg[i].len) != 0)
			return -1;
		score |= 1;
	}
	return score;
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

enum router_result router_match(const struct router *r, const char *method, const char *path,
				const struct api_route **ret_route, void **ret_userdata,
				struct router_params *ret_params, char *allow, size_t allow_len)
{
	struct segment seg[ROUTER_MAX_SEGMENTS];
	size_t n;
	if (split(path, seg, &n, false) < 0)
		return ROUTER_NOT_FOUND;
	bool head = strcmp(method, "HEAD") == 0;
	const struct entry *best = NULL;
	long long best_score = -1;
	const char *methods[32];
	size_t n_methods = 0;
	for (size_t i = 0; i < r->n; i++) {
		const struct entry *x = &r->e[i];
		long long sc = match_score(x, seg, n);
		if (sc < 0)
			continue;
		const char *m = x->route->method;
		if (n_methods < 31) {
			methods[n_methods++] = m;
			if (strcmp(m, "GET") == 0)
				methods[n_methods++] = "HEAD";
		}
		if ((strcmp(m, method) == 0 || (head && strcmp(m, "GET") == 0)) && sc > best_score) {
			best = x;
			best_score = sc;
		}
	}
	if (!best) {
		if (n_methods == 0)
			return ROUTER_NOT_FOUND;
		if (allow && allow_len) {
			qsort(methods, n_methods, sizeof(methods[0]), cmp_str);
			size_t used = 0;
			allow[0] = '\0';
			for (size_t i = 0; i < n_methods; i++) {
				if (i > 0 && strcmp(methods[i], methods[i - 1]) == 0)
					continue;
				int w = snprintf(allow + used, allow_len - used, "%s%s", used ? ", " : "", methods[i]);
				if (w < 0 || (size_t)w >= allow_len - used)
					break;
				used += (size_t)w;
			}
		}
		return ROUTER_METHOD_NOT_ALLOWED;
	}
	if (ret_params) {
		ret_params->n = 0;
		for (size_t i = 0; i < n; i++) {
			if (!best->seg[i].param)
				continue;
			size_t k = ret_params->n++;
			ret_params->p[k].name = best->seg[i].s;
			ret_params->p[k].name_len = best->seg[i].len;
			ret_params->p[k].value = seg[i].s;
			ret_params->p[k].value_len = seg[i].len;
		}
	}
	if (ret_route)
		*ret_route = best->route;
	if (ret_userdata)
		*ret_userdata = best->userdata;
	return ROUTER_MATCH;
}

const char *router_param(const struct router_params *params, const char *name, char *buf, size_t buflen)
{
	size_t nl = strlen(name);
	for (size_t i = 0; params && i < params->n; i++) {
		if (params->p[i].name_len != nl || memcmp(params->p[i].name, name, nl) != 0)
			continue;
		if (params->p[i].value_len >= buflen)
			return NULL;
		memcpy(buf, params->p[i].value, params->p[i].value_len);
		buf[params->p[i].value_len] = '\0';
		return buf;
	}
	return NULL;
}
