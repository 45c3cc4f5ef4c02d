/*
 * pipeline — moves queued chunks to Auth0 and brings every outcome back:
 * "every user reaches Auth0 once and every outcome comes back".
 *
 * One pipeline per process. Per tenant: one Auth0 client (daemon/auth0) and
 * one scheduler tenant (queue/sched.h). A tick (a uv timer armed at the
 * scheduler's next wake time, and run after every outcome) asks the
 * scheduler for actions and starts them:
 *
 *   submit   chunk queued → submitting is COMMITTED before the request
 *            leaves (write-ahead); the answer moves it to submitted (job id),
 *            back to queued (429, transient error), splits it (413), fails it
 *            (permanent 4xx, attempts exhausted) or fails the whole import
 *            (connection 400, 401/403 after a token refresh): then nothing
 *            more of that import is submitted.
 *   poll     GET the job at its expected end, then at growing intervals
 *            (poller.c); an ended job gets its per-user errors fetched at
 *            once, mapped back to the original indices and stored with the
 *            chunk's completion in one transaction.
 *
 * Chunks enter from the store (recover.c): at start every chunk queued,
 * submitting (resubmitted: it may or may not have reached Auth0) or
 * submitted (polled again, never resubmitted); while running, imports that
 * appear in the store (the intake committed them) or have chunks queued
 * again are picked up by a periodic rescan. The store is the truth: a
 * chunk cancelled or failed in the store meanwhile is never submitted,
 * because its write-ahead transition is refused.
 *
 * Lifetime: pipeline_new, pipeline_start (after the store is open and the
 * intake recovered), pipeline_stop (cancels the Auth0 calls still running —
 * their chunks stay submitting and are resubmitted at the next start — and
 * closes the handles; run the loop), pipeline_free after store_close (store
 * callbacks may still arrive until then).
 */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

struct store;
struct config;
struct pipeline;

int pipeline_new(uv_loop_t *loop, struct store *store, const struct config *cfg,
		 struct pipeline **ret);
/* Loads the chunks left by the last run and starts ticking. Returns the
 * number of chunks taken over, or a negative errno. */
int pipeline_start(struct pipeline *p);
/* New work may be in the store (an import was queued, retried, cancelled). */
void pipeline_kick(struct pipeline *p);
/* SIGHUP: caps, rate ceilings; tenants added get a client. */
void pipeline_set_config(struct pipeline *p, const struct config *cfg);
void pipeline_stop(struct pipeline *p);
void pipeline_free(struct pipeline *p);

/*
 * Slots: Management requests outside the import pipeline (exports, undo)
 * share the tenant's rate limiter. fn runs on the loop once the tenant's
 * bucket holds a token for it (import work is served first in each tick),
 * with the tenant's client: it must start exactly one Management call on
 * that client — its answers reach the bucket through the client's observer
 * — and report its end with pipeline_slot_ended() (res NULL when it could
 * not start): that gives the bucket its answer when no request went out
 * (token grant failed) and ticks the scheduler. Slots are served in
 * the order asked. -ENOENT: no such tenant (or it has no credentials);
 * -ESHUTDOWN after pipeline_stop. A slot is freed once fn ran, or by
 * pipeline_slot_cancel() before that; pipeline_stop frees the rest without
 * calling them.
 */
struct a0_client;
struct a0_result;
struct pipeline_slot;
typedef void (*pipeline_slot_fn)(struct a0_client *client, void *arg);
int pipeline_slot_wait(struct pipeline *p, const char *tenant, pipeline_slot_fn fn, void *arg,
		       struct pipeline_slot **ret);
void pipeline_slot_cancel(struct pipeline_slot *s);
void pipeline_slot_ended(struct pipeline *p, const char *tenant, const struct a0_result *res);
/* The tenant's client for requests that do not go to the Management API (an
 * export's download link): NULL when unknown. Valid until pipeline_stop. */
struct a0_client *pipeline_tenant_client(struct pipeline *p, const char *tenant);

/* Publishes auth0_requests_total{tenant,endpoint,status},
 * auth0_429_total{tenant,kind} (kind "rate" or "jobs"), auth0_retries_total
 * {tenant,endpoint}, auth0_job_duration_seconds{tenant} and the gauge
 * auth0_jobs_in_flight{tenant}. */
struct metrics;
int pipeline_set_metrics(struct pipeline *p, struct metrics *m);

/* For /v1/status: jobs in flight and the rate-limit budget of a tenant. */
struct pipeline_tenant_status {
	unsigned jobs_active;
	unsigned cap;
	double tokens;
	double rate;
	int64_t blocked_until_ms;
	int64_t token_expires_ms;
	const char *last_error;   /* "" when none; never a secret */
};
int pipeline_tenant_status(struct pipeline *p, const char *tenant,
			   struct pipeline_tenant_status *ret);
/* A GET /v1/status contributor (api_server_add_status): adds "auth0":
 * {"<tenant>": {jobs in flight, cap, rate-limit budget, token validity, last
 * error}} — never a token or secret. `arg` is the pipeline. */
struct json_object;
void pipeline_status_json(struct json_object *status, void *arg);
