/* uvcurl — libcurl multi on the libuv loop (see uvcurl.h). */
#include "daemon/uvcurl.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

struct uvcurl {
	uv_loop_t *loop;
	CURLM *multi;
	uv_timer_t timer;
	struct uvcurl_request *reqs; /* doubly linked list of running requests */
	size_t nreqs;
	unsigned pending_closes; /* uv handles whose close callback is due */
	bool closing;
	uvcurl_closed_cb closed_cb;
	void *closed_arg;
};

/* One socket curl asked us to watch; freed in the poll's close callback. */
struct uvcurl_sock {
	uv_poll_t poll;
	struct uvcurl *uc;
	curl_socket_t fd;
};

struct uvcurl_request {
	struct uvcurl *uc;
	struct uvcurl_request *prev, *next;
	CURL *easy;
	struct curl_slist *headers;
	curl_mime *mime;
	char *body;       /* copied request body */
	size_t body_len;
	uvcurl_done_cb cb;
	void *arg;

	int result;
	long status;
	bool too_big;
	size_t max_body;
	int body_fd;
	char *rbody;      /* response body, NUL-terminated */
	size_t rlen, rcap, rtotal;
	char *hbuf;       /* header lines "name\0value\0" ... */
	size_t hlen;
	bool hfull;
	char errbuf[CURL_ERROR_SIZE];
};

static void uvcurl_process(struct uvcurl *uc, curl_socket_t fd, int ev_bitmask);

static void close_counted_cb(uv_handle_t *h);

static void uvcurl_maybe_done(struct uvcurl *uc)
{
	if (!uc->closing || uc->pending_closes > 0)
		return;
	uvcurl_closed_cb cb = uc->closed_cb;
	void *arg = uc->closed_arg;
	free(uc);
	if (cb)
		cb(arg);
}

static void sock_close_cb(uv_handle_t *h)
{
	struct uvcurl_sock *s = h->data;
	struct uvcurl *uc = s->uc;
	free(s);
	uc->pending_closes--;
	uvcurl_maybe_done(uc);
}

static void close_counted_cb(uv_handle_t *h)
{
	struct uvcurl *uc = h->data;
	uc->pending_closes--;
	uvcurl_maybe_done(uc);
}

static void poll_cb(uv_poll_t *poll, int status, int events)
{
	struct uvcurl_sock *s = poll->data;
	int flags = 0;
	if (status < 0)
		flags = CURL_CSELECT_ERR;
	if (events & UV_READABLE)
		flags |= CURL_CSELECT_IN;
	if (events & UV_WRITABLE)
		flags |= CURL_CSELECT_OUT;
	uvcurl_process(s->uc, s->fd, flags);
}

static int socket_cb(CURL *easy, curl_socket_t fd, int what, void *userp, void *socketp)
{
	struct uvcurl *uc = userp;
	struct uvcurl_sock *s = socketp;
	(void)easy;

	if (what == CURL_POLL_REMOVE) {
		if (s) {
			curl_multi_assign(uc->multi, fd, NULL);
			uv_poll_stop(&s->poll);
			uc->pending_closes++;
			uv_close((uv_handle_t *)&s->poll, sock_close_cb);
		}
		return 0;
	}
	if (!s) {
		s = calloc(1, sizeof(*s));
		if (!s)
			return -1;
		s->uc = uc;
		s->fd = fd;
		if (uv_poll_init_socket(uc->loop, &s->poll, fd) < 0) {
			free(s);
			return -1;
		}
		s->poll.data = s;
		curl_multi_assign(uc->multi, fd, s);
	}
	int events = 0;
	if (what == CURL_POLL_IN || what == CURL_POLL_INOUT)
		events |= UV_READABLE;
	if (what == CURL_POLL_OUT || what == CURL_POLL_INOUT)
		events |= UV_WRITABLE;
	if (uv_poll_start(&s->poll, events, poll_cb) < 0)
		return -1;
	return 0;
}

static void timer_cb(uv_timer_t *t)
{
	struct uvcurl *uc = t->data;
	uvcurl_process(uc, CURL_SOCKET_TIMEOUT, 0);
}

static int timer_fn(CURLM *multi, long timeout_ms, void *userp)
{
	struct uvcurl *uc = userp;
	(void)multi;
	if (uc->closing)
		return 0;
	if (timeout_ms < 0) {
		uv_timer_stop(&uc->timer);
		return 0;
	}
	/* Never call curl back from inside its own callback: 0 means "soon". */
	if (uv_timer_start(&uc->timer, timer_cb, (uint64_t)timeout_ms, 0) < 0)
		return -1;
	return 0;
}

static void request_unlink(struct uvcurl_request *req)
{
	struct uvcurl *uc = req->uc;
	if (req->prev)
		req->prev->next = req->next;
	else
		uc->reqs = req->next;
	if (req->next)
		req->next->prev = req->prev;
	req->prev = req->next = NULL;
	uc->nreqs--;
}

static void request_free(struct uvcurl_request *req)
{
	if (req->easy) {
		if (req->uc->multi)
			curl_multi_remove_handle(req->uc->multi, req->easy);
		curl_easy_cleanup(req->easy);
	}
	curl_slist_free_all(req->headers);
	curl_mime_free(req->mime);
	/* Request bodies may hold credentials (the token grant): wipe them. */
	if (req->body)
		explicit_bzero(req->body, req->body_len);
	free(req->body);
	free(req->rbody);
	free(req->hbuf);
	free(req);
}

static int map_curl_code(CURLcode c)
{
	switch (c) {
	case CURLE_OK:
		return 0;
	case CURLE_OPERATION_TIMEDOUT:
		return -ETIMEDOUT;
	case CURLE_COULDNT_CONNECT:
		return -ECONNREFUSED;
	case CURLE_COULDNT_RESOLVE_HOST:
	case CURLE_COULDNT_RESOLVE_PROXY:
		return -EHOSTUNREACH;
	case CURLE_GOT_NOTHING:
	case CURLE_SEND_ERROR:
	case CURLE_RECV_ERROR:
	case CURLE_PARTIAL_FILE:
		return -ECONNRESET;
	case CURLE_PEER_FAILED_VERIFICATION:
	case CURLE_SSL_CONNECT_ERROR:
	case CURLE_SSL_CERTPROBLEM:
	case CURLE_SSL_CIPHER:
	case CURLE_SSL_CACERT_BADFILE:
	case CURLE_UNSUPPORTED_PROTOCOL:
	case CURLE_WEIRD_SERVER_REPLY:
	case CURLE_HTTP2:
	case CURLE_URL_MALFORMAT:
		return -EPROTO;
	case CURLE_ABORTED_BY_CALLBACK:
		return -ECANCELED;
	default:
		return -EIO;
	}
}

static void check_done(struct uvcurl *uc)
{
	CURLMsg *msg;
	int left;
	while ((msg = curl_multi_info_read(uc->multi, &left))) {
		if (msg->msg != CURLMSG_DONE)
			continue;
		struct uvcurl_request *req = NULL;
		curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, (char **)&req);
		if (!req)
			continue;
		CURLcode code = msg->data.result;
		curl_easy_getinfo(req->easy, CURLINFO_RESPONSE_CODE, &req->status);
		if (req->too_big)
			req->result = -EMSGSIZE;
		else
			req->result = map_curl_code(code);
		if (req->result < 0 && req->errbuf[0] == '\0')
			snprintf(req->errbuf, sizeof(req->errbuf), "%s", curl_easy_strerror(code));
		request_unlink(req);
		curl_multi_remove_handle(uc->multi, req->easy);
		req->cb(req, req->arg);
		request_free(req);
		if (uc->closing) /* the callback closed us: the multi is gone */
			return;
	}
}

static void uvcurl_process(struct uvcurl *uc, curl_socket_t fd, int ev_bitmask)
{
	int running = 0;
	if (uc->closing)
		return;
	curl_multi_socket_action(uc->multi, fd, ev_bitmask, &running);
	check_done(uc);
}

int uvcurl_new(uv_loop_t *loop, struct uvcurl **ret)
{
	struct uvcurl *uc = calloc(1, sizeof(*uc));
	if (!uc)
		return -ENOMEM;
	/* Reference counted by libcurl; balanced in uvcurl_close(). */
	if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
		free(uc);
		return -EIO;
	}
	uc->loop = loop;
	uc->multi = curl_multi_init();
	if (!uc->multi) {
		curl_global_cleanup();
		free(uc);
		return -ENOMEM;
	}
	if (uv_timer_init(loop, &uc->timer) < 0) {
		curl_multi_cleanup(uc->multi);
		curl_global_cleanup();
		free(uc);
		return -EIO;
	}
	uc->timer.data = uc;
	curl_multi_setopt(uc->multi, CURLMOPT_SOCKETFUNCTION, socket_cb);
	curl_multi_setopt(uc->multi, CURLMOPT_SOCKETDATA, uc);
	curl_multi_setopt(uc->multi, CURLMOPT_TIMERFUNCTION, timer_fn);
	curl_multi_setopt(uc->multi, CURLMOPT_TIMERDATA, uc);
	*ret = uc;
	return 0;
}

void uvcurl_close(struct uvcurl *uc, uvcurl_closed_cb done_cb, void *arg)
{
	if (!uc || uc->closing)
		return;
	/* Complete every running request with -ECANCELED first, while the
	 * multi still exists; `closing` makes new starts fail meanwhile. */
	uc->closing = true;
	while (uc->reqs) {
		struct uvcurl_request *req = uc->reqs;
		request_unlink(req);
		curl_multi_remove_handle(uc->multi, req->easy);
		req->result = -ECANCELED;
		snprintf(req->errbuf, sizeof(req->errbuf), "cancelled");
		req->cb(req, req->arg);
		request_free(req);
	}
	uc->closed_cb = done_cb;
	uc->closed_arg = arg;
	/* The pending closes count the timer; curl_multi_cleanup may still call
	 * socket_cb(REMOVE) for cached connections, which closes their polls. */
	uc->pending_closes++;
	curl_multi_cleanup(uc->multi);
	uc->multi = NULL;
	curl_global_cleanup();
	uv_timer_stop(&uc->timer);
	uv_close((uv_handle_t *)&uc->timer, close_counted_cb);
}

size_t uvcurl_active(const struct uvcurl *uc)
{
	return uc->nreqs;
}

static size_t write_cb(char *ptr, size_t size, size_t nmemb, void *userdata)
{
	struct uvcurl_request *req = userdata;
	size_t n = size * nmemb;
	if (req->rtotal + n > req->max_body) {
		req->too_big = true;
		return 0;
	}
	req->rtotal += n;
	if (req->body_fd >= 0) {
		size_t off = 0;
		while (off < n) {
			ssize_t w = write(req->body_fd, ptr + off, n - off);
			if (w < 0) {
				if (errno == EINTR)
					continue;
				snprintf(req->errbuf, sizeof(req->errbuf), "write: %s", strerror(errno));
				return 0;
			}
			off += (size_t)w;
		}
		return n;
	}
	if (req->rlen + n + 1 > req->rcap) {
		size_t cap = req->rcap ? req->rcap : 1024;
		while (cap < req->rlen + n + 1)
			cap *= 2;
		if (cap > req->max_body + 1)
			cap = req->max_body + 1;
		char *p = realloc(req->rbody, cap);
		if (!p)
			return 0;
		req->rbody = p;
		req->rcap = cap;
	}
	memcpy(req->rbody + req->rlen, ptr, n);
	req->rlen += n;
	req->rbody[req->rlen] = '\0';
	return n;
}

static size_t header_cb(char *buf, size_t size, size_t nitems, void *userdata)
{
	struct uvcurl_request *req = userdata;
	size_t n = size * nitems;
	/* A status line starts a new header block (e.g. after 100 Continue). */
	if (n >= 5 && strncmp(buf, "HTTP/", 5) == 0) {
		req->hlen = 0;
		req->hfull = false;
		return n;
	}
	const char *colon = memchr(buf, ':', n);
	if (!colon || req->hfull)
		return n;
	size_t nlen = (size_t)(colon - buf);
	const char *v = colon + 1;
	const char *end = buf + n;
	while (v < end && (*v == ' ' || *v == '\t'))
		v++;
	while (end > v && (end[-1] == '\r' || end[-1] == '\n' || end[-1] == ' ' || end[-1] == '\t'))
		end--;
	size_t vlen = (size_t)(end - v);
	size_t need = nlen + 1 + vlen + 1;
	if (req->hlen + need > UVCURL_MAX_HEADER_BYTES) {
		req->hfull = true;
		return n;
	}
	if (!req->hbuf) {
		req->hbuf = malloc(UVCURL_MAX_HEADER_BYTES);
		if (!req->hbuf)
			return 0;
	}
	memcpy(req->hbuf + req->hlen, buf, nlen);
	req->hbuf[req->hlen + nlen] = '\0';
	memcpy(req->hbuf + req->hlen + nlen + 1, v, vlen);
	req->hbuf[req->hlen + nlen + 1 + vlen] = '\0';
	req->hlen += need;
	return n;
}

int uvcurl_request_start(struct uvcurl *uc, const struct uvcurl_request_opts *opts,
			 uvcurl_done_cb cb, void *arg, struct uvcurl_request **ret)
{
	int r = -ENOMEM;
	if (!uc || uc->closing || !opts || !opts->url || !cb)
		return -EINVAL;
	struct uvcurl_request *req = calloc(1, sizeof(*req));
	if (!req)
		return -ENOMEM;
	req->uc = uc;
	req->cb = cb;
	req->arg = arg;
	req->body_fd = opts->body_fd;
	req->max_body = opts->max_body ? opts->max_body : UVCURL_DEFAULT_MAX_BODY;
	req->easy = curl_easy_init();
	if (!req->easy)
		goto fail;
	CURL *e = req->easy;
	curl_easy_setopt(e, CURLOPT_URL, opts->url);
	curl_easy_setopt(e, CURLOPT_PRIVATE, req);
	curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(e, CURLOPT_ERRORBUFFER, req->errbuf);
	curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(e, CURLOPT_FOLLOWLOCATION, 0L);
	curl_easy_setopt(e, CURLOPT_SSL_VERIFYPEER, 1L);
	curl_easy_setopt(e, CURLOPT_SSL_VERIFYHOST, 2L);
	if (opts->ca_file)
		curl_easy_setopt(e, CURLOPT_CAINFO, opts->ca_file);
	if (opts->fresh_connect)
		curl_easy_setopt(e, CURLOPT_FRESH_CONNECT, 1L);
	curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS,
			 opts->connect_timeout_ms > 0 ? opts->connect_timeout_ms
						      : UVCURL_DEFAULT_CONNECT_TIMEOUT_MS);
	curl_easy_setopt(e, CURLOPT_TIMEOUT_MS,
			 opts->timeout_ms > 0 ? opts->timeout_ms : UVCURL_DEFAULT_TIMEOUT_MS);
	curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, write_cb);
	curl_easy_setopt(e, CURLOPT_WRITEDATA, req);
	curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, header_cb);
	curl_easy_setopt(e, CURLOPT_HEADERDATA, req);
	curl_easy_setopt(e, CURLOPT_USERAGENT, "auth0-importd");

	struct curl_slist *h = curl_slist_append(NULL, "Expect:");
	if (!h)
		goto fail;
	req->headers = h;
	for (const char *const *p = opts->headers; p && *p; p++) {
		h = curl_slist_append(req->headers, *p);
		if (!h)
			goto fail;
		req->headers = h;
	}
	curl_easy_setopt(e, CURLOPT_HTTPHEADER, req->headers);

	const char *method = opts->method ? opts->method : "GET";
	if (opts->body) {
		req->body = malloc(opts->body_len ? opts->body_len : 1);
		if (!req->body)
			goto fail;
		memcpy(req->body, opts->body, opts->body_len);
		req->body_len = opts->body_len;
		curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)opts->body_len);
		curl_easy_setopt(e, CURLOPT_POSTFIELDS, req->body);
	} else if (opts->mime) {
		curl_easy_setopt(e, CURLOPT_MIMEPOST, opts->mime);
	} else if (strcmp(method, "POST") == 0) {
		curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)0);
		curl_easy_setopt(e, CURLOPT_POSTFIELDS, "");
	}
	if (strcmp(method, "GET") == 0 && !opts->body && !opts->mime)
		curl_easy_setopt(e, CURLOPT_HTTPGET, 1L);
	else if (strcmp(method, "POST") != 0)
		curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, method);

	if (curl_multi_add_handle(uc->multi, e) != CURLM_OK) {
		r = -EIO;
		goto fail;
	}
	/* Success: the mime now belongs to the request. */
	req->mime = opts->mime;
	req->next = uc->reqs;
	if (uc->reqs)
		uc->reqs->prev = req;
	uc->reqs = req;
	uc->nreqs++;
	if (ret)
		*ret = req;
	return 0;
fail:
	if (req->easy) {
		curl_easy_cleanup(req->easy);
		req->easy = NULL;
	}
	curl_slist_free_all(req->headers);
	if (req->body)
		explicit_bzero(req->body, req->body_len);
	free(req->body);
	free(req);
	return r;
}

void uvcurl_request_cancel(struct uvcurl_request *req)
{
	if (!req)
		return;
	request_unlink(req);
	request_free(req);
}

int uvcurl_request_result(const struct uvcurl_request *req)
{
	return req->result;
}

long uvcurl_request_status(const struct uvcurl_request *req)
{
	return req->status;
}

const char *uvcurl_request_header(const struct uvcurl_request *req, const char *name)
{
	size_t off = 0;
	while (off < req->hlen) {
		const char *n = req->hbuf + off;
		const char *v = n + strlen(n) + 1;
		if (strcasecmp(n, name) == 0)
			return v;
		off = (size_t)(v + strlen(v) + 1 - req->hbuf);
	}
	return NULL;
}

const char *uvcurl_request_body(const struct uvcurl_request *req, size_t *ret_len)
{
	if (ret_len)
		*ret_len = req->rlen;
	return req->rbody ? req->rbody : "";
}

size_t uvcurl_request_body_size(const struct uvcurl_request *req)
{
	return req->rtotal;
}

size_t uvcurl_request_upload_size(const struct uvcurl_request *req)
{
	curl_off_t n = 0;
	if (req->easy && curl_easy_getinfo(req->easy, CURLINFO_SIZE_UPLOAD_T, &n) == CURLE_OK && n > 0)
		return (size_t)n;
	return 0;
}

const char *uvcurl_request_error(const struct uvcurl_request *req)
{
	return req->errbuf;
}
