/* pipeline slots: other Management requests under the tenants' buckets (pipeline.h). */
#include "queue/pipeline.h"

#include <errno.h>
#include <stdlib.h>

#include "queue/pipeline_int.h"

struct pipeline_slot {
	struct ptenant *t;
	pipeline_slot_fn fn;
	void *arg;
	struct pipeline_slot *prev, *next;
};

static void unlink_slot(struct pipeline_slot *s)
{
	struct ptenant *t = s->t;
	if (s->prev)
		s->prev->next = s->next;
	else
		t->slots = s->next;
	if (s->next)
		s->next->prev = s->prev;
	else
		t->slots_tail = s->prev;
}

int pipeline_slot_wait(struct pipeline *p, const char *tenant, pipeline_slot_fn fn, void *arg,
		       struct pipeline_slot **ret)
{
	if (!p || p->stopping)
		return -ESHUTDOWN;
	struct ptenant *t = pipeline_tenant(p, tenant);
	if (!t || !t->client)
		return -ENOENT;
	struct pipeline_slot *s = calloc(1, sizeof(*s));
	if (!s)
		return -ENOMEM;
	s->t = t;
	s->fn = fn;
	s->arg = arg;
	s->prev = t->slots_tail;
	if (t->slots_tail)
		t->slots_tail->next = s;
	else
		t->slots = s;
	t->slots_tail = s;
	if (ret)
		*ret = s;
	pipeline_tick(p);
	return 0;
}

void pipeline_slot_cancel(struct pipeline_slot *s)
{
	if (!s)
		return;
	unlink_slot(s);
	free(s);
}

void pipeline_slot_ended(struct pipeline *p, const char *tenant, const struct a0_result *res)
{
	struct ptenant *t = p ? pipeline_tenant(p, tenant) : NULL;
	if (!t)
		return;
	if (!res || res->requests == 0)
		sched_observe(t->st, pipeline_now_ms(), NULL,
			      res && res->cls.verdict == A0_WAIT ? res->cls.wait_until_ms : 0);
	pipeline_tick(p);
}

struct a0_client *pipeline_tenant_client(struct pipeline *p, const char *tenant)
{
	struct ptenant *t = p && !p->stopping ? pipeline_tenant(p, tenant) : NULL;
	return t ? t->client : NULL;
}

void pipeline_slots_serve(struct pipeline *p, int64_t now, int64_t *wake)
{
	for (struct ptenant *t = p->tenants; t && !p->stopping; t = t->next) {
		while (t->slots && !p->stopping) {
			int64_t at;
			if (sched_tenant_take(t->st, now, &at) < 0) {
				if (at < *wake)
					*wake = at;
				break;
			}
			struct pipeline_slot *s = t->slots;
			unlink_slot(s);
			pipeline_slot_fn fn = s->fn;
			void *arg = s->arg;
			free(s);
			fn(t->client, arg);
		}
	}
}

void pipeline_slots_free(struct ptenant *t)
{
	while (t->slots) {
		struct pipeline_slot *s = t->slots;
		unlink_slot(s);
		free(s);
	}
}
