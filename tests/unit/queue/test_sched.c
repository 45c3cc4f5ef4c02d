/* sched with explicit time: caps, the too-many-jobs 429, the token bucket,
 * rate-limit waits, max_rps, fairness, backoff, poll timing, expiry. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <math.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <string.h>

#include "queue/sched.h"

#define T0 1700000000000LL

struct fix {
	struct sched *s;
	struct sched_tenant *t;
	struct sched_import *imp;
};

static int setup(void **state)
{
	static struct fix f;
	memset(&f, 0, sizeof(f));
	struct sched_config cfg = {.seed = 42, .max_submit_attempts = 4};
	assert_int_equal(sched_new(&cfg, &f.s), 0);
	assert_int_equal(sched_tenant_add(f.s, "default", NULL, &f.t), 0);
	assert_int_equal(sched_import_add(f.t, 1, &f.imp), 0);
	*state = &f;
	return 0;
}

static int teardown(void **state)
{
	struct fix *f = *state;
	sched_free(f->s);
	return 0;
}

/* An answer saying the bucket is roomy. */
static void roomy(struct sched_tenant *t, int64_t now)
{
	struct ratelimit_info rl = {.has_limit = true, .limit = 100, .has_remaining = true,
				    .remaining = 100, .has_reset = true, .reset_ms = now + 1000};
	sched_observe(t, now, &rl, 0);
}

static struct sched_action next(struct fix *f, int64_t now, int64_t *wake)
{
	struct sched_action a;
	int64_t w;
	sched_next(f->s, now, &a, &w);
	if (wake)
		*wake = w;
	return a;
}

static void test_cap_two_jobs(void **state)
{
	struct fix *f = *state;
	struct sched_item *it[4];
	for (int i = 0; i < 4; i++)
		assert_int_equal(sched_item_queue(f->imp, (uint32_t)i, 100, &it[i], &it[i]), 0);
	roomy(f->t, T0);
	struct sched_action a = next(f, T0, NULL);
	assert_int_equal(a.kind, SCHED_DO_SUBMIT);
	assert_ptr_equal(a.item, it[0]);
	roomy(f->t, T0);
	a = next(f, T0, NULL);
	assert_int_equal(a.kind, SCHED_DO_SUBMIT);
	assert_ptr_equal(a.item, it[1]);
	roomy(f->t, T0);
	int64_t wake;
	a = next(f, T0, &wake);
	assert_int_equal(a.kind, SCHED_DO_NOTHING);
	assert_int_equal(wake, INT64_MAX); /* only an outcome frees a slot */
	assert_int_equal(sched_tenant_active(f->t), 2);
	sched_submitted(it[0], T0 + 10);
	sched_submitted(it[1], T0 + 10);
	assert_int_equal(sched_tenant_active(f->t), 2);
	/* First poll one second after the submit (nothing observed yet). */
	a = next(f, T0 + 10, &wake);
	assert_int_equal(a.kind, SCHED_DO_NOTHING);
	assert_int_equal(wake, T0 + 10 + SCHED_FIRST_POLL_MS);
	a = next(f, wake, NULL);
	assert_int_equal(a.kind, SCHED_DO_POLL);
	roomy(f->t, wake);
	sched_poll_ended(a.item, wake, false);
	sched_item_remove(a.item);
	assert_int_equal(sched_tenant_active(f->t), 1);
	a = next(f, wake, NULL);
	/* The other job is due too; polls come before submits. */
	assert_int_equal(a.kind, SCHED_DO_POLL);
	roomy(f->t, wake);
	sched_poll_running(a.item, wake, -1, -1);
	a = next(f, wake, NULL);
	assert_int_equal(a.kind, SCHED_DO_SUBMIT);
	assert_ptr_equal(a.item, it[2]);
}

static void test_one_request_before_first_answer(void **state)
{
	struct fix *f = *state;
	struct sched_item *a1, *a2;
	sched_item_queue(f->imp, 0, 10, NULL, &a1);
	sched_item_queue(f->imp, 1, 10, NULL, &a2);
	struct sched_action a = next(f, T0, NULL);
	assert_int_equal(a.kind, SCHED_DO_SUBMIT);
	int64_t wake;
	a = next(f, T0 + 5000, &wake);
	assert_int_equal(a.kind, SCHED_DO_NOTHING);
	assert_int_equal(wake, INT64_MAX);
	roomy(f->t, T0 + 5000);
	sched_submitted(a1, T0 + 5000);
	a = next(f, T0 + 5000, NULL);
	assert_int_equal(a.kind, SCHED_DO_SUBMIT);
	assert_ptr_equal(a.item, a2);
}

static void test_bucket_empty_waits_for_reset(void **state)
{
	struct fix *f = *state;
	struct sched_item *it;
	sched_item_queue(f->imp, 0, 10, NULL, &it);
	struct ratelimit_info rl = {.has_limit = true, .limit = 10, .has_remaining = true,
				    .remaining = 0, .has_reset = true, .reset_ms = T0 + 3000};
	sched_observe(f->t, T0, &rl, 0);
	int64_t wake;
	struct sched_action a = next(f, T0, &wake);
	assert_int_equal(a.kind, SCHED_DO_NOTHING);
	/* The default rate (2/s) would refill a token in 500 ms. */
	assert_int_equal(wake, T0 + 500);
	assert_int_equal(next(f, T0 + 499, NULL).kind, SCHED_DO_NOTHING);
	assert_int_equal(next(f, T0 + 500, NULL).kind, SCHED_DO_SUBMIT);
}

static void test_rate_limit_429_blocks_everything(void **state)
{
	struct fix *f = *state;
	struct sched_item *q, *j;
	sched_item_queue(f->imp, 0, 10, NULL, &q);
	sched_item_active(f->imp, 1, 10, T0 - 1000, T0, NULL, &j);
	roomy(f->t, T0);
	struct sched_action a = next(f, T0, NULL);
	assert_int_equal(a.kind, SCHED_DO_POLL);
	/* The poll got a rate-limit 429: wait until T0 + 7 s, no request before. */
	struct ratelimit_info rl = {.has_limit = true, .limit = 10, .has_remaining = true, .remaining = 0};
	sched_observe(f->t, T0 + 10, &rl, T0 + 7000);
	sched_requeue(a.item, T0 + 10);
	int64_t wake;
	for (int64_t t = T0 + 10; t < T0 + 7000; t += 250) {
		a = next(f, t, &wake);
		assert_int_equal(a.kind, SCHED_DO_NOTHING);
		assert_true(wake >= T0 + 7000);
	}
	assert_int_equal(sched_tenant_blocked_until(f->t), T0 + 7000);
	a = next(f, T0 + 7000, NULL);
	assert_int_equal(a.kind, SCHED_DO_POLL);
}

static void test_max_rps_ceiling(void **state)
{
	struct fix *f = *state;
	struct sched_tenant_config cfg = {.max_concurrent_jobs = 10, .max_rps = 4};
	sched_tenant_configure(f->t, &cfg);
	for (int i = 0; i < 6; i++)
		sched_item_queue(f->imp, (uint32_t)i, 10, NULL, NULL);
	roomy(f->t, T0);
	int64_t now = T0, wake;
	int sent = 0;
	int64_t last = 0;
	while (sent < 6) {
		struct sched_action a = next(f, now, &wake);
		if (a.kind == SCHED_DO_SUBMIT) {
			if (sent)
				assert_true(now - last >= 250);
			last = now;
			sent++;
			roomy(f->t, now);
			continue;
		}
		assert_true(wake > now);
		now = wake;
	}
	assert_true(last - T0 >= 5 * 250);
}

static void test_fair_round_robin(void **state)
{
	struct fix *f = *state;
	struct sched_tenant_config cfg = {.max_concurrent_jobs = 1};
	sched_tenant_configure(f->t, &cfg);
	static int big[10], small[2];
	for (int i = 0; i < 10; i++)
		sched_item_queue(f->imp, (uint32_t)i, 1000, &big[i], NULL);
	struct sched_import *imp2;
	sched_import_add(f->t, 2, &imp2);
	for (int i = 0; i < 2; i++)
		sched_item_queue(imp2, (uint32_t)i, 10, &small[i], NULL);
	int64_t now = T0;
	void *order[6];
	for (int k = 0; k < 6; k++) {
		roomy(f->t, now);
		struct sched_action a = next(f, now, NULL);
		assert_int_equal(a.kind, SCHED_DO_SUBMIT);
		order[k] = a.user;
		sched_submitted(a.item, now);
		int64_t wake;
		a = next(f, now, &wake);
		assert_int_equal(a.kind, SCHED_DO_NOTHING);
		now = wake;
		roomy(f->t, now);
		a = next(f, now, NULL);
		assert_int_equal(a.kind, SCHED_DO_POLL);
		sched_poll_ended(a.item, now, false);
		sched_item_remove(a.item);
	}
	assert_ptr_equal(order[0], &big[0]);
	assert_ptr_equal(order[1], &small[0]);
	assert_ptr_equal(order[2], &big[1]);
	assert_ptr_equal(order[3], &small[1]);
	assert_ptr_equal(order[4], &big[2]);
	assert_ptr_equal(order[5], &big[3]);
}

static void test_backoff_bounded(void **state)
{
	struct fix *f = *state;
	struct sched_item *it;
	sched_item_queue(f->imp, 0, 10, NULL, &it);
	int64_t now = T0;
	int64_t expect = SCHED_BACKOFF_BASE_MS;
	for (unsigned i = 1; i <= 4; i++) {
		roomy(f->t, now);
		int64_t wake;
		struct sched_action a = next(f, now, &wake);
		assert_int_equal(a.kind, SCHED_DO_SUBMIT);
		sched_observe(f->t, now, NULL, 0);
		int r = sched_retry(it, now);
		if (i == 4) {
			assert_int_equal(r, -ETIMEDOUT);
			break;
		}
		assert_int_equal(r, 0);
		a = next(f, now, &wake);
		assert_int_equal(a.kind, SCHED_DO_NOTHING);
		/* Equal jitter: between half and all of the doubling delay. */
		assert_true(wake - now >= expect / 2);
		assert_true(wake - now <= expect);
		now = wake;
		expect *= 2;
	}
	assert_int_equal(sched_item_attempts(it), 4);
	assert_int_equal(sched_tenant_active(f->t), 0);
}

static void test_too_many_jobs_backoff(void **state)
{
	struct fix *f = *state;
	struct sched_item *it;
	sched_item_queue(f->imp, 0, 10, NULL, &it);
	int64_t now = T0;
	int64_t expect[] = {15000, 30000, 60000, 120000, 120000};
	for (int i = 0; i < 5; i++) {
		roomy(f->t, now);
		struct sched_action a = next(f, now, NULL);
		assert_int_equal(a.kind, SCHED_DO_SUBMIT);
		sched_observe(f->t, now, NULL, 0);
		sched_submit_too_many_jobs(it, now);
		int64_t wake;
		a = next(f, now + 1, &wake);
		assert_int_equal(a.kind, SCHED_DO_NOTHING);
		assert_int_equal(wake, now + expect[i]);
		assert_int_equal(next(f, now + expect[i] - 1, NULL).kind, SCHED_DO_NOTHING);
		now += expect[i];
	}
	/* A success resets the backoff. */
	roomy(f->t, now);
	struct sched_action a = next(f, now, NULL);
	sched_submitted(a.item, now);
	assert_int_equal(sched_item_state(it), SCHED_ACTIVE);
}

static void test_too_many_jobs_lowers_cap(void **state)
{
	struct fix *f = *state;
	struct sched_tenant_config cfg = {.max_concurrent_jobs = 3};
	sched_tenant_configure(f->t, &cfg);
	struct sched_item *it[3];
	for (int i = 0; i < 3; i++)
		sched_item_queue(f->imp, (uint32_t)i, 10, NULL, &it[i]);
	int64_t now = T0;
	for (int i = 0; i < 2; i++) {
		roomy(f->t, now);
		struct sched_action a = next(f, now, NULL);
		sched_submitted(a.item, now);
	}
	roomy(f->t, now);
	struct sched_action a = next(f, now, NULL);
	assert_int_equal(a.kind, SCHED_DO_SUBMIT);
	assert_ptr_equal(a.item, it[2]);
	sched_submit_too_many_jobs(it[2], now);
	assert_int_equal(sched_tenant_cap(f->t, now), 2);
	/* No submit while two are active, only polls. */
	for (int64_t t = now; t < now + 60000; t += 500) {
		roomy(f->t, t);
		a = next(f, t, NULL);
		assert_int_not_equal(a.kind, SCHED_DO_SUBMIT);
		if (a.kind == SCHED_DO_POLL)
			sched_poll_running(a.item, t, -1, -1);
	}
	/* Restored after two minutes. */
	assert_int_equal(sched_tenant_cap(f->t, now + SCHED_CAP_RESTORE_MS), 3);
}

static void test_poll_timing(void **state)
{
	struct fix *f = *state;
	struct sched_item *it;
	sched_item_queue(f->imp, 0, 1000, NULL, &it);
	roomy(f->t, T0);
	struct sched_action a = next(f, T0, NULL);
	sched_submitted(it, T0);
	assert_int_equal(sched_item_next_poll(it), T0 + SCHED_FIRST_POLL_MS);
	/* time_left_seconds rules. */
	int64_t now = T0 + 1000;
	roomy(f->t, now);
	a = next(f, now, NULL);
	assert_int_equal(a.kind, SCHED_DO_POLL);
	sched_poll_running(it, now, -1, 12);
	assert_int_equal(sched_item_next_poll(it), now + 12000);
	/* percentage_done alone: 40 % after 4 s → 6 s more. */
	now = T0 + 13000;
	roomy(f->t, now);
	a = next(f, now, NULL);
	assert_int_equal(a.kind, SCHED_DO_POLL);
	sched_poll_running(it, now, 40, -1);
	assert_int_equal(sched_item_next_poll(it), now + 13000 * 60 / 40 + SCHED_POLL_MARGIN_MS);
	/* Both: the percentage is finer, time_left (rounded up) bounds it. */
	sched_poll_running(it, now, 40, 30);
	assert_int_equal(sched_item_next_poll(it), now + 13000 * 60 / 40 + SCHED_POLL_MARGIN_MS);
	sched_poll_running(it, now, 40, 5);
	assert_int_equal(sched_item_next_poll(it), now + 5000 + SCHED_POLL_MARGIN_MS);
	/* Nothing known: growing intervals, capped. */
	int64_t prev = 0;
	for (int i = 0; i < 12; i++) {
		now = sched_item_next_poll(it);
		roomy(f->t, now);
		a = next(f, now, NULL);
		assert_int_equal(a.kind, SCHED_DO_POLL);
		sched_poll_running(it, now, -1, -1);
		int64_t interval = sched_item_next_poll(it) - now;
		assert_true(interval >= prev);
		assert_true(interval <= SCHED_POLL_MAX_MS);
		prev = interval;
	}
	assert_int_equal(prev, SCHED_POLL_MAX_MS);
	/* The end teaches the per-user time; the next job's first poll uses it. */
	now = sched_item_next_poll(it);
	roomy(f->t, now);
	a = next(f, now, NULL);
	sched_poll_ended(it, now, true);
	assert_true(sched_tenant_ms_per_user(f->t) > 0);
	assert_int_equal(sched_item_state(it), SCHED_ENDED);
	/* Its errors are fetched next. */
	a = next(f, now, NULL);
	assert_int_equal(a.kind, SCHED_DO_FETCH_ERRORS);
	sched_item_remove(it);

	double mpu = sched_tenant_ms_per_user(f->t);
	struct sched_item *it2;
	sched_item_queue(f->imp, 1, 2000, NULL, &it2);
	a = next(f, now, NULL);
	assert_int_equal(a.kind, SCHED_DO_SUBMIT);
	sched_submitted(it2, now);
	assert_int_equal(sched_item_next_poll(it2), now + (int64_t)(mpu * 2000) + SCHED_POLL_MARGIN_MS);
}

/* A job seen running polls once more, just after the end its progress
 * allows; that end (not the middle of the last two polls) teaches the
 * per-user time, so the next job's first poll lands just after its end. */
static void test_poll_end_learned_from_progress(void **state)
{
	struct fix *f = *state;
	struct sched_item *it;
	sched_item_queue(f->imp, 0, 1000, NULL, &it);
	roomy(f->t, T0);
	struct sched_action a = next(f, T0, NULL);
	sched_submitted(it, T0);
	/* The job takes 2000 ms: at 1000 ms it is 50 % done. */
	int64_t now = T0 + 1000;
	roomy(f->t, now);
	a = next(f, now, NULL);
	assert_int_equal(a.kind, SCHED_DO_POLL);
	sched_poll_running(it, now + 5, 50, 1);
	assert_int_equal(sched_item_next_poll(it), T0 + 2000 + SCHED_POLL_MARGIN_MS);
	now = sched_item_next_poll(it);
	roomy(f->t, now);
	a = next(f, now, NULL);
	assert_int_equal(a.kind, SCHED_DO_POLL);
	sched_poll_ended(it, now + 5, false);
	assert_true(fabs(sched_tenant_ms_per_user(f->t) - 2.0) < 1e-9);
	sched_item_remove(it);
	/* The next job (500 users, 1000 ms): one poll, 15 ms after its end. */
	struct sched_item *it2;
	sched_item_queue(f->imp, 1, 500, NULL, &it2);
	a = next(f, now, NULL);
	assert_int_equal(a.kind, SCHED_DO_SUBMIT);
	sched_submitted(it2, now);
	assert_int_equal(sched_item_next_poll(it2), now + 1000 + SCHED_POLL_MARGIN_MS);
	/* Found ended there: the estimate stays close (nudged down a little). */
	int64_t at = sched_item_next_poll(it2);
	roomy(f->t, at);
	a = next(f, at, NULL);
	assert_int_equal(a.kind, SCHED_DO_POLL);
	sched_poll_ended(it2, at, false);
	double mpu = sched_tenant_ms_per_user(f->t);
	assert_true(mpu < 2.0 && mpu > 1.95);
	/* A poll that leaves 300 ms after it was due (a busy loop) and finds
	 * the job ended does not make the estimate grow. */
	struct sched_item *it3;
	sched_item_queue(f->imp, 2, 500, NULL, &it3);
	a = next(f, at, NULL);
	assert_int_equal(a.kind, SCHED_DO_SUBMIT);
	sched_submitted(it3, at);
	int64_t late = sched_item_next_poll(it3) + 300;
	roomy(f->t, late);
	a = next(f, late, NULL);
	assert_int_equal(a.kind, SCHED_DO_POLL);
	sched_poll_ended(it3, late, false);
	assert_true(sched_tenant_ms_per_user(f->t) < mpu);
}

/* A poll just before the end is followed by one just after it, not a whole
 * minimum interval later; only twice per job (a job stuck at 99 %). */
static void test_poll_near_end(void **state)
{
	struct fix *f = *state;
	struct sched_item *it;
	sched_item_queue(f->imp, 0, 1000, NULL, &it);
	roomy(f->t, T0);
	struct sched_action a = next(f, T0, NULL);
	sched_submitted(it, T0);
	int64_t now = T0 + 1990;
	for (int i = 0; i < 3; i++) {
		roomy(f->t, now);
		a = next(f, now, NULL);
		assert_int_equal(a.kind, SCHED_DO_POLL);
		sched_poll_running(it, now, 99, 1);
		int64_t rem = (now - T0) / 99;
		int64_t want = now + rem + SCHED_POLL_MARGIN_MS;
		if (i == 2)
			want = now + SCHED_POLL_MIN_MS;
		assert_int_equal(sched_item_next_poll(it), want);
		now = sched_item_next_poll(it);
	}
}

static void test_poll_never_faster_than_bucket(void **state)
{
	struct fix *f = *state;
	struct sched_item *it;
	sched_item_active(f->imp, 0, 10, T0, T0, NULL, &it);
	/* Bucket of 2, empty, refilling at the learned 2/s. */
	struct ratelimit_info rl = {.has_limit = true, .limit = 2, .has_remaining = true, .remaining = 0};
	sched_observe(f->t, T0, &rl, 0);
	int64_t wake;
	struct sched_action a = next(f, T0, &wake);
	assert_int_equal(a.kind, SCHED_DO_NOTHING);
	assert_int_equal(wake, T0 + 500);
	a = next(f, wake, NULL);
	assert_int_equal(a.kind, SCHED_DO_POLL);
}

static void test_expire_after_two_hours(void **state)
{
	struct fix *f = *state;
	struct sched_item *it;
	sched_item_active(f->imp, 0, 10, T0, T0, NULL, &it);
	roomy(f->t, T0);
	struct sched_action a = next(f, T0, NULL);
	assert_int_equal(a.kind, SCHED_DO_POLL);
	sched_poll_running(it, T0, -1, -1);
	int64_t now = T0 + SCHED_JOB_MAX_AGE_MS;
	a = next(f, now, NULL);
	assert_int_equal(a.kind, SCHED_DO_EXPIRE);
	assert_ptr_equal(a.item, it);
	sched_item_remove(it);
	assert_int_equal(sched_tenant_active(f->t), 0);
}

static void test_recovered_job_polled_not_submitted(void **state)
{
	struct fix *f = *state;
	struct sched_item *j1, *j2, *q;
	sched_item_active(f->imp, 0, 10, T0 - 5000, T0, NULL, &j1);
	sched_item_active(f->imp, 1, 10, T0 - 5000, T0, NULL, &j2);
	sched_item_queue(f->imp, 2, 10, NULL, &q);
	for (int i = 0; i < 2; i++) {
		roomy(f->t, T0);
		struct sched_action a = next(f, T0, NULL);
		assert_int_equal(a.kind, SCHED_DO_POLL);
		sched_poll_running(a.item, T0, -1, -1);
	}
	roomy(f->t, T0);
	int64_t wake;
	struct sched_action a = next(f, T0, &wake);
	assert_int_equal(a.kind, SCHED_DO_NOTHING);
	assert_int_equal(wake, T0 + 500);
}

static void drop_cb(void *user, void *arg)
{
	(void)user;
	(*(int *)arg)++;
}

static void test_drop_queued(void **state)
{
	struct fix *f = *state;
	for (int i = 0; i < 5; i++)
		sched_item_queue(f->imp, (uint32_t)i, 10, NULL, NULL);
	roomy(f->t, T0);
	struct sched_action a = next(f, T0, NULL);
	assert_int_equal(a.kind, SCHED_DO_SUBMIT);
	int n = 0;
	/* The one in flight stays; four are dropped. */
	assert_int_equal(sched_import_drop_queued(f->imp, drop_cb, &n), 4);
	assert_int_equal(n, 4);
	sched_submitted(a.item, T0);
	assert_int_equal(sched_item_state(a.item), SCHED_ACTIVE);
	sched_import_remove(f->imp);
	assert_int_equal(sched_tenant_active(f->t), 0);
}

static void test_rate_learned_upward(void **state)
{
	struct fix *f = *state;
	struct sched_tenant_config cfg = {.max_concurrent_jobs = 100};
	sched_tenant_configure(f->t, &cfg);
	/* A server with a bucket of 20 refilling at 20/s; we send whenever allowed. */
	for (int i = 0; i < 400; i++)
		sched_item_queue(f->imp, (uint32_t)i, 1, NULL, NULL);
	double server = 20;
	int64_t now = T0, last = T0;
	int sent = 0, rejected = 0;
	while (now < T0 + 10000) {
		struct sched_action a;
		int64_t wake;
		sched_next(f->s, now, &a, &wake);
		if (a.kind == SCHED_DO_NOTHING) {
			now = wake == INT64_MAX ? now + 10 : wake;
			continue;
		}
		server += (double)(now - last) * 0.02;
		if (server > 20)
			server = 20;
		last = now;
		struct ratelimit_info rl = {.has_limit = true, .limit = 20, .has_remaining = true,
					    .has_reset = true, .reset_ms = (now / 1000 + 1) * 1000};
		if (server >= 1) {
			server -= 1;
			rl.remaining = (long)server;
			sched_observe(f->t, now, &rl, 0);
			sched_submitted(a.item, now);
			sent++;
		} else {
			rl.remaining = 0;
			rejected++;
			sched_observe(f->t, now, &rl, rl.reset_ms);
			sched_requeue(a.item, now);
		}
	}
	/* 20 burst + 20/s over 10 s ≈ 220 at best; learning from 2/s gets most. */
	assert_true(sent > 150);
	assert_true(rejected < 20);
	assert_true(sched_tenant_rate(f->t) > 5);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_cap_two_jobs, setup, teardown),
		cmocka_unit_test_setup_teardown(test_one_request_before_first_answer, setup, teardown),
		cmocka_unit_test_setup_teardown(test_bucket_empty_waits_for_reset, setup, teardown),
		cmocka_unit_test_setup_teardown(test_rate_limit_429_blocks_everything, setup, teardown),
		cmocka_unit_test_setup_teardown(test_max_rps_ceiling, setup, teardown),
		cmocka_unit_test_setup_teardown(test_fair_round_robin, setup, teardown),
		cmocka_unit_test_setup_teardown(test_backoff_bounded, setup, teardown),
		cmocka_unit_test_setup_teardown(test_too_many_jobs_backoff, setup, teardown),
		cmocka_unit_test_setup_teardown(test_too_many_jobs_lowers_cap, setup, teardown),
		cmocka_unit_test_setup_teardown(test_poll_timing, setup, teardown),
		cmocka_unit_test_setup_teardown(test_poll_end_learned_from_progress, setup, teardown),
		cmocka_unit_test_setup_teardown(test_poll_near_end, setup, teardown),
		cmocka_unit_test_setup_teardown(test_poll_never_faster_than_bucket, setup, teardown),
		cmocka_unit_test_setup_teardown(test_expire_after_two_hours, setup, teardown),
		cmocka_unit_test_setup_teardown(test_recovered_job_polled_not_submitted, setup, teardown),
		cmocka_unit_test_setup_teardown(test_drop_queued, setup, teardown),
		cmocka_unit_test_setup_teardown(test_rate_learned_upward, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
