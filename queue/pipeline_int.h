/*
 * pipeline_int — what pipeline.c, poller.c and recover.c share (not a
 * public interface).
 *
 * struct pchunk is the pipeline's memory of one chunk it works on; it lives
 * from when the chunk is loaded from the store until the chunk ends
 * (completed, failed, cancelled, split) — and at least until no store write
 * or Auth0 call that refers to it is pending (`pending` counts them).
 */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

#include "daemon/auth0/mgmt.h"
#include "queue/chunk.h"
#include "queue/import.h"
#include "queue/sched.h"

struct store;
struct pipeline;
struct ptenant;
struct pimport;

struct pchunk {
	struct pipeline *p;
	struct pimport *imp;
	int64_t chunk_no;
	uint32_t users;
	char job_id[128];
	int64_t submitted_at_ms;
	int64_t submit_sent_ms; /* the submit in flight was handed to the client */
	bool resubmitted;
	bool known_state;       /* loaded as submitted */
	struct sched_item *item;
	struct a0_call *call;
	unsigned pending;       /* store writes / calls / works referring to it */
	bool dead;              /* ended: free once pending == 0 */
	/* Result of the job, kept between poll, fetch and commit. */
	long inserted, updated, failed;
	bool job_failed;
	char message[A0_MESSAGE_MAX];
	struct pchunk *next;    /* in its import */
};

struct pimport {
	struct pipeline *p;
	struct ptenant *t;
	char id[IMPORT_ID_LEN + 1];
	int64_t seq;
	char connection_id[64];
	bool upsert;
	bool send_completion_email;
	bool stopped;           /* failed / cancelled: submit nothing more */
	bool seen;              /* rescan mark */
	struct sched_import *simp;
	int64_t next_no;        /* the next new chunk number a split takes */
	struct pchunk *chunks;
	size_t nchunks;         /* live chunks in `chunks` */
	size_t refs;            /* chunks allocated (live, or ended but pending) */
	struct pimport *next;
};

struct ptenant {
	struct pipeline *p;
	char name[40];
	struct a0_client *client;
	struct a0_client **retired;  /* replaced at reloads; freed once idle */
	size_t nretired;
	/* What t->client was made from, to replace it only when it changes. */
	char *base_url, *client_id, *audience;
	struct secret *secret;
	struct sched_tenant *st;
	char last_error[A0_MESSAGE_MAX];
	struct pipeline_slot *slots, *slots_tail; /* pipeline_slot_wait, FIFO */
	struct ptenant *next;
};

struct pipeline {
	uv_loop_t *loop;
	struct store *store;
	char *state_dir;
	struct uvcurl *uc;
	struct sched *sched;
	struct ptenant *tenants;
	struct pimport *imports;
	uv_timer_t tick_timer;
	uv_timer_t rescan_timer;
	struct metrics *metrics;
	struct metric *m_requests, *m_429, *m_retries, *m_job_seconds, *m_in_flight;
	bool started;
	bool stopping;          /* draining: nothing new leaves */
	bool closed;            /* clients and uv handles closed */
	bool in_tick;
	bool tick_again;
	unsigned rescans;
};

/* pipeline.c */
int64_t pipeline_now_ms(void);
/* Counts a transient failure of a call (metrics). */
void pipeline_count_retry(struct pchunk *c, const char *endpoint);
void pipeline_count_job_end(struct pchunk *c, int64_t now);
void pipeline_tick(struct pipeline *p);
/* While stopping: closes the handles once no Auth0 call runs. */
void pipeline_drain_check(struct pipeline *p);
void pchunk_release(struct pchunk *c);       /* pending-- and free if dead */
void pchunk_end(struct pchunk *c);           /* no more work: remove from sched */
/* Out of the scheduler now, still held (a rescan must not take it over)
 * until the write that ends it commits and calls pchunk_end. */
void pchunk_retire(struct pchunk *c);
struct ptenant *pipeline_tenant(struct pipeline *p, const char *name);
/* Fails the whole import with Auth0's message (problem JSON) and stops it. */
void pipeline_fail_import(struct pimport *imp, struct pchunk *c, const char *message);
/* A call that did not start (`err`, negative errno): `cb` gets an A0_RETRY
 * result saying "<what>: <reason>" at once, as if it had failed. */
void pipeline_call_not_started(a0_done_cb cb, struct pchunk *c, const char *what, int err);
/* Answers with no Management request made still give the bucket its token back. */
void pipeline_observe_none(struct pchunk *c, const struct a0_result *res);

/* pipeline_slot.c: serves the slots the buckets allow; lowers *wake. */
void pipeline_slots_serve(struct pipeline *p, int64_t now, int64_t *wake);
void pipeline_slots_free(struct ptenant *t);

/* poller.c */
void poller_poll(struct pchunk *c);
void poller_fetch_errors(struct pchunk *c);
void poller_expire(struct pchunk *c);

/* recover.c */
int recover_load(struct pipeline *p, bool at_start);
struct pimport *pimport_find(struct pipeline *p, const char *id);
void pimport_free(struct pimport *imp);
