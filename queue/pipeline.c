/* pipeline — tenants, the scheduler tick, submits and splits (see pipeline.h). */
#include "queue/pipeline.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "daemon/config.h"
#include "daemon/log.h"
#include "daemon/metrics.h"
#include "daemon/secret.h"
#include "queue/pipeline_int.h"
#include "queue/store.h"

#define RESCAN_MS 1000

int64_t pipeline_now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int64_t now_s(void)
{
	return pipeline_now_ms() / 1000;
}

/* --- tenants -------------------------------------------------------------- */

static const char *kind_name(enum a0_call_kind k)
{
	switch (k) {
	case A0_CALL_IMPORT: return "users-imports";
	case A0_CALL_JOB: return "job";
	case A0_CALL_JOB_ERRORS: return "job-errors";
	case A0_CALL_EXPORT: return "users-exports";
	case A0_CALL_DOWNLOAD: return "download";
	case A0_CALL_USERS_BY_EMAIL: return "users-by-email";
	case A0_CALL_USER_DELETE: return "users-delete";
	}
	return "other";
}

static void observer(const struct a0_observation *obs, void *arg)
{
	struct ptenant *t = arg;
	struct pipeline *p = t->p;
	if (p->m_requests) {
		char st[16];
		if (obs->status)
			snprintf(st, sizeof(st), "%ld", obs->status);
		else
			snprintf(st, sizeof(st), "error");
		metric_add(p->m_requests, 1, (const char *[]){t->name, kind_name(obs->kind), st});
		if (obs->cls->verdict == A0_WAIT)
			metric_add(p->m_429, 1, (const char *[]){t->name, "rate"});
		else if (obs->cls->verdict == A0_TOO_MANY_JOBS)
			metric_add(p->m_429, 1, (const char *[]){t->name, "jobs"});
	}
	int64_t now = pipeline_now_ms();
	int64_t wait_until = obs->cls->verdict == A0_WAIT ? obs->cls->wait_until_ms : 0;
	sched_observe(t->st, now, obs->status ? obs->rl : NULL, wait_until);
	if (obs->cls->verdict != A0_OK)
		snprintf(t->last_error, sizeof(t->last_error), "%s", obs->cls->message);
	if (obs->request_bytes > A0_IMPORT_MAX_REQUEST_BYTES)
		log_error("auth0", "tenant %s: a request body of %zu bytes was sent (over %u)", t->name,
			  obs->request_bytes, A0_IMPORT_MAX_REQUEST_BYTES);
}

struct ptenant *pipeline_tenant(struct pipeline *p, const char *name)
{
	for (struct ptenant *t = p->tenants; t; t = t->next)
		if (strcmp(t->name, name) == 0)
			return t;
	return NULL;
}

static int client_new(struct pipeline *p, struct ptenant *t, const struct tenant_config *tc,
		      struct a0_client **ret)
{
	struct a0_client_config cc = {
		.base_url = tc->base_url,
		.audience = tc->audience,
		.client_id = tc->client_id,
		.client_secret = secret_value(tc->client_secret),
	};
	int r = a0_client_new(p->uc, &cc, ret);
	if (r == 0)
		a0_client_set_observer(*ret, observer, t);
	return r;
}

static void tenant_creds_free(struct ptenant *t)
{
	free(t->base_url);
	free(t->client_id);
	free(t->audience);
	secret_free(t->secret);
	t->base_url = t->client_id = t->audience = NULL;
	t->secret = NULL;
}

/* Remembers what the tenant's client is made from. */
static int tenant_creds_set(struct ptenant *t, const struct tenant_config *tc)
{
	struct ptenant n = {0};
	if (!(n.base_url = strdup(tc->base_url)) || !(n.client_id = strdup(tc->client_id)) ||
	    (tc->audience && !(n.audience = strdup(tc->audience))) ||
	    secret_dup(tc->client_secret, &n.secret) < 0) {
		tenant_creds_free(&n);
		return -ENOMEM;
	}
	tenant_creds_free(t);
	t->base_url = n.base_url;
	t->client_id = n.client_id;
	t->audience = n.audience;
	t->secret = n.secret;
	return 0;
}

static bool str_same(const char *a, const char *b)
{
	return (!a && !b) || (a && b && strcmp(a, b) == 0);
}

static bool tenant_creds_same(const struct ptenant *t, const struct tenant_config *tc)
{
	const char *sv = secret_value(tc->client_secret);
	return str_same(t->base_url, tc->base_url) && str_same(t->client_id, tc->client_id) &&
	       str_same(t->audience, tc->audience) &&
	       secret_equal(t->secret, sv, secret_len(tc->client_secret));
}

/* Clients replaced at a reload go once their last call has ended. From a
 * timer, never from inside one of their callbacks. */
static void tenant_retired_reap(struct ptenant *t)
{
	size_t k = 0;
	for (size_t i = 0; i < t->nretired; i++) {
		if (a0_client_idle(t->retired[i]))
			a0_client_free(t->retired[i]);
		else
			t->retired[k++] = t->retired[i];
	}
	t->nretired = k;
}

static void tenant_free(struct ptenant *t)
{
	pipeline_slots_free(t);
	a0_client_free(t->client);
	for (size_t i = 0; i < t->nretired; i++)
		a0_client_free(t->retired[i]);
	free(t->retired);
	tenant_creds_free(t);
	free(t);
}

static int tenant_add(struct pipeline *p, const struct tenant_config *tc)
{
	if (!tc->base_url || !tc->client_id || !tc->client_secret) {
		log_warn("queue", "tenant %s has no client credentials: its imports wait, ignoring",
			 tc->name);
		return 0;
	}
	struct ptenant *t = calloc(1, sizeof(*t));
	if (!t)
		return -ENOMEM;
	t->p = p;
	snprintf(t->name, sizeof(t->name), "%s", tc->name);
	int r = tenant_creds_set(t, tc);
	if (r < 0 || (r = client_new(p, t, tc, &t->client)) < 0) {
		tenant_creds_free(t);
		free(t);
		return r;
	}
	struct sched_tenant_config sc = {
		.max_concurrent_jobs = tc->max_concurrent_jobs,
		.max_rps = tc->max_rps,
	};
	r = sched_tenant_add(p->sched, tc->name, &sc, &t->st);
	if (r < 0) {
		tenant_free(t);
		return r;
	}
	t->next = p->tenants;
	p->tenants = t;
	log_info("queue", "tenant %s: %s, at most %u concurrent jobs", t->name, tc->base_url,
		 sc.max_concurrent_jobs ? sc.max_concurrent_jobs : SCHED_DEFAULT_MAX_CONCURRENT_JOBS);
	return 0;
}

/* --- lifecycle ------------------------------------------------------------------ */

static void tick_cb(uv_timer_t *h);
static void rescan_cb(uv_timer_t *h);

int pipeline_new(uv_loop_t *loop, struct store *store, const struct config *cfg,
		 struct pipeline **ret)
{
	struct pipeline *p = calloc(1, sizeof(*p));
	if (!p)
		return -ENOMEM;
	p->loop = loop;
	p->store = store;
	p->state_dir = strdup(store_state_dir(store));
	int r = -ENOMEM;
	if (!p->state_dir)
		goto fail;
	struct sched_config sc = {.seed = (uint64_t)pipeline_now_ms() ^ (uint64_t)getpid()};
	if ((r = sched_new(&sc, &p->sched)) < 0)
		goto fail;
	if ((r = uvcurl_new(loop, &p->uc)) < 0)
		goto fail;
	for (size_t i = 0; i < cfg->n_tenants; i++)
		if ((r = tenant_add(p, &cfg->tenants[i])) < 0)
			goto fail;
	uv_timer_init(loop, &p->tick_timer);
	uv_timer_init(loop, &p->rescan_timer);
	p->tick_timer.data = p;
	p->rescan_timer.data = p;
	*ret = p;
	return 0;
fail:
	log_error("queue", "cannot set up the Auth0 pipeline: %s", strerror(-r));
	if (p->uc)
		uvcurl_close(p->uc, NULL, NULL);
	pipeline_free(p);
	return r;
}

int pipeline_start(struct pipeline *p)
{
	int n = recover_load(p, true);
	if (n < 0)
		return n;
	p->started = true;
	uv_timer_start(&p->rescan_timer, rescan_cb, RESCAN_MS, RESCAN_MS);
	pipeline_tick(p);
	return n;
}

void pipeline_kick(struct pipeline *p)
{
	if (!p || !p->started || p->stopping)
		return;
	recover_load(p, false);
	pipeline_tick(p);
}

void pipeline_set_config(struct pipeline *p, const struct config *cfg)
{
	if (!p || p->stopping)
		return;
	for (size_t i = 0; i < cfg->n_tenants; i++) {
		const struct tenant_config *tc = &cfg->tenants[i];
		struct ptenant *t = pipeline_tenant(p, tc->name);
		if (!t) {
			if (tenant_add(p, tc) < 0)
				log_warn("queue", "tenant %s: cannot add it, ignoring", tc->name);
			continue;
		}
		struct sched_tenant_config sc = {
			.max_concurrent_jobs = tc->max_concurrent_jobs,
			.max_rps = tc->max_rps,
		};
		sched_tenant_configure(t->st, &sc);
		tenant_retired_reap(t);
		/* Only when credentials, base URL or audience changed: new calls
		 * use a new client (one token grant); calls running on the old
		 * one finish there. The same config keeps the client and its
		 * token. */
		if (!tc->base_url || !tc->client_id || !tc->client_secret) {
			log_warn("queue", "tenant %s: keeping the old credentials", tc->name);
			continue;
		}
		if (tenant_creds_same(t, tc))
			continue;
		struct a0_client *n;
		if (client_new(p, t, tc, &n) < 0) {
			log_warn("queue", "tenant %s: keeping the old credentials", tc->name);
			continue;
		}
		struct a0_client **rs = realloc(t->retired, (t->nretired + 1) * sizeof(*rs));
		if (!rs || tenant_creds_set(t, tc) < 0) {
			if (rs)
				t->retired = rs;
			a0_client_free(n);
			continue;
		}
		t->retired = rs;
		t->retired[t->nretired++] = t->client;
		t->client = n;
		log_info("queue", "tenant %s: new client credentials taken", tc->name);
	}
	pipeline_tick(p);
}

static void close_handles(struct pipeline *p)
{
	if (p->closed)
		return;
	p->closed = true;
	/* No call runs any more: the clients go (their token grants too),
	 * then libcurl's handles. The tenants stay until pipeline_free for
	 * work still finishing in the thread pool or the store. */
	for (struct ptenant *t = p->tenants; t; t = t->next) {
		a0_client_free(t->client);
		t->client = NULL;
		for (size_t i = 0; i < t->nretired; i++)
			a0_client_free(t->retired[i]);
		t->nretired = 0;
	}
	uv_timer_stop(&p->tick_timer);
	uv_timer_stop(&p->rescan_timer);
	uv_close((uv_handle_t *)&p->tick_timer, NULL);
	uv_close((uv_handle_t *)&p->rescan_timer, NULL);
	uvcurl_close(p->uc, NULL, NULL);
	p->uc = NULL;
}

static bool calls_running(const struct pipeline *p)
{
	for (struct pimport *imp = p->imports; imp; imp = imp->next)
		for (struct pchunk *c = imp->chunks; c; c = c->next)
			if (c->call)
				return true;
	return false;
}

static void drain_cb(uv_timer_t *h)
{
	struct pipeline *p = h->data;
	if (!calls_running(p))
		close_handles(p);
}

void pipeline_drain_check(struct pipeline *p)
{
	/* From the loop, never from inside a callback of what it closes. */
	if (p->stopping && !p->closed)
		uv_timer_start(&p->tick_timer, drain_cb, 0, 0);
}

void pipeline_stop(struct pipeline *p)
{
	if (!p)
		return;
	if (!p->stopping) {
		/* Drain: nothing new leaves; the calls running finish and their
		 * outcomes are stored (the caller's shutdown_timeout bounds it). */
		p->stopping = true;
		uv_timer_stop(&p->tick_timer);
		uv_timer_stop(&p->rescan_timer);
		log_info("queue", "stopping: %s", calls_running(p) ? "letting the Auth0 calls in flight finish"
								    : "no Auth0 call in flight");
		pipeline_drain_check(p);
		return;
	}
	/* Second call: abandon what still runs. Its chunks stay submitting
	 * (resubmitted at the next start) or submitted (polled again). */
	for (struct pimport *imp = p->imports; imp; imp = imp->next)
		for (struct pchunk *c = imp->chunks; c; c = c->next)
			if (c->call) {
				log_info("queue", "chunk %s-%" PRId64 ": abandoning its Auth0 call", imp->id,
					 c->chunk_no);
				a0_call_cancel(c->call);
				c->call = NULL;
				c->pending--;
			}
	close_handles(p);
}

void pipeline_free(struct pipeline *p)
{
	if (!p)
		return;
	while (p->imports)
		pimport_free(p->imports);
	while (p->tenants) {
		struct ptenant *t = p->tenants;
		p->tenants = t->next;
		tenant_free(t);
	}
	sched_free(p->sched);
	free(p->state_dir);
	free(p);
}

int pipeline_tenant_status(struct pipeline *p, const char *tenant,
			   struct pipeline_tenant_status *ret)
{
	struct ptenant *t = p ? pipeline_tenant(p, tenant) : NULL;
	if (!t || !t->client)
		return -ENOENT;
	int64_t now = pipeline_now_ms();
	ret->jobs_active = sched_tenant_active(t->st);
	ret->cap = sched_tenant_cap(t->st, now);
	ret->tokens = sched_tenant_tokens(t->st, now);
	ret->rate = sched_tenant_rate(t->st);
	ret->blocked_until_ms = sched_tenant_blocked_until(t->st);
	ret->token_expires_ms = a0_token_expires_at(a0_client_token(t->client));
	ret->last_error = t->last_error;
	return 0;
}

static json_object *time_or_null(int64_t ms)
{
	if (ms <= 0)
		return NULL;
	char buf[32];
	import_format_time(ms / 1000, buf, sizeof(buf));
	return json_object_new_string(buf);
}

void pipeline_count_retry(struct pchunk *c, const char *endpoint)
{
	struct pipeline *p = c->p;
	if (p->m_retries)
		metric_add(p->m_retries, 1, (const char *[]){c->imp->t->name, endpoint});
}

void pipeline_count_job_end(struct pchunk *c, int64_t now)
{
	struct pipeline *p = c->p;
	if (p->m_job_seconds && c->submitted_at_ms > 0 && now >= c->submitted_at_ms)
		metric_observe(p->m_job_seconds, (double)(now - c->submitted_at_ms) / 1000.0,
			       (const char *[]){c->imp->t->name});
}

static void collect(struct metrics *m, void *arg)
{
	(void)m;
	struct pipeline *p = arg;
	if (p->stopping)
		return;
	for (struct ptenant *t = p->tenants; t; t = t->next)
		metric_set(p->m_in_flight, (double)sched_tenant_active(t->st), (const char *[]){t->name});
}

int pipeline_set_metrics(struct pipeline *p, struct metrics *m)
{
	static const char *const l3[] = {"tenant", "endpoint", "status"};
	static const char *const lkind[] = {"tenant", "kind"};
	static const char *const lend[] = {"tenant", "endpoint"};
	static const char *const l1[] = {"tenant"};
	static const double buckets[] = {1, 5, 15, 30, 60, 120, 300, 600, 1800, 3600, 7200};
	p->metrics = m;
	p->m_requests = metrics_counter(m, "auth0_requests_total",
					"Auth0 Management API answers by endpoint and status", 3, l3);
	p->m_429 = metrics_counter(m, "auth0_429_total",
				   "Auth0 429 answers: rate limit or too many active import jobs", 2, lkind);
	p->m_retries = metrics_counter(m, "auth0_retries_total",
				       "Auth0 calls retried after a transient failure", 2, lend);
	p->m_job_seconds = metrics_histogram(m, "auth0_job_duration_seconds",
					     "Auth0 import jobs, from submit to seen ended", 1, l1,
					     sizeof(buckets) / sizeof(buckets[0]), buckets);
	p->m_in_flight = metrics_gauge(m, "auth0_jobs_in_flight",
				       "Auth0 import jobs active or being submitted", 1, l1);
	if (!p->m_requests || !p->m_429 || !p->m_retries || !p->m_job_seconds || !p->m_in_flight)
		return -ENOMEM;
	return metrics_add_collector(m, collect, p);
}

void pipeline_status_json(struct json_object *status, void *arg)
{
	struct pipeline *p = arg;
	if (!p || p->stopping)
		return;
	json_object *all = json_object_new_object();
	int64_t now = pipeline_now_ms();
	for (struct ptenant *t = p->tenants; t; t = t->next) {
		struct pipeline_tenant_status ts;
		if (pipeline_tenant_status(p, t->name, &ts) < 0)
			continue;
		json_object *o = json_object_new_object();
		json_object_object_add(o, "jobs_in_flight", json_object_new_int((int)ts.jobs_active));
		json_object_object_add(o, "max_concurrent_jobs", json_object_new_int((int)ts.cap));
		json_object *rl = json_object_new_object();
		json_object_object_add(rl, "tokens", json_object_new_double(ts.tokens));
		json_object_object_add(rl, "refill_per_second", json_object_new_double(ts.rate));
		json_object_object_add(rl, "waiting_until",
				       ts.blocked_until_ms > now ? time_or_null(ts.blocked_until_ms) : NULL);
		json_object_object_add(o, "rate_limit", rl);
		json_object *tok = json_object_new_object();
		json_object_object_add(tok, "valid_until", time_or_null(ts.token_expires_ms));
		const char *te = a0_token_last_error(a0_client_token(t->client));
		json_object_object_add(tok, "last_error", te[0] ? json_object_new_string(te) : NULL);
		json_object_object_add(o, "token", tok);
		json_object_object_add(o, "last_error",
				       ts.last_error[0] ? json_object_new_string(ts.last_error) : NULL);
		json_object_object_add(all, t->name, o);
	}
	json_object_object_add(status, "auth0", all);
}

/* --- chunks ------------------------------------------------------------------- */

static void pchunk_free(struct pchunk *c)
{
	c->imp->refs--;
	free(c);
}

void pchunk_release(struct pchunk *c)
{
	if (c->pending > 0)
		c->pending--;
	if (c->dead && c->pending == 0)
		pchunk_free(c);
}

void pchunk_end(struct pchunk *c)
{
	if (c->dead)
		return;
	if (c->item) {
		sched_item_remove(c->item);
		c->item = NULL;
	}
	struct pimport *imp = c->imp;
	for (struct pchunk **pp = &imp->chunks; *pp; pp = &(*pp)->next)
		if (*pp == c) {
			*pp = c->next;
			imp->nchunks--;
			break;
		}
	c->next = NULL;
	c->dead = true;
	if (c->pending == 0)
		pchunk_free(c);
}

void pchunk_retire(struct pchunk *c)
{
	if (c->item) {
		sched_item_remove(c->item);
		c->item = NULL;
	}
}

void pipeline_observe_none(struct pchunk *c, const struct a0_result *res)
{
	/* No Management request went out (the token grant failed, or the call
	 * could not start): the bucket still expects an answer. */
	if (!res || res->requests == 0)
		sched_observe(c->imp->t->st, pipeline_now_ms(), NULL,
			      res && res->cls.verdict == A0_WAIT ? res->cls.wait_until_ms : 0);
}

/* --- the tick ------------------------------------------------------------------- */

void pipeline_tick(struct pipeline *p)
{
	if (!p->started || p->stopping)
		return;
	/* Never re-enter from a callback: run from the loop, soon. */
	uv_timer_start(&p->tick_timer, tick_cb, 0, 0);
}

static void submit_begin(struct pchunk *c);

static void tick_cb(uv_timer_t *h)
{
	struct pipeline *p = h->data;
	if (p->stopping)
		return;
	int64_t now = pipeline_now_ms();
	int64_t wake = INT64_MAX;
	for (;;) {
		struct sched_action a;
		sched_next(p->sched, now, &a, &wake);
		if (a.kind == SCHED_DO_NOTHING)
			break;
		struct pchunk *c = a.user;
		switch (a.kind) {
		case SCHED_DO_SUBMIT:
			submit_begin(c);
			break;
		case SCHED_DO_POLL:
			poller_poll(c);
			break;
		case SCHED_DO_FETCH_ERRORS:
			poller_fetch_errors(c);
			break;
		case SCHED_DO_EXPIRE:
			poller_expire(c);
			break;
		case SCHED_DO_NOTHING:
			break;
		}
		if (p->stopping)
			return;
	}
	pipeline_slots_serve(p, pipeline_now_ms(), &wake);
	if (p->stopping)
		return;
	if (wake != INT64_MAX) {
		int64_t d = wake - pipeline_now_ms();
		if (d < 0)
			d = 0;
		uv_timer_start(&p->tick_timer, tick_cb, (uint64_t)d, 0);
	}
}

static void rescan_cb(uv_timer_t *h)
{
	struct pipeline *p = h->data;
	if (p->stopping)
		return;
	for (struct ptenant *t = p->tenants; t; t = t->next)
		if (t->nretired)
			tenant_retired_reap(t);
	recover_load(p, false);
	pipeline_tick(p);
}

/* --- store writes ---------------------------------------------------------------- */

enum pwrite_op {
	PW_SUBMITTING,
	PW_SUBMITTED,
	PW_REQUEUE,
	PW_FAIL_CHUNK,
	PW_FAIL_IMPORT,
	PW_SPLIT,
};

struct pwrite {
	struct pchunk *c;
	enum pwrite_op op;
	char import_id[IMPORT_ID_LEN + 1];
	int64_t chunk_no;
	char job_id[128];
	char message[A0_MESSAGE_MAX + 64];
	char *problem;         /* PW_FAIL_IMPORT */
	int64_t next_attempt_ms;
	bool mark_resubmitted;
	bool retryable;        /* PW_FAIL_CHUNK: transient, an operator retry may requeue it */
	int64_t keep, keep_bytes, rest_bytes, new_no;
	char keep_tmp[4096], keep_path[4096];
	int changed;           /* chunk_set_state_tx's 0/1 */
};

static int pwrite_fn(struct sqlite3 *db, void *ctx)
{
	struct pwrite *w = ctx;
	int64_t now = now_s();
	int r = 0;
	switch (w->op) {
	case PW_SUBMITTING:
		r = chunk_set_state_tx(db, w->import_id, w->chunk_no, CHUNK_SUBMITTING, NULL, now, NULL);
		break;
	case PW_SUBMITTED: {
		struct chunk_update u = {.job_id = w->job_id};
		r = chunk_set_state_tx(db, w->import_id, w->chunk_no, CHUNK_SUBMITTED, &u, now, NULL);
		break;
	}
	case PW_REQUEUE: {
		struct chunk_update u = {.error = w->message, .next_attempt_at_ms = w->next_attempt_ms};
		if (w->mark_resubmitted &&
		    (r = chunk_mark_resubmitted_tx(db, w->import_id, w->chunk_no)) < 0)
			break;
		r = chunk_set_state_tx(db, w->import_id, w->chunk_no, CHUNK_QUEUED, &u, now, NULL);
		break;
	}
	case PW_FAIL_CHUNK: {
		struct chunk_update u = {.error = w->message, .retryable = w->retryable};
		if (w->mark_resubmitted &&
		    (r = chunk_mark_resubmitted_tx(db, w->import_id, w->chunk_no)) < 0)
			break;
		r = chunk_set_state_tx(db, w->import_id, w->chunk_no, CHUNK_FAILED, &u, now, NULL);
		break;
	}
	case PW_FAIL_IMPORT: {
		/* The import first (its error is kept), then the chunk. */
		r = import_fail_tx(db, w->import_id, w->problem, now);
		if (r == -EPERM)
			r = 0; /* already cancelled or ended: nothing to fail */
		if (r < 0)
			break;
		struct chunk_update u = {.error = w->message};
		r = chunk_set_state_tx(db, w->import_id, w->chunk_no, CHUNK_FAILED, &u, now, NULL);
		break;
	}
	case PW_SPLIT:
		r = chunk_split_tx(db, w->import_id, w->chunk_no, w->new_no, w->keep, w->keep_bytes,
				   w->rest_bytes, now);
		break;
	}
	if (r > 0) {
		w->changed = r;
		r = 0;
	}
	return r;
}

static void pwrite_free(struct pwrite *w)
{
	free(w->problem);
	free(w);
}

static struct pwrite *pwrite_new(struct pchunk *c, enum pwrite_op op)
{
	struct pwrite *w = calloc(1, sizeof(*w));
	if (!w)
		return NULL;
	w->c = c;
	w->op = op;
	snprintf(w->import_id, sizeof(w->import_id), "%s", c->imp->id);
	w->chunk_no = c->chunk_no;
	return w;
}

static void after_write(int status, void *ctx);

/* Queues a write; the chunk stays referenced until its done callback. */
static int pwrite_queue(struct pwrite *w)
{
	struct pchunk *c = w->c;
	c->pending++;
	int r = store_write(c->p->store, pwrite_fn, w, after_write);
	if (r < 0) {
		log_error("queue", "chunk %s-%" PRId64 ": cannot queue a store write: %s",
			  w->import_id, w->chunk_no, strerror(-r));
		c->pending--;
		pwrite_free(w);
	}
	return r;
}

static void submit_call(struct pchunk *c);
static void split_commit_done(struct pwrite *w, int status);

static void after_write(int status, void *ctx)
{
	struct pwrite *w = ctx;
	struct pchunk *c = w->c;
	struct pipeline *p = c->p;
	if (status < 0 && w->op != PW_SUBMITTING)
		log_error("queue", "chunk %s-%" PRId64 ": store write failed: %s", w->import_id,
			  w->chunk_no, strerror(-status));
	switch (w->op) {
	case PW_SUBMITTING:
		if (p->stopping || c->dead)
			break;
		if (status < 0) {
			/* The store refuses (the chunk was cancelled or failed
			 * meanwhile): it never leaves. */
			log_info("queue", "chunk %s-%" PRId64 ": not submitted (%s)", w->import_id,
				 w->chunk_no, status == -EPERM ? "no longer queued" : strerror(-status));
			sched_observe(c->imp->t->st, pipeline_now_ms(), NULL, 0);
			pchunk_end(c);
			break;
		}
		submit_call(c);
		break;
	case PW_FAIL_IMPORT:
		if (status == 0)
			log_warn("queue", "import %s failed: %s", w->import_id, w->message);
		pchunk_end(c);
		break;
	case PW_FAIL_CHUNK:
		/* Forgotten only now: until the commit, a rescan still finds it
		 * submitting in the store and must see it held. */
		pchunk_end(c);
		break;
	case PW_SPLIT:
		split_commit_done(w, status);
		break;
	default:
		break;
	}
	pwrite_free(w);
	pchunk_release(c);
	pipeline_tick(p);
}

/* --- submit ------------------------------------------------------------------------ */

static void submit_begin(struct pchunk *c)
{
	/* A stopped import's chunk whose request may have reached Auth0 still
	 * goes once more, to learn what Auth0 holds (chunk.h). */
	if (c->imp->stopped && !c->resubmitted) {
		sched_observe(c->imp->t->st, pipeline_now_ms(), NULL, 0);
		pchunk_end(c);
		return;
	}
	struct pwrite *w = pwrite_new(c, PW_SUBMITTING);
	if (!w || pwrite_queue(w) < 0) {
		/* Not even write-ahead: it did not leave; try again later. */
		if (!w)
			log_error("queue", "chunk %s-%" PRId64 ": out of memory", c->imp->id, c->chunk_no);
		sched_observe(c->imp->t->st, pipeline_now_ms(), NULL, 0);
		sched_retry(c->item, pipeline_now_ms());
	}
}

static void drop_cb(void *user, void *arg)
{
	(void)arg;
	struct pchunk *c = user;
	c->item = NULL; /* already removed from the scheduler */
	pchunk_end(c);
}

static char *problem_json(const char *detail)
{
	json_object *o = json_object_new_object();
	if (!o)
		return NULL;
	json_object_object_add(o, "type", json_object_new_string("/problems/auth0-refused"));
	json_object_object_add(o, "title", json_object_new_string("Auth0 refused the import"));
	json_object_object_add(o, "status", json_object_new_int(502));
	json_object_object_add(o, "detail", json_object_new_string(detail));
	char *s = strdup(json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN));
	json_object_put(o);
	return s;
}

void pipeline_fail_import(struct pimport *imp, struct pchunk *c, const char *message)
{
	if (!imp->stopped)
		log_warn("queue", "import %s: Auth0 refused it as a whole: %s; no more submits",
			 imp->id, message);
	imp->stopped = true;
	if (imp->simp)
		sched_import_drop_queued(imp->simp, drop_cb, NULL);
	if (!c)
		return;
	struct pwrite *w = pwrite_new(c, PW_FAIL_IMPORT);
	if (!w)
		return;
	snprintf(w->message, sizeof(w->message), "%s", message);
	w->problem = problem_json(message);
	pchunk_retire(c);
	if (pwrite_queue(w) < 0)
		pchunk_end(c);
}

/* retryable: the failure was transient (retries exhausted), so POST
 * /v1/imports/{id}/retry may queue the chunk again; a chunk that may have
 * reached Auth0 is then a resubmission (duplicates count as assumed). */
static void fail_chunk_as(struct pchunk *c, const char *message, bool retryable)
{
	struct pwrite *w = pwrite_new(c, PW_FAIL_CHUNK);
	if (!w) {
		pchunk_end(c);
		return;
	}
	w->retryable = retryable;
	w->mark_resubmitted = retryable && c->resubmitted;
	snprintf(w->message, sizeof(w->message), "%s", message);
	log_warn("queue", "chunk %s-%" PRId64 ": failed: %s", c->imp->id, c->chunk_no, message);
	pchunk_retire(c);
	if (pwrite_queue(w) < 0)
		pchunk_end(c);
}

static void fail_chunk(struct pchunk *c, const char *message)
{
	fail_chunk_as(c, message, false);
}

static void requeue(struct pchunk *c, const char *message, int64_t next_attempt_ms,
		    bool mark_resubmitted)
{
	struct pwrite *w = pwrite_new(c, PW_REQUEUE);
	if (!w)
		return;
	snprintf(w->message, sizeof(w->message), "%s", message);
	w->next_attempt_ms = next_attempt_ms;
	w->mark_resubmitted = mark_resubmitted;
	pwrite_queue(w);
}

static void split_start(struct pchunk *c);

static void submit_done(const struct a0_result *res, void *arg)
{
	struct pchunk *c = arg;
	struct pipeline *p = c->p;
	c->call = NULL;
	pipeline_observe_none(c, res);
	int64_t now = pipeline_now_ms();
	const char *msg = res->cls.message;
	if (c->dead)
		goto out;
	switch (res->cls.verdict) {
	case A0_OK:
		snprintf(c->job_id, sizeof(c->job_id), "%s", res->job.id);
		c->submitted_at_ms = now;
		log_info("queue", "chunk %s-%" PRId64 ": submitted as %s (%u users, %zu bytes)",
			 c->imp->id, c->chunk_no, c->job_id, c->users, res->request_bytes);
		/* The job's clock started while the request was in flight: its
		 * polls are timed from the send (the answer can come late by
		 * however long Auth0 takes after creating the job). */
		sched_submitted(c->item, c->submit_sent_ms > 0 && c->submit_sent_ms <= now ?
				c->submit_sent_ms : now);
		{
			struct pwrite *w = pwrite_new(c, PW_SUBMITTED);
			if (w) {
				snprintf(w->job_id, sizeof(w->job_id), "%s", c->job_id);
				pwrite_queue(w);
			}
		}
		break;
	case A0_WAIT:
		sched_requeue(c->item, now);
		requeue(c, msg, res->cls.wait_until_ms, false);
		break;
	case A0_TOO_MANY_JOBS:
		log_info("queue", "chunk %s-%" PRId64 ": Auth0 has too many active jobs, waiting",
			 c->imp->id, c->chunk_no);
		sched_submit_too_many_jobs(c->item, now);
		requeue(c, msg, 0, false);
		break;
	case A0_RETRY: {
		/* A transport error leaves it open whether Auth0 got the job:
		 * the retry is a resubmission (duplicates count as assumed). */
		bool maybe_sent = res->result < 0 && res->requests > 0;
		if (maybe_sent)
			c->resubmitted = true;
		if (sched_retry(c->item, now) == -ETIMEDOUT) {
			char m[A0_MESSAGE_MAX + 64];
			snprintf(m, sizeof(m), "gave up after %u attempts: %s",
				 sched_item_attempts(c->item), msg);
			fail_chunk_as(c, m, true);
			break;
		}
		pipeline_count_retry(c, "users-imports");
		log_info("queue", "chunk %s-%" PRId64 ": transient failure (%s), retrying",
			 c->imp->id, c->chunk_no, msg);
		requeue(c, msg, 0, maybe_sent);
		break;
	}
	case A0_TOO_LARGE:
		split_start(c);
		break;
	case A0_IMPORT_FAILED:
		pipeline_fail_import(c->imp, c, msg);
		break;
	case A0_REFRESH:
	case A0_REJECTED:
	case A0_NOT_FOUND:
		fail_chunk(c, msg);
		break;
	}
out:
	pchunk_release(c);
	pipeline_tick(p);
	pipeline_drain_check(p);
}

void pipeline_call_not_started(a0_done_cb cb, struct pchunk *c, const char *what, int err)
{
	struct a0_result res;
	memset(&res, 0, sizeof(res));
	res.cls.verdict = A0_RETRY;
	snprintf(res.cls.message, sizeof(res.cls.message), "%s: %s", what, strerror(-err));
	cb(&res, c);
}

static void submit_call(struct pchunk *c)
{
	struct pimport *imp = c->imp;
	char path[4096], ext[A0_EXTERNAL_ID_MAX + 1];
	if (chunk_file_path(c->p->state_dir, imp->id, c->chunk_no, path, sizeof(path)) < 0) {
		fail_chunk(c, "chunk file path too long");
		return;
	}
	snprintf(ext, sizeof(ext), "%s-%" PRId64, imp->id, c->chunk_no);
	struct a0_import_params params = {
		.users_path = path,
		.connection_id = imp->connection_id,
		.upsert = imp->upsert,
		.external_id = ext,
		.send_completion_email = imp->send_completion_email,
	};
	c->pending++;
	c->submit_sent_ms = pipeline_now_ms();
	int r = a0_import_submit(imp->t->client, &params, submit_done, c, &c->call);
	if (r < 0)
		pipeline_call_not_started(submit_done, c, "cannot start the request", r);
}

/* --- split (413) ------------------------------------------------------------------- */

struct split_work {
	uv_work_t work;
	struct pchunk *c;
	char path[4096], rest_path[4096], keep_tmp[4096];
	int64_t new_no;
	int64_t keep, keep_bytes, rest_bytes;
	int status;
};

/* Top-level element spans of a JSON array produced by the splitter. */
static int scan_elements(const char *buf, size_t len, size_t **ret_starts, size_t **ret_ends,
			 size_t *ret_n)
{
	size_t cap = 64, n = 0;
	size_t *st = malloc(cap * sizeof(*st)), *en = malloc(cap * sizeof(*en));
	if (!st || !en) {
		free(st);
		free(en);
		return -ENOMEM;
	}
	size_t i = 0;
	while (i < len && buf[i] != '[')
		i++;
	i++;
	int depth = 0;
	bool in_str = false, esc = false;
	size_t start = SIZE_MAX;
	for (; i < len; i++) {
		char ch = buf[i];
		if (in_str) {
			if (esc)
				esc = false;
			else if (ch == '\\')
				esc = true;
			else if (ch == '"')
				in_str = false;
			continue;
		}
		if (ch == ' ' || ch == '\n' || ch == '\r' || ch == '\t')
			continue;
		if (start == SIZE_MAX && depth == 0 && ch != ',' && ch != ']')
			start = i;
		if (ch == '"') {
			in_str = true;
		} else if (ch == '{' || ch == '[') {
			depth++;
		} else if (ch == '}' || ch == ']') {
			if (depth == 0) { /* the array's end */
				if (start != SIZE_MAX)
					goto add;
				break;
			}
			depth--;
			if (depth == 0 && start != SIZE_MAX) {
				/* element ends here; recorded at the next ',' or ']' */
			}
		} else if (ch == ',' && depth == 0) {
			if (start != SIZE_MAX)
				goto add;
		}
		continue;
add:
		{
			size_t e = i;
			while (e > start && (buf[e - 1] == ' ' || buf[e - 1] == '\n' || buf[e - 1] == '\r' ||
					     buf[e - 1] == '\t'))
				e--;
			if (n == cap) {
				cap *= 2;
				size_t *s2 = realloc(st, cap * sizeof(*st));
				if (s2)
					st = s2;
				size_t *e2 = realloc(en, cap * sizeof(*en));
				if (e2)
					en = e2;
				if (!s2 || !e2) {
					free(st);
					free(en);
					return -ENOMEM;
				}
			}
			st[n] = start;
			en[n] = e;
			n++;
			start = SIZE_MAX;
			if (ch == ']')
				break;
		}
	}
	*ret_starts = st;
	*ret_ends = en;
	*ret_n = n;
	return 0;
}

static int write_durable(const char *path, const char *buf, const size_t *st, const size_t *en,
			 size_t from, size_t to, int64_t *ret_bytes)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0)
		return -errno;
	int r = 0;
	int64_t bytes = 0;
	FILE *fp = fdopen(fd, "w");
	if (!fp) {
		r = -errno;
		close(fd);
		return r;
	}
	fputc('[', fp);
	bytes++;
	for (size_t i = from; i < to; i++) {
		if (i > from) {
			fputc(',', fp);
			bytes++;
		}
		fwrite(buf + st[i], 1, en[i] - st[i], fp);
		bytes += (int64_t)(en[i] - st[i]);
	}
	fputc(']', fp);
	bytes++;
	if (fflush(fp) != 0 || fsync(fileno(fp)) != 0)
		r = -errno;
	if (fclose(fp) != 0 && r == 0)
		r = -EIO;
	*ret_bytes = bytes;
	return r;
}

static int fsync_dir(const char *file_path)
{
	char dir[4096];
	const char *slash = strrchr(file_path, '/');
	if (!slash || (size_t)(slash - file_path) >= sizeof(dir))
		return -EINVAL;
	snprintf(dir, sizeof(dir), "%.*s", (int)(slash - file_path), file_path);
	int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	int r = fsync(fd) < 0 ? -errno : 0;
	close(fd);
	return r;
}

static void split_work_fn(uv_work_t *req)
{
	struct split_work *sw = req->data;
	char *buf = NULL;
	size_t *st = NULL, *en = NULL, n = 0;
	int r = 0;
	int fd = open(sw->path, O_RDONLY | O_CLOEXEC);
	struct stat sb;
	if (fd < 0 || fstat(fd, &sb) < 0 || sb.st_size > 64 * 1024 * 1024) {
		r = fd < 0 ? -errno : -EFBIG;
		goto out;
	}
	buf = malloc((size_t)sb.st_size + 1);
	if (!buf) {
		r = -ENOMEM;
		goto out;
	}
	if (read(fd, buf, (size_t)sb.st_size) != sb.st_size) {
		r = -EIO;
		goto out;
	}
	if ((r = scan_elements(buf, (size_t)sb.st_size, &st, &en, &n)) < 0)
		goto out;
	if (n < 2) {
		r = -E2BIG; /* one user alone is too big: cannot split */
		goto out;
	}
	sw->keep = (int64_t)n / 2;
	/* Before the commit: the rest under its new number (no chunk of the
	 * store has it yet) and the kept users beside the chunk's own file,
	 * both durable with their directory. Until the commit the chunk's file
	 * is untouched; after it, chunk_split_settle renames the kept users
	 * into place (again at start, after a crash in between). */
	char tmp[4200];
	snprintf(tmp, sizeof(tmp), "%s.tmp", sw->rest_path);
	if ((r = write_durable(tmp, buf, st, en, (size_t)sw->keep, n, &sw->rest_bytes)) < 0)
		goto out;
	if (rename(tmp, sw->rest_path) < 0) {
		r = -errno;
		goto out;
	}
	if ((r = write_durable(sw->keep_tmp, buf, st, en, 0, (size_t)sw->keep, &sw->keep_bytes)) < 0)
		goto out;
	r = fsync_dir(sw->path);
out:
	if (fd >= 0)
		close(fd);
	free(buf);
	free(st);
	free(en);
	sw->status = r;
}

static void split_after_work(uv_work_t *req, int status)
{
	struct split_work *sw = req->data;
	struct pchunk *c = sw->c;
	if (status < 0 && sw->status == 0)
		sw->status = status;
	if (c->dead) {
		pchunk_release(c);
		free(sw);
		return;
	}
	if (sw->status < 0) {
		char m[256];
		snprintf(m, sizeof(m), "Auth0 refused the request as too large and it cannot be split (%s)",
			 strerror(-sw->status));
		fail_chunk(c, m);
	} else {
		struct pwrite *w = pwrite_new(c, PW_SPLIT);
		if (w) {
			w->keep = sw->keep;
			w->new_no = sw->new_no;
			w->keep_bytes = sw->keep_bytes;
			w->rest_bytes = sw->rest_bytes;
			snprintf(w->keep_tmp, sizeof(w->keep_tmp), "%s", sw->keep_tmp);
			snprintf(w->keep_path, sizeof(w->keep_path), "%s", sw->path);
			pwrite_queue(w);
		}
	}
	pchunk_release(c);
	free(sw);
}

/* After the split's commit: the kept users' file replaces the chunk's own
 * (rename + directory fsync, off the loop). The chunk stays held until then,
 * so no rescan submits it with the old file. */
struct split_settle {
	uv_work_t work;
	struct pchunk *c;
	char import_id[IMPORT_ID_LEN + 1];
	int64_t chunk_no, keep_bytes, rest_bytes;
	char keep_path[4096];
	int status;
};

static void split_settle_fn(uv_work_t *req)
{
	struct split_settle *ss = req->data;
	int r = chunk_split_settle(ss->keep_path, ss->keep_bytes);
	ss->status = r < 0 ? r : r == 1 ? 0 : -ENOENT;
}

static void split_settle_done(uv_work_t *req, int status)
{
	struct split_settle *ss = req->data;
	struct pchunk *c = ss->c;
	struct pipeline *p = c->p;
	if (status < 0 && ss->status == 0)
		ss->status = status;
	if (ss->status < 0)
		log_error("queue", "chunk %s-%" PRId64 ": cannot replace its file: %s", ss->import_id,
			  ss->chunk_no, strerror(-ss->status));
	else
		log_info("queue", "chunk %s-%" PRId64 ": split after a 413 (%" PRId64 " + %" PRId64 " bytes)",
			 ss->import_id, ss->chunk_no, ss->keep_bytes, ss->rest_bytes);
	free(ss);
	/* Both halves are queued in the store; the rescan takes them over. */
	pchunk_end(c);
	if (!p->stopping) {
		p->rescans++;
		recover_load(p, false);
	}
	pchunk_release(c);
}

static void split_commit_done(struct pwrite *w, int status)
{
	struct pchunk *c = w->c;
	struct pipeline *p = c->p;
	if (status < 0) {
		unlink(w->keep_tmp);
		pchunk_end(c);
		p->rescans++;
		recover_load(p, false);
		return;
	}
	struct split_settle *ss = calloc(1, sizeof(*ss));
	if (ss) {
		ss->c = c;
		snprintf(ss->import_id, sizeof(ss->import_id), "%s", w->import_id);
		ss->chunk_no = w->chunk_no;
		ss->keep_bytes = w->keep_bytes;
		ss->rest_bytes = w->rest_bytes;
		snprintf(ss->keep_path, sizeof(ss->keep_path), "%s", w->keep_path);
		ss->work.data = ss;
		c->pending++;
		if (uv_queue_work(p->loop, &ss->work, split_settle_fn, split_settle_done) == 0)
			return;
		c->pending--;
		free(ss);
	}
	/* No worker: settle here rather than leave the file out of step. */
	int r = chunk_split_settle(w->keep_path, w->keep_bytes);
	if (r < 0)
		log_error("queue", "chunk %s-%" PRId64 ": cannot replace its file: %s", w->import_id,
			  w->chunk_no, strerror(-r));
	pchunk_end(c);
	p->rescans++;
	recover_load(p, false);
}

static void split_start(struct pchunk *c)
{
	struct pipeline *p = c->p;
	int64_t now = pipeline_now_ms();
	if (c->users < 2) {
		fail_chunk(c, "Auth0 refused the request as too large (one user over the limit)");
		return;
	}
	struct split_work *sw = calloc(1, sizeof(*sw));
	if (!sw) {
		sched_retry(c->item, now);
		requeue(c, "out of memory splitting", 0, false);
		return;
	}
	sw->c = c;
	/* New numbers come from the import's one counter (the store's max + 1
	 * when loaded): two splits in flight never share one. */
	sw->new_no = c->imp->next_no++;
	if (chunk_file_path(p->state_dir, c->imp->id, c->chunk_no, sw->path, sizeof(sw->path)) < 0 ||
	    chunk_file_path(p->state_dir, c->imp->id, sw->new_no, sw->rest_path,
			    sizeof(sw->rest_path)) < 0) {
		free(sw);
		fail_chunk(c, "chunk file path too long");
		return;
	}
	snprintf(sw->keep_tmp, sizeof(sw->keep_tmp), "%.4000s.split", sw->path);
	/* It stays out of the scheduler's hands until the split is committed. */
	if (c->item) {
		sched_item_remove(c->item);
		c->item = NULL;
	}
	sw->work.data = sw;
	c->pending++;
	if (uv_queue_work(p->loop, &sw->work, split_work_fn, split_after_work) < 0) {
		c->pending--;
		free(sw);
		fail_chunk(c, "cannot start splitting the chunk");
	}
}
