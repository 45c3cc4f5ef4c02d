/* ratelimit — parse x-ratelimit-* and Retry-After (see ratelimit.h). */
#include "daemon/auth0/ratelimit.h"

#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static int parse_i64(const char *s, int64_t *ret)
{
	if (!s)
		return -EINVAL;
	while (*s == ' ' || *s == '\t')
		s++;
	if (!isdigit((unsigned char)*s))
		return -EINVAL;
	errno = 0;
	char *end;
	long long v = strtoll(s, &end, 10);
	if (errno)
		return -EINVAL;
	while (*end == ' ' || *end == '\t')
		end++;
	if (*end)
		return -EINVAL;
	*ret = v;
	return 0;
}

int ratelimit_parse_retry_after(const char *value, int64_t now_ms, int64_t *ret_at_ms)
{
	int64_t secs;
	if (!value)
		return -EINVAL;
	if (parse_i64(value, &secs) == 0) {
		if (secs > 86400 * 365)
			return -EINVAL;
		*ret_at_ms = now_ms + secs * 1000;
		return 0;
	}
	static const char *const fmts[] = {
		"%a, %d %b %Y %H:%M:%S GMT", /* IMF-fixdate */
		"%A, %d-%b-%y %H:%M:%S GMT", /* RFC 850 */
		"%a %b %d %H:%M:%S %Y",      /* asctime */
	};
	while (*value == ' ')
		value++;
	for (size_t i = 0; i < sizeof(fmts) / sizeof(fmts[0]); i++) {
		struct tm tm;
		memset(&tm, 0, sizeof(tm));
		const char *end = strptime(value, fmts[i], &tm);
		if (!end)
			continue;
		while (*end == ' ')
			end++;
		if (*end)
			continue;
		time_t t = timegm(&tm);
		if (t == (time_t)-1)
			continue;
		*ret_at_ms = (int64_t)t * 1000;
		return 0;
	}
	return -EINVAL;
}

void ratelimit_parse(const char *limit, const char *remaining, const char *reset,
		     const char *retry_after, int64_t now_ms, struct ratelimit_info *ret)
{
	struct ratelimit_info r;
	memset(&r, 0, sizeof(r));
	int64_t v;
	if (parse_i64(limit, &v) == 0 && v > 0 && v < 1000000) {
		r.has_limit = true;
		r.limit = (long)v;
	}
	if (parse_i64(remaining, &v) == 0 && v < 1000000) {
		r.has_remaining = true;
		r.remaining = (long)v;
	}
	/* A reset before 2001 or past 2100 is not a UNIX time in seconds. */
	if (parse_i64(reset, &v) == 0 && v > 978307200 && v < 4102444800) {
		r.has_reset = true;
		r.reset_ms = v * 1000;
	}
	if (ratelimit_parse_retry_after(retry_after, now_ms, &v) == 0) {
		r.has_retry_after = true;
		r.retry_after_ms = v;
	}
	*ret = r;
}
