/* Duplicate detection by 64-bit hashes: see dedup.h. */
#include "daemon/users/dedup.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define RECENT_SLOTS (1u << 18) /* 2 MiB of uint64 */
#define RECENT_MAX   (RECENT_SLOTS / 2)

struct dedup {
	uint64_t *recent;      /* open addressing, 0 = empty */
	size_t recent_n;
	uint64_t *sorted;      /* ascending */
	size_t sorted_n, sorted_cap;
};

static uint64_t mix(uint64_t x)
{
	x ^= x >> 30;
	x *= 0xbf58476d1ce4e5b9ULL;
	x ^= x >> 27;
	x *= 0x94d049bb133111ebULL;
	x ^= x >> 31;
	return x;
}

uint64_t dedup_hash(enum dedup_kind kind, const char *value)
{
	/* FNV-1a 64 over the (folded) bytes, then a finaliser. */
	uint64_t h = 0xcbf29ce484222325ULL ^ (uint64_t)kind;
	bool fold = kind != DEDUP_USER_ID;
	for (const unsigned char *p = (const unsigned char *)value; *p; p++) {
		unsigned char c = *p;
		if (fold && c >= 'A' && c <= 'Z')
			c = (unsigned char)(c - 'A' + 'a');
		h ^= c;
		h *= 0x100000001b3ULL;
	}
	h = mix(h ^ ((uint64_t)kind << 56));
	return h ? h : 1;
}

int dedup_new(struct dedup **ret)
{
	struct dedup *d = calloc(1, sizeof(*d));
	if (!d)
		return -ENOMEM;
	d->recent = calloc(RECENT_SLOTS, sizeof(uint64_t));
	if (!d->recent) {
		free(d);
		return -ENOMEM;
	}
	*ret = d;
	return 0;
}

void dedup_free(struct dedup *d)
{
	if (!d)
		return;
	free(d->recent);
	free(d->sorted);
	free(d);
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return x < y ? -1 : x > y;
}

static bool sorted_has(const struct dedup *d, uint64_t key)
{
	size_t lo = 0, hi = d->sorted_n;
	/* Keys are uniform 64-bit hashes: start where the key should sit and
	 * widen a window around it (a few probes instead of ~log2 n misses). */
	if (d->sorted_n > 64) {
		size_t guess = (size_t)(((unsigned __int128)key * d->sorted_n) >> 64);
		size_t step = 32;
		for (;;) {
			size_t a = guess > step ? guess - step : 0;
			size_t b = guess + step < d->sorted_n ? guess + step : d->sorted_n;
			bool left_ok = a == 0 || d->sorted[a - 1] < key;
			bool right_ok = b == d->sorted_n || d->sorted[b] >= key;
			if (left_ok && right_ok) {
				lo = a;
				hi = b;
				break;
			}
			if (step >= d->sorted_n)
				break;
			step *= 4;
		}
	}
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (d->sorted[mid] < key)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo < d->sorted_n && d->sorted[lo] == key;
}

/* Moves the recent keys into the sorted array (merge from the back). */
static int flush_recent(struct dedup *d)
{
	size_t k = 0;
	if (d->sorted_n + d->recent_n > d->sorted_cap) {
		size_t cap = d->sorted_n + d->recent_n;
		/* Grow by at least a recent table's worth: realloc of large blocks
		 * is mremap, no copy. */
		if (cap < d->sorted_cap + RECENT_MAX)
			cap = d->sorted_cap + RECENT_MAX;
		uint64_t *p = realloc(d->sorted, cap * sizeof(uint64_t));
		if (!p)
			return -ENOMEM;
		d->sorted = p;
		d->sorted_cap = cap;
	}
	/* Compact the recent keys to the front of the table, sort them. */
	for (size_t i = 0; i < RECENT_SLOTS; i++)
		if (d->recent[i])
			d->recent[k++] = d->recent[i];
	qsort(d->recent, k, sizeof(uint64_t), cmp_u64);
	size_t i = d->sorted_n, j = k, o = d->sorted_n + k;
	while (j > 0) {
		if (i > 0 && d->sorted[i - 1] > d->recent[j - 1])
			d->sorted[--o] = d->sorted[--i];
		else
			d->sorted[--o] = d->recent[--j];
	}
	d->sorted_n += k;
	memset(d->recent, 0, RECENT_SLOTS * sizeof(uint64_t));
	d->recent_n = 0;
	return 0;
}

int dedup_add(struct dedup *d, uint64_t key, bool *ret_seen)
{
	if (!key)
		key = 1;
	size_t mask = RECENT_SLOTS - 1;
	size_t i = (size_t)(key ^ (key >> 29)) & mask;
	while (d->recent[i]) {
		if (d->recent[i] == key) {
			*ret_seen = true;
			return 0;
		}
		i = (i + 1) & mask;
	}
	if (sorted_has(d, key)) {
		*ret_seen = true;
		return 0;
	}
	d->recent[i] = key;
	d->recent_n++;
	*ret_seen = false;
	if (d->recent_n >= RECENT_MAX)
		return flush_recent(d);
	return 0;
}

size_t dedup_bytes(const struct dedup *d)
{
	return RECENT_SLOTS * sizeof(uint64_t) + d->sorted_cap * sizeof(uint64_t);
}
