/* libFuzzer target: the validator's rules (schema table, hooks, hints,
 * policies) on users read from the fuzzed bytes. The first byte picks the
 * policies; the rest is a users file. Invariants: no crash, every problem
 * has a path, a known code and a message, errors come before warnings. */
#include "daemon/users/reader.h"
#include "daemon/users/validate.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char *const codes[] = {
	"OBJECT_REQUIRED", "INVALID_TYPE", "FORMAT", "PATTERN", "ENUM_MISMATCH", "MIN_LENGTH",
	"MAX_LENGTH", "ARRAY_LENGTH_SHORT", "ARRAY_LENGTH_LONG", "NOT_PASSED",
	"PROFILE_SIZE_EXCEEDED", "DUPLICATED_USER", "UNKNOWN_PROPERTY", "UNSUPPORTED_HASH",
	"AUTH0_PREFIX", NULL,
};

static int known(const char *c)
{
	for (size_t i = 0; codes[i]; i++)
		if (strcmp(codes[i], c) == 0)
			return 1;
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct validate v;
	struct users_options o;
	struct users_reader *r;
	struct users_element e;
	struct ujv_doc doc;

	if (size < 1)
		return 0;
	users_options_init(&o);
	o.unsupported_hash = data[0] & 1 ? USERS_UNSUPPORTED_HASH_STRIP : USERS_UNSUPPORTED_HASH_REJECT;
	o.strip_auth0_prefix = (enum users_auth0_prefix)((data[0] >> 1) % 3);
	if (users_reader_open_mem(data + 1, size - 1, &r) < 0)
		return 0;
	ujv_doc_init(&doc);
	while (users_reader_next(r, &e) > 0) {
		/* Scanner output always parses. */
		if (ujv_parse(&doc, e.min, e.min_len) != 0)
			abort();
		validate_user(&v, &doc, &o);
		validate_finish(&v);
		for (size_t i = 0; i < v.n; i++) {
			const struct users_problem *p = &v.problems[i];
			if (!p->path || !p->message || !known(p->code))
				abort();
			if (p->path[0] && p->path[0] != '/')
				abort();
			if (i < v.n_errors ? p->warning : !p->warning)
				abort();
		}
		if (v.strip_key && !v.strip_member)
			abort();
	}
	ujv_doc_done(&doc);
	users_reader_free(r);
	return 0;
}
