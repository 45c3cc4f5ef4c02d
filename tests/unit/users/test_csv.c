/* CSV users files: quoting, UTF-8, line breaks, dotted names, value types,
 * malformed rows and headers with their positions, header typos with hints
 * through users_process, users_extract and chunks of a CSV file. */
#include "daemon/users/csv.h"
#include "daemon/users/reader.h"
#include "tests/unit/users/read_all.h"

#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>
#include <zlib.h>

static void test_quoting(void **state)
{
	struct got g;
	read_str("email,name,nickname\n"
	         "\"a@b.co\",\"Smith, \"\"Jo\"\"\",plain\n"
	         "c@d.co,\"\",x\"y\n"
	         "\"e@f.co\",\"back\\slash\",\"tab\there\"", &g);
	assert_int_equal(g.rc, 0);
	assert_int_equal(g.format, USERS_FORMAT_CSV);
	assert_int_equal(g.n, 3);
	assert_string_equal(g.mins,
		"{\"email\":\"a@b.co\",\"name\":\"Smith, \\\"Jo\\\"\",\"nickname\":\"plain\"}\n"
		"{\"email\":\"c@d.co\",\"nickname\":\"x\\\"y\"}\n"
		"{\"email\":\"e@f.co\",\"name\":\"back\\\\slash\",\"nickname\":\"tab\\there\"}");
	assert_int_equal(g.lines[0], 2);
	assert_int_equal(g.lines[2], 4);
	(void)state;
}

static void test_line_breaks(void **state)
{
	struct got g;
	/* CRLF, an embedded CRLF and LF in quotes, a last row without a break. */
	read_str("email,nickname\r\n"
	         "a@b.co,\"two\r\nlines\"\r\n"
	         "c@d.co,\"three\nshort\nlines\"\r\n"
	         "e@f.co,last", &g);
	assert_int_equal(g.rc, 0);
	assert_int_equal(g.n, 3);
	assert_string_equal(g.mins,
		"{\"email\":\"a@b.co\",\"nickname\":\"two\\r\\nlines\"}\n"
		"{\"email\":\"c@d.co\",\"nickname\":\"three\\nshort\\nlines\"}\n"
		"{\"email\":\"e@f.co\",\"nickname\":\"last\"}");
	assert_int_equal(g.lines[0], 2);
	assert_int_equal(g.lines[1], 4);
	assert_int_equal(g.lines[2], 7);
	assert_int_equal(g.offsets[1], 37);
	/* LF only, blank lines and all-empty rows are no users. */
	read_str("email,name\n\na@b.co,A\n,\n\r\n\"\",\"\"\nb@b.co,B\n\n", &g);
	assert_int_equal(g.rc, 0);
	assert_int_equal(g.n, 2);
	assert_int_equal(g.lines[0], 3);
	assert_int_equal(g.lines[1], 7);
	/* A lone CR inside an unquoted field is data. */
	read_str("email,name\na@b.co,x\ry\n", &g);
	assert_string_equal(g.mins, "{\"email\":\"a@b.co\",\"name\":\"x\\ry\"}");
	/* Header only: no users. */
	read_str("email,name\r\n", &g);
	assert_int_equal(g.rc, 0);
	assert_int_equal(g.n, 0);
	assert_int_equal(g.format, USERS_FORMAT_CSV);
	(void)state;
}

static void test_unicode(void **state)
{
	struct got g;
	read_str("\xEF\xBB\xBF" "email,name\n"
	         "\xC3\xA4@b.co,\"Zo\xC3\xAB \xF0\x9F\x98\x80\"\n", &g);
	assert_int_equal(g.rc, 0);
	assert_int_equal(g.n, 1);
	assert_string_equal(g.mins, "{\"email\":\"\xC3\xA4@b.co\",\"name\":\"Zo\xC3\xAB \xF0\x9F\x98\x80\"}");
	/* Invalid UTF-8: malformed where it is. */
	read_str("email,name\na@b.co,ok\nb@b.co,x\xC3(\n", &g);
	assert_int_equal(g.rc, -EBADMSG);
	assert_int_equal(g.n, 1);
	assert_int_equal(g.f.kind, USERS_FAILURE_MALFORMED);
	assert_int_equal(g.f.line, 3);
	assert_int_equal(g.f.column, 9);
	assert_string_equal(g.f.message, "in the row of user 1: expected invalid UTF-8");
	/* A control character is escaped. */
	read_str("email,name\na@b.co,\"a\x01" "b\"\n", &g);
	assert_string_equal(g.mins, "{\"email\":\"a@b.co\",\"name\":\"a\\u0001b\"}");
	(void)state;
}

static void test_nested_names(void **state)
{
	struct got g;
	read_str(" email , user_metadata.plan,user_metadata.address.city,"
	         "custom_password_hash.algorithm,custom_password_hash.hash.value,"
	         "custom_password_hash.hash.encoding,custom_password_hash.keylen,"
	         "user_metadata.address.zip,app_metadata.roles\n"
	         "a@b.co,pro,Paris,scrypt,abcd,hex,0064,75001,\"[\"\"admin\"\", \"\"ops\"\"]\"\n"
	         "b@b.co,,,,,,,,\n"
	         "c@b.co,free,,,,,,75002,[draft\n", &g);
	assert_int_equal(g.rc, 0);
	assert_int_equal(g.n, 3);
	assert_string_equal(g.mins,
		"{\"email\":\"a@b.co\",\"user_metadata\":{\"plan\":\"pro\",\"address\":{\"city\":\"Paris\","
		"\"zip\":\"75001\"}},\"custom_password_hash\":{\"algorithm\":\"scrypt\",\"hash\":"
		"{\"value\":\"abcd\",\"encoding\":\"hex\"},\"keylen\":64},\"app_metadata\":"
		"{\"roles\":[\"admin\",\"ops\"]}}\n"
		"{\"email\":\"b@b.co\"}\n"
		"{\"email\":\"c@b.co\",\"user_metadata\":{\"plan\":\"free\",\"address\":{\"zip\":\"75002\"}},"
		"\"app_metadata\":{\"roles\":\"[draft\"}}");
	/* Whole objects and arrays as JSON cells. */
	read_str("email,mfa_factors,user_metadata,custom_password_hash.hash\n"
	         "a@b.co,\"[{\"\"totp\"\":{\"\"secret\"\":\"\"ABC\"\"}}]\",\"{ \"\"a\"\" : 1 }\",\"{\"\"value\"\":\"\"x\"\"}\"\n"
	         "b@b.co,not json,\"{\"\"a\"\":1} extra\",\n", &g);
	assert_int_equal(g.rc, 0);
	assert_string_equal(g.mins,
		"{\"email\":\"a@b.co\",\"mfa_factors\":[{\"totp\":{\"secret\":\"ABC\"}}],\"user_metadata\":{\"a\":1},"
		"\"custom_password_hash\":{\"hash\":{\"value\":\"x\"}}}\n"
		"{\"email\":\"b@b.co\",\"mfa_factors\":\"not json\",\"user_metadata\":\"{\\\"a\\\":1} extra\"}");
	(void)state;
}

static void test_types(void **state)
{
	struct got g;
	read_str("email,email_verified,blocked,phone_verified,custom_password_hash.cost,"
	         "custom_password_hash.blockSize,custom_password_hash.parallelization\n"
	         "a@b.co,true,FALSE,True,16384,-0,007\n"
	         "b@b.co,yes,1,,1.5,-12,1234567890123456789\n", &g);
	assert_int_equal(g.rc, 0);
	assert_string_equal(g.mins,
		"{\"email\":\"a@b.co\",\"email_verified\":true,\"blocked\":false,\"phone_verified\":true,"
		"\"custom_password_hash\":{\"cost\":16384,\"blockSize\":0,\"parallelization\":7}}\n"
		"{\"email\":\"b@b.co\",\"email_verified\":\"yes\",\"blocked\":\"1\","
		"\"custom_password_hash\":{\"cost\":\"1.5\",\"blockSize\":-12,\"parallelization\":\"1234567890123456789\"}}");
	/* Unknown names are strings (the validator names them). */
	read_str("email,emial,user_metadata.x.y,email_verified.x\na@b.co,1,2,true\n", &g);
	assert_string_equal(g.mins,
		"{\"email\":\"a@b.co\",\"emial\":\"1\",\"user_metadata\":{\"x\":{\"y\":\"2\"}},"
		"\"email_verified\":{\"x\":\"true\"}}");
	(void)state;
}

static const struct {
	const char *in;
	size_t users_before;
	enum users_failure_kind kind;
	uint32_t line, column;
	const char *message;
} bad[] = {
	{ "email,name\na@b.co,\"open\nb@b.co,x\n", 0, USERS_FAILURE_MALFORMED, 2, 8,
	  "in the row of user 0: unexpected end of file: the quoted field that starts here is never closed" },
	{ "email,name\na@b.co,\"Jo\"hn\n", 0, USERS_FAILURE_MALFORMED, 2, 12,
	  "in the row of user 0: expected ',' or the end of the line after a closing quote "
	  "(a quote inside a quoted field is written \"\")" },
	{ "email,name\na@b.co,A\nb@b.co,Smith, Jo\n", 1, USERS_FAILURE_MALFORMED, 3, 14,
	  "in the row of user 1: 3 fields where the header row has 2 (a value that holds a comma, "
	  "a quote or a line break must be quoted)" },
	{ "email,name\r\nb@b.co\r\n", 0, USERS_FAILURE_MALFORMED, 2, 7,
	  "in the row of user 0: 1 fields where the header row has 2 (a value that holds a comma, "
	  "a quote or a line break must be quoted)" },
	{ "email,name\n\"a\nb\",x,y\n", 0, USERS_FAILURE_MALFORMED, 3, 6,
	  "in the row of user 0: 3 fields where the header row has 2 (a value that holds a comma, "
	  "a quote or a line break must be quoted)" },
	{ "email,name\na@b.co,x\x00y\n", 0, USERS_FAILURE_MALFORMED, 2, 9,
	  "in the row of user 0: expected a NUL byte (a CSV users file is UTF-8 text)" },
	{ "email,,name\n", 0, USERS_FAILURE_MALFORMED, 1, 7,
	  "column 2 of the header row has no name" },
	{ "email,name, email\n", 0, USERS_FAILURE_MALFORMED, 1, 12,
	  "column 3 of the header row repeats column 1 (email)" },
	{ "email,user_metadata.plan,user_metadata\n", 0, USERS_FAILURE_MALFORMED, 1, 26,
	  "column 3 of the header row (user_metadata) clashes with column 2 (user_metadata.plan): "
	  "a property is either one value or an object of dotted names" },
	{ "email,user_metadata,user_metadata.plan\n", 0, USERS_FAILURE_MALFORMED, 1, 21,
	  "column 3 of the header row (user_metadata.plan) clashes with column 2 (user_metadata): "
	  "a property is either one value or an object of dotted names" },
	{ "email,user_metadata..plan\n", 0, USERS_FAILURE_MALFORMED, 1, 7,
	  "column 2 of the header row (user_metadata..plan): an empty name between dots" },
	{ "email,.x\n", 0, USERS_FAILURE_MALFORMED, 1, 7,
	  "column 2 of the header row (.x): an empty name between dots" },
	{ "hello world\nfoo\n", 0, USERS_FAILURE_NOT_AN_ARRAY, 1, 1,
	  "expected '[' (a JSON array of users), '{' (NDJSON, one user per line) or a CSV header row "
	  "naming import properties (such as email)" },
	{ "email;name\na@b.co;A\n", 0, USERS_FAILURE_NOT_AN_ARRAY, 1, 1,
	  "expected '[' (a JSON array of users), '{' (NDJSON, one user per line) or a CSV header row "
	  "naming import properties (such as email) (fields are separated by ',', the first row uses ';')" },
	{ "  \"unterminated,email\n", 0, USERS_FAILURE_NOT_AN_ARRAY, 1, 3,
	  "expected '[' (a JSON array of users), '{' (NDJSON, one user per line) or a CSV header row "
	  "naming import properties (such as email) (the first row is no CSV header: unexpected end "
	  "of file: the quoted field that starts here is never closed)" },
};

static void test_malformed(void **state)
{
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct got g;
		size_t len = strlen(bad[i].in);
		if (strstr(bad[i].message, "NUL"))
			len += 3; /* past the NUL: "y\n" */
		read_mem(bad[i].in, len, &g);
		if (g.rc != -EBADMSG || g.n != bad[i].users_before || g.f.kind != bad[i].kind ||
		    g.f.line != bad[i].line || g.f.column != bad[i].column ||
		    strcmp(g.f.message, bad[i].message) != 0)
			fail_msg("case %zu: rc %d n %zu kind %d at %u:%u \"%s\"", i, g.rc, g.n, g.f.kind,
			         g.f.line, g.f.column, g.f.message);
	}
	(void)state;
}

static void test_bounds(void **state)
{
	/* A row over USERS_ELEMENT_MAX bytes; too many columns. */
	size_t big = USERS_ELEMENT_MAX + 100;
	char *s = malloc(big + 64);
	struct got g;
	int o = sprintf(s, "email,name\na@b.co,\"");
	memset(s + o, 'x', big);
	memcpy(s + o + big, "\"\n", 3);
	read_mem(s, strlen(s), &g);
	assert_int_equal(g.rc, -EBADMSG);
	assert_int_equal(g.f.line, 2);
	assert_int_equal(g.f.column, 1);
	assert_non_null(strstr(g.f.message, "larger than"));
	free(s);

	size_t cols = CSV_COLUMNS_MAX + 2;
	s = malloc(cols * 8 + 16);
	o = sprintf(s, "email");
	for (size_t k = 1; k < cols; k++)
		o += sprintf(s + o, ",c%zu", k);
	s[o++] = '\n';
	s[o] = '\0';
	read_mem(s, (size_t)o, &g);
	assert_int_equal(g.rc, -EBADMSG);
	assert_string_equal(g.f.message, "the header row has more than 1024 columns");
	free(s);
	(void)state;
}

/* ---- through users_process ---- */

struct collected {
	char text[8192];
	size_t len;
};

static int on_problems(void *ctx, uint32_t index, uint32_t line, const char *email,
                       const char *user_id, const struct users_problem *p, size_t n,
                       bool warnings_only)
{
	struct collected *c = ctx;
	for (size_t i = 0; i < n; i++) {
		assert_int_equal(p[i].line, line);
		c->len += (size_t)snprintf(c->text + c->len, sizeof(c->text) - c->len,
		                           "%u:%u %s %s %s|", index, p[i].line, p[i].path, p[i].code,
		                           p[i].hint ? p[i].hint : "-");
	}
	(void)email; (void)user_id; (void)warnings_only;
	return 0;
}

static void write_file(const char *path, const void *data, size_t len)
{
	FILE *f = fopen(path, "w");
	assert_non_null(f);
	assert_int_equal(fwrite(data, 1, len, f), len);
	fclose(f);
}

static int collect_cb(void *ctx, const void *buf, size_t len)
{
	struct collected *c = ctx;
	assert_true(c->len + len < sizeof(c->text));
	memcpy(c->text + c->len, buf, len);
	c->len += len;
	c->text[c->len] = '\0';
	return 0;
}

static void test_process_hints_and_extract(void **state)
{
	char dir[] = "/tmp/users-csv-XXXXXX";
	char path[256];
	const char *csv =
		"Email,given_name,custom_password_hash.algoritm,custom_password_hash.hash.value,emial\r\n"
		"a@b.co,Ann,,,\r\n"
		"b@b.co,\"Bob\r\nJr\",bcrypt,$2b$10$abc,\r\n"
		"c@b.co,Cy,,,c@b.co\r\n";
	assert_non_null(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/u.csv", dir);
	write_file(path, csv, strlen(csv));

	struct users_options o;
	users_options_init(&o);
	struct collected c = { .len = 0 };
	struct users_sink sink = { .on_problems = on_problems };
	struct users_summary sum;
	struct users_failure f;
	assert_int_equal(users_process(path, &o, NULL, &sink, &c, &sum, &f), 0);
	assert_string_equal(c.text,
		"0:2 /Email UNKNOWN_PROPERTY did you mean \"email\"?|"
		"0:2 /email OBJECT_REQUIRED -|"
		"1:3 /Email UNKNOWN_PROPERTY did you mean \"email\"?|"
		"1:3 /custom_password_hash/algoritm UNKNOWN_PROPERTY did you mean \"algorithm\"?|"
		"1:3 /custom_password_hash/algorithm OBJECT_REQUIRED -|"
		"1:3 /email OBJECT_REQUIRED -|"
		"2:5 /Email UNKNOWN_PROPERTY did you mean \"email\"?|"
		"2:5 /emial UNKNOWN_PROPERTY did you mean \"email\"?|"
		"2:5 /email OBJECT_REQUIRED -|");
	assert_int_equal(sum.users_total, 3);
	assert_int_equal(sum.users_invalid, 3);
	assert_int_equal(sum.format, USERS_FORMAT_CSV);

	/* The failed users come back as the JSON users the rows became. */
	uint32_t idx[] = { 1, 2 };
	c.len = 0;
	assert_int_equal(users_extract(path, idx, 2, collect_cb, &c), 0);
	assert_string_equal(c.text,
		"[\n{\"Email\":\"b@b.co\",\"given_name\":\"Bob\\r\\nJr\",\"custom_password_hash\":"
		"{\"algoritm\":\"bcrypt\",\"hash\":{\"value\":\"$2b$10$abc\"}}},\n"
		"{\"Email\":\"c@b.co\",\"given_name\":\"Cy\",\"emial\":\"c@b.co\"}\n]\n");
	unlink(path);

	/* gzip-compressed CSV, valid users into chunks. */
	const char *ok = "email,user_metadata.plan,email_verified\na@b.co,pro,true\nb@b.co,,false\n";
	unsigned char z[512];
	z_stream zs;
	memset(&zs, 0, sizeof(zs));
	assert_int_equal(deflateInit2(&zs, 6, Z_DEFLATED, 16 + MAX_WBITS, 8, Z_DEFAULT_STRATEGY), Z_OK);
	zs.next_in = (unsigned char *)(uintptr_t)ok;
	zs.avail_in = (uInt)strlen(ok);
	zs.next_out = z;
	zs.avail_out = sizeof(z);
	assert_int_equal(deflate(&zs, Z_FINISH), Z_STREAM_END);
	size_t zl = sizeof(z) - zs.avail_out;
	deflateEnd(&zs);
	snprintf(path, sizeof(path), "%s/u.csv.gz", dir);
	write_file(path, z, zl);
	c.len = 0;
	assert_int_equal(users_process(path, &o, dir, &sink, &c, &sum, &f), 0);
	assert_int_equal(c.len, 0);
	assert_int_equal(sum.users_valid, 2);
	assert_true(sum.gzip);
	assert_int_equal(sum.format, USERS_FORMAT_CSV);
	assert_int_equal(sum.chunks, 1);
	char chunk[300];
	assert_int_equal(users_chunk_path(chunk, sizeof(chunk), dir, 0), 0);
	FILE *cf = fopen(chunk, "r");
	assert_non_null(cf);
	char body[256] = "";
	size_t bl = fread(body, 1, sizeof(body) - 1, cf);
	body[bl] = '\0';
	fclose(cf);
	assert_string_equal(body, "[{\"email\":\"a@b.co\",\"user_metadata\":{\"plan\":\"pro\"},\"email_verified\":true},"
	                          "{\"email\":\"b@b.co\",\"email_verified\":false}]");
	assert_int_equal(users_chunks_remove(dir), 0);
	unlink(path);
	rmdir(dir);
	(void)state;
}

/* JSON files keep line 0 in problems (the field is CSV's). */
static int on_problems_json(void *ctx, uint32_t index, uint32_t line, const char *email,
                            const char *user_id, const struct users_problem *p, size_t n,
                            bool warnings_only)
{
	size_t *seen = ctx;
	for (size_t i = 0; i < n; i++) {
		assert_int_equal(p[i].line, 0);
		(*seen)++;
	}
	assert_int_equal(line, 2);
	(void)index; (void)email; (void)user_id; (void)warnings_only;
	return 0;
}

static void test_json_problems_have_no_line(void **state)
{
	char dir[] = "/tmp/users-csv-XXXXXX";
	char path[256];
	const char *json = "[\n{\"emial\":\"a@b.co\"}\n]";
	assert_non_null(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/u.json", dir);
	write_file(path, json, strlen(json));
	struct users_options o;
	users_options_init(&o);
	struct users_sink sink = { .on_problems = on_problems_json };
	struct users_summary sum;
	struct users_failure f;
	size_t seen = 0;
	assert_int_equal(users_process(path, &o, NULL, &sink, &seen, &sum, &f), 0);
	assert_int_equal(seen, 2);
	assert_int_equal(sum.users_invalid, 1);
	unlink(path);
	rmdir(dir);
	(void)state;
}

/* Many rows across every buffer boundary, with long quoted fields. */
static void test_many_rows(void **state)
{
	size_t n = 30000, cap = n * 96 + 400000, o = 0;
	char *s = malloc(cap);
	struct got g;
	o += (size_t)sprintf(s, "email,nickname,user_metadata.note\r\n");
	for (size_t i = 0; i < n; i++) {
		if (i == 12345) {
			/* One 300 KB quoted field with line breaks in it. */
			o += (size_t)sprintf(s + o, "big@example.com,x,\"");
			for (size_t k = 0; k < 3000; k++)
				o += (size_t)sprintf(s + o, "%099zu\n", k);
			o += (size_t)sprintf(s + o, "\"\r\n");
			continue;
		}
		o += (size_t)sprintf(s + o, "u%zu@example.com,\"n, %zu\",\"line\nbreak\"\r\n", i, i);
	}
	read_mem(s, o, &g);
	assert_int_equal(g.rc, 0);
	assert_int_equal(g.n, n);
	assert_int_equal(g.lines[1], 4);

	/* The same through a file: the reader's window moves. */
	char dir[] = "/tmp/users-csv-XXXXXX";
	char path[256];
	assert_non_null(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/many.csv", dir);
	write_file(path, s, o);
	struct users_reader *r;
	struct users_element e;
	uint32_t count = 0, last_line = 0;
	assert_int_equal(users_reader_open(path, &r), 0);
	int rc;
	while ((rc = users_reader_next(r, &e)) > 0) {
		assert_int_equal(e.index, count);
		if (e.index == 12345)
			assert_int_equal(e.min_len, 70 + 3000 * 101);
		else
			assert_non_null(strstr(e.min, "\"note\":\"line\\nbreak\""));
		count++;
		last_line = e.line;
	}
	assert_int_equal(rc, 0);
	assert_int_equal(count, n);
	assert_int_equal(last_line, 2 + (n - 1) * 2 + 3000 - 1);
	users_reader_free(r);
	unlink(path);
	rmdir(dir);
	free(s);
	(void)state;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_quoting),
		cmocka_unit_test(test_line_breaks),
		cmocka_unit_test(test_unicode),
		cmocka_unit_test(test_nested_names),
		cmocka_unit_test(test_types),
		cmocka_unit_test(test_malformed),
		cmocka_unit_test(test_bounds),
		cmocka_unit_test(test_process_hints_and_extract),
		cmocka_unit_test(test_json_problems_have_no_line),
		cmocka_unit_test(test_many_rows),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
