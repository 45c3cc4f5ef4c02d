/*
 * export — the file a users-export job produces: the connection's live
 * users, each carrying only the fields asked for (or a default set), as
 * gzip-compressed NDJSON or CSV the way Auth0 writes them: `user_id` with
 * its `auth0|` prefix, `export_as` renaming, CSV strings `'`-prefixed and
 * quoted with `"` doubled, ISO dates left alone, never a password hash.
 */
#pragma once

#include <stddef.h>

struct tenant;
struct job;

/* Builds the gzip bytes (malloc'd) for job j from the tenant's users. */
int export_file_build(struct tenant *t, const struct job *j, unsigned char **ret_data,
		      size_t *ret_len);
