/* libFuzzer target: the users-file reader and element scanner on any bytes
 * (plain or gzip). Invariants: no crash, indices count up, a minified element
 * is never longer than its raw bytes, a finished reader stays finished. */
#include "daemon/users/reader.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct users_reader *r;
	struct users_element e;
	uint32_t expect = 0;
	int rc;

	if (users_reader_open_mem(data, size, &r) < 0)
		return 0;
	while ((rc = users_reader_next(r, &e)) > 0) {
		if (e.index != expect++ || e.min_len > e.raw_len || e.min[e.min_len] != '\0' || e.line == 0)
			abort();
	}
	if (users_reader_next(r, &e) != rc)
		abort();
	if (rc < 0) {
		const struct users_failure *f = users_reader_failure(r);
		if (!f->slug || !f->message[0])
			abort();
	}
	users_reader_free(r);
	return 0;
}
