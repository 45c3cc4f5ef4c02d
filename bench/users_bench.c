/* users-bench FILE CHUNK_DIR|-: users_process() as the daemon's intake runs
 * it (validate and split into chunk files, or validate only with "-"), then
 * one line of figures. Not installed; used by bench/validate.sh. */
#include "daemon/users/users.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static int on_chunk(void *ctx, uint32_t chunk_no, const char *path, uint32_t n,
                    const uint32_t *indices, size_t bytes)
{
	(void)ctx; (void)chunk_no; (void)path; (void)n; (void)indices; (void)bytes;
	return 0;
}

int main(int argc, char **argv)
{
	struct users_options o;
	struct users_summary s;
	struct users_failure f;
	struct users_sink sink = { .on_chunk = on_chunk };
	struct timespec a, b;

	if (argc != 3) {
		fprintf(stderr, "usage: users-bench FILE CHUNK_DIR|-\n");
		return 2;
	}
	users_options_init(&o);
	o.on_invalid = USERS_ON_INVALID_SKIP;
	if (getenv("USERS_BENCH_STRIP")) {
		o.strip_auth0_prefix = USERS_AUTH0_PREFIX_STRIP;
		o.unsupported_hash = USERS_UNSUPPORTED_HASH_STRIP;
	}
	clock_gettime(CLOCK_MONOTONIC, &a);
	int rc = users_process(argv[1], &o, strcmp(argv[2], "-") ? argv[2] : NULL, &sink, NULL, &s, &f);
	clock_gettime(CLOCK_MONOTONIC, &b);
	double secs = (double)(b.tv_sec - a.tv_sec) + (double)(b.tv_nsec - a.tv_nsec) / 1e9;
	if (rc < 0) {
		fprintf(stderr, "users-bench: %s: %s\n", f.slug ? f.slug : "error", f.message);
		return 1;
	}
	printf("users=%llu valid=%llu invalid=%llu chunks=%u bytes=%llu seconds=%.3f MB/s=%.1f users/s=%.0f\n",
	       (unsigned long long)s.users_total, (unsigned long long)s.users_valid,
	       (unsigned long long)s.users_invalid, s.chunks, (unsigned long long)s.bytes_read, secs,
	       (double)s.bytes_read / 1e6 / secs, (double)s.users_total / secs);
	return 0;
}
