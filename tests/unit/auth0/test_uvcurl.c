/* uvcurl against the scripted responder: status, headers, body limits,
 * timeouts, resets, cancel, close with requests running. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "daemon/uvcurl.h"
#include "tests/unit/auth0/responder.h"

struct fix {
	uv_loop_t loop;
	struct uvcurl *uc;
	struct responder *resp;
	unsigned port;
	char url[256];
	bool closed;
};

struct got {
	int calls;
	int result;
	long status;
	char ctype[128];
	char ratelimit[64];
	char body[4096];
	size_t body_size;
	size_t upload;
};

static void got_cb(struct uvcurl_request *req, void *arg)
{
	struct got *g = arg;
	g->calls++;
	g->result = uvcurl_request_result(req);
	g->status = uvcurl_request_status(req);
	const char *ct = uvcurl_request_header(req, "content-type");
	snprintf(g->ctype, sizeof(g->ctype), "%s", ct ? ct : "");
	const char *rl = uvcurl_request_header(req, "X-RATELIMIT-REMAINING");
	snprintf(g->ratelimit, sizeof(g->ratelimit), "%s", rl ? rl : "");
	size_t len;
	const char *b = uvcurl_request_body(req, &len);
	snprintf(g->body, sizeof(g->body), "%s", b);
	g->body_size = uvcurl_request_body_size(req);
	g->upload = uvcurl_request_upload_size(req);
}

static int setup(void **state)
{
	struct fix *f = calloc(1, sizeof(*f));
	assert_non_null(f);
	assert_int_equal(uv_loop_init(&f->loop), 0);
	assert_int_equal(uvcurl_new(&f->loop, &f->uc), 0);
	assert_int_equal(responder_start(&f->resp, &f->port), 0);
	snprintf(f->url, sizeof(f->url), "http://127.0.0.1:%u/x", f->port);
	*state = f;
	return 0;
}

static void closed_cb(void *arg)
{
	struct fix *f = arg;
	f->closed = true;
}

static int teardown(void **state)
{
	struct fix *f = *state;
	if (f->uc)
		uvcurl_close(f->uc, closed_cb, f);
	uv_run(&f->loop, UV_RUN_DEFAULT);
	assert_true(f->closed);
	assert_int_equal(uv_loop_close(&f->loop), 0);
	responder_stop(f->resp);
	free(f);
	return 0;
}

static void test_get_headers_body(void **state)
{
	struct fix *f = *state;
	struct responder_reply rep = {.status = 201,
				      .headers = {"Content-Type: application/json; charset=utf-8",
						  "x-ratelimit-remaining:  7 "},
				      .body = "{\"a\":1}"};
	responder_push(f->resp, &rep);
	struct got g = {0};
	const char *hdrs[] = {"Authorization: Bearer abc", NULL};
	struct uvcurl_request_opts o = {.url = f->url, .headers = hdrs, .body_fd = -1};
	assert_int_equal(uvcurl_request_start(f->uc, &o, got_cb, &g, NULL), 0);
	assert_int_equal(uvcurl_active(f->uc), 1);
	uv_run(&f->loop, UV_RUN_DEFAULT);
	assert_int_equal(g.calls, 1);
	assert_int_equal(g.result, 0);
	assert_int_equal(g.status, 201);
	assert_string_equal(g.ctype, "application/json; charset=utf-8");
	assert_string_equal(g.ratelimit, "7");
	assert_string_equal(g.body, "{\"a\":1}");
	assert_int_equal(uvcurl_active(f->uc), 0);
	const struct responder_seen *s = responder_seen(f->resp, 0);
	assert_non_null(s);
	assert_string_equal(s->method, "GET");
	assert_string_equal(s->authorization, "Bearer abc");
}

static void test_post_body(void **state)
{
	struct fix *f = *state;
	struct got g = {0};
	struct uvcurl_request_opts o = {.method = "POST", .url = f->url, .body = "k=v&x=y",
					.body_len = 7, .body_fd = -1};
	const char *hdrs[] = {"Content-Type: application/x-www-form-urlencoded", NULL};
	o.headers = hdrs;
	assert_int_equal(uvcurl_request_start(f->uc, &o, got_cb, &g, NULL), 0);
	uv_run(&f->loop, UV_RUN_DEFAULT);
	assert_int_equal(g.result, 0);
	assert_int_equal(g.status, 200);
	const struct responder_seen *s = responder_seen(f->resp, 0);
	assert_string_equal(s->method, "POST");
	assert_int_equal(s->body_len, 7);
	assert_string_equal(s->body, "k=v&x=y");
	assert_int_equal(g.upload, 7);
}

static void test_body_too_big(void **state)
{
	struct fix *f = *state;
	static char big[5000];
	memset(big, 'a', sizeof(big) - 1);
	struct responder_reply rep = {.status = 200, .body = big};
	responder_push(f->resp, &rep);
	struct got g = {0};
	struct uvcurl_request_opts o = {.url = f->url, .max_body = 100, .body_fd = -1};
	assert_int_equal(uvcurl_request_start(f->uc, &o, got_cb, &g, NULL), 0);
	uv_run(&f->loop, UV_RUN_DEFAULT);
	assert_int_equal(g.calls, 1);
	assert_int_equal(g.result, -EMSGSIZE);
}

static void test_body_to_fd(void **state)
{
	struct fix *f = *state;
	struct responder_reply rep = {.status = 200, .body = "0123456789"};
	responder_push(f->resp, &rep);
	char path[] = "/tmp/uvcurl-test-XXXXXX";
	int fd = mkstemp(path);
	assert_true(fd >= 0);
	unlink(path);
	struct got g = {0};
	struct uvcurl_request_opts o = {.url = f->url, .body_fd = fd};
	assert_int_equal(uvcurl_request_start(f->uc, &o, got_cb, &g, NULL), 0);
	uv_run(&f->loop, UV_RUN_DEFAULT);
	assert_int_equal(g.result, 0);
	assert_int_equal(g.body_size, 10);
	assert_string_equal(g.body, "");
	char buf[32] = {0};
	assert_int_equal(pread(fd, buf, sizeof(buf), 0), 10);
	assert_string_equal(buf, "0123456789");
	close(fd);
}

static void test_timeout(void **state)
{
	struct fix *f = *state;
	struct responder_reply rep = {.status = 200, .body = "late", .delay_ms = 600};
	responder_push(f->resp, &rep);
	struct got g = {0};
	struct uvcurl_request_opts o = {.url = f->url, .timeout_ms = 100, .body_fd = -1};
	assert_int_equal(uvcurl_request_start(f->uc, &o, got_cb, &g, NULL), 0);
	uv_run(&f->loop, UV_RUN_DEFAULT);
	assert_int_equal(g.calls, 1);
	assert_int_equal(g.result, -ETIMEDOUT);
}

static void test_reset(void **state)
{
	struct fix *f = *state;
	struct responder_reply rep = {.reset = true};
	responder_push(f->resp, &rep);
	struct got g = {0};
	struct uvcurl_request_opts o = {.url = f->url, .body_fd = -1};
	assert_int_equal(uvcurl_request_start(f->uc, &o, got_cb, &g, NULL), 0);
	uv_run(&f->loop, UV_RUN_DEFAULT);
	assert_int_equal(g.calls, 1);
	assert_int_equal(g.result, -ECONNRESET);
}

static void test_refused(void **state)
{
	struct fix *f = *state;
	struct got g = {0};
	/* Port 1 on loopback: nothing listens there. */
	struct uvcurl_request_opts o = {.url = "http://127.0.0.1:1/", .body_fd = -1};
	assert_int_equal(uvcurl_request_start(f->uc, &o, got_cb, &g, NULL), 0);
	uv_run(&f->loop, UV_RUN_DEFAULT);
	assert_int_equal(g.calls, 1);
	assert_int_equal(g.result, -ECONNREFUSED);
}

static void test_cancel_no_callback(void **state)
{
	struct fix *f = *state;
	struct responder_reply rep = {.status = 200, .delay_ms = 100};
	responder_push(f->resp, &rep);
	struct got g = {0}, g2 = {0};
	struct uvcurl_request *req = NULL;
	struct uvcurl_request_opts o = {.url = f->url, .body_fd = -1};
	assert_int_equal(uvcurl_request_start(f->uc, &o, got_cb, &g, &req), 0);
	assert_int_equal(uvcurl_request_start(f->uc, &o, got_cb, &g2, NULL), 0);
	uvcurl_request_cancel(req);
	assert_int_equal(uvcurl_active(f->uc), 1);
	uv_run(&f->loop, UV_RUN_DEFAULT);
	assert_int_equal(g.calls, 0);
	assert_int_equal(g2.calls, 1);
	assert_int_equal(g2.result, 0);
}

static void test_close_cancels(void **state)
{
	struct fix *f = *state;
	struct responder_reply rep = {.status = 200, .delay_ms = 300};
	responder_push(f->resp, &rep);
	struct got g = {0};
	struct uvcurl_request_opts o = {.url = f->url, .body_fd = -1};
	assert_int_equal(uvcurl_request_start(f->uc, &o, got_cb, &g, NULL), 0);
	/* Let the request reach the server, then close with it running. */
	uv_run(&f->loop, UV_RUN_NOWAIT);
	uvcurl_close(f->uc, closed_cb, f);
	f->uc = NULL;
	assert_int_equal(g.calls, 1);
	assert_int_equal(g.result, -ECANCELED);
	struct uvcurl_request_opts o2 = {.url = "http://127.0.0.1:1/", .body_fd = -1};
	(void)o2;
}

static void test_many_parallel(void **state)
{
	struct fix *f = *state;
	struct got g[20];
	memset(g, 0, sizeof(g));
	struct uvcurl_request_opts o = {.url = f->url, .body_fd = -1};
	for (int i = 0; i < 20; i++)
		assert_int_equal(uvcurl_request_start(f->uc, &o, got_cb, &g[i], NULL), 0);
	uv_run(&f->loop, UV_RUN_DEFAULT);
	for (int i = 0; i < 20; i++) {
		assert_int_equal(g[i].calls, 1);
		assert_int_equal(g[i].status, 200);
	}
	assert_int_equal(responder_count(f->resp), 20);
}

static void test_mime(void **state)
{
	struct fix *f = *state;
	struct got g = {0};
	struct uvcurl_request_opts o = {.method = "POST", .url = f->url, .body_fd = -1};
	CURL *tmp = curl_easy_init();
	curl_mime *m = curl_mime_init(tmp);
	curl_mimepart *p = curl_mime_addpart(m);
	curl_mime_name(p, "field");
	curl_mime_data(p, "value", CURL_ZERO_TERMINATED);
	o.mime = m;
	assert_int_equal(uvcurl_request_start(f->uc, &o, got_cb, &g, NULL), 0);
	uv_run(&f->loop, UV_RUN_DEFAULT);
	curl_easy_cleanup(tmp);
	assert_int_equal(g.status, 200);
	const struct responder_seen *s = responder_seen(f->resp, 0);
	assert_non_null(strstr(s->content_type, "multipart/form-data"));
	assert_non_null(strstr(s->body, "name=\"field\""));
	assert_int_equal(g.upload, s->body_len);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_get_headers_body, setup, teardown),
		cmocka_unit_test_setup_teardown(test_post_body, setup, teardown),
		cmocka_unit_test_setup_teardown(test_body_too_big, setup, teardown),
		cmocka_unit_test_setup_teardown(test_body_to_fd, setup, teardown),
		cmocka_unit_test_setup_teardown(test_timeout, setup, teardown),
		cmocka_unit_test_setup_teardown(test_reset, setup, teardown),
		cmocka_unit_test_setup_teardown(test_refused, setup, teardown),
		cmocka_unit_test_setup_teardown(test_cancel_no_callback, setup, teardown),
		cmocka_unit_test_setup_teardown(test_close_cancels, setup, teardown),
		cmocka_unit_test_setup_teardown(test_many_parallel, setup, teardown),
		cmocka_unit_test_setup_teardown(test_mime, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
