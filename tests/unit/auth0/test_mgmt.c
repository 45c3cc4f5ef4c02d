/* token + mgmt against the scripted responder: multipart parts and size,
 * token single flight, caching by lifetime, 401 drop-and-retry-once, the
 * three job-errors shapes, download without Authorization, the observer. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "daemon/auth0/mgmt.h"
#include "daemon/users/users.h"
#include "tests/unit/auth0/responder.h"

#define T0 1700000000000LL

struct fix {
	uv_loop_t loop;
	struct uvcurl *uc;
	struct a0_client *client;
	struct responder *resp;
	unsigned port;
	char base[128];
	int64_t now;
	bool closed;
	int observed;
	long last_remaining;
	char dir[64];
};

struct got {
	int calls;
	struct a0_class cls;
	long status;
	bool has_job;
	struct a0_job job;
	int nerrors;
	char first_code[64];
	char first_email[128];
	unsigned requests;
	size_t request_bytes;
	size_t download_bytes;
};

static int64_t fake_now(void *arg)
{
	return ((struct fix *)arg)->now;
}

static void observer(const struct a0_observation *obs, void *arg)
{
	struct fix *f = arg;
	f->observed++;
	if (obs->rl->has_remaining)
		f->last_remaining = obs->rl->remaining;
}

static void got_cb(const struct a0_result *res, void *arg)
{
	struct got *g = arg;
	g->calls++;
	g->cls = res->cls;
	g->status = res->status;
	g->has_job = res->has_job;
	g->job = res->job;
	g->job.location = NULL;
	g->requests = res->requests;
	g->request_bytes = res->request_bytes;
	g->download_bytes = res->download_bytes;
	if (res->errors) {
		g->nerrors = (int)json_object_array_length(res->errors);
		json_object *e0 = json_object_array_get_idx(res->errors, 0);
		json_object *errs, *user, *v;
		if (json_object_object_get_ex(e0, "errors", &errs)) {
			json_object *c0 = json_object_array_get_idx(errs, 0);
			if (json_object_object_get_ex(c0, "code", &v))
				snprintf(g->first_code, sizeof(g->first_code), "%s", json_object_get_string(v));
		}
		if (json_object_object_get_ex(e0, "user", &user) &&
		    json_object_object_get_ex(user, "email", &v))
			snprintf(g->first_email, sizeof(g->first_email), "%s", json_object_get_string(v));
	} else {
		g->nerrors = -1;
	}
}

static int setup(void **state)
{
	struct fix *f = calloc(1, sizeof(*f));
	assert_non_null(f);
	f->now = T0;
	assert_int_equal(uv_loop_init(&f->loop), 0);
	assert_int_equal(uvcurl_new(&f->loop, &f->uc), 0);
	assert_int_equal(responder_start(&f->resp, &f->port), 0);
	snprintf(f->base, sizeof(f->base), "http://127.0.0.1:%u/", f->port);
	struct a0_client_config cfg = {
		.base_url = f->base,
		.client_id = "cid",
		.client_secret = "s3cret",
		.now_ms = fake_now,
		.clock_arg = f,
		.timeout_ms = 5000,
	};
	assert_int_equal(a0_client_new(f->uc, &cfg, &f->client), 0);
	a0_client_set_observer(f->client, observer, f);
	snprintf(f->dir, sizeof(f->dir), "/tmp/test-mgmt-XXXXXX");
	assert_non_null(mkdtemp(f->dir));
	*state = f;
	return 0;
}

static void closed_cb(void *arg)
{
	((struct fix *)arg)->closed = true;
}

static int teardown(void **state)
{
	struct fix *f = *state;
	a0_client_free(f->client);
	uvcurl_close(f->uc, closed_cb, f);
	uv_run(&f->loop, UV_RUN_DEFAULT);
	assert_true(f->closed);
	assert_int_equal(uv_loop_close(&f->loop), 0);
	responder_stop(f->resp);
	char cmd[128];
	snprintf(cmd, sizeof(cmd), "rm -rf %s", f->dir);
	assert_int_equal(system(cmd), 0);
	free(f);
	return 0;
}

static const struct responder_reply TOKEN = {
	.status = 200,
	.headers = {"Content-Type: application/json"},
	.body = "{\"access_token\":\"tok1\",\"expires_in\":86400,\"token_type\":\"Bearer\"}",
};
static const struct responder_reply TOKEN2 = {
	.status = 200,
	.headers = {"Content-Type: application/json"},
	.body = "{\"access_token\":\"tok2\",\"expires_in\":86400,\"token_type\":\"Bearer\"}",
};
static const struct responder_reply JOB_PENDING = {
	.status = 202,
	.headers = {"Content-Type: application/json; charset=utf-8", "x-ratelimit-limit: 10",
		    "x-ratelimit-remaining: 9", "x-ratelimit-reset: 1700000001"},
	.body = "{\"type\":\"users_import\",\"status\":\"pending\",\"connection_id\":\"con_A1b2C3d4E5f6G7h8\","
		"\"connection\":\"Username-Password-Authentication\",\"created_at\":\"2023-01-25T17:48:16.543Z\","
		"\"id\":\"job_6nNLiwFZksN0YmRR\",\"external_id\":\"imp_1-0\"}",
};
static const struct responder_reply UNAUTHORIZED = {
	.status = 401,
	.headers = {"Content-Type: application/json; charset=utf-8"},
	.body = "{\"statusCode\":401,\"error\":\"Unauthorized\",\"message\":\"Expired token received for JSON Web Token validation\"}",
};

static void write_file(const char *path, size_t n)
{
	FILE *fp = fopen(path, "w");
	assert_non_null(fp);
	fputc('[', fp);
	for (size_t i = 1; i + 1 < n; i++)
		fputc(' ', fp);
	fputc(']', fp);
	fclose(fp);
}

static void test_submit_multipart(void **state)
{
	struct fix *f = *state;
	responder_push(f->resp, &TOKEN);
	responder_push(f->resp, &JOB_PENDING);
	char path[128];
	snprintf(path, sizeof(path), "%s/chunk.json", f->dir);
	write_file(path, 1000);
	struct a0_import_params p = {.users_path = path, .connection_id = "con_A1b2C3d4E5f6G7h8",
				     .upsert = false, .external_id = "imp_1-0"};
	struct got g = {0};
	assert_int_equal(a0_import_submit(f->client, &p, got_cb, &g, NULL), 0);
	uv_run(&f->loop, UV_RUN_DEFAULT);
	assert_int_equal(g.calls, 1);
	assert_int_equal(g.cls.verdict, A0_OK);
	assert_true(g.has_job);
	assert_string_equal(g.job.id, "job_6nNLiwFZksN0YmRR");
	assert_string_equal(g.job.status, "pending");
	assert_int_equal(g.requests, 1);
	assert_int_equal(responder_count(f->resp), 2);

	const struct responder_seen *tok = responder_seen(f->resp, 0);
	assert_string_equal(tok->url, "/oauth/token");
	assert_non_null(strstr(tok->body, "\"grant_type\":\"client_credentials\""));
	assert_non_null(strstr(tok->body, "\"audience\":\"http:\\/\\/127.0.0.1:"));
	assert_non_null(strstr(tok->body, "\\/api\\/v2\\/\""));

	const struct responder_seen *s = responder_seen(f->resp, 1);
	assert_string_equal(s->method, "POST");
	assert_string_equal(s->url, "/api/v2/jobs/users-imports");
	assert_string_equal(s->authorization, "Bearer tok1");
	assert_non_null(strstr(s->content_type, "multipart/form-data"));
	assert_non_null(strstr(s->body, "name=\"users\"; filename=\"users.json\"\r\nContent-Type: application/json\r\n\r\n["));
	assert_non_null(strstr(s->body, "name=\"connection_id\"\r\n\r\ncon_A1b2C3d4E5f6G7h8\r\n"));
	assert_non_null(strstr(s->body, "name=\"upsert\"\r\n\r\nfalse\r\n"));
	assert_non_null(strstr(s->body, "name=\"external_id\"\r\n\r\nimp_1-0\r\n"));
	assert_non_null(strstr(s->body, "name=\"send_completion_email\"\r\n\r\nfalse\r\n"));
	/* The size the chunk budget relies on is exact. */
	assert_int_equal(s->body_len, a0_import_request_bytes(&p, 1000));
	assert_int_equal(g.request_bytes, s->body_len);
	assert_int_equal(f->observed, 1);
	assert_int_equal(f->last_remaining, 9);
}

static void test_overhead_max(void **state)
{
	(void)state;
	char ext[A0_EXTERNAL_ID_MAX + 1];
	memset(ext, 'x', A0_EXTERNAL_ID_MAX);
	ext[A0_EXTERNAL_ID_MAX] = '\0';
	struct a0_import_params p = {.users_path = "x", .connection_id = "con_A1b2C3d4E5f6G7h8",
				     .upsert = false, .external_id = ext};
	assert_int_equal(a0_import_request_bytes(&p, 0), A0_IMPORT_MULTIPART_OVERHEAD_MAX);
	p.upsert = true;
	p.send_completion_email = true;
	assert_true(a0_import_request_bytes(&p, 0) <= A0_IMPORT_MULTIPART_OVERHEAD_MAX);
	p.external_id = NULL;
	assert_true(a0_import_request_bytes(&p, 0) <= A0_IMPORT_MULTIPART_OVERHEAD_MAX);
}

static void test_full_size_request(void **state)
{
	struct fix *f = *state;
	responder_push(f->resp, &TOKEN);
	responder_push(f->resp, &JOB_PENDING);
	char path[128];
	snprintf(path, sizeof(path), "%s/big.json", f->dir);
	/* The users library's default budget (512000 - its worst-case overhead)
	 * plus our own worst case stays within the limit. */
	size_t n = USERS_REQUEST_MAX - USERS_MULTIPART_OVERHEAD;
	write_file(path, n);
	char ext[A0_EXTERNAL_ID_MAX + 1];
	memset(ext, '7', A0_EXTERNAL_ID_MAX);
	ext[A0_EXTERNAL_ID_MAX] = '\0';
	struct a0_import_params p = {.users_path = path, .connection_id = "con_A1b2C3d4E5f6G7h8",
				     .external_id = ext};
	struct got g = {0};
	assert_int_equal(a0_import_submit(f->client, &p, got_cb, &g, NULL), 0);
	uv_run(&f->loop, UV_RUN_DEFAULT);
	assert_int_equal(g.cls.verdict, A0_OK);
	const struct responder_seen *s = responder_seen(f->resp, 1);
	assert_true(s->body_len <= A0_IMPORT_MAX_REQUEST_BYTES);
	assert_int_equal(s->body_len, a0_import_request_bytes(&p, n));
}

static void test_single_flight(void **state)
{
	struct fix *f = *state;
	struct responder_reply tok = TOKEN;
	tok.delay_ms = 50;
	responder_push(f->resp, &tok);
	struct responder_reply job = {.status = 200, .body = "{\"id\":\"job_a\",\"status\":\"processing\",\"percentage_done\":40,\"time_left_seconds\":12}"};
	responder_set_default(f->resp, &job);
	struct got g[3];
	memset(g, 0, sizeof(g));
	for (int i = 0; i < 3; i++)
		assert_int_equal(a0_job_get(f->client, "job_a", got_cb, &g[i], NULL), 0);
	uv_run(&f->loop, UV_RUN_DEFAULT);
	for (int i = 0; i < 3; i++) {
		assert_int_equal(g[i].calls, 1);
		assert_int_equal(g[i].cls.verdict, A0_OK);
		assert_int_equal(g[i].job.percentage_done, 40);
		assert_int_equal(g[i].job.time_left_seconds, 12);
	}
	assert_int_equal(a0_token_grants(a0_client_token(f->client)), 1);
	assert_int_equal(responder_count(f->resp), 4);
	for (int i = 1; i < 4; i++)
		assert_string_equal(responder_seen(f->resp, (size_t)i)->authorization, "Bearer tok1");
}

static void test_token_cached_until_fifth(void **state)
{
	struct fix *f = *state;
	responder_push(f->resp, &TOKEN);
	struct responder_reply job = {.status = 200, .body = "{\"id\":\"job_a\",\"status\":\"completed\",\"summary\":{\"failed\":1,\"updated\":2,\"inserted\":3,\"total\":6}}"};
	responder_set_default(f->resp, &job);
	struct got g = {0};
	assert_int_equal(a0_job_get(f->client, "job_a", got_cb, &g, NULL), 0);
	uv_run(&f->loop, UV_RUN_DEFAULT);
	assert_true(g.job.has_summary);
	assert_int_equal(g.job.inserted, 3);
	assert_int_equal(g.job.failed, 1);
	/* 4/5 of 86400 s minus a second: still cached. */
	f->now = T0 + (86400LL * 4 / 5 - 1) * 1000;
	assert_int_equal(a0_job_get(f->client, "job_a", got_cb, &g, NULL), 0);
	uv_run(&f->loop, UV_RUN_DEFAULT);
	assert_int_equal(a0_token_grants(a0_client_token(f->client)), 1);
	/* Past it: refreshed once. */
	f->now = T0 + (86400LL * 4 / 5 + 1) * 1000;
	responder_push(f->resp, &TOKEN2);
	assert_int_equal(a0_job_get(f->client, "job_a", got_cb, &g, NULL), 0);
	uv_run(&f->loop, UV_RUN_DEFAULT);
	assert_int_equal(a0_token_grants(a0_client_token(f->client)), 2);
	assert_string_equal(responder_seen(f->resp, responder_count(f->resp) - 1)->authorization,
			    "Bearer tok2");
}

static void test_401_retries_once(void **state)
{
	struct fix *f = *state;
	responder_push(f->resp, &TOKEN);
	responder_push(f->resp, &UNAUTHORIZED);
	responder_push(f->resp, &TOKEN2);
	responder_push(f->resp, &JOB_PENDING);
	char path[128];
	snprintf(path, sizeof(path), "%s/c.json", f->dir);
	write_file(path, 10);
	struct a0_import_params p = {.users_path = path, .connection_id = "con_A1b2C3d4E5f6G7h8"};
	struct got g = {0};
	assert_int_equal(a0_import_submit(f->client, &p, got_cb, &g, NULL), 0);
	uv_run(&f->loop, UV_RUN_DEFAULT);
	assert_int_equal(g.calls, 1);
	assert_int_equal(g.cls.verdict, A0_OK);
	assert_int_equal(g.requests, 2);
	assert_int_equal(responder_count(f->resp), 4);
	assert_string_equal(responder_seen(f->resp, 1)->authorization, "Bearer tok1");
	assert_string_equal(responder_seen(f->resp, 3)->authorization, "Bearer tok2");
	/* The resent multipart is whole. */
	assert_int_equal(responder_seen(f->resp, 3)->body_len, a0_import_request_bytes(&p, 10));
}

static void test_401_twice_fails_import(void **state)
{
	struct fix *f = *state;
	responder_push(f->resp, &TOKEN);
	responder_push(f->resp, &UNAUTHORIZED);
	responder_push(f->resp, &TOKEN2);
	responder_push(f->resp, &UNAUTHORIZED);
	struct got g = {0};
	assert_int_equal(a0_job_get(f->client, "job_x", got_cb, &g, NULL), 0);
	uv_run(&f->loop, UV_RUN_DEFAULT);
	assert_int_equal(g.calls, 1);
	assert_int_equal(g.cls.verdict, A0_IMPORT_FAILED);
	assert_string_equal(g.cls.message, "Expired token received for JSON Web Token validation");
	assert_int_equal(responder_count(f->resp), 4);
}

static void test_grant_refused(void **state)
{
	struct fix *f = *state;
	struct responder_reply bad = {.status = 401, .body = "{\"error\":\"access_denied\",\"error_description\":\"Unauthorized\"}"};
	responder_push(f->resp, &bad);
	struct got g[2];
	memset(g, 0, sizeof(g));
	assert_int_equal(a0_job_get(f->client, "job_x", got_cb, &g[0], NULL), 0);
	assert_int_equal(a0_job_get(f->client, "job_y", got_cb, &g[1], NULL), 0);
	uv_run(&f->loop, UV_RUN_DEFAULT);
	for (int i = 0; i < 2; i++) {
		assert_int_equal(g[i].calls, 1);
		assert_int_equal(g[i].cls.verdict, A0_IMPORT_FAILED);
		assert_string_equal(g[i].cls.message, "Unauthorized");
	}
	assert_int_equal(responder_count(f->resp), 1);
	assert_string_equal(a0_token_last_error(a0_client_token(f->client)), "Unauthorized");
	/* The secret is nowhere in what a status page may show. */
	assert_null(strstr(a0_token_last_error(a0_client_token(f->client)), "s3cret"));
}

static void test_errors_shapes(void **state)
{
	struct fix *f = *state;
	responder_push(f->resp, &TOKEN);
	struct responder_reply list = {
		.status = 200, .headers = {"Content-Type: application/json"},
		.body = "[{\"user\":{\"email\":\"a@example.com\",\"password_hash\":\"*****\"},\"errors\":[{\"code\":\"DUPLICATED_USER\",\"message\":\"The user already exist and upsert parameter is false\"}]},"
			"{\"user\":{\"email\":\"b@example.com\"},\"errors\":[{\"code\":\"FORMAT\",\"message\":\"x\",\"path\":\"identities[0].profileData.email\"}]}]"};
	struct responder_reply none = {.status = 204};
	struct responder_reply job = {.status = 200, .body = "{\"type\":\"users_import\",\"id\":\"job_z\",\"status\":\"failed\",\"status_details\":\"Failed to parse users file JSON when importing users.\"}"};
	responder_push(f->resp, &list);
	struct got g = {0};
	assert_int_equal(a0_job_errors(f->client, "job_z", got_cb, &g, NULL), 0);
	uv_run(&f->loop, UV_RUN_DEFAULT);
	assert_int_equal(g.cls.verdict, A0_OK);
	assert_int_equal(g.nerrors, 2);
	assert_string_equal(g.first_code, "DUPLICATED_USER");
	assert_string_equal(g.first_email, "a@example.com");
	assert_string_equal(responder_seen(f->resp, 1)->url, "/api/v2/jobs/job_z/errors");

	responder_push(f->resp, &none);
	memset(&g, 0, sizeof(g));
	assert_int_equal(a0_job_errors(f->client, "job_z", got_cb, &g, NULL), 0);
	uv_run(&f->loop, UV_RUN_DEFAULT);
	assert_int_equal(g.cls.verdict, A0_OK);
	assert_int_equal(g.status, 204);
	assert_int_equal(g.nerrors, -1);
	assert_false(g.has_job);

	responder_push(f->resp, &job);
	memset(&g, 0, sizeof(g));
	assert_int_equal(a0_job_errors(f->client, "job_z", got_cb, &g, NULL), 0);
	uv_run(&f->loop, UV_RUN_DEFAULT);
	assert_int_equal(g.cls.verdict, A0_OK);
	assert_int_equal(g.nerrors, -1);
	assert_true(g.has_job);
	assert_string_equal(g.job.status, "failed");
	assert_string_equal(g.job.status_details, "Failed to parse users file JSON when importing users.");
}

static void test_bad_job_id(void **state)
{
	struct fix *f = *state;
	struct got g = {0};
	assert_int_equal(a0_job_get(f->client, "../oauth/token", got_cb, &g, NULL), -EINVAL);
	assert_int_equal(a0_job_get(f->client, "", got_cb, &g, NULL), -EINVAL);
	assert_int_equal(g.calls, 0);
}

static void test_download_without_auth(void **state)
{
	struct fix *f = *state;
	responder_push(f->resp, &TOKEN);
	struct responder_reply exp = {.status = 200, .body = "{\"type\":\"users_export\",\"status\":\"pending\",\"id\":\"job_e\",\"format\":\"json\"}"};
	responder_push(f->resp, &exp);
	struct got g = {0};
	assert_int_equal(a0_export_create(f->client, "{\"format\":\"json\",\"fields\":[{\"name\":\"email\"}]}", got_cb, &g, NULL), 0);
	uv_run(&f->loop, UV_RUN_DEFAULT);
	assert_int_equal(g.cls.verdict, A0_OK);
	assert_string_equal(g.job.type, "users_export");
	const struct responder_seen *s = responder_seen(f->resp, 1);
	assert_string_equal(s->url, "/api/v2/jobs/users-exports");
	assert_string_equal(s->content_type, "application/json");

	struct responder_reply file = {.status = 200, .body = "GZIPDATA"};
	responder_push(f->resp, &file);
	char path[128];
	snprintf(path, sizeof(path), "%s/export.gz", f->dir);
	int fd = open(path, O_CREAT | O_WRONLY | O_TRUNC, 0600);
	assert_true(fd >= 0);
	char url[256];
	snprintf(url, sizeof(url), "http://127.0.0.1:%u/signed/file.gz?sig=abc", f->port);
	memset(&g, 0, sizeof(g));
	assert_int_equal(a0_download(f->client, url, fd, 1000, got_cb, &g, NULL), 0);
	uv_run(&f->loop, UV_RUN_DEFAULT);
	close(fd);
	assert_int_equal(g.cls.verdict, A0_OK);
	assert_int_equal(g.download_bytes, 8);
	s = responder_seen(f->resp, 2);
	assert_string_equal(s->url, "/signed/file.gz");
	assert_string_equal(s->authorization, "");
	/* An expired link: 403 with XML from the file host. */
	struct responder_reply expired = {.status = 403, .body = "<?xml version=\"1.0\"?><Error><Code>AccessDenied</Code></Error>"};
	responder_push(f->resp, &expired);
	fd = open(path, O_CREAT | O_WRONLY | O_TRUNC, 0600);
	memset(&g, 0, sizeof(g));
	assert_int_equal(a0_download(f->client, url, fd, 1000, got_cb, &g, NULL), 0);
	uv_run(&f->loop, UV_RUN_DEFAULT);
	close(fd);
	assert_int_not_equal(g.cls.verdict, A0_OK);
	assert_int_not_equal(g.cls.verdict, A0_REFRESH);
	assert_int_equal(a0_token_grants(a0_client_token(f->client)), 1);
}

static void test_cancel(void **state)
{
	struct fix *f = *state;
	struct responder_reply tok = TOKEN;
	tok.delay_ms = 50;
	responder_push(f->resp, &tok);
	struct got g = {0}, g2 = {0};
	struct a0_call *call;
	assert_int_equal(a0_job_get(f->client, "job_a", got_cb, &g, &call), 0);
	assert_int_equal(a0_job_get(f->client, "job_b", got_cb, &g2, NULL), 0);
	a0_call_cancel(call);
	uv_run(&f->loop, UV_RUN_DEFAULT);
	assert_int_equal(g.calls, 0);
	assert_int_equal(g2.calls, 1);
}

static void test_429_wait(void **state)
{
	struct fix *f = *state;
	responder_push(f->resp, &TOKEN);
	struct responder_reply rl = {
		.status = 429,
		.headers = {"x-ratelimit-limit: 2", "x-ratelimit-remaining: 0", "x-ratelimit-reset: 1700000005"},
		.body = "{\"statusCode\":429,\"error\":\"Too Many Requests\",\"message\":\"Global limit has been reached\",\"errorCode\":\"too_many_requests\"}"};
	responder_push(f->resp, &rl);
	struct got g = {0};
	assert_int_equal(a0_job_get(f->client, "job_a", got_cb, &g, NULL), 0);
	uv_run(&f->loop, UV_RUN_DEFAULT);
	assert_int_equal(g.cls.verdict, A0_WAIT);
	assert_int_equal(g.cls.wait_until_ms, 1700000005000LL);
	assert_int_equal(f->last_remaining, 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_submit_multipart, setup, teardown),
		cmocka_unit_test(test_overhead_max),
		cmocka_unit_test_setup_teardown(test_full_size_request, setup, teardown),
		cmocka_unit_test_setup_teardown(test_single_flight, setup, teardown),
		cmocka_unit_test_setup_teardown(test_token_cached_until_fifth, setup, teardown),
		cmocka_unit_test_setup_teardown(test_401_retries_once, setup, teardown),
		cmocka_unit_test_setup_teardown(test_401_twice_fails_import, setup, teardown),
		cmocka_unit_test_setup_teardown(test_grant_refused, setup, teardown),
		cmocka_unit_test_setup_teardown(test_errors_shapes, setup, teardown),
		cmocka_unit_test_setup_teardown(test_bad_job_id, setup, teardown),
		cmocka_unit_test_setup_teardown(test_download_without_auth, setup, teardown),
		cmocka_unit_test_setup_teardown(test_cancel, setup, teardown),
		cmocka_unit_test_setup_teardown(test_429_wait, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
