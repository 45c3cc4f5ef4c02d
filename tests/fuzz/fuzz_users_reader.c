/* libFuzzer target: the users-file reader and element scanner on any bytes
 * (plain or gzip; JSON array, NDJSON or CSV). Invariants: no crash, indices
 * count up, a minified JSON element is never longer than its raw bytes, a
 * CSV row becomes one JSON object the scanner accepts whole, a finished
 * reader stays finished. */
#include "daemon/users/reader.h"
#include "daemon/users/scan.h"

#include <stdbool.h>
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
		bool csv = users_reader_format(r) == USERS_FORMAT_CSV;
		if (e.index != expect++ || (!csv && e.min_len > e.raw_len) || e.min[e.min_len] != '\0' ||
		    e.line == 0)
			abort();
		if (csv) {
			char *out = malloc(e.min_len + 1);
			struct scan s = { .out = out, .out_cap = e.min_len + 1, .max_depth = USERS_DEPTH_MAX };
			if (!out || e.min[0] != '{' || scan_element(&s, e.min, e.min_len, 1) != SCAN_DONE ||
			    s.end != e.min_len || s.out_len != e.min_len || memcmp(out, e.min, e.min_len) != 0)
				abort();
			free(out);
		}
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
