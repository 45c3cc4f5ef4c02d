/* The users-file reader: formats, positions of malformed input, bounds. */
#include "daemon/users/reader.h"
#include "tests/unit/users/read_all.h"
#include "daemon/users/scan.h"

#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>
#include <zlib.h>

static void test_pretty_array(void **state)
{
	struct got g;
	read_str("[\n  {\n    \"email\" : \"a@b.co\",\n    \"x\" : [ 1 , 2.5e+3 , true , null ]\n  },\n"
	         "\t{\"email\":\"c@d.co\", \"s\": \"a b\\u00e9\\/\"}\r\n]\n", &g);
	assert_int_equal(g.rc, 0);
	assert_int_equal(g.n, 2);
	assert_int_equal(g.format, USERS_FORMAT_JSON_ARRAY);
	assert_string_equal(g.mins, "{\"email\":\"a@b.co\",\"x\":[1,2.5e+3,true,null]}\n"
	                            "{\"email\":\"c@d.co\",\"s\":\"a b\\u00e9\\/\"}");
	assert_int_equal(g.lines[0], 2);
	assert_int_equal(g.lines[1], 6);
	(void)state;
}

static void test_minified_and_empty_array(void **state)
{
	struct got g;
	read_str("[{\"a\":1},{\"b\":{}},{\"c\":[]}]", &g);
	assert_int_equal(g.rc, 0);
	assert_int_equal(g.n, 3);
	assert_string_equal(g.mins, "{\"a\":1}\n{\"b\":{}}\n{\"c\":[]}");
	read_str("[]", &g);
	assert_int_equal(g.rc, 0);
	assert_int_equal(g.n, 0);
	read_str(" \n [ \n ] \n", &g);
	assert_int_equal(g.rc, 0);
	assert_int_equal(g.n, 0);
	(void)state;
}

static void test_bom(void **state)
{
	struct got g;
	read_str("\xEF\xBB\xBF[{\"a\":\"\xC3\xA9\xF0\x9F\x98\x80\"}]", &g);
	assert_int_equal(g.rc, 0);
	assert_int_equal(g.n, 1);
	assert_string_equal(g.mins, "{\"a\":\"\xC3\xA9\xF0\x9F\x98\x80\"}");
	read_str("\xEF\xBB\xBF{\"a\":1}\n", &g);
	assert_int_equal(g.rc, 0);
	assert_int_equal(g.format, USERS_FORMAT_NDJSON);
	/* A BOM then garbage: column counts from after the BOM. */
	read_str("\xEF\xBB\xBFx", &g);
	assert_int_equal(g.f.kind, USERS_FAILURE_NOT_AN_ARRAY);
	assert_int_equal(g.f.line, 1);
	assert_int_equal(g.f.column, 1);
	(void)state;
}

static void test_ndjson(void **state)
{
	struct got g;
	read_str("{\"a\":1}\r\n\n{\"b\" : 2}\n  {\"c\":3}", &g);
	assert_int_equal(g.rc, 0);
	assert_int_equal(g.n, 3);
	assert_int_equal(g.format, USERS_FORMAT_NDJSON);
	assert_string_equal(g.mins, "{\"a\":1}\n{\"b\":2}\n{\"c\":3}");
	assert_int_equal(g.lines[0], 1);
	assert_int_equal(g.lines[1], 3);
	assert_int_equal(g.lines[2], 4);
	read_str("{\"a\":1} {\"b\":2}\n", &g);
	assert_int_equal(g.rc, -EBADMSG);
	assert_int_equal(g.n, 1);
	assert_int_equal(g.f.kind, USERS_FAILURE_MALFORMED);
	assert_int_equal(g.f.offset, 8);
	assert_int_equal(g.f.line, 1);
	assert_int_equal(g.f.column, 9);
	assert_string_equal(g.f.message, "expected a new line after a user (NDJSON has one user per line)");
	(void)state;
}

static void test_empty_and_not_array(void **state)
{
	struct got g;
	read_str("", &g);
	assert_int_equal(g.f.kind, USERS_FAILURE_EMPTY);
	assert_string_equal(g.f.slug, "empty-file");
	read_str(" \r\n\t\n", &g);
	assert_int_equal(g.f.kind, USERS_FAILURE_EMPTY);
	read_str("\n  \"users\"", &g);
	assert_int_equal(g.f.kind, USERS_FAILURE_NOT_AN_ARRAY);
	assert_string_equal(g.f.slug, "not-an-array");
	assert_int_equal(g.f.offset, 3);
	assert_int_equal(g.f.line, 2);
	assert_int_equal(g.f.column, 3);
	read_str("42", &g);
	assert_int_equal(g.f.kind, USERS_FAILURE_NOT_AN_ARRAY);
	(void)state;
}

/* Malformed input at every kind of position: offset, line, column, message. */
static const struct {
	const char *in;
	size_t users_before;
	uint64_t offset;
	uint32_t line, column;
	const char *message;
} malformed[] = {
	{ "[{\"a\":1,}]", 0, 8, 1, 9, "in user 0: expected a property name in double quotes" },
	{ "[{\"a\" 1}]", 0, 6, 1, 7, "in user 0: expected ':' after a property name" },
	{ "[{\"a\":1}", 1, 8, 1, 9, "unexpected end of file: expected ',' or ']' after a user" },
	{ "[{\"a\":1},]", 1, 9, 1, 10, "expected a user after ',' (no trailing comma before ']')" },
	{ "[{\"a\":1} {\"b\":2}]", 1, 9, 1, 10, "expected ',' or ']' after a user" },
	{ "[{\"a\":tru}]", 0, 9, 1, 10, "in user 0: expected true, false or null" },
	{ "[{\"a\":\"x\\q\"}]", 0, 9, 1, 10, "in user 0: expected an escape sequence (\\\" \\\\ \\/ \\b \\f \\n \\r \\t or \\uXXXX)" },
	{ "[{\"a\":\"\\u12G4\"}]", 0, 11, 1, 12, "in user 0: expected four hex digits after \\u" },
	{ "[{\"a\":01}]", 0, 7, 1, 8, "in user 0: expected ',' or '}' after a property value" },
	{ "[{\"a\":1.}]", 0, 8, 1, 9, "in user 0: expected a digit after '.'" },
	{ "[{\"a\":1e}]", 0, 8, 1, 9, "in user 0: expected a digit in the exponent" },
	{ "[{\"a\":-}]", 0, 7, 1, 8, "in user 0: expected a digit" },
	{ "[{a:1}]", 0, 2, 1, 3, "in user 0: expected a property name in double quotes" },
	{ "[{\"a\":\"x\ny\"}]", 0, 8, 1, 9, "in user 0: expected no control character inside a string (escape it)" },
	{ "[{\"a\":1}]x", 1, 9, 1, 10, "expected the end of the file after the closing ']'" },
	{ "[{\"a\":1}] []", 1, 10, 1, 11, "expected the end of the file after the closing ']'" },
	{ "[", 0, 1, 1, 2, "unexpected end of file: expected a user or ']'" },
	{ "[\n{\"a\":1},\n", 1, 11, 3, 1, "unexpected end of file: expected a user after ','" },
	{ "[\n {\n  \"a\": [1,\n", 0, 16, 4, 1, "unexpected end of file inside user 0 (it starts at line 2)" },
	{ "[{\"a\":\"\xff\"}]", 0, 7, 1, 8, "in user 0: expected valid UTF-8" },
	{ "[{\"a\":\"\xc0\xaf\"}]", 0, 7, 1, 8, "in user 0: expected valid UTF-8" },
	{ "[{\"a\":\"\xed\xa0\x80\"}]", 0, 7, 1, 8, "in user 0: expected valid UTF-8" },
	{ "[{\"a\":\"\xe2\x82\"}]", 0, 7, 1, 8, "in user 0: expected valid UTF-8" },
	{ "[{\"a\":\"\xf4\x90\x80\x80\"}]", 0, 7, 1, 8, "in user 0: expected valid UTF-8" },
	{ "[{\"a\":1}\n,\n{\"b\" 2}]", 1, 16, 3, 6, "in user 1: expected ':' after a property name" },
	{ "{\"a\":1}\n{\"b\":[}\n", 1, 14, 2, 7, "in user 1: expected a value (object, array, string, number, true, false or null)" },
	{ "[{\"a\":[1 2]}]", 0, 9, 1, 10, "in user 0: expected ',' or ']' after an array element" },
};

static void test_malformed(void **state)
{
	for (size_t i = 0; i < sizeof(malformed) / sizeof(malformed[0]); i++) {
		struct got g;
		print_message("case %zu: %s\n", i, malformed[i].in);
		read_str(malformed[i].in, &g);
		assert_int_equal(g.rc, -EBADMSG);
		assert_int_equal(g.f.kind, USERS_FAILURE_MALFORMED);
		assert_string_equal(g.f.slug, "malformed-file");
		assert_int_equal(g.n, malformed[i].users_before);
		assert_string_equal(g.f.message, malformed[i].message);
		assert_int_equal(g.f.offset, malformed[i].offset);
		assert_int_equal(g.f.line, malformed[i].line);
		assert_int_equal(g.f.column, malformed[i].column);
	}
	(void)state;
}

/* [{"a":[[...]]}] with the user object at depth 1. */
static char *nested(unsigned depth)
{
	char *s = malloc(2 * depth + 64);
	size_t o = (size_t)sprintf(s, "[{\"a\":");
	for (unsigned i = 1; i < depth; i++)
		s[o++] = '[';
	if (depth == 1)
		s[o++] = '1';
	for (unsigned i = 1; i < depth; i++)
		s[o++] = ']';
	o += (size_t)sprintf(s + o, "}]");
	return s;
}

static void test_depth(void **state)
{
	struct got g;
	/* The user object is depth 1; 32 levels pass, 33 fail. */
	char *ok = nested(USERS_DEPTH_MAX);
	char *bad = nested(USERS_DEPTH_MAX + 1);
	read_str(ok, &g);
	assert_int_equal(g.rc, 0);
	assert_int_equal(g.n, 1);
	read_str(bad, &g);
	assert_int_equal(g.rc, -EBADMSG);
	assert_int_equal(g.f.column, USERS_DEPTH_MAX + 6);
	assert_string_equal(g.f.message, "in user 0: expected no deeper nesting (the nesting limit is reached)");
	free(ok);
	free(bad);
	/* Very deep input is still a clean error. */
	char *deep = malloc(200001);
	memset(deep, '[', 200000);
	deep[200000] = '\0';
	read_str(deep, &g);
	assert_int_equal(g.rc, -EBADMSG);
	free(deep);
	(void)state;
}

static void test_huge_strings(void **state)
{
	size_t big = 900 * 1024;
	char *s = malloc(USERS_ELEMENT_MAX + 1024);
	struct users_reader *r;
	struct users_element e;

	if (!s)
		fail();

	/* 900 KiB string: fine, copied whole. */
	size_t o = 7;
	memcpy(s, "[{\"a\":\"", o);
	memset(s + o, 'x', big);
	o += big;
	o += (size_t)sprintf(s + o, "\"},{\"b\":1}]");
	assert_int_equal(users_reader_open_mem(s, o, &r), 0);
	assert_int_equal(users_reader_next(r, &e), 1);
	assert_int_equal(e.min_len, big + 8);
	assert_int_equal(users_reader_next(r, &e), 1);
	assert_int_equal(e.index, 1);
	assert_int_equal(users_reader_next(r, &e), 0);
	users_reader_free(r);

	/* A user over USERS_ELEMENT_MAX: a clean error at its start. */
	o = 17;
	memcpy(s, "[{\"b\":1},\n {\"a\":\"", o);
	memset(s + o, 'y', USERS_ELEMENT_MAX);
	o += USERS_ELEMENT_MAX;
	struct got g;
	read_mem(s, o, &g);
	assert_int_equal(g.rc, -EBADMSG);
	assert_int_equal(g.n, 1);
	assert_int_equal(g.f.offset, 11);
	assert_int_equal(g.f.line, 2);
	assert_int_equal(g.f.column, 2);
	assert_string_equal(g.f.message, "user 1 is larger than 1048576 bytes");
	free(s);
	(void)state;
}

static size_t gzip_mem(const void *in, size_t len, unsigned char *out, size_t cap)
{
	z_stream z;
	memset(&z, 0, sizeof(z));
	assert_int_equal(deflateInit2(&z, 6, Z_DEFLATED, 16 + MAX_WBITS, 8, Z_DEFAULT_STRATEGY), Z_OK);
	z.next_in = (unsigned char *)(uintptr_t)in;
	z.avail_in = (uInt)len;
	z.next_out = out;
	z.avail_out = (uInt)cap;
	assert_int_equal(deflate(&z, Z_FINISH), Z_STREAM_END);
	size_t n = cap - z.avail_out;
	deflateEnd(&z);
	return n;
}

/* Many users crossing every buffer boundary, plain and gzip. */
static void test_many_and_gzip(void **state)
{
	size_t n = 20000, cap = n * 64 + 16, o = 0;
	char *s = malloc(cap);
	unsigned char *z = malloc(cap + 1024);
	struct got g;

	s[o++] = '[';
	for (size_t i = 0; i < n; i++)
		o += (size_t)sprintf(s + o, "%s\n  { \"email\" : \"u%zu@example.com\" }", i ? "," : "", i);
	s[o++] = '\n';
	s[o++] = ']';
	read_mem(s, o, &g);
	assert_int_equal(g.rc, 0);
	assert_int_equal(g.n, n);
	assert_false(g.gzip);
	assert_int_equal(g.lines[5], 7);

	size_t zl = gzip_mem(s, o, z, cap + 1024);
	read_mem(z, zl, &g);
	assert_int_equal(g.rc, 0);
	assert_int_equal(g.n, n);
	assert_true(g.gzip);
	assert_int_equal(g.format, USERS_FORMAT_JSON_ARRAY);

	/* Truncated gzip: a clear error, the users before it were read. */
	read_mem(z, zl / 2, &g);
	assert_int_equal(g.rc, -EBADMSG);
	assert_true(g.n > 0 && g.n < n);
	assert_int_equal(g.f.kind, USERS_FAILURE_MALFORMED);
	assert_non_null(strstr(g.f.message, "truncated gzip stream"));

	/* Corrupt gzip. */
	z[zl / 2] ^= 0xff;
	z[zl / 2 + 1] ^= 0x55;
	read_mem(z, zl, &g);
	assert_int_equal(g.rc, -EBADMSG);
	free(s);
	free(z);
	(void)state;
}

static void test_gzip_members_and_trailing(void **state)
{
	unsigned char z[512], z2[512];
	const char *a = "{\"a\":1}\n", *b = "{\"b\":2}\n";
	size_t la = gzip_mem(a, strlen(a), z, sizeof(z));
	size_t lb = gzip_mem(b, strlen(b), z2, sizeof(z2));
	unsigned char cat[1024];
	struct got g;

	memcpy(cat, z, la);
	memcpy(cat + la, z2, lb);
	read_mem(cat, la + lb, &g);
	assert_int_equal(g.rc, 0);
	assert_int_equal(g.n, 2);
	assert_true(g.gzip);
	assert_int_equal(g.format, USERS_FORMAT_NDJSON);

	memcpy(cat + la, "garbage", 7);
	read_mem(cat, la + 7, &g);
	assert_int_equal(g.rc, -EBADMSG);
	assert_non_null(strstr(g.f.message, "trailing data after the gzip stream"));

	/* gzip of nothing: empty file. */
	size_t le = gzip_mem("", 0, z, sizeof(z));
	read_mem(z, le, &g);
	assert_int_equal(g.f.kind, USERS_FAILURE_EMPTY);
	/* Only the magic. */
	read_mem("\x1f\x8b", 2, &g);
	assert_int_equal(g.rc, -EBADMSG);
	(void)state;
}

static void test_utf8_seq(void **state)
{
	assert_int_equal(scan_utf8_seq((const unsigned char *)"a", 1), 1);
	assert_int_equal(scan_utf8_seq((const unsigned char *)"\xc3\xa9", 2), 2);
	assert_int_equal(scan_utf8_seq((const unsigned char *)"\xc3", 1), -1);
	assert_int_equal(scan_utf8_seq((const unsigned char *)"\xe2\x82\xac", 3), 3);
	assert_int_equal(scan_utf8_seq((const unsigned char *)"\xf0\x9f\x98\x80", 4), 4);
	assert_int_equal(scan_utf8_seq((const unsigned char *)"\xf0\x9f\x98", 3), -1);
	assert_int_equal(scan_utf8_seq((const unsigned char *)"\x80", 1), 0);
	assert_int_equal(scan_utf8_seq((const unsigned char *)"\xc1\xbf", 2), 0);
	assert_int_equal(scan_utf8_seq((const unsigned char *)"\xe0\x80\x80", 3), 0);
	assert_int_equal(scan_utf8_seq((const unsigned char *)"\xf5\x80\x80\x80", 4), 0);
	(void)state;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_pretty_array),
		cmocka_unit_test(test_minified_and_empty_array),
		cmocka_unit_test(test_bom),
		cmocka_unit_test(test_ndjson),
		cmocka_unit_test(test_empty_and_not_array),
		cmocka_unit_test(test_malformed),
		cmocka_unit_test(test_depth),
		cmocka_unit_test(test_huge_strings),
		cmocka_unit_test(test_many_and_gzip),
		cmocka_unit_test(test_gzip_members_and_trailing),
		cmocka_unit_test(test_utf8_seq),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
