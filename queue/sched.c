/* sched — pure per-tenant scheduling of Auth0 requests (see sched.h). */
#include "queue/sched.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define RATE_MIN_PER_S 0.2
#define RATE_MAX_PER_S 1000.0
/* Decay of older jobs in the per-user duration estimate. */
#define MPU_ALPHA 0.3

struct bucket {
	bool known;              /* an answer with headers was seen */
	bool modelled;           /* tokens/at come from an answer */
	double limit;            /* bucket size */
	double tokens;           /* at `at` */
	int64_t at;
	double rate;             /* tokens per ms, learned */
	int64_t reset_at;        /* tokens are added at the latest then */
	int64_t blocked_until;   /* rate-limit 429 */
	int64_t last_send;
	unsigned inflight;       /* requests handed out, not yet answered */
	double ceiling;          /* max_rps in tokens per ms, 0: none */
};

struct sched_item {
	struct sched_import *imp;
	enum sched_state state;
	bool inflight;
	enum sched_action_kind inflight_kind;
	bool needs_fetch;
	uint32_t seq, users;
	void *user;
	unsigned attempts;
	int64_t not_before;
	int64_t submitted_at;
	int64_t next_poll;
	int64_t last_running_at;
	int64_t poll_sent_at;   /* when the poll in flight was handed out */
	int64_t poll_planned;   /* when it was due (it may leave later) */
	int64_t predicted_end;  /* from the last "running" answer's progress, 0: none */
	int64_t poll_interval;
	unsigned near_end_polls; /* polls sent closer than SCHED_POLL_MIN_MS */
	struct sched_item *prev, *next; /* import queue (QUEUED) or tenant jobs */
};

struct sched_import {
	struct sched_tenant *t;
	int64_t key;
	struct sched_item *q_head, *q_tail;
	struct sched_import *prev, *next;
};

struct sched_tenant {
	struct sched *s;
	struct sched_tenant *next;
	char name[64];
	struct sched_tenant_config cfg;
	struct sched_import *imp_head, *imp_tail;
	struct sched_import *rr_last;     /* import served last */
	struct sched_item *jobs;          /* ACTIVE and ENDED items */
	unsigned active;                  /* ACTIVE items */
	unsigned submitting;              /* QUEUED items with a submit in flight */
	unsigned cap_low;                 /* 0: none */
	int64_t cap_low_until;
	int64_t tmj_until;
	int64_t tmj_backoff;
	double ms_per_user;               /* 0: unknown */
	double dur_sum, users_sum;        /* decaying sums behind ms_per_user */
	struct bucket b;
};

struct sched {
	struct sched_config cfg;
	uint64_t rng;
	struct sched_tenant *tenants;
};

/* --- helpers ------------------------------------------------------------ */

static uint64_t rng_next(struct sched *s)
{
	/* xorshift64* */
	uint64_t x = s->rng;
	x ^= x >> 12;
	x ^= x << 25;
	x ^= x >> 27;
	s->rng = x;
	return x * 2685821657736338717ULL;
}

static int64_t backoff_ms(struct sched *s, unsigned attempt)
{
	int64_t d = SCHED_BACKOFF_BASE_MS;
	for (unsigned i = 1; i < attempt && d < SCHED_BACKOFF_MAX_MS; i++)
		d *= 2;
	if (d > SCHED_BACKOFF_MAX_MS)
		d = SCHED_BACKOFF_MAX_MS;
	/* Equal jitter: half fixed, half random. */
	double r = (double)(rng_next(s) >> 11) / (double)(1ULL << 53);
	return d / 2 + (int64_t)((double)(d / 2) * r);
}

static int64_t max64(int64_t a, int64_t b)
{
	return a > b ? a : b;
}

static int64_t min64(int64_t a, int64_t b)
{
	return a < b ? a : b;
}

/* --- bucket ------------------------------------------------------------- */

static void bucket_init(struct bucket *b, double max_rps)
{
	memset(b, 0, sizeof(*b));
	b->limit = 1;
	b->tokens = 1;
	b->rate = SCHED_DEFAULT_RATE_PER_S / 1000.0;
	b->ceiling = max_rps > 0 ? max_rps / 1000.0 : 0;
	if (b->ceiling > 0 && b->rate > b->ceiling)
		b->rate = b->ceiling;
}

static double bucket_level(const struct bucket *b, int64_t now)
{
	double lvl = b->tokens;
	if (now > b->at)
		lvl += b->rate * (double)(now - b->at);
	if (lvl > b->limit)
		lvl = b->limit;
	if (b->reset_at && now >= b->reset_at && lvl < 1)
		lvl = 1;
	return lvl;
}

/* When the next request may leave (>= now), INT64_MAX if only an answer
 * can tell. */
static int64_t bucket_ready_at(const struct bucket *b, int64_t now)
{
	if (!b->known && b->inflight > 0)
		return INT64_MAX;
	int64_t t = max64(now, b->blocked_until);
	if (b->ceiling > 0 && b->last_send)
		t = max64(t, b->last_send + (int64_t)ceil(1.0 / b->ceiling));
	double lvl = bucket_level(b, t);
	if (lvl >= 1.0 - 1e-9)
		return t;
	int64_t need = (int64_t)ceil((1.0 - lvl) / b->rate);
	int64_t at = t + need;
	if (b->reset_at > t)
		at = min64(at, b->reset_at);
	return at;
}

static void bucket_take(struct bucket *b, int64_t now)
{
	double lvl = bucket_level(b, now);
	b->tokens = lvl - 1.0;
	b->at = now;
	if (b->reset_at && now >= b->reset_at)
		b->reset_at = 0; /* that refill is used */
	b->last_send = now;
	b->inflight++;
}

static void bucket_observe(struct bucket *b, int64_t now, const struct ratelimit_info *rl,
			   int64_t wait_until)
{
	if (b->inflight > 0)
		b->inflight--;
	if (rl && rl->has_limit) {
		b->limit = (double)rl->limit;
		b->known = true;
	}
	if (rl && rl->has_remaining) {
		b->known = true;
		/* Requests still in flight may not be counted in `remaining` yet. */
		double observed = (double)rl->remaining - (double)b->inflight;
		if (observed < 0)
			observed = 0;
		/* Learn the refill rate from how far the model was off (only
		 * once the model has a starting point). */
		if (b->modelled) {
			double predicted = bucket_level(b, now);
			bool clipped = predicted >= b->limit - 0.5;
			if (!clipped && observed > predicted + 1.0)
				b->rate *= 1.25;
			else if (observed + 1.0 + (double)b->inflight < predicted)
				b->rate *= 0.85;
		}
		b->modelled = true;
		if (b->rate < RATE_MIN_PER_S / 1000.0)
			b->rate = RATE_MIN_PER_S / 1000.0;
		if (b->rate > RATE_MAX_PER_S / 1000.0)
			b->rate = RATE_MAX_PER_S / 1000.0;
		if (b->ceiling > 0 && b->rate > b->ceiling)
			b->rate = b->ceiling;
		b->tokens = observed;
		b->at = now;
	}
	if (rl && rl->has_reset && rl->reset_ms > now)
		b->reset_at = rl->reset_ms;
	if (wait_until > 0) {
		b->blocked_until = max64(b->blocked_until, wait_until);
		b->tokens = 0;
		b->at = now;
		b->rate *= 0.8;
		if (b->rate < RATE_MIN_PER_S / 1000.0)
			b->rate = RATE_MIN_PER_S / 1000.0;
	}
}

/* --- lifecycle ------------------------------------------------------------ */

int sched_new(const struct sched_config *cfg, struct sched **ret)
{
	struct sched *s = calloc(1, sizeof(*s));
	if (!s)
		return -ENOMEM;
	if (cfg)
		s->cfg = *cfg;
	if (!s->cfg.max_submit_attempts)
		s->cfg.max_submit_attempts = SCHED_DEFAULT_MAX_SUBMIT_ATTEMPTS;
	if (!s->cfg.max_fetch_attempts)
		s->cfg.max_fetch_attempts = SCHED_DEFAULT_MAX_FETCH_ATTEMPTS;
	s->rng = s->cfg.seed ? s->cfg.seed : 0x9E3779B97F4A7C15ULL;
	*ret = s;
	return 0;
}

void sched_free(struct sched *s)
{
	if (!s)
		return;
	while (s->tenants) {
		struct sched_tenant *t = s->tenants;
		s->tenants = t->next;
		while (t->imp_head)
			sched_import_remove(t->imp_head);
		while (t->jobs)
			sched_item_remove(t->jobs);
		free(t);
	}
	free(s);
}

int sched_tenant_add(struct sched *s, const char *name, const struct sched_tenant_config *cfg,
		     struct sched_tenant **ret)
{
	if (!name || strlen(name) >= sizeof(((struct sched_tenant *)0)->name))
		return -EINVAL;
	if (sched_tenant_find(s, name))
		return -EEXIST;
	struct sched_tenant *t = calloc(1, sizeof(*t));
	if (!t)
		return -ENOMEM;
	t->s = s;
	snprintf(t->name, sizeof(t->name), "%s", name);
	t->tmj_backoff = SCHED_TMJ_FIRST_MS;
	bucket_init(&t->b, cfg ? cfg->max_rps : 0);
	sched_tenant_configure(t, cfg);
	t->next = s->tenants;
	s->tenants = t;
	if (ret)
		*ret = t;
	return 0;
}

struct sched_tenant *sched_tenant_find(struct sched *s, const char *name)
{
	for (struct sched_tenant *t = s->tenants; t; t = t->next)
		if (strcmp(t->name, name) == 0)
			return t;
	return NULL;
}

void sched_tenant_configure(struct sched_tenant *t, const struct sched_tenant_config *cfg)
{
	struct sched_tenant_config c = {0};
	if (cfg)
		c = *cfg;
	if (!c.max_concurrent_jobs)
		c.max_concurrent_jobs = SCHED_DEFAULT_MAX_CONCURRENT_JOBS;
	t->cfg = c;
	t->b.ceiling = c.max_rps > 0 ? c.max_rps / 1000.0 : 0;
	if (t->b.ceiling > 0 && t->b.rate > t->b.ceiling)
		t->b.rate = t->b.ceiling;
}

int sched_import_add(struct sched_tenant *t, int64_t import_key, struct sched_import **ret)
{
	struct sched_import *imp = sched_import_find(t, import_key);
	if (!imp) {
		imp = calloc(1, sizeof(*imp));
		if (!imp)
			return -ENOMEM;
		imp->t = t;
		imp->key = import_key;
		imp->prev = t->imp_tail;
		if (t->imp_tail)
			t->imp_tail->next = imp;
		else
			t->imp_head = imp;
		t->imp_tail = imp;
	}
	if (ret)
		*ret = imp;
	return 0;
}

struct sched_import *sched_import_find(struct sched_tenant *t, int64_t import_key)
{
	for (struct sched_import *imp = t->imp_head; imp; imp = imp->next)
		if (imp->key == import_key)
			return imp;
	return NULL;
}

static void queue_unlink(struct sched_item *it)
{
	struct sched_import *imp = it->imp;
	if (it->prev)
		it->prev->next = it->next;
	else
		imp->q_head = it->next;
	if (it->next)
		it->next->prev = it->prev;
	else
		imp->q_tail = it->prev;
	it->prev = it->next = NULL;
}

static void jobs_unlink(struct sched_item *it)
{
	struct sched_tenant *t = it->imp->t;
	if (it->prev)
		it->prev->next = it->next;
	else
		t->jobs = it->next;
	if (it->next)
		it->next->prev = it->prev;
	it->prev = it->next = NULL;
}

static void jobs_link(struct sched_item *it)
{
	struct sched_tenant *t = it->imp->t;
	it->prev = NULL;
	it->next = t->jobs;
	if (t->jobs)
		t->jobs->prev = it;
	t->jobs = it;
}

size_t sched_import_drop_queued(struct sched_import *imp, void (*each)(void *user, void *arg),
				void *arg)
{
	size_t n = 0;
	struct sched_item *it = imp->q_head;
	while (it) {
		struct sched_item *next = it->next;
		if (!it->inflight) {
			void *user = it->user;
			sched_item_remove(it);
			if (each)
				each(user, arg);
			n++;
		}
		it = next;
	}
	return n;
}

void sched_import_remove(struct sched_import *imp)
{
	if (!imp)
		return;
	struct sched_tenant *t = imp->t;
	while (imp->q_head)
		sched_item_remove(imp->q_head);
	struct sched_item *it = t->jobs;
	while (it) {
		struct sched_item *next = it->next;
		if (it->imp == imp)
			sched_item_remove(it);
		it = next;
	}
	if (t->rr_last == imp)
		t->rr_last = imp->prev;
	if (imp->prev)
		imp->prev->next = imp->next;
	else
		t->imp_head = imp->next;
	if (imp->next)
		imp->next->prev = imp->prev;
	else
		t->imp_tail = imp->prev;
	free(imp);
}

static struct sched_item *item_new(struct sched_import *imp, uint32_t seq, uint32_t users,
				   void *user)
{
	struct sched_item *it = calloc(1, sizeof(*it));
	if (!it)
		return NULL;
	it->imp = imp;
	it->seq = seq;
	it->users = users;
	it->user = user;
	return it;
}

int sched_item_queue(struct sched_import *imp, uint32_t seq, uint32_t users, void *user,
		     struct sched_item **ret)
{
	struct sched_item *it = item_new(imp, seq, users, user);
	if (!it)
		return -ENOMEM;
	it->state = SCHED_QUEUED;
	/* Keep the queue in seq order; equal seqs keep insertion order. */
	struct sched_item *after = imp->q_tail;
	while (after && after->seq > seq)
		after = after->prev;
	it->prev = after;
	it->next = after ? after->next : imp->q_head;
	if (it->next)
		it->next->prev = it;
	else
		imp->q_tail = it;
	if (after)
		after->next = it;
	else
		imp->q_head = it;
	if (ret)
		*ret = it;
	return 0;
}

static int64_t first_poll_at(const struct sched_tenant *t, const struct sched_item *it, int64_t now)
{
	int64_t d = SCHED_FIRST_POLL_MS;
	if (t->ms_per_user > 0)
		d = (int64_t)(t->ms_per_user * (double)it->users) + SCHED_POLL_MARGIN_MS;
	if (d < SCHED_POLL_MIN_MS)
		d = SCHED_POLL_MIN_MS;
	return now + d;
}

int sched_item_active(struct sched_import *imp, uint32_t seq, uint32_t users,
		      int64_t submitted_at, int64_t now, void *user, struct sched_item **ret)
{
	struct sched_item *it = item_new(imp, seq, users, user);
	if (!it)
		return -ENOMEM;
	it->state = SCHED_ACTIVE;
	it->submitted_at = submitted_at ? submitted_at : now;
	it->next_poll = now;
	jobs_link(it);
	imp->t->active++;
	if (ret)
		*ret = it;
	return 0;
}

void sched_item_remove(struct sched_item *it)
{
	if (!it)
		return;
	struct sched_tenant *t = it->imp->t;
	/* A request handed out and never answered is reported with
	 * sched_observe(NULL) by the caller; only the slot is given back here. */
	if (it->inflight && it->inflight_kind == SCHED_DO_SUBMIT && t->submitting > 0)
		t->submitting--;
	if (it->state == SCHED_QUEUED) {
		queue_unlink(it);
	} else {
		if (it->state == SCHED_ACTIVE && t->active > 0)
			t->active--;
		jobs_unlink(it);
	}
	free(it);
}

enum sched_state sched_item_state(const struct sched_item *it)
{
	return it->state;
}

bool sched_item_inflight(const struct sched_item *it)
{
	return it->inflight;
}

unsigned sched_item_attempts(const struct sched_item *it)
{
	return it->attempts;
}

int64_t sched_item_next_poll(const struct sched_item *it)
{
	return it->next_poll;
}

/* --- deciding --------------------------------------------------------------- */

unsigned sched_tenant_cap(const struct sched_tenant *t, int64_t now)
{
	unsigned cap = t->cfg.max_concurrent_jobs;
	if (t->cap_low && now < t->cap_low_until && t->cap_low < cap)
		cap = t->cap_low;
	return cap;
}

/* The first item of `imp` that may be submitted now, and the earliest time
 * one of its waiting items may be. */
static struct sched_item *import_eligible(struct sched_import *imp, int64_t now, int64_t *wake)
{
	for (struct sched_item *it = imp->q_head; it; it = it->next) {
		if (it->inflight)
			continue;
		if (it->not_before <= now)
			return it;
		*wake = min64(*wake, it->not_before);
	}
	return NULL;
}

static void take(struct sched_tenant *t, struct sched_item *it, enum sched_action_kind kind,
		 int64_t now, struct sched_action *ret)
{
	it->inflight = true;
	it->inflight_kind = kind;
	if (kind == SCHED_DO_POLL) {
		it->poll_sent_at = now;
		it->poll_planned = it->next_poll;
	}
	if (kind != SCHED_DO_EXPIRE)
		bucket_take(&t->b, now);
	if (kind == SCHED_DO_SUBMIT)
		t->submitting++;
	ret->kind = kind;
	ret->item = it;
	ret->tenant = t;
	ret->user = it->user;
}

/* One tenant: an action (true) or the earliest time worth another look. */
static bool tenant_next(struct sched_tenant *t, int64_t now, struct sched_action *ret,
			int64_t *wake)
{
	struct sched_item *poll = NULL, *fetch = NULL;
	for (struct sched_item *it = t->jobs; it; it = it->next) {
		if (it->inflight)
			continue;
		if (it->state == SCHED_ACTIVE) {
			int64_t expire_at = it->submitted_at + SCHED_JOB_MAX_AGE_MS;
			if (now >= expire_at) {
				take(t, it, SCHED_DO_EXPIRE, now, ret);
				return true;
			}
			*wake = min64(*wake, expire_at);
			if (!poll || it->next_poll < poll->next_poll)
				poll = it;
		} else if (it->state == SCHED_ENDED && it->needs_fetch) {
			if (!fetch || it->not_before < fetch->not_before)
				fetch = it;
		}
	}

	/* Submits: a free slot, no too-many-jobs block, round-robin imports. */
	struct sched_item *submit = NULL;
	int64_t submit_wake = INT64_MAX;
	unsigned cap = sched_tenant_cap(t, now);
	if (t->active + t->submitting < cap) {
		if (now < t->tmj_until) {
			submit_wake = t->tmj_until;
		} else if (t->imp_head) {
			struct sched_import *start = t->rr_last ? t->rr_last->next : NULL;
			if (!start)
				start = t->imp_head;
			struct sched_import *imp = start;
			do {
				submit = import_eligible(imp, now, &submit_wake);
				if (submit)
					break;
				imp = imp->next ? imp->next : t->imp_head;
			} while (imp != start);
		}
	} else if (t->cap_low && t->cap_low_until > now) {
		submit_wake = t->cap_low_until;
	}

	int64_t ready = bucket_ready_at(&t->b, now);
	if (ready <= now) {
		if (poll && poll->next_poll <= now) {
			take(t, poll, SCHED_DO_POLL, now, ret);
			return true;
		}
		if (submit) {
			t->rr_last = submit->imp;
			take(t, submit, SCHED_DO_SUBMIT, now, ret);
			return true;
		}
		if (fetch && fetch->not_before <= now) {
			take(t, fetch, SCHED_DO_FETCH_ERRORS, now, ret);
			return true;
		}
	}
	int64_t due = submit ? now : submit_wake;
	if (poll)
		due = min64(due, poll->next_poll);
	if (fetch)
		due = min64(due, fetch->not_before);
	if (due != INT64_MAX)
		*wake = min64(*wake, max64(due, ready));
	return false;
}

void sched_next(struct sched *s, int64_t now, struct sched_action *ret, int64_t *ret_wake)
{
	int64_t wake = INT64_MAX;
	memset(ret, 0, sizeof(*ret));
	for (struct sched_tenant *t = s->tenants; t; t = t->next) {
		if (tenant_next(t, now, ret, &wake)) {
			if (ret_wake)
				*ret_wake = now;
			return;
		}
	}
	ret->kind = SCHED_DO_NOTHING;
	if (ret_wake)
		*ret_wake = wake;
}

int sched_tenant_take(struct sched_tenant *t, int64_t now, int64_t *ret_at)
{
	int64_t ready = bucket_ready_at(&t->b, now);
	if (ready > now) {
		*ret_at = ready;
		return -EAGAIN;
	}
	bucket_take(&t->b, now);
	return 0;
}

/* --- outcomes ----------------------------------------------------------------- */

void sched_observe(struct sched_tenant *t, int64_t now, const struct ratelimit_info *rl,
		   int64_t wait_until)
{
	bucket_observe(&t->b, now, rl, wait_until);
}

static void end_inflight(struct sched_item *it)
{
	struct sched_tenant *t = it->imp->t;
	if (it->inflight && it->inflight_kind == SCHED_DO_SUBMIT && t->submitting > 0)
		t->submitting--;
	it->inflight = false;
}

void sched_submitted(struct sched_item *it, int64_t now)
{
	struct sched_tenant *t = it->imp->t;
	end_inflight(it);
	if (it->state != SCHED_QUEUED)
		return;
	queue_unlink(it);
	it->state = SCHED_ACTIVE;
	it->attempts = 0;
	it->submitted_at = now;
	it->poll_interval = 0;
	it->last_running_at = 0;
	it->next_poll = first_poll_at(t, it, now);
	jobs_link(it);
	t->active++;
	t->tmj_backoff = SCHED_TMJ_FIRST_MS;
}

void sched_submit_too_many_jobs(struct sched_item *it, int64_t now)
{
	struct sched_tenant *t = it->imp->t;
	end_inflight(it);
	unsigned known = t->active;
	if (known >= 2) {
		t->cap_low = known;
		t->cap_low_until = now + SCHED_CAP_RESTORE_MS;
	} else {
		t->tmj_until = now + t->tmj_backoff;
		t->tmj_backoff *= 2;
		if (t->tmj_backoff > SCHED_TMJ_MAX_MS)
			t->tmj_backoff = SCHED_TMJ_MAX_MS;
	}
}

void sched_requeue(struct sched_item *it, int64_t now)
{
	(void)now;
	end_inflight(it);
}

int sched_retry(struct sched_item *it, int64_t now)
{
	struct sched *s = it->imp->t->s;
	enum sched_action_kind kind = it->inflight_kind;
	end_inflight(it);
	it->attempts++;
	int64_t d = backoff_ms(s, it->attempts);
	switch (it->state) {
	case SCHED_QUEUED:
		if (kind == SCHED_DO_SUBMIT && it->attempts >= s->cfg.max_submit_attempts)
			return -ETIMEDOUT;
		it->not_before = now + d;
		break;
	case SCHED_ACTIVE:
		it->next_poll = now + d;
		break;
	case SCHED_ENDED:
		if (it->attempts >= s->cfg.max_fetch_attempts)
			return -ETIMEDOUT;
		it->not_before = now + d;
		break;
	}
	return 0;
}

void sched_poll_running(struct sched_item *it, int64_t now, int percentage_done,
			long time_left_s)
{
	struct sched_tenant *t = it->imp->t;
	end_inflight(it);
	if (it->state != SCHED_ACTIVE)
		return;
	it->attempts = 0;
	/* The job was running when the poll left, not when its answer came. */
	it->last_running_at = it->poll_sent_at ? it->poll_sent_at : now;
	int64_t next;
	const int64_t estimate_max = 5 * 60 * 1000;
	int64_t expected = 0;
	if (t->ms_per_user > 0)
		expected = it->submitted_at + (int64_t)(t->ms_per_user * (double)it->users);
	it->predicted_end = 0;
	int64_t floor_ms = SCHED_POLL_MIN_MS;
	if (percentage_done > 0 && percentage_done < 100) {
		/* Finer than time_left_seconds (whole seconds, rounded up), which
		 * still bounds it. The percentage is rounded down and counted
		 * from when the poll was answered, so elapsed * 100 / pct is the
		 * latest end it allows: poll then, once, rather than early. */
		int64_t at = it->poll_sent_at ? it->poll_sent_at : now;
		int64_t elapsed = at - it->submitted_at;
		int64_t rem = elapsed * (100 - percentage_done) / percentage_done;
		if (time_left_s >= 0)
			rem = min64(rem, (int64_t)time_left_s * 1000);
		it->predicted_end = at + rem;
		next = at + min64(rem + SCHED_POLL_MARGIN_MS, estimate_max);
		/* A poll that came just before the end: the next one right
		 * after it, not a whole minimum interval later (twice per job
		 * at most, should a job stall at 99 %). */
		if (next < now + SCHED_POLL_MIN_MS && it->near_end_polls < SCHED_NEAR_END_POLLS) {
			it->near_end_polls++;
			floor_ms = SCHED_POLL_MARGIN_MS;
		}
	} else if (time_left_s >= 0) {
		next = now + min64((int64_t)time_left_s * 1000, estimate_max);
	} else if (expected > now + SCHED_POLL_MIN_MS) {
		next = min64(expected, now + estimate_max);
	} else {
		it->poll_interval = it->poll_interval ? it->poll_interval * 2 : 500;
		if (it->poll_interval > SCHED_POLL_MAX_MS)
			it->poll_interval = SCHED_POLL_MAX_MS;
		next = now + it->poll_interval;
	}
	if (next < now + floor_ms)
		next = now + floor_ms;
	it->next_poll = next;
}

void sched_poll_ended(struct sched_item *it, int64_t now, bool fetch_errors)
{
	struct sched_tenant *t = it->imp->t;
	end_inflight(it);
	if (it->state != SCHED_ACTIVE)
		return;
	/* The job ended between the last "running" answer and now: where its
	 * progress said it would when that is in the window (else the middle;
	 * a midpoint under-estimates whenever the last "running" poll was
	 * early, and the next first poll would be early again). */
	int64_t from = it->last_running_at ? it->last_running_at : it->submitted_at;
	int64_t to = it->poll_sent_at > from ? it->poll_sent_at : now;
	double ended = ((double)from + (double)to) / 2.0;
	if (it->predicted_end > from && it->predicted_end <= to)
		ended = (double)it->predicted_end;
	else if (!it->last_running_at && t->ms_per_user > 0)
		/* The first poll, aimed just after the estimate, found it ended:
		 * keep the estimate, nudged down a little so that a job getting
		 * faster is noticed (a poll that comes early says by how much).
		 * From when the poll was due, not sent: a poll held up (a busy
		 * loop, the bucket) must not make every later one late. */
		ended = (double)max64(from, min64(to, it->poll_planned) - 2 * SCHED_POLL_MARGIN_MS);
	double dur = ended - (double)it->submitted_at;
	if (it->users > 0 && dur > 0) {
		/* Weighted by users, so small jobs' fixed costs do not dominate. */
		t->dur_sum = (1 - MPU_ALPHA) * t->dur_sum + dur;
		t->users_sum = (1 - MPU_ALPHA) * t->users_sum + (double)it->users;
		t->ms_per_user = t->dur_sum / t->users_sum;
	}
	if (t->active > 0)
		t->active--;
	it->state = SCHED_ENDED;
	it->needs_fetch = fetch_errors;
	it->attempts = 0;
	it->not_before = now;
}

/* --- facts ---------------------------------------------------------------------- */

unsigned sched_tenant_active(const struct sched_tenant *t)
{
	return t->active + t->submitting;
}

unsigned sched_tenant_inflight(const struct sched_tenant *t)
{
	return t->b.inflight;
}

double sched_tenant_tokens(const struct sched_tenant *t, int64_t now)
{
	return bucket_level(&t->b, now);
}

double sched_tenant_rate(const struct sched_tenant *t)
{
	return t->b.rate * 1000.0;
}

int64_t sched_tenant_blocked_until(const struct sched_tenant *t)
{
	return t->b.blocked_until;
}

double sched_tenant_ms_per_user(const struct sched_tenant *t)
{
	return t->ms_per_user;
}
