#include "sandbox/server.h"

#include "daemon/log.h"
#include "sandbox/admin.h"
#include "sandbox/handlers.h"
#include "sandbox/tenant.h"
#include "sandbox/util.h"

#include <errno.h>
#include <microhttpd.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define ADMIN_MAX_BODY (64u << 20)
#define OTHER_MAX_BODY (1u << 20)

static atomic_bool server_stopping;

struct req {
	struct sbx_buf body;
	size_t total;            /* bytes received, whether kept or not */
	bool over;               /* more than body.max arrived */
	int64_t arrived;
};

static void reply_free(struct reply *r)
{
	json_object_put(r->json);
	if (r->raw_owned)
		free(r->raw);
}

/* Sleeps in small steps so that a stop is not held up by a slow fault. */
static void sleep_interruptible(double seconds)
{
	int64_t until = sbx_now_ms() + (int64_t)(seconds * 1000);
	while (!atomic_load(&server_stopping)) {
		int64_t left = until - sbx_now_ms();
		if (left <= 0)
			break;
		struct timespec ts = { 0, (left > 50 ? 50 : left) * 1000000L };
		nanosleep(&ts, NULL);
	}
}

static enum MHD_Result send_reply(struct MHD_Connection *c, struct reply *r)
{
	const char *data = "";
	size_t len = 0;
	if (r->json) {
		data = json_object_to_json_string_ext(r->json,
			JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE);
		len = strlen(data);
	} else if (r->raw) {
		data = r->raw;
		len = r->raw_len;
	}
	struct MHD_Response *resp = MHD_create_response_from_buffer(len, (void *)data,
		MHD_RESPMEM_MUST_COPY);
	if (!resp)
		return MHD_NO;
	if (r->ctype && r->status != 204)
		MHD_add_response_header(resp, "Content-Type", r->ctype);
	if (r->ratelimit) {
		char v[32];
		snprintf(v, sizeof(v), "%ld", r->rl_limit);
		MHD_add_response_header(resp, "x-ratelimit-limit", v);
		snprintf(v, sizeof(v), "%ld", r->rl_remaining);
		MHD_add_response_header(resp, "x-ratelimit-remaining", v);
		snprintf(v, sizeof(v), "%ld", r->rl_reset);
		MHD_add_response_header(resp, "x-ratelimit-reset", v);
	}
	if (r->retry_after > 0) {
		char v[32];
		snprintf(v, sizeof(v), "%ld", r->retry_after);
		MHD_add_response_header(resp, "Retry-After", v);
	}
	enum MHD_Result ok = MHD_queue_response(c, (unsigned)r->status, resp);
	MHD_destroy_response(resp);
	return ok;
}

static size_t body_max_for(const char *url)
{
	if (strncmp(url, "/__sandbox/", 11) == 0)
		return ADMIN_MAX_BODY;
	if (strcmp(url, "/api/v2/jobs/users-imports") == 0)
		return TENANT_MAX_BODY;
	return OTHER_MAX_BODY;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c, const char *url,
				  const char *method, const char *version, const char *upload_data,
				  size_t *upload_data_size, void **con_cls)
{
	struct tenant *t = cls;
	struct req *rq = *con_cls;
	if (!rq) {
		rq = calloc(1, sizeof(*rq));
		if (!rq)
			return MHD_NO;
		sbx_buf_init(&rq->body, body_max_for(url));
		rq->arrived = sbx_now_ms();
		*con_cls = rq;
		return MHD_YES;
	}
	if (*upload_data_size > 0) {
		rq->total += *upload_data_size;
		if (!rq->over && sbx_buf_append(&rq->body, upload_data, *upload_data_size) < 0)
			rq->over = true;
		*upload_data_size = 0;
		return MHD_YES;
	}

	struct reply r;
	memset(&r, 0, sizeof(r));
	struct request in = {
		.conn = c, .url = url, .method = method,
		.body = rq->body.data ? rq->body.data : "", .body_len = rq->body.len,
		.body_total = rq->total, .body_over = rq->over, .arrived = rq->arrived,
	};
	if (strncmp(url, "/__sandbox/", 11) == 0)
		admin_handle(t, &in, &r);
	else if (strncmp(url, "/__exports/", 11) == 0)
		handlers_export_file(t, &in, &r);
	else
		handlers_tenant(t, &in, &r);

	if (r.fault == FAULT_RESET) {
		reply_free(&r);
		return MHD_NO;
	}
	if (r.slow_seconds > 0)
		sleep_interruptible(r.slow_seconds);
	if (r.fault == FAULT_RESET_AFTER) {
		reply_free(&r);
		return MHD_NO;
	}
	enum MHD_Result ok = send_reply(c, &r);
	reply_free(&r);
	return ok;
}

static void on_completed(void *cls, struct MHD_Connection *c, void **con_cls,
			 enum MHD_RequestTerminationCode toe)
{
	struct req *rq = *con_cls;
	if (!rq)
		return;
	sbx_buf_done(&rq->body);
	free(rq);
	*con_cls = NULL;
}

static void on_mhd_log(void *cls, const char *fmt, va_list ap)
	__attribute__((format(printf, 2, 0)));
static void on_mhd_log(void *cls, const char *fmt, va_list ap)
{
	log_msgv(LOG_LEVEL_DEBUG, "sandbox", fmt, ap);
}

int server_start(struct tenant *t, int listen_fd, bool ipv6, struct MHD_Daemon **ret_daemon)
{
	unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_THREAD_PER_CONNECTION |
			 MHD_USE_ERROR_LOG | MHD_USE_POLL;
	if (ipv6)
		flags |= MHD_USE_IPv6;
	atomic_store(&server_stopping, false);
	struct MHD_Daemon *d = MHD_start_daemon(flags, 0, NULL, NULL, on_request, t,
		MHD_OPTION_LISTEN_SOCKET, listen_fd,
		MHD_OPTION_NOTIFY_COMPLETED, on_completed, NULL,
		MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)60,
		MHD_OPTION_EXTERNAL_LOGGER, on_mhd_log, NULL,
		MHD_OPTION_END);
	if (!d)
		return -EIO;
	*ret_daemon = d;
	return 0;
}

void server_stop(struct MHD_Daemon *d)
{
	atomic_store(&server_stopping, true);
	MHD_stop_daemon(d);
}
