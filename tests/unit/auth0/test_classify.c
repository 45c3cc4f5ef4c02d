/* classify and ratelimit: every answer shape AUTH0.md lists. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "daemon/auth0/classify.h"
#include "daemon/auth0/ratelimit.h"

#define NOW 1700000000000LL

static struct a0_class run(long status, const char *body, const char *ct,
			   const struct ratelimit_info *rl, bool refreshed)
{
	struct a0_answer a = {.status = status, .body = body, .body_len = body ? strlen(body) : 0,
			      .content_type = ct, .token_refreshed = refreshed};
	if (rl)
		a.rl = *rl;
	struct a0_class c;
	a0_classify(&a, NOW, &c);
	return c;
}

static void test_ok(void **state)
{
	(void)state;
	assert_int_equal(run(202, "{\"type\":\"users_import\",\"status\":\"pending\",\"id\":\"job_abc\"}",
			     "application/json; charset=utf-8", NULL, false).verdict, A0_OK);
	assert_int_equal(run(200, "[]", "application/json", NULL, false).verdict, A0_OK);
	assert_int_equal(run(204, NULL, NULL, NULL, false).verdict, A0_OK);
}

static void test_rate_limit_429(void **state)
{
	(void)state;
	const char *b = "{\"statusCode\":429,\"error\":\"Too Many Requests\",\"message\":\"Global limit has been reached\",\"errorCode\":\"too_many_requests\"}";
	struct ratelimit_info rl;
	ratelimit_parse("10", "0", "1700000003", NULL, NOW, &rl);
	struct a0_class c = run(429, b, "application/json", &rl, false);
	assert_int_equal(c.verdict, A0_WAIT);
	assert_int_equal(c.wait_until_ms, 1700000003000LL);
	assert_string_equal(c.message, "Global limit has been reached");
	assert_string_equal(c.error_code, "too_many_requests");
	/* Retry-After wins over the reset. */
	ratelimit_parse("10", "0", "1700000003", "7", NOW, &rl);
	c = run(429, b, "application/json", &rl, false);
	assert_int_equal(c.wait_until_ms, NOW + 7000);
	/* No headers at all: one second. */
	c = run(429, b, "application/json", NULL, false);
	assert_int_equal(c.verdict, A0_WAIT);
	assert_int_equal(c.wait_until_ms, NOW + 1000);
}

static void test_too_many_jobs_429(void **state)
{
	(void)state;
	const char *b = "{\"statusCode\":429,\"error\":\"Too Many Requests\",\"message\":\"There are 2 active import users jobs, please wait until some of them are finished and try again\",\"errorCode\":\"too_many_requests\"}";
	struct ratelimit_info rl;
	ratelimit_parse("10", "8", "1700000001", NULL, NOW, &rl);
	struct a0_class c = run(429, b, "application/json", &rl, false);
	assert_int_equal(c.verdict, A0_TOO_MANY_JOBS);
	/* Without errorCode too. */
	c = run(429, "{\"statusCode\":429,\"error\":\"Too Many Requests\",\"message\":\"There are 2 active import users jobs, please wait until some of them are finished and try again\"}", NULL, NULL, false);
	assert_int_equal(c.verdict, A0_TOO_MANY_JOBS);
}

static void test_5xx(void **state)
{
	(void)state;
	assert_int_equal(run(500, "{\"statusCode\":500,\"error\":\"Internal Server Error\",\"message\":\"oops\"}",
			     "application/json", NULL, false).verdict, A0_RETRY);
	struct a0_class c = run(502, "<html><body><h1>502 Bad Gateway</h1></body></html>", "text/html", NULL, false);
	assert_int_equal(c.verdict, A0_RETRY);
	assert_string_equal(c.message, "HTTP 502 (HTML page)");
	c = run(503, "\n <!DOCTYPE html><html></html>", NULL, NULL, false);
	assert_int_equal(c.verdict, A0_RETRY);
	assert_int_equal(run(504, "", NULL, NULL, false).verdict, A0_RETRY);
}

static void test_transport(void **state)
{
	(void)state;
	int errs[] = {-ETIMEDOUT, -ECONNRESET, -ECONNREFUSED, -EHOSTUNREACH, -EPROTO, -EMSGSIZE, -EIO};
	for (size_t i = 0; i < sizeof(errs) / sizeof(errs[0]); i++) {
		struct a0_answer a = {.result = errs[i]};
		struct a0_class c;
		a0_classify(&a, NOW, &c);
		assert_int_equal(c.verdict, A0_RETRY);
		assert_non_null(strstr(c.message, "transport error"));
	}
}

static void test_413(void **state)
{
	(void)state;
	struct a0_class c = run(413, "{\"statusCode\":413,\"error\":\"Request Entity Too Large\",\"message\":\"Payload content length greater than maximum allowed: 512000\"}", "application/json", NULL, false);
	assert_int_equal(c.verdict, A0_TOO_LARGE);
	assert_string_equal(c.message, "Payload content length greater than maximum allowed: 512000");
}

static void test_400_connection(void **state)
{
	(void)state;
	const char *msgs[] = {
		"The connection does not exist.",
		"Connection must be a database connection.",
		"Connection must be enabled.",
		"Custom Database Connections without import mode are not allowed.",
		"Must provide 'connection_id' as multipart part.",
		"Payload validation error: 'String does not match pattern ^con_[A-Za-z0-9]{16}$' on property connection_id.",
	};
	for (size_t i = 0; i < sizeof(msgs) / sizeof(msgs[0]); i++) {
		char b[512];
		snprintf(b, sizeof(b), "{\"statusCode\":400,\"error\":\"Bad Request\",\"message\":\"%s\",\"errorCode\":\"invalid_body\"}", msgs[i]);
		struct a0_class c = run(400, b, "application/json", NULL, false);
		assert_int_equal(c.verdict, A0_IMPORT_FAILED);
		assert_string_equal(c.message, msgs[i]);
	}
}

static void test_400_chunk(void **state)
{
	(void)state;
	const char *msgs[] = {
		"Must provide 'users' file as multipart part.",
		"Payload validation error: 'Invalid multipart payload format'.",
		"Users file must not be empty.",
	};
	for (size_t i = 0; i < sizeof(msgs) / sizeof(msgs[0]); i++) {
		char b[512];
		snprintf(b, sizeof(b), "{\"statusCode\":400,\"error\":\"Bad Request\",\"message\":\"%s\"}", msgs[i]);
		struct a0_class c = run(400, b, "application/json", NULL, false);
		assert_int_equal(c.verdict, A0_REJECTED);
		assert_string_equal(c.message, msgs[i]);
	}
}

static void test_401_403(void **state)
{
	(void)state;
	const char *b401 = "{\"statusCode\":401,\"error\":\"Unauthorized\",\"message\":\"Expired token received for JSON Web Token validation\"}";
	assert_int_equal(run(401, b401, NULL, NULL, false).verdict, A0_REFRESH);
	struct a0_class c = run(401, b401, NULL, NULL, true);
	assert_int_equal(c.verdict, A0_IMPORT_FAILED);
	assert_string_equal(c.message, "Expired token received for JSON Web Token validation");
	const char *b403 = "{\"statusCode\":403,\"error\":\"Forbidden\",\"message\":\"Insufficient scope; expected any of: create:users.\",\"errorCode\":\"insufficient_scope\"}";
	assert_int_equal(run(403, b403, NULL, NULL, false).verdict, A0_REFRESH);
	c = run(403, b403, NULL, NULL, true);
	assert_int_equal(c.verdict, A0_IMPORT_FAILED);
	assert_string_equal(c.message, "Insufficient scope; expected any of: create:users.");
}

static void test_token_endpoint(void **state)
{
	(void)state;
	struct a0_answer a = {.status = 401, .token_endpoint = true,
			      .body = "{\"error\":\"access_denied\",\"error_description\":\"Unauthorized\"}"};
	a.body_len = strlen(a.body);
	struct a0_class c;
	a0_classify(&a, NOW, &c);
	assert_int_equal(c.verdict, A0_IMPORT_FAILED);
	assert_string_equal(c.message, "Unauthorized");
	assert_string_equal(c.error_code, "access_denied");
	a.status = 403;
	a.body = "{\"error\":\"access_denied\",\"error_description\":\"Service not found: https://x/api/v2\"}";
	a.body_len = strlen(a.body);
	a0_classify(&a, NOW, &c);
	assert_int_equal(c.verdict, A0_IMPORT_FAILED);
	a.status = 429;
	a.body = "{\"error\":\"too_many_requests\",\"error_description\":\"Too many requests\"}";
	a.body_len = strlen(a.body);
	a0_classify(&a, NOW, &c);
	assert_int_equal(c.verdict, A0_WAIT);
}

static void test_404(void **state)
{
	(void)state;
	struct a0_class c = run(404, "{\"statusCode\":404,\"error\":\"Not Found\",\"message\":\"Job not found.\"}", NULL, NULL, false);
	assert_int_equal(c.verdict, A0_NOT_FOUND);
	assert_string_equal(c.message, "Job not found.");
}

static void test_garbage_body(void **state)
{
	(void)state;
	struct a0_class c = run(418, "not json at all", "text/plain", NULL, false);
	assert_int_equal(c.verdict, A0_REJECTED);
	assert_string_equal(c.message, "HTTP 418");
	c = run(400, "{\"message\":\"line\nbreak\"}", NULL, NULL, false);
	assert_string_equal(c.message, "line break");
}

static void test_ratelimit_parse(void **state)
{
	(void)state;
	struct ratelimit_info rl;
	ratelimit_parse("50", "49", "1700000001", NULL, NOW, &rl);
	assert_true(rl.has_limit && rl.has_remaining && rl.has_reset);
	assert_false(rl.has_retry_after);
	assert_int_equal(rl.limit, 50);
	assert_int_equal(rl.remaining, 49);
	assert_int_equal(rl.reset_ms, 1700000001000LL);
	ratelimit_parse(NULL, NULL, NULL, NULL, NOW, &rl);
	assert_false(rl.has_limit || rl.has_remaining || rl.has_reset || rl.has_retry_after);
	ratelimit_parse("x", "-1", "12", "soon", NOW, &rl);
	assert_false(rl.has_limit || rl.has_remaining || rl.has_reset || rl.has_retry_after);
	ratelimit_parse(" 2 ", "0", "1700000000", " 3", NOW, &rl);
	assert_true(rl.has_limit);
	assert_int_equal(rl.limit, 2);
	assert_true(rl.has_retry_after);
	assert_int_equal(rl.retry_after_ms, NOW + 3000);
}

static void test_retry_after_dates(void **state)
{
	(void)state;
	int64_t at;
	/* 1700000000 = Tue, 14 Nov 2023 22:13:20 GMT */
	assert_int_equal(ratelimit_parse_retry_after("Tue, 14 Nov 2023 22:13:20 GMT", 0, &at), 0);
	assert_int_equal(at, 1700000000000LL);
	assert_int_equal(ratelimit_parse_retry_after("Tuesday, 14-Nov-23 22:13:20 GMT", 0, &at), 0);
	assert_int_equal(at, 1700000000000LL);
	assert_int_equal(ratelimit_parse_retry_after("Tue Nov 14 22:13:20 2023", 0, &at), 0);
	assert_int_equal(at, 1700000000000LL);
	assert_int_equal(ratelimit_parse_retry_after("0", NOW, &at), 0);
	assert_int_equal(at, NOW);
	assert_int_equal(ratelimit_parse_retry_after("120", NOW, &at), 0);
	assert_int_equal(at, NOW + 120000);
	assert_int_equal(ratelimit_parse_retry_after("", NOW, &at), -EINVAL);
	assert_int_equal(ratelimit_parse_retry_after("1.5", NOW, &at), -EINVAL);
	assert_int_equal(ratelimit_parse_retry_after("Tue, 14 Nov 2023", NOW, &at), -EINVAL);
	/* HTTP-date through the 429 path. */
	struct ratelimit_info rl;
	ratelimit_parse("2", "0", "1700000009", "Tue, 14 Nov 2023 22:13:25 GMT", NOW, &rl);
	struct a0_class c = run(429, "{\"message\":\"Global limit has been reached\"}", NULL, &rl, false);
	assert_int_equal(c.wait_until_ms, 1700000005000LL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_ok),
		cmocka_unit_test(test_rate_limit_429),
		cmocka_unit_test(test_too_many_jobs_429),
		cmocka_unit_test(test_5xx),
		cmocka_unit_test(test_transport),
		cmocka_unit_test(test_413),
		cmocka_unit_test(test_400_connection),
		cmocka_unit_test(test_400_chunk),
		cmocka_unit_test(test_401_403),
		cmocka_unit_test(test_token_endpoint),
		cmocka_unit_test(test_404),
		cmocka_unit_test(test_garbage_body),
		cmocka_unit_test(test_ratelimit_parse),
		cmocka_unit_test(test_retry_after_dates),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
