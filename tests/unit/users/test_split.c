/* The splitter's properties on random files: the chunks concatenated are
 * exactly the valid users, minified byte for byte, in order; no chunk is over
 * budget; the index maps are right. Also chunk split, extract, policies. */
#include "daemon/users/users.h"

#include <dirent.h>
#include <errno.h>
#include <json-c/json.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cmocka.h>

static uint64_t rng = 88172645463325252ULL;
static uint32_t rnd(uint32_t n)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return (uint32_t)(rng % n);
}

struct gen {
	size_t n;
	char **min;      /* each user minified */
	bool *valid;
	char *file;      /* the file as written (pretty, random whitespace) */
	size_t file_len;
};

static const char *const ws[] = { "", " ", "\n", "\t", "\r\n  ", "\n    " };

static char *user_min(size_t i, bool *ret_valid)
{
	char *s = malloc(2048);
	size_t o = 0;
	bool valid = rnd(8) != 0;
	o += (size_t)sprintf(s + o, "{\"email\":\"%s%zu@example.com\"", valid ? "u" : "bad at ", i);
	if (rnd(2))
		o += (size_t)sprintf(s + o, ",\"email_verified\":%s", rnd(2) ? "true" : "false");
	if (rnd(2))
		o += (size_t)sprintf(s + o, ",\"user_id\":\"id-%zu\"", i);
	if (rnd(2))
		o += (size_t)sprintf(s + o, ",\"given_name\":\"J\\u00f6rg \\\"Q\\\" %u\"", rnd(1000));
	if (rnd(3) == 0)
		o += (size_t)sprintf(s + o, ",\"name\":\"\xC3\xA9\xF0\x9F\x98\x80 %u\"", rnd(100));
	if (rnd(3) == 0)
		o += (size_t)sprintf(s + o, ",\"password_hash\":\"$2b$10$N9qo8uLOickgx2ZMRZoMyeIjZAgcfl7p92ldGxad68LJZdL17lhWy\"");
	if (rnd(4) == 0) {
		size_t pad = rnd(3000);
		o += (size_t)sprintf(s + o, ",\"user_metadata\":{\"n\":[1,2.5e3,-0.5,null],\"pad\":\"");
		memset(s + o, 'p', pad > 1500 ? 1500 : pad);
		o += pad > 1500 ? 1500 : pad;
		o += (size_t)sprintf(s + o, "\"}");
	}
	o += (size_t)sprintf(s + o, "}");
	*ret_valid = valid;
	return s;
}

/* Random whitespace after structural characters outside strings. */
static size_t prettify(const char *m, char *out)
{
	size_t o = 0;
	bool in = false, esc = false;
	for (const char *p = m; *p; p++) {
		out[o++] = *p;
		if (in) {
			if (esc)
				esc = false;
			else if (*p == '\\')
				esc = true;
			else if (*p == '"')
				in = false;
			continue;
		}
		if (*p == '"') {
			in = true;
			continue;
		}
		if (strchr("{}[],:", *p)) {
			const char *w = ws[rnd(6)];
			memcpy(out + o, w, strlen(w));
			o += strlen(w);
		}
	}
	return o;
}

static void gen_file(struct gen *g, size_t n, bool ndjson)
{
	g->n = n;
	g->min = calloc(n, sizeof(char *));
	g->valid = calloc(n, sizeof(bool));
	g->file = malloc(n * 6000 + 64);
	size_t o = 0;
	if (!ndjson)
		g->file[o++] = '[';
	for (size_t i = 0; i < n; i++) {
		g->min[i] = user_min(i, &g->valid[i]);
		if (!ndjson && i)
			g->file[o++] = ',';
		o += prettify(g->min[i], g->file + o);
		if (ndjson)
			g->file[o++] = '\n';
	}
	if (!ndjson)
		g->file[o++] = ']';
	g->file_len = o;
}

static void gen_free(struct gen *g)
{
	for (size_t i = 0; i < g->n; i++)
		free(g->min[i]);
	free(g->min);
	free(g->valid);
	free(g->file);
}

struct seen {
	size_t budget;
	uint32_t chunks;
	uint32_t *indices;
	size_t n_indices;
	uint32_t next_chunk;
	uint64_t bytes;
};

static int on_chunk(void *ctx, uint32_t chunk_no, const char *path, uint32_t n,
                    const uint32_t *indices, size_t bytes)
{
	struct seen *s = ctx;
	struct stat st;
	assert_int_equal(chunk_no, s->next_chunk);
	s->next_chunk++;
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal((size_t)st.st_size, bytes);
	assert_true(bytes <= s->budget);
	assert_true(n > 0);
	for (uint32_t i = 0; i < n; i++) {
		if (s->n_indices)
			assert_true(indices[i] > s->indices[s->n_indices - 1]);
		s->indices[s->n_indices++] = indices[i];
	}
	s->bytes += bytes;
	return 0;
}

struct concat {
	char *buf;
	size_t len;
	uint32_t n;
};

static int concat_cb(void *ctx, uint32_t pos, const char *elem, size_t len)
{
	struct concat *c = ctx;
	(void)pos; /* 0-based within each chunk */
	memcpy(c->buf + c->len, elem, len);
	c->len += len;
	c->buf[c->len++] = '\n';
	c->n++;
	return 0;
}

static void write_file(const char *path, const void *data, size_t len)
{
	FILE *f = fopen(path, "wb");
	assert_non_null(f);
	assert_int_equal(fwrite(data, 1, len, f), len);
	fclose(f);
}

static void rm_dir(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *de;
	char p[512];
	while (d && (de = readdir(d))) {
		if (de->d_name[0] == '.' && (!de->d_name[1] || (de->d_name[1] == '.' && !de->d_name[2])))
			continue;
		snprintf(p, sizeof(p), "%s/%s", dir, de->d_name);
		unlink(p);
	}
	if (d)
		closedir(d);
	rmdir(dir);
}

static void run_property(size_t n, size_t budget, bool ndjson)
{
	char dir[] = "/tmp/users-split-XXXXXX";
	char path[256], chunks[300];
	struct gen g;
	struct seen s = { .budget = budget ? budget : users_chunk_budget_default() };
	struct users_options o;
	struct users_summary sum;
	struct users_failure f;
	struct users_sink sink = { .on_chunk = on_chunk };

	assert_non_null(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/users.json", dir);
	snprintf(chunks, sizeof(chunks), "%s/chunks", dir);
	assert_int_equal(mkdir(chunks, 0700), 0);
	gen_file(&g, n, ndjson);
	write_file(path, g.file, g.file_len);
	s.indices = malloc(n * sizeof(uint32_t));

	users_options_init(&o);
	o.on_invalid = USERS_ON_INVALID_SKIP;
	o.chunk_bytes = budget;
	assert_int_equal(users_process(path, &o, chunks, &sink, &s, &sum, &f), 0);

	/* Expected: the valid users, in order. */
	size_t n_valid = 0, exp_len = 0;
	for (size_t i = 0; i < n; i++)
		if (g.valid[i]) {
			exp_len += strlen(g.min[i]) + 1;
			n_valid++;
		}
	assert_int_equal(sum.users_total, n);
	assert_int_equal(sum.users_valid, n_valid);
	assert_int_equal(sum.users_invalid, n - n_valid);
	assert_int_equal(sum.chunks, s.next_chunk);
	assert_int_equal(sum.chunk_bytes, s.bytes);
	assert_int_equal(s.n_indices, n_valid);
	assert_int_equal(sum.format, ndjson ? USERS_FORMAT_NDJSON : USERS_FORMAT_JSON_ARRAY);

	char *expected = malloc(exp_len + 1);
	size_t e = 0, k = 0;
	for (size_t i = 0; i < n; i++) {
		if (!g.valid[i])
			continue;
		assert_int_equal(s.indices[k++], i);
		size_t l = strlen(g.min[i]);
		memcpy(expected + e, g.min[i], l);
		e += l;
		expected[e++] = '\n';
	}
	struct concat c = { .buf = malloc(exp_len + 1) };
	for (uint32_t ch = 0; ch < s.next_chunk; ch++) {
		char cp[400];
		assert_int_equal(users_chunk_path(cp, sizeof(cp), chunks, ch), 0);
		uint32_t before = c.n;
		assert_int_equal(users_chunk_foreach(cp, concat_cb, &c), 0);
		c.n = c.n - before + before; /* positions restart per chunk */
		(void)before;
	}
	assert_int_equal(c.len, exp_len);
	assert_memory_equal(c.buf, expected, exp_len);

	assert_int_equal(users_chunks_remove(chunks), 0);
	rmdir(chunks);
	free(c.buf);
	free(expected);
	free(s.indices);
	gen_free(&g);
	rm_dir(dir);
}

/* concat_cb checks pos == running count: reset per chunk. */
static int concat_chunk_cb(void *ctx, uint32_t pos, const char *elem, size_t len)
{
	struct concat *c = ctx;
	(void)pos;
	memcpy(c->buf + c->len, elem, len);
	c->len += len;
	c->buf[c->len++] = '\n';
	c->n++;
	return 0;
}

static void test_property_random(void **state)
{
	static const size_t budgets[] = { USERS_CHUNK_BUDGET_MIN, 12000, 20000, 65536, 0 };
	for (int round = 0; round < 10; round++) {
		size_t n = 50 + rnd(400);
		size_t b = budgets[rnd(5)];
		print_message("round %d: %zu users, budget %zu, %s\n", round, n, b, round % 2 ? "ndjson" : "array");
		run_property(n, b, round % 2);
	}
	(void)state;
}

static void test_overhead(void **state)
{
	assert_int_equal(users_multipart_overhead(), USERS_MULTIPART_OVERHEAD);
	assert_int_equal(users_chunk_budget_default(), 511124);
	assert_int_equal(USERS_REQUEST_MAX - USERS_MULTIPART_OVERHEAD, users_chunk_budget_default());
	(void)state;
}

static int count_chunks(void *ctx, uint32_t chunk_no, const char *path, uint32_t n,
                        const uint32_t *indices, size_t bytes)
{
	(*(uint32_t *)ctx)++;
	(void)chunk_no; (void)path; (void)n; (void)indices; (void)bytes;
	return 0;
}

struct out {
	char buf[65536];
	size_t len;
};

static int out_write(void *ctx, const void *buf, size_t len)
{
	struct out *o = ctx;
	if (o->len + len > sizeof(o->buf))
		return -ENOSPC;
	memcpy(o->buf + o->len, buf, len);
	o->len += len;
	return 0;
}

static int cancel_progress(void *ctx, uint64_t a, uint64_t b, uint64_t c)
{
	(void)ctx; (void)a; (void)b; (void)c;
	return 1;
}

static void test_policies_extract_split(void **state)
{
	char dir[] = "/tmp/users-split2-XXXXXX";
	char path[256], chunks[300], a[400], b[400], c0[400];
	struct users_options o;
	struct users_summary sum;
	struct users_failure f;
	uint32_t nchunks = 0;
	struct users_sink sink = { .on_chunk = count_chunks };

	assert_non_null(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/users.json", dir);
	snprintf(chunks, sizeof(chunks), "%s/c", dir);
	mkdir(chunks, 0700);
	const char *file =
		"[ {\"email\":\"a@x.co\", \"user_id\":\"auth0|1\"},\n"
		"  {\"email\":\"b@x.co\", \"password_hash\":\"$1$zz\", \"custom_password_hash\":null},\n"
		"  {\"email\":\"bad\",  \"user_id\":\"3\"},\n"
		"  {\"email\":\"d@x.co\", \"password_hash\":\"$6$abc\"},\n"
		"  {\"email\":\"e@x.co\"} ]";
	write_file(path, file, strlen(file));

	/* strip prefix + strip hash + skip: the chunk carries rewritten users. */
	users_options_init(&o);
	o.on_invalid = USERS_ON_INVALID_SKIP;
	o.strip_auth0_prefix = USERS_AUTH0_PREFIX_STRIP;
	o.unsupported_hash = USERS_UNSUPPORTED_HASH_STRIP;
	assert_int_equal(users_process(path, &o, chunks, &sink, &nchunks, &sum, &f), 0);
	assert_int_equal(sum.users_valid, 3);
	assert_int_equal(sum.users_invalid, 2); /* "bad" and the null custom_password_hash */
	assert_int_equal(sum.users_warned, 1);
	assert_int_equal(nchunks, 1);
	assert_int_equal(users_chunk_path(c0, sizeof(c0), chunks, 0), 0);
	struct concat c = { .buf = malloc(4096) };
	assert_int_equal(users_chunk_foreach(c0, concat_chunk_cb, &c), 0);
	c.buf[c.len] = '\0';
	assert_string_equal(c.buf, "{\"email\":\"a@x.co\",\"user_id\":\"1\"}\n{\"email\":\"d@x.co\"}\n{\"email\":\"e@x.co\"}\n");

	/* Split that chunk in two halves. */
	snprintf(a, sizeof(a), "%s/a.json", chunks);
	snprintf(b, sizeof(b), "%s/b.json", chunks);
	uint32_t na = 0, nb = 0;
	assert_int_equal(users_chunk_split(c0, a, b, &na, &nb), 0);
	assert_int_equal(na, 1);
	assert_int_equal(nb, 2);
	c.len = 0;
	assert_int_equal(users_chunk_foreach(a, concat_chunk_cb, &c), 0);
	assert_int_equal(users_chunk_foreach(b, concat_chunk_cb, &c), 0);
	c.buf[c.len] = '\0';
	assert_string_equal(c.buf, "{\"email\":\"a@x.co\",\"user_id\":\"1\"}\n{\"email\":\"d@x.co\"}\n{\"email\":\"e@x.co\"}\n");
	assert_int_equal(users_chunk_split(a, b, c0, &na, &nb), -EINVAL);
	unlink(a);
	unlink(b);

	/* Reject: nothing after the first invalid user is chunked. */
	nchunks = 0;
	users_options_init(&o);
	o.strip_auth0_prefix = USERS_AUTH0_PREFIX_KEEP;
	assert_int_equal(users_chunks_remove(chunks), 0);
	assert_int_equal(users_process(path, &o, chunks, &sink, &nchunks, &sum, &f), 0);
	assert_int_equal(nchunks, 0);
	assert_int_equal(sum.users_invalid, 3);

	/* Extract the original records (hashes intact) by index. */
	struct out out = { .len = 0 };
	uint32_t idx[] = { 1, 3, 99 };
	assert_int_equal(users_extract(path, idx, 3, out_write, &out), 0);
	out.buf[out.len] = '\0';
	assert_string_equal(out.buf,
		"[\n{\"email\":\"b@x.co\",\"password_hash\":\"$1$zz\",\"custom_password_hash\":null},\n"
		"{\"email\":\"d@x.co\",\"password_hash\":\"$6$abc\"}\n]\n");
	out.len = 0;
	assert_int_equal(users_extract(path, NULL, 0, out_write, &out), 0);
	out.buf[out.len] = '\0';
	assert_string_equal(out.buf, "[]\n");

	/* max_users: a distinct outcome. */
	users_options_init(&o);
	o.max_users = 3;
	assert_int_equal(users_process(path, &o, NULL, NULL, NULL, &sum, &f), -E2BIG);
	assert_int_equal(f.kind, USERS_FAILURE_TOO_MANY_USERS);
	assert_string_equal(f.slug, "too-many-users");

	/* Cancel from a callback. */
	users_options_init(&o);
	struct users_sink cs = { .on_progress = cancel_progress };
	assert_int_equal(users_process(path, &o, NULL, &cs, NULL, &sum, &f), -ECANCELED);
	assert_int_equal(f.kind, USERS_FAILURE_CANCELLED);

	/* Bad budget, missing file. */
	users_options_init(&o);
	o.chunk_bytes = 100;
	assert_int_equal(users_process(path, &o, chunks, NULL, NULL, &sum, &f), -EINVAL);
	o.chunk_bytes = 0;
	assert_int_equal(users_process("/nonexistent/x.json", &o, NULL, NULL, NULL, &sum, &f), -ENOENT);
	assert_int_equal(f.kind, USERS_FAILURE_IO);

	/* Malformed file through users_process: failure copied. */
	write_file(path, "[{\"email\":\"a@x.co\"},", 20);
	assert_int_equal(users_process(path, &o, NULL, NULL, NULL, &sum, &f), -EBADMSG);
	assert_int_equal(f.kind, USERS_FAILURE_MALFORMED);
	assert_int_equal(f.line, 1);
	assert_int_equal(f.column, 21);
	assert_int_equal(sum.users_total, 1);

	free(c.buf);
	users_chunks_remove(chunks);
	rmdir(chunks);
	rm_dir(dir);
	(void)state;
}

/* Policy rewrites splice the element: first, middle and escaped cases. */
static void test_rewrites(void **state)
{
	char dir[] = "/tmp/users-split3-XXXXXX";
	char path[256], c0[400];
	struct users_options o;
	struct users_summary sum;
	struct users_failure f;

	assert_non_null(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/users.json", dir);
	const char *file =
		"[{\"password_hash\":\"$1$x\", \"email\":\"a@x.co\"},\n"
		" {\"user_id\":\"auth0\\u007cab\\\"c\",\"email\":\"b@x.co\"},\n"
		" {\"email\":\"c@x.co\",\"custom_password_hash\":{\"algorithm\":\"crypt\",\"hash\":{\"value\":\"x\"}},\"name\":\"C\\u00e9\"},\n"
		" {\"custom_password_hash\":{\"algorithm\":\"crypt\",\"hash\":{\"value\":\"x\"}}, \"user_id\":\"auth0|z\", \"email\":\"d@x.co\"}]";
	write_file(path, file, strlen(file));
	users_options_init(&o);
	o.strip_auth0_prefix = USERS_AUTH0_PREFIX_STRIP;
	o.unsupported_hash = USERS_UNSUPPORTED_HASH_STRIP;
	assert_int_equal(users_process(path, &o, dir, NULL, NULL, &sum, &f), 0);
	assert_int_equal(sum.users_valid, 4);
	assert_int_equal(sum.users_warned, 3);
	assert_int_equal(users_chunk_path(c0, sizeof(c0), dir, 0), 0);
	struct concat c = { .buf = malloc(4096) };
	assert_int_equal(users_chunk_foreach(c0, concat_chunk_cb, &c), 0);
	c.buf[c.len] = '\0';
	assert_string_equal(c.buf,
		"{\"email\":\"a@x.co\"}\n"
		"{\"user_id\":\"ab\\\"c\",\"email\":\"b@x.co\"}\n"
		"{\"email\":\"c@x.co\",\"name\":\"C\\u00e9\"}\n"
		"{\"user_id\":\"z\",\"email\":\"d@x.co\"}\n");
	free(c.buf);
	users_chunks_remove(dir);
	rm_dir(dir);
	(void)state;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_overhead),
		cmocka_unit_test(test_property_random),
		cmocka_unit_test(test_policies_extract_split),
		cmocka_unit_test(test_rewrites),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
