/* token — client-credentials grant, cached, single-flight (see token.h). */
#include "daemon/auth0/token.h"

#include "daemon/auth0/conn.h"

#include <errno.h>
#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define TOKEN_MAX_BODY (64u * 1024u)

struct a0_token_waiter {
	struct a0_token *t;
	struct a0_token_waiter *prev, *next;
	a0_token_cb cb;
	void *arg;
	unsigned gen; /* the grant generation it waits for */
};

struct a0_token {
	struct uvcurl *uc;
	char *token_url;
	char *audience;
	char *client_id;
	char *client_secret;
	struct a0_conn conn;

	char *header;          /* "Authorization: Bearer …" or NULL */
	int64_t obtained_ms;   /* when the grant was asked for */
	int64_t expires_ms;
	struct uvcurl_request *req; /* the grant in flight */
	int64_t req_sent_ms;
	struct a0_token_waiter *waiters;
	unsigned grants;
	unsigned gen;          /* bumped when a grant's answer is handed out */
	char last_error[A0_MESSAGE_MAX];
};

int64_t a0_clock_realtime_ms(void *arg)
{
	(void)arg;
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void wipe_free(char *s)
{
	if (s) {
		explicit_bzero(s, strlen(s));
		free(s);
	}
}

static int64_t now_of(const struct a0_token *t)
{
	return a0_conn_now(&t->conn);
}

int a0_token_new(struct uvcurl *uc, const struct a0_token_config *cfg, struct a0_token **ret)
{
	if (!uc || !cfg || !cfg->base_url || !cfg->client_id || !cfg->client_secret)
		return -EINVAL;
	struct a0_token *t = calloc(1, sizeof(*t));
	if (!t)
		return -ENOMEM;
	t->uc = uc;
	int r = a0_conn_init(&t->conn, cfg->ca_file, cfg->connect_timeout_ms, cfg->timeout_ms,
			     cfg->now_ms, cfg->clock_arg);
	if (asprintf(&t->token_url, "%s/oauth/token", cfg->base_url) < 0)
		t->token_url = NULL;
	if (cfg->audience && cfg->audience[0])
		t->audience = strdup(cfg->audience);
	else if (asprintf(&t->audience, "%s/api/v2/", cfg->base_url) < 0)
		t->audience = NULL;
	t->client_id = strdup(cfg->client_id);
	t->client_secret = strdup(cfg->client_secret);
	if (r < 0 || !t->token_url || !t->audience || !t->client_id || !t->client_secret) {
		a0_token_free(t);
		return -ENOMEM;
	}
	*ret = t;
	return 0;
}

void a0_token_free(struct a0_token *t)
{
	if (!t)
		return;
	if (t->req)
		uvcurl_request_cancel(t->req);
	while (t->waiters) {
		struct a0_token_waiter *w = t->waiters;
		t->waiters = w->next;
		free(w);
	}
	free(t->token_url);
	free(t->audience);
	free(t->client_id);
	wipe_free(t->client_secret);
	wipe_free(t->header);
	a0_conn_done(&t->conn);
	free(t);
}

static bool token_valid(const struct a0_token *t, int64_t now)
{
	if (!t->header)
		return false;
	int64_t lifetime = t->expires_ms - t->obtained_ms;
	return t->expires_ms - now > lifetime / 5;
}

int a0_token_peek(struct a0_token *t, const char **ret_header)
{
	if (!token_valid(t, now_of(t)))
		return -ENOENT;
	*ret_header = t->header;
	return 0;
}

void a0_token_drop(struct a0_token *t, const char *header_used)
{
	if (t->header && header_used && strcmp(t->header, header_used) == 0) {
		wipe_free(t->header);
		t->header = NULL;
		t->expires_ms = 0;
	}
}

int64_t a0_token_expires_at(const struct a0_token *t)
{
	return t->header ? t->expires_ms : 0;
}

unsigned a0_token_grants(const struct a0_token *t)
{
	return t->grants;
}

const char *a0_token_last_error(const struct a0_token *t)
{
	return t->last_error;
}

static void waiter_unlink(struct a0_token_waiter *w)
{
	struct a0_token *t = w->t;
	if (w->prev)
		w->prev->next = w->next;
	else
		t->waiters = w->next;
	if (w->next)
		w->next->prev = w->prev;
}

/* Calls every waiter of this grant once. A callback may cancel other
 * waiters or add new ones; new ones wait for the next grant. */
static void notify_waiters(struct a0_token *t, int result, const struct a0_class *cls)
{
	unsigned gen = t->gen++;
	for (;;) {
		struct a0_token_waiter *w = t->waiters;
		while (w && w->gen != gen)
			w = w->next;
		if (!w)
			break;
		waiter_unlink(w);
		a0_token_cb cb = w->cb;
		void *arg = w->arg;
		free(w);
		cb(result, cls, arg);
	}
}

static int parse_grant(struct a0_token *t, const char *body, size_t len, int64_t sent_ms)
{
	int r = -EBADMSG;
	json_tokener *tok = json_tokener_new();
	if (!tok)
		return -ENOMEM;
	json_object *o = json_tokener_parse_ex(tok, body, (int)len);
	json_tokener_free(tok);
	json_object *at = NULL, *exp = NULL;
	if (!o || !json_object_is_type(o, json_type_object) ||
	    !json_object_object_get_ex(o, "access_token", &at) ||
	    !json_object_is_type(at, json_type_string) || json_object_get_string_len(at) == 0)
		goto out;
	int64_t expires_in = 86400;
	if (json_object_object_get_ex(o, "expires_in", &exp) &&
	    (json_object_is_type(exp, json_type_int) || json_object_is_type(exp, json_type_double)))
		expires_in = json_object_get_int64(exp);
	if (expires_in <= 0)
		expires_in = 60;
	char *h = NULL;
	if (asprintf(&h, "Authorization: Bearer %s", json_object_get_string(at)) < 0) {
		r = -ENOMEM;
		goto out;
	}
	wipe_free(t->header);
	t->header = h;
	t->obtained_ms = sent_ms;
	t->expires_ms = sent_ms + expires_in * 1000;
	r = 0;
out:
	if (o) {
		/* The parsed copy holds the token too. */
		if (at && json_object_is_type(at, json_type_string))
			explicit_bzero((char *)json_object_get_string(at),
				       (size_t)json_object_get_string_len(at));
		json_object_put(o);
	}
	return r;
}

static void grant_done(struct uvcurl_request *req, void *arg)
{
	struct a0_token *t = arg;
	t->req = NULL;
	size_t len = 0;
	const char *body = uvcurl_request_body(req, &len);
	struct a0_answer a = {
		.result = uvcurl_request_result(req),
		.status = uvcurl_request_status(req),
		.body = body,
		.body_len = len,
		.content_type = uvcurl_request_header(req, "content-type"),
		.token_endpoint = true,
	};
	ratelimit_parse(uvcurl_request_header(req, "x-ratelimit-limit"),
			uvcurl_request_header(req, "x-ratelimit-remaining"),
			uvcurl_request_header(req, "x-ratelimit-reset"),
			uvcurl_request_header(req, "retry-after"), now_of(t), &a.rl);
	struct a0_class cls;
	a0_classify(&a, now_of(t), &cls);
	if (cls.verdict == A0_OK) {
		int r = parse_grant(t, body, len, t->req_sent_ms);
		if (r == 0) {
			t->last_error[0] = '\0';
			/* The raw answer holds the token: wipe it. */
			explicit_bzero((char *)body, len);
			notify_waiters(t, 0, &cls);
			return;
		}
		explicit_bzero((char *)body, len);
		cls.verdict = A0_RETRY;
		snprintf(cls.message, sizeof(cls.message), "token answer without access_token");
	}
	snprintf(t->last_error, sizeof(t->last_error), "%s", cls.message);
	notify_waiters(t, -EIO, &cls);
}

static int grant_start(struct a0_token *t)
{
	json_object *o = json_object_new_object();
	if (!o)
		return -ENOMEM;
	json_object_object_add(o, "grant_type", json_object_new_string("client_credentials"));
	json_object_object_add(o, "client_id", json_object_new_string(t->client_id));
	json_object_object_add(o, "client_secret", json_object_new_string(t->client_secret));
	json_object_object_add(o, "audience", json_object_new_string(t->audience));
	size_t blen = 0;
	const char *body = json_object_to_json_string_length(o, JSON_C_TO_STRING_PLAIN, &blen);
	const char *hdrs[] = {"Content-Type: application/json", "Accept: application/json", NULL};
	struct uvcurl_request_opts opts = {
		.method = "POST",
		.url = t->token_url,
		.headers = hdrs,
		.body = body,
		.body_len = blen,
		.max_body = 64 * 1024,
		.body_fd = -1,
	};
	a0_conn_request_opts(&t->conn, &opts);
	t->req_sent_ms = now_of(t);
	int r = uvcurl_request_start(t->uc, &opts, grant_done, t, &t->req);
	explicit_bzero((char *)body, blen);
	json_object_put(o);
	if (r == 0)
		t->grants++;
	return r;
}

int a0_token_wait(struct a0_token *t, a0_token_cb cb, void *arg, struct a0_token_waiter **ret)
{
	if (token_valid(t, now_of(t)))
		return -EALREADY;
	struct a0_token_waiter *w = calloc(1, sizeof(*w));
	if (!w)
		return -ENOMEM;
	if (!t->req) {
		int r = grant_start(t);
		if (r < 0) {
			free(w);
			return r;
		}
	}
	w->t = t;
	w->gen = t->gen;
	w->cb = cb;
	w->arg = arg;
	w->next = t->waiters;
	if (t->waiters)
		t->waiters->prev = w;
	t->waiters = w;
	if (ret)
		*ret = w;
	return 0;
}

void a0_token_waiter_cancel(struct a0_token_waiter *w)
{
	if (!w)
		return;
	waiter_unlink(w);
	free(w);
}
