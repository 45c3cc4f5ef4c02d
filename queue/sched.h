/*
 * sched — what to send to Auth0 next, per tenant. PURE: no loop, no I/O, no
 * clock; every function takes `now` (epoch milliseconds, the unit of every
 * time here) so tests drive time explicitly.
 *
 * Terms:
 *   tenant   one Auth0 tenant: a cap on concurrent import jobs
 *            (max_concurrent_jobs, default 2), one token bucket fed by the
 *            x-ratelimit-* headers of EVERY answer (submits, polls, error
 *            fetches share it) under an optional max_rps ceiling, and the
 *            per-user job time observed on its earlier jobs.
 *   import   a group of chunks; imports of a tenant are served round-robin
 *            (a huge import does not starve a small later one), chunks of
 *            one import in their `seq` order.
 *   item     one chunk as the scheduler sees it:
 *              QUEUED  waiting to be submitted (maybe backing off)
 *              ACTIVE  a job at Auth0, polled at its expected end, then at
 *                      growing intervals; counts against the cap
 *              ENDED   the job ended; its errors are still to be fetched
 *            plus an `inflight` flag while the caller runs the request
 *            sched_next() handed out. Items are freed by the caller with
 *            sched_item_remove() (done, failed, split, cancelled).
 *
 * The loop: call sched_next(now); it returns one action and marks it in
 * flight (taking a bucket token), or SCHED_DO_NOTHING with the time something may
 * become possible. Report every Management API answer with sched_observe()
 * and the outcome of each action with the matching sched_*() call.
 *
 * Rules:
 *   - At most `cap` items ACTIVE or being submitted per tenant. A "too many
 *     jobs" 429 lowers the cap to the jobs known active when two or more are
 *     known (restored after 2 minutes); with none or one known it blocks
 *     submits for 15 s, doubling to 2 minutes (reset by a successful submit).
 *   - No request while the tenant waits for a rate-limit reset (429), and
 *     none unless the bucket model holds a token. Before the first answer
 *     only one request is in flight.
 *   - Transient failures back off exponentially with jitter (1 s base, 60 s
 *     max); submits give up after `max_submit_attempts`.
 *   - A job ACTIVE for longer than 2 hours is handed out as SCHED_DO_EXPIRE
 *     (Auth0 fails such jobs); the caller counts it failed.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "daemon/auth0/ratelimit.h"

#define SCHED_DEFAULT_MAX_CONCURRENT_JOBS 2u
#define SCHED_DEFAULT_MAX_SUBMIT_ATTEMPTS 8u
#define SCHED_DEFAULT_MAX_FETCH_ATTEMPTS 10u
#define SCHED_BACKOFF_BASE_MS 1000
#define SCHED_BACKOFF_MAX_MS 60000
#define SCHED_TMJ_FIRST_MS 15000
#define SCHED_TMJ_MAX_MS 120000
#define SCHED_CAP_RESTORE_MS 120000
#define SCHED_JOB_MAX_AGE_MS (2 * 3600 * 1000LL)
/* Polls are never closer than this (but near a job's end, see below), nor
 * further apart than the max. */
#define SCHED_POLL_MIN_MS 100
#define SCHED_POLL_MAX_MS 30000
/* A poll aimed at a job's expected end goes this much after it: a poll that
 * comes a little late costs this much, one that comes early a whole extra
 * request and round trip. */
#define SCHED_POLL_MARGIN_MS 15
/* A job whose progress says it ends in less than SCHED_POLL_MIN_MS is polled
 * again SCHED_POLL_MARGIN_MS after that end, at most this many times. */
#define SCHED_NEAR_END_POLLS 2
/* Before any job of the tenant was observed: the first poll this soon. */
#define SCHED_FIRST_POLL_MS 1000
/* Bucket refill rate assumed before it is learned (Auth0's lowest tier). */
#define SCHED_DEFAULT_RATE_PER_S 2.0

struct sched;
struct sched_tenant;
struct sched_import;
struct sched_item;

struct sched_config {
	uint64_t seed;                 /* jitter; any value */
	unsigned max_submit_attempts;  /* 0: default */
	unsigned max_fetch_attempts;   /* 0: default */
};

struct sched_tenant_config {
	unsigned max_concurrent_jobs;  /* 0: 2 */
	double max_rps;                /* 0: no ceiling */
};

enum sched_state {
	SCHED_QUEUED = 0,
	SCHED_ACTIVE,
	SCHED_ENDED,
};

enum sched_action_kind {
	SCHED_DO_NOTHING = 0,
	SCHED_DO_SUBMIT,       /* submit the chunk (mark it `submitting` first) */
	SCHED_DO_POLL,         /* GET the job */
	SCHED_DO_FETCH_ERRORS, /* GET the job's errors */
	SCHED_DO_EXPIRE,       /* the job is older than 2 h: count it failed; no request */
};

struct sched_action {
	enum sched_action_kind kind;
	struct sched_item *item;
	struct sched_tenant *tenant;
	void *user;         /* the item's user pointer */
};

int sched_new(const struct sched_config *cfg, struct sched **ret);
/* Frees every tenant, import and item. */
void sched_free(struct sched *s);

int sched_tenant_add(struct sched *s, const char *name, const struct sched_tenant_config *cfg,
		     struct sched_tenant **ret);
struct sched_tenant *sched_tenant_find(struct sched *s, const char *name);
/* A reload: new cap and ceiling; learned state is kept. */
void sched_tenant_configure(struct sched_tenant *t, const struct sched_tenant_config *cfg);

/* Imports are served in the order they were added, round-robin. */
int sched_import_add(struct sched_tenant *t, int64_t import_key, struct sched_import **ret);
struct sched_import *sched_import_find(struct sched_tenant *t, int64_t import_key);
/* Removes the import's QUEUED items that are not in flight (cancel, import-wide
 * failure); returns how many. Their user pointers are passed to `each`. */
size_t sched_import_drop_queued(struct sched_import *imp, void (*each)(void *user, void *arg),
				void *arg);
/* Frees the import and any items left in it. */
void sched_import_remove(struct sched_import *imp);

/* A chunk waiting for submission. */
int sched_item_queue(struct sched_import *imp, uint32_t seq, uint32_t users, void *user,
		     struct sched_item **ret);
/* A job already at Auth0 (found `submitted` at start): polled, never resubmitted.
 * `submitted_at` is when it was submitted (or now if unknown). */
int sched_item_active(struct sched_import *imp, uint32_t seq, uint32_t users,
		      int64_t submitted_at, int64_t now, void *user, struct sched_item **ret);
void sched_item_remove(struct sched_item *it);
enum sched_state sched_item_state(const struct sched_item *it);
bool sched_item_inflight(const struct sched_item *it);
unsigned sched_item_attempts(const struct sched_item *it);
/* Next poll time of an ACTIVE item (for tests and status). */
int64_t sched_item_next_poll(const struct sched_item *it);

/* The next action, marked in flight; or SCHED_DO_NOTHING and the earliest time
 * worth calling again (INT64_MAX: only an outcome can unblock things). */
void sched_next(struct sched *s, int64_t now, struct sched_action *ret, int64_t *ret_wake);

/* Every Management API answer of the tenant: its rate-limit headers; when it
 * was a rate-limit 429, `wait_until` (else 0). Pass `rl` NULL for an answer
 * without headers (transport error, proxy page). Counts the request as
 * answered. */
void sched_observe(struct sched_tenant *t, int64_t now, const struct ratelimit_info *rl,
		   int64_t wait_until);

/* Outcomes of SCHED_DO_SUBMIT. */
/* Job created; `now` may be when the request was sent (the job's clock, which
 * its polls are timed from, started no earlier). */
void sched_submitted(struct sched_item *it, int64_t now);
void sched_submit_too_many_jobs(struct sched_item *it, int64_t now);
/* Back to waiting (rate-limit 429 already given to sched_observe). */
void sched_requeue(struct sched_item *it, int64_t now);
/* Transient failure of any action: back off. Returns -ETIMEDOUT when a submit
 * or fetch used up its attempts (the item is left as it was; fail it). */
int sched_retry(struct sched_item *it, int64_t now);

/* Outcomes of SCHED_DO_POLL. `percentage_done` -1 and `time_left_s` -1 when
 * unknown. */
void sched_poll_running(struct sched_item *it, int64_t now, int percentage_done,
			long time_left_s);
/* The job ended: ENDED when errors must be fetched, else the caller removes it. */
void sched_poll_ended(struct sched_item *it, int64_t now, bool fetch_errors);

/* A Management request outside the import pipeline (exports, undo): 0 and a
 * bucket token taken (report the answer with sched_observe), or -EAGAIN and
 * *ret_at, the earliest time one may be taken (INT64_MAX: only an answer can
 * tell). Import work is asked first in each tick. */
int sched_tenant_take(struct sched_tenant *t, int64_t now, int64_t *ret_at);

/* Tenant facts, for status pages and tests. */
unsigned sched_tenant_active(const struct sched_tenant *t);      /* ACTIVE + submitting */
unsigned sched_tenant_cap(const struct sched_tenant *t, int64_t now);
unsigned sched_tenant_inflight(const struct sched_tenant *t);    /* requests awaiting answers */
double sched_tenant_tokens(const struct sched_tenant *t, int64_t now);
double sched_tenant_rate(const struct sched_tenant *t);          /* learned, per second */
int64_t sched_tenant_blocked_until(const struct sched_tenant *t);
double sched_tenant_ms_per_user(const struct sched_tenant *t);   /* 0: not observed yet */
