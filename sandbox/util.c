#include "sandbox/util.h"

#include <ctype.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

int64_t sbx_now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void sbx_iso8601(int64_t ms, char *buf, size_t size)
{
	time_t sec = (time_t)(ms / 1000);
	struct tm tm;
	char when[24];
	gmtime_r(&sec, &tm);
	strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%S", &tm);
	snprintf(buf, size, "%s.%03dZ", when, (int)(ms % 1000));
}

static pthread_mutex_t rand_lock = PTHREAD_MUTEX_INITIALIZER;
static uint64_t rand_state = 0x9e3779b97f4a7c15ull;

void sbx_rand_seed(uint64_t seed)
{
	pthread_mutex_lock(&rand_lock);
	rand_state = seed ? seed : 0x9e3779b97f4a7c15ull;
	pthread_mutex_unlock(&rand_lock);
}

uint64_t sbx_rand_u64(void)
{
	/* xorshift64* */
	pthread_mutex_lock(&rand_lock);
	uint64_t x = rand_state;
	x ^= x >> 12;
	x ^= x << 25;
	x ^= x >> 27;
	rand_state = x;
	pthread_mutex_unlock(&rand_lock);
	return x * 0x2545F4914F6CDD1Dull;
}

double sbx_rand_unit(void)
{
	return (double)(sbx_rand_u64() >> 11) / 9007199254740992.0;
}

void sbx_rand_alnum(char *buf, size_t n)
{
	static const char set[] =
		"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
	for (size_t i = 0; i < n; i++)
		buf[i] = set[sbx_rand_u64() % (sizeof(set) - 1)];
	buf[n] = '\0';
}

uint64_t sbx_hash64(const void *data, size_t len)
{
	const unsigned char *p = data;
	uint64_t h = 0xcbf29ce484222325ull;
	for (size_t i = 0; i < len; i++) {
		h ^= p[i];
		h *= 0x100000001b3ull;
	}
	return h;
}

void sbx_buf_init(struct sbx_buf *b, size_t max)
{
	b->data = NULL;
	b->len = 0;
	b->cap = 0;
	b->max = max;
}

int sbx_buf_append(struct sbx_buf *b, const void *data, size_t len)
{
	if (len > b->max - b->len)
		return -E2BIG;
	if (b->len + len + 1 > b->cap) {
		size_t cap = b->cap ? b->cap : 1024;
		while (cap < b->len + len + 1)
			cap *= 2;
		char *p = realloc(b->data, cap);
		if (!p)
			return -ENOMEM;
		b->data = p;
		b->cap = cap;
	}
	memcpy(b->data + b->len, data, len);
	b->len += len;
	b->data[b->len] = '\0';
	return 0;
}

void sbx_buf_done(struct sbx_buf *b)
{
	free(b->data);
	b->data = NULL;
	b->len = b->cap = 0;
}

char *sbx_strdup_lower(const char *s)
{
	char *r = strdup(s);
	if (!r)
		return NULL;
	for (char *p = r; *p; p++)
		*p = (char)tolower((unsigned char)*p);
	return r;
}
