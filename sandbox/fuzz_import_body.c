/* libFuzzer target: the emulator's import-body path — the multipart parser,
 * then each element of a "users" part through the user schema. Input: the
 * Content-Type header, a newline, then the body. */
#include "sandbox/multipart.h"
#include "sandbox/schema.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const uint8_t *nl = memchr(data, '\n', size < 256 ? size : 256);
	if (!nl)
		return 0;
	char ct[256];
	size_t ctlen = (size_t)(nl - data);
	memcpy(ct, data, ctlen);
	ct[ctlen] = '\0';
	size_t blen = size - ctlen - 1;
	char *body = malloc(blen + 1);
	if (!body)
		return 0;
	memcpy(body, nl + 1, blen);
	body[blen] = '\0';
	struct multipart_part parts[MULTIPART_MAX_PARTS];
	size_t n = 0;
	if (multipart_parse(ct, body, blen, parts, MULTIPART_MAX_PARTS, &n) == 0) {
		const struct multipart_part *u = multipart_find(parts, n, "users");
		if (u) {
			json_tokener *tok = json_tokener_new_ex(64);
			json_object *arr = tok ? json_tokener_parse_ex(tok, u->data, (int)u->len) : NULL;
			if (json_object_is_type(arr, json_type_array)) {
				json_object *errs = json_object_new_array();
				for (size_t i = 0; i < json_object_array_length(arr); i++)
					schema_check_user(json_object_array_get_idx(arr, i), errs);
				json_object_put(errs);
			}
			json_object_put(arr);
			if (tok)
				json_tokener_free(tok);
		}
	}
	free(body);
	return 0;
}
