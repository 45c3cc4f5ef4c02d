/* The jq filter: libjq 1.6, one jq_state per convert_jq, one thread. */
#include "daemon/convert/convert.h"

#include <errno.h>
#include <jq.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct convert_jq {
	jq_state *jq;
	char msg[512]; /* the last message jq reported through the error callback */
};

/* libjq hands the callback ownership of msg. */
static void on_error(void *arg, jv msg)
{
	struct convert_jq *q = arg;
	if (q->msg[0]) { /* keep the first ("… is not defined"), not "1 compile error" */
		jv_free(msg);
		return;
	}
	if (jv_get_kind(msg) == JV_KIND_STRING) {
		snprintf(q->msg, sizeof(q->msg), "%s", jv_string_value(msg));
		jv_free(msg);
		return;
	}
	jv s = jv_dump_string(msg, 0);
	snprintf(q->msg, sizeof(q->msg), "%s", jv_string_value(s));
	jv_free(s);
}

int convert_jq_new(const char *program, struct convert_jq **ret, char *err, size_t errsize)
{
	if (strlen(program) > CONVERT_FILTER_MAX) {
		snprintf(err, errsize, "the filter is longer than %u bytes", CONVERT_FILTER_MAX);
		return -EINVAL;
	}
	struct convert_jq *q = calloc(1, sizeof(*q));
	if (!q)
		return -ENOMEM;
	q->jq = jq_init();
	if (!q->jq) {
		free(q);
		return -ENOMEM;
	}
	jq_set_error_cb(q->jq, on_error, q);
	if (!jq_compile(q->jq, program)) {
		const char *m = q->msg[0] ? q->msg : "the filter does not compile";
		/* "jq: error: …" / "jq: 1 compile error": keep jq's first line. */
		snprintf(err, errsize, "%.*s", (int)strcspn(m, "\n"), m);
		convert_jq_free(q);
		return -EINVAL;
	}
	*ret = q;
	return 0;
}

void convert_jq_free(struct convert_jq *q)
{
	if (!q)
		return;
	jq_teardown(&q->jq);
	free(q);
}

static void message_of(jv v, char *err, size_t errsize)
{
	jv msg = jv_invalid_get_msg(v);
	if (jv_get_kind(msg) == JV_KIND_STRING) {
		snprintf(err, errsize, "%s", jv_string_value(msg));
		jv_free(msg);
		return;
	}
	jv s = jv_dump_string(msg, 0);
	snprintf(err, errsize, "%s (not a string)", jv_string_value(s));
	jv_free(s);
}

int convert_jq_apply(struct convert_jq *q, const char *json, size_t len, convert_jq_out_fn out,
		     void *ctx, unsigned *ret_outputs, bool *ret_changed, char *err, size_t errsize)
{
	if (len > (size_t)0x7fffffff)
		return -E2BIG;
	jv in = jv_parse_sized(json, (int)len);
	if (!jv_is_valid(in)) {
		message_of(in, err, errsize);
		return -EINVAL;
	}
	jv in_text = jv_dump_string(jv_copy(in), 0);
	unsigned outputs = 0;
	bool changed = false;
	int r = 0;
	q->msg[0] = '\0';
	jq_start(q->jq, in, 0);
	for (;;) {
		jv res = jq_next(q->jq);
		if (!jv_is_valid(res)) {
			if (jv_invalid_has_msg(jv_copy(res))) {
				message_of(res, err, errsize);
				r = -EINVAL;
			} else {
				jv_free(res);
				if (jq_halted(q->jq)) {
					snprintf(err, errsize, "the filter halted");
					r = -EINVAL;
				}
			}
			break;
		}
		if (jv_get_kind(res) != JV_KIND_OBJECT) {
			jv s = jv_dump_string(res, 0);
			snprintf(err, errsize, "the filter output %.60s, not an object", jv_string_value(s));
			jv_free(s);
			r = -EINVAL;
			break;
		}
		jv text = jv_dump_string(res, 0);
		const char *t = jv_string_value(text);
		size_t tlen = (size_t)jv_string_length_bytes(jv_copy(text));
		if (tlen != (size_t)jv_string_length_bytes(jv_copy(in_text)) ||
		    memcmp(t, jv_string_value(in_text), tlen) != 0)
			changed = true;
		outputs++;
		r = out ? out(ctx, t, tlen) : 0;
		jv_free(text);
		if (r)
			break;
	}
	jv_free(in_text);
	*ret_outputs = outputs;
	*ret_changed = changed;
	return r;
}
