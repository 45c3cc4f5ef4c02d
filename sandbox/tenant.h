/*
 * tenant — the emulated Auth0 tenant: connections, a user store per
 * connection, access tokens, import and export jobs, the tenant-wide token
 * bucket, injected faults and the statistics tests assert on.
 *
 * One process-wide tenant, guarded by one mutex: every function here expects
 * the caller to hold it (tenant_lock/tenant_unlock), except tenant_init and
 * tenant_done. Times are milliseconds since the epoch.
 *
 * Jobs run from their creation: an import of N users takes
 * N x ms_per_user; its effect on the user store is applied when that time
 * has passed by tenant_advance(now), which every request calls first and the
 * tenant's thread calls at each job's end (so that a request coming then does
 * not pay for the work; that thread also prepares each import's users off
 * the lock as soon as it is created). Jobs complete in the order of their end
 * times, so the store is the same whenever it is looked at. Job data is
 * dropped `retention` seconds after creation.
 */
#pragma once

#include <json-c/json.h>
#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define TENANT_MAX_BODY 512000          /* Auth0's limit on a whole import request */
#define TENANT_CONNECTIONS 3
#define TENANT_MAX_SCRIPTS 32

struct tenant_options {
	char *client_id;
	char *client_secret;
	char *scopes;            /* space-separated */
	long token_ttl;          /* seconds */
	int max_active_jobs;
	double rate;             /* tokens per second */
	int burst;
	double ms_per_user;
	long retention;          /* seconds */
	double fault_5xx, fault_429, fault_reset, fault_slow;
	double slow_seconds;
	bool retry_after;
	long export_url_ttl;     /* seconds a `location` link stays valid */
};

struct connection {
	const char *id;
	const char *name;
	const char *strategy;
	bool database;
	bool enabled;
};

struct user {
	int conn;
	char *user_id;           /* without the auth0| prefix */
	char *email;             /* lower-cased */
	json_object *profile;    /* the stored fields, as submitted (email lower-cased) */
	int64_t created_ms, updated_ms;
	int inserted, updated;   /* how many times the store inserted / updated it */
	bool seeded, deleted;
};

enum job_kind { JOB_IMPORT, JOB_EXPORT };

struct job {
	char id[24];
	enum job_kind kind;
	int conn;                /* -1: every connection (exports only) */
	int64_t created_ms, end_ms;
	char created_at[32];
	char *external_id;
	bool processed, failed;
	/* imports */
	bool upsert, send_email;
	char *users;             /* the users part, until processed */
	size_t users_len;
	uint64_t users_hash;
	int nusers;
	int inserted, updated, failed_users, total;
	json_object *errors;     /* [{user, errors}] once processed */
	/* What depends only on the users file (parsed array, and per user the
	 * schema or in-file duplicate errors, NULL: fine), prepared off the
	 * lock by the tenant's prepare thread so that a job's end costs only
	 * the store lookups; prep_state 0: not yet, 1: being prepared, 2: ready. */
	int prep_state;
	json_object *prep_arr;
	json_object **prep_errs;
	size_t prep_n;
	/* exports */
	char format[8];
	json_object *fields;     /* as requested, or NULL */
	long limit;              /* 0: none */
	unsigned char *file;     /* gzip bytes once processed */
	size_t file_len;
};

enum fault_action { FAULT_NONE, FAULT_STATUS, FAULT_RESET, FAULT_RESET_AFTER, FAULT_SLOW };

struct fault_script {
	char endpoint[32];       /* endpoint name, or "any" */
	int skip;                /* matching requests to let through first */
	int next;                /* then this many get the fault */
	enum fault_action action;
	int status;
	double seconds;
};

struct request_stats {
	long requests;
	long rate_limited;       /* 429 Global limit from the bucket */
	long active_jobs_429;    /* 429 too many active import jobs */
	long faults_5xx, faults_429, faults_reset, faults_slow;
	long early_after_429;    /* arrived before the wait a 429 asked for */
	long largest_body;
	long duplicate_users_parts;
	long import_jobs, export_jobs;
	long completion_emails;  /* import jobs that would email the tenant's owners */
	int max_active_jobs;
	long tokens_issued;
};

struct token {
	char value[48];
	int64_t expires_ms;
	char scopes[256];
	bool revoked;
};

struct tenant {
	struct tenant_options opt;
	struct tenant_options initial; /* the command line's, restored by reset */
	char base_url[128];
	char sign_key[33];
	const struct connection *conns;
	struct user **users;
	size_t nusers, capusers;
	json_object *by_email[TENANT_CONNECTIONS], *by_uid[TENANT_CONNECTIONS],
		*by_username[TENANT_CONNECTIONS], *by_phone[TENANT_CONNECTIONS];
	struct job **jobs;
	size_t njobs, capjobs;
	pthread_t prep_thread;   /* prepares imports (see struct job) */
	bool prep_started, prep_stop;
	struct job *prep_current; /* being prepared off the lock */
	bool advancing;          /* tenant_advance runs (it may wait for a prep) */
	struct token *tokens;
	size_t ntokens, captokens;
	double bucket;
	int64_t bucket_ms;
	int64_t wait_until_ms;   /* the client was told to wait until then */
	struct fault_script scripts[TENANT_MAX_SCRIPTS];
	size_t nscripts;
	long token_ttl_override; /* >0: newly issued tokens live this many seconds */
	struct request_stats stats;
	json_object *users_hashes; /* hex hash -> submissions */
	json_object *endpoint_counts, *status_counts;
	json_object **log;       /* ring of request records */
	size_t log_cap, log_len, log_head;
	long log_seq;
};

extern const struct connection tenant_connections[TENANT_CONNECTIONS];

int tenant_init(struct tenant *t, const struct tenant_options *opt, const char *base_url);
void tenant_done(struct tenant *t);
void tenant_lock(void);
void tenant_unlock(void);

/* Completes due jobs and drops expired ones. */
void tenant_advance(struct tenant *t, int64_t now);
/* Clears users, jobs, stats, faults and tokens' overrides (not tokens). */
void tenant_reset(struct tenant *t);

int tenant_conn_index(const char *id);

/* Tokens. */
const struct token *tenant_token_issue(struct tenant *t, const char *scopes, int64_t now);
const struct token *tenant_token_find(struct tenant *t, const char *value);
void tenant_tokens_revoke(struct tenant *t);

/* The token bucket: takes one token if there is one. ret_remaining and
 * ret_reset (UNIX seconds) are for the x-ratelimit headers;
 * ret_retry_after the seconds until a token is there. */
bool tenant_bucket_take(struct tenant *t, int64_t now, long *ret_remaining, long *ret_reset,
			long *ret_retry_after);

/* Jobs. */
struct job *tenant_job_find(struct tenant *t, const char *id);
int tenant_active_imports(const struct tenant *t, int64_t now);
struct job *tenant_import_create(struct tenant *t, int conn, const char *users, size_t len,
				 bool upsert, bool send_email, const char *external_id,
				 int64_t now);
struct job *tenant_export_create(struct tenant *t, int conn, const char *format,
				 json_object *fields, long limit, int64_t now);
/* The job as GET /api/v2/jobs/{id} shows it (new object). */
json_object *tenant_job_json(struct tenant *t, const struct job *j, int64_t now);
/* The admin view: the API view plus what the emulator knows. */
json_object *tenant_job_admin_json(struct tenant *t, const struct job *j, int64_t now);
/* A signed link to an export's file, valid export_url_ttl seconds. */
void tenant_export_location(struct tenant *t, const struct job *j, int64_t now, char *buf,
			    size_t size);
/* Checks a link's expiry and signature: 0, -EACCES (expired or bad), -ENOENT. */
int tenant_export_check(struct tenant *t, const char *job_id, const char *expires,
			const char *sig, int64_t now, const struct job **ret_job);

/* Users. */
struct user *tenant_user_by_email(struct tenant *t, int conn, const char *email);
struct user *tenant_user_by_id(struct tenant *t, const char *user_id_with_prefix);
int tenant_user_delete(struct tenant *t, struct user *u, int64_t now);
/* A user as the Management API shows it (new object). */
json_object *tenant_user_json(const struct tenant *t, const struct user *u);
/* Seeds users without the import rules (emails lower-cased). Returns how many. */
int tenant_seed(struct tenant *t, int conn, json_object *users, int64_t now);

/* Request log and counters. */
json_object *tenant_log_request(struct tenant *t, const char *method, const char *path,
				const char *endpoint, int64_t now, size_t body_bytes);
json_object *tenant_stats_json(struct tenant *t, int64_t now);
