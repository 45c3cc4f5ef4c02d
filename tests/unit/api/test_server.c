/* server: the handler contract end to end on a real socket — synchronous,
 * suspended-then-answered, streamed raw and multipart bodies, limits, and a
 * request still suspended when the server stops. A client thread speaks raw
 * HTTP; the loop runs on the main thread. */
#include "api/server.h"
#include "daemon/config.h"
#include "daemon/metrics.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <json-c/json.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

struct fixture {
	uv_loop_t loop;
	uv_async_t done;
	struct api_server *srv;
	struct config *cfg;
	struct metrics *metrics;
	int port;
	/* hang route */
	struct api_request *hung;
	int gone_calls;
	int hung_ctx_freed;
	/* async route */
	uv_timer_t timer;
	struct api_request *pending;
	/* results from the client thread */
	char resp[8][4096];
};

static struct fixture *fx;

/* ---- routes ---- */

static int h_sync(struct api_request *req, void *ud)
{
	(void)ud;
	char buf[64];
	const char *q = api_request_query(req, "q");
	const char *h = api_request_header(req, "x-test");
	api_response_header(req, "X-Echo", h ? h : "none");
	snprintf(buf, sizeof(buf), "q=%s id=%s", q ? q : "-", api_request_param(req, "id", buf + 40, 20) ? buf + 40 : "-");
	return api_respond_text(req, 200, "text/plain", buf, strlen(buf));
}

static void on_timer(uv_timer_t *t)
{
	struct fixture *f = t->data;
	struct json_object *o = json_object_new_object();
	json_object_object_add(o, "late", json_object_new_boolean(1));
	api_response_header(f->pending, "Location", "/v1/later");
	assert_int_equal(api_respond_json(f->pending, 202, o), 0);
	assert_int_equal(api_respond_text(f->pending, 200, "text/plain", "x", 1), -EALREADY);
	api_request_unref(f->pending);
	f->pending = NULL;
	uv_close((uv_handle_t *)t, NULL);
}

static int h_async(struct api_request *req, void *ud)
{
	struct fixture *f = ud;
	f->pending = api_request_ref(req);
	uv_timer_init(&f->loop, &f->timer);
	f->timer.data = f;
	uv_timer_start(&f->timer, on_timer, 1, 0);
	return 0; /* suspended */
}

static void hang_gone(void *arg)
{
	struct fixture *f = arg;
	f->gone_calls++;
}

static void hang_ctx_free(void *p)
{
	int *freed = p;
	(*freed)++;
}

static int h_hang(struct api_request *req, void *ud)
{
	struct fixture *f = ud;
	/* The ctx stands for work a flow still does after the request ended
	 * (an upload being made durable in a worker). */
	api_request_set_ctx(req, &f->hung_ctx_freed, hang_ctx_free);
	f->hung = api_request_ref(req);
	api_request_on_gone(req, hang_gone, f);
	return 0;
}

struct upload {
	uint64_t raw;
	uint64_t file;
	char fields[256];
	char filename[64];
	int file_ends;
	int aborted;
};

static void upload_free(void *p) { free(p); }

static int up_begin(struct api_request *req, void *ud)
{
	(void)ud;
	const char *bad = api_request_query(req, "bad");
	if (bad)
		return api_respond_problem(req, 400, "bad-field", "bad=%s", bad);
	api_request_set_ctx(req, calloc(1, sizeof(struct upload)), upload_free);
	api_request_set_body_limit(req, 1000);
	return 0;
}

static int up_raw(struct api_request *req, const char *data, size_t len)
{
	(void)data;
	((struct upload *)api_request_ctx(req))->raw += len;
	return 0;
}

static int up_field(struct api_request *req, const char *name, const char *value, size_t len)
{
	struct upload *u = api_request_ctx(req);
	size_t used = strlen(u->fields);
	snprintf(u->fields + used, sizeof(u->fields) - used, "%s=%s(%zu);", name, value, len);
	return 0;
}

static int up_file(struct api_request *req, const char *field, const char *filename, const char *ctype,
		   const char *data, size_t len, uint64_t off)
{
	(void)field;
	(void)ctype;
	(void)data;
	struct upload *u = api_request_ctx(req);
	assert_int_equal(off, u->file);
	snprintf(u->filename, sizeof(u->filename), "%s", filename);
	u->file += len;
	return 0;
}

static int up_file_end(struct api_request *req, const char *field)
{
	(void)field;
	((struct upload *)api_request_ctx(req))->file_ends++;
	return 0;
}

static void up_abort(struct api_request *req)
{
	struct upload *u = api_request_ctx(req);
	if (u)
		u->aborted++;
}

static const struct api_body_sink up_sink = {
	.begin = up_begin, .raw = up_raw, .field = up_field,
	.file_data = up_file, .file_end = up_file_end, .abort = up_abort,
};

static int h_upload(struct api_request *req, void *ud)
{
	(void)ud;
	struct upload *u = api_request_ctx(req);
	char buf[512];
	snprintf(buf, sizeof(buf), "raw=%llu file=%llu name=%s ends=%d fields=%s",
		 (unsigned long long)u->raw, (unsigned long long)u->file, u->filename, u->file_ends, u->fields);
	return api_respond_text(req, 200, "text/plain", buf, strlen(buf));
}

static int h_json(struct api_request *req, void *ud)
{
	(void)ud;
	size_t len;
	const char *b = api_request_body(req, &len);
	char buf[64];
	snprintf(buf, sizeof(buf), "len=%zu first=%c", len, b ? b[0] : '-');
	return api_respond_text(req, 200, "text/plain", buf, strlen(buf));
}

static int h_fail(struct api_request *req, void *ud)
{
	(void)req;
	(void)ud;
	return -EIO;
}

static const struct api_route test_routes[] = {
	{ "GET", "/t/sync/{id}", h_sync, NULL, 0 },
	{ "GET", "/t/async", h_async, NULL, 0 },
	{ "GET", "/t/hang", h_hang, NULL, 0 },
	{ "POST", "/t/upload", h_upload, &up_sink, 0 },
	{ "POST", "/t/json", h_json, NULL, 0 },
	{ "GET", "/t/fail", h_fail, NULL, 0 },
};

/* ---- client thread ---- */

static void http(const char *request, size_t len, char *out, size_t outlen)
{
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons((uint16_t)fx->port) };
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_int_equal(connect(fd, (struct sockaddr *)&a, sizeof(a)), 0);
	size_t off = 0;
	while (off < len) {
		ssize_t n = send(fd, request + off, len - off, MSG_NOSIGNAL);
		if (n <= 0)
			break; /* the server may answer and close early */
		off += (size_t)n;
	}
	size_t got = 0;
	for (;;) {
		ssize_t n = recv(fd, out + got, outlen - 1 - got, 0);
		if (n <= 0)
			break;
		got += (size_t)n;
	}
	out[got] = '\0';
	close(fd);
}

static void *client(void *arg)
{
	(void)arg;
	const char *r0 = "GET /t/sync/abc?q=1%202 HTTP/1.1\r\nHost: x\r\nX-Test: hi\r\nConnection: close\r\n\r\n";
	http(r0, strlen(r0), fx->resp[0], sizeof(fx->resp[0]));
	const char *r1 = "GET /t/async HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
	http(r1, strlen(r1), fx->resp[1], sizeof(fx->resp[1]));
	const char *r2 = "POST /t/upload HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
			 "Content-Length: 10\r\nConnection: close\r\n\r\n0123456789";
	http(r2, strlen(r2), fx->resp[2], sizeof(fx->resp[2]));
	const char *body = "--XyZ\r\nContent-Disposition: form-data; name=\"connection_id\"\r\n\r\ncon_1\r\n"
			   "--XyZ\r\nContent-Disposition: form-data; name=\"users\"; filename=\"u.json\"\r\n"
			   "Content-Type: application/octet-stream\r\n\r\n[{\"email\":\"a@b.c\"}]\r\n"
			   "--XyZ\r\nContent-Disposition: form-data; name=\"upsert\"\r\n\r\ntrue\r\n--XyZ--\r\n";
	char r3[1024];
	int n = snprintf(r3, sizeof(r3), "POST /t/upload HTTP/1.1\r\nHost: x\r\n"
			 "Content-Type: multipart/form-data; boundary=XyZ\r\nContent-Length: %zu\r\n"
			 "Connection: close\r\n\r\n%s", strlen(body), body);
	http(r3, (size_t)n, fx->resp[3], sizeof(fx->resp[3]));
	const char *r4 = "POST /t/upload HTTP/1.1\r\nHost: x\r\nContent-Length: 5000\r\nConnection: close\r\n\r\n";
	http(r4, strlen(r4), fx->resp[4], sizeof(fx->resp[4]));
	const char *r5 = "POST /t/upload?bad=yes HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nConnection: close\r\n\r\nabc";
	http(r5, strlen(r5), fx->resp[5], sizeof(fx->resp[5]));
	const char *r6 = "POST /t/json HTTP/1.1\r\nHost: x\r\nContent-Length: 7\r\nConnection: close\r\n\r\n{\"a\":1}";
	http(r6, strlen(r6), fx->resp[6], sizeof(fx->resp[6]));
	const char *r7 = "GET /t/fail HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
	http(r7, strlen(r7), fx->resp[7], sizeof(fx->resp[7]));
	/* A request that stays suspended; the client walks away. */
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons((uint16_t)fx->port) };
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_int_equal(connect(fd, (struct sockaddr *)&a, sizeof(a)), 0);
	const char *r8 = "GET /t/hang HTTP/1.1\r\nHost: x\r\n\r\n";
	assert_int_equal(send(fd, r8, strlen(r8), MSG_NOSIGNAL), (ssize_t)strlen(r8));
	/* Wait until the handler has run: a follow-up request on another
	 * connection is served after it (one loop, in order of arrival is not
	 * guaranteed, so poll /t/sync until hung is set). */
	for (int i = 0; i < 1000 && !__atomic_load_n(&fx->hung, __ATOMIC_SEQ_CST); i++) {
		char tmp[1024];
		http(r0, strlen(r0), tmp, sizeof(tmp));
	}
	close(fd);
	uv_async_send(&fx->done);
	return NULL;
}

static void on_done(uv_async_t *a)
{
	struct fixture *f = a->data;
	api_server_stop(f->srv);
	f->srv = NULL;
	uv_close((uv_handle_t *)a, NULL);
}

static void test_contract(void **state)
{
	(void)state;
	struct fixture f;
	memset(&f, 0, sizeof(f));
	fx = &f;
	char err[256];
	char *argv[] = { "importd", "--listen", "127.0.0.1:0", NULL };
	char *env[] = { "HOME=/tmp", NULL };
	assert_int_equal(config_load(3, argv, env, NULL, &f.cfg, err, sizeof(err)), 0);
	assert_int_equal(uv_loop_init(&f.loop), 0);
	assert_int_equal(metrics_new(&f.metrics), 0);
	struct api_server_options o = { .loop = &f.loop, .listen = "127.0.0.1:0", .config = f.cfg,
					.metrics = f.metrics };
	assert_int_equal(api_server_start(&o, &f.srv, err, sizeof(err)), 0);
	assert_int_equal(api_server_add_routes(f.srv, test_routes, sizeof(test_routes) / sizeof(test_routes[0]), &f), 0);
	const char *addr = api_server_address(f.srv);
	assert_non_null(strstr(addr, "127.0.0.1:"));
	f.port = atoi(strrchr(addr, ':') + 1);
	assert_true(f.port > 0);
	uv_async_init(&f.loop, &f.done, on_done);
	f.done.data = &f;
	pthread_t t;
	assert_int_equal(pthread_create(&t, NULL, client, NULL), 0);
	uv_run(&f.loop, UV_RUN_DEFAULT);
	pthread_join(t, NULL);

	assert_non_null(strstr(f.resp[0], "HTTP/1.1 200"));
	assert_non_null(strstr(f.resp[0], "X-Echo: hi"));
	assert_non_null(strstr(f.resp[0], "q=1 2 id=abc"));
	assert_non_null(strstr(f.resp[1], "HTTP/1.1 202"));
	assert_non_null(strstr(f.resp[1], "Location: /v1/later"));
	assert_non_null(strstr(f.resp[1], "{\"late\":true}"));
	assert_non_null(strstr(f.resp[2], "raw=10 file=0"));
	assert_non_null(strstr(f.resp[3], "HTTP/1.1 200"));
	assert_non_null(strstr(f.resp[3], "raw=0 file=19 name=u.json ends=1 fields=connection_id=con_1(5);upsert=true(4);"));
	assert_non_null(strstr(f.resp[4], "HTTP/1.1 413"));
	assert_non_null(strstr(f.resp[4], "application/problem+json"));
	assert_non_null(strstr(f.resp[4], "/problems/upload-too-large"));
	assert_non_null(strstr(f.resp[5], "HTTP/1.1 400"));
	assert_non_null(strstr(f.resp[5], "bad=yes"));
	assert_non_null(strstr(f.resp[6], "len=7 first={"));
	assert_non_null(strstr(f.resp[7], "HTTP/1.1 500"));
	assert_non_null(strstr(f.resp[7], "/problems/internal"));

	/* The hung request saw on_gone once at stop; our reference keeps its
	 * memory valid and answering it is refused. */
	assert_non_null(f.hung);
	assert_int_equal(f.gone_calls, 1);
	assert_true(api_request_gone(f.hung));
	assert_int_equal(api_respond_text(f.hung, 200, "text/plain", "late", 4), -ECONNRESET);
	/* Its ctx lives as long as the last reference, not just the connection. */
	assert_int_equal(f.hung_ctx_freed, 0);
	assert_ptr_equal(api_request_ctx(f.hung), &f.hung_ctx_freed);
	api_request_unref(f.hung);
	assert_int_equal(f.hung_ctx_freed, 1);

	assert_int_equal(uv_loop_close(&f.loop), 0);
	metrics_free(f.metrics);
	config_unref(f.cfg);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_contract),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
