/*
 * dedup — "seen before?" for 64-bit hashes of emails, user_ids and usernames
 * within one file, with bounded memory: 8 bytes per key kept (so at most
 * 24 bytes per user) plus a fixed 2 MiB table of recent keys.
 *
 * Keys go to a small open-addressing table; when it is half full its keys
 * are sorted and merged into one sorted array (grown with realloc), which is
 * searched by bisection. No key is ever confirmed by re-reading: two
 * different values with the same 64-bit hash count as a duplicate (about
 * m^2 / 2^65 for m keys: 2.4e-5 for 30 million keys, accepted and documented
 * in users.h).
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum dedup_kind {
	DEDUP_EMAIL = 1,    /* ASCII case-insensitive */
	DEDUP_USER_ID = 2,  /* exact */
	DEDUP_USERNAME = 3, /* ASCII case-insensitive */
};

struct dedup;

int dedup_new(struct dedup **ret);
void dedup_free(struct dedup *d);

/* The key's hash (kind mixed in); never 0. */
uint64_t dedup_hash(enum dedup_kind kind, const char *value);

/* *ret_seen: the key was added before. Adds it otherwise. 0 or -ENOMEM. */
int dedup_add(struct dedup *d, uint64_t key, bool *ret_seen);

/* Bytes held (for tests and the benchmark). */
size_t dedup_bytes(const struct dedup *d);
