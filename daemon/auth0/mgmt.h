/*
 * mgmt — the Auth0 Management API calls the daemon makes, for one tenant.
 *
 *   import submit   POST <base>/api/v2/jobs/users-imports, multipart streamed
 *                   from the chunk file (parts: users (file), connection_id,
 *                   upsert, external_id when given, send_completion_email —
 *                   always sent, "false" unless asked, since Auth0 defaults
 *                   to emailing every tenant owner).
 *   job get         GET <base>/api/v2/jobs/{id}
 *   job errors      GET <base>/api/v2/jobs/{id}/errors — three shapes: a list
 *                   of {user, errors[]}, 204 (none, or an unparsable file), or
 *                   a job object carrying status_details.
 *   export create   POST <base>/api/v2/jobs/users-exports (JSON body)
 *   download        GET of an export's `location` URL, WITHOUT the
 *                   Authorization header (another host), to a file.
 *
 * Each call gets a token first (token.c), runs once, and on a 401/403 drops
 * the token and runs once more with a fresh one. Every HTTP answer of the
 * Management API is shown to the observer (rate-limit headers, verdict) so
 * one limiter per tenant can be fed by all of them. The call's callback runs
 * exactly once unless the call is cancelled; the result is valid only inside
 * the callback.
 */
#pragma once

#include <json-c/json.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "daemon/auth0/classify.h"
#include "daemon/auth0/ratelimit.h"
#include "daemon/auth0/token.h"
#include "daemon/uvcurl.h"

/* Auth0 refuses a request body over this many bytes (413). */
#define A0_IMPORT_MAX_REQUEST_BYTES 512000u
/* The longest external_id the daemon sends ("<import id>-<chunk number>"). */
#define A0_EXTERNAL_ID_MAX 64u
/* Multipart bytes around the users file in the worst case (upsert "false",
 * an external_id of A0_EXTERNAL_ID_MAX bytes, a 20-byte connection id):
 * chunk files of at most A0_IMPORT_MAX_REQUEST_BYTES - this always fit. */
#define A0_IMPORT_MULTIPART_OVERHEAD_MAX 696u

enum a0_call_kind {
	A0_CALL_IMPORT = 0,
	A0_CALL_JOB,
	A0_CALL_JOB_ERRORS,
	A0_CALL_EXPORT,
	A0_CALL_DOWNLOAD,
	A0_CALL_USERS_BY_EMAIL,
	A0_CALL_USER_DELETE,
};

struct a0_client_config {
	const char *base_url;      /* no trailing slash */
	const char *audience;      /* NULL: <base>/api/v2/ */
	const char *client_id;
	const char *client_secret;
	const char *ca_file;
	long connect_timeout_ms;   /* 0: 10 s */
	long timeout_ms;           /* 0: 60 s (downloads: 10 min) */
	a0_clock_fn now_ms;        /* NULL: CLOCK_REALTIME */
	void *clock_arg;
};

struct a0_job {
	char id[64];
	char type[32];             /* users_import, users_export */
	char status[32];           /* pending, processing, completed, failed, expired, … */
	char connection_id[64];
	char created_at[40];
	char external_id[128];
	bool has_summary;
	long inserted, updated, failed, total;
	int percentage_done;       /* -1 when absent */
	long time_left_seconds;    /* -1 when absent */
	char status_details[A0_MESSAGE_MAX];
	char *location;            /* export download URL, or NULL */
};

/* What one HTTP answer of the Management API showed (observer). */
struct a0_observation {
	enum a0_call_kind kind;
	long status;               /* 0 on a transport error */
	int result;
	const struct ratelimit_info *rl;
	const struct a0_class *cls;
	size_t request_bytes;      /* body bytes sent */
};
typedef void (*a0_observer_fn)(const struct a0_observation *obs, void *arg);

struct a0_result {
	enum a0_call_kind kind;
	struct a0_class cls;       /* verdict of the final answer */
	long status;
	int result;                /* transport result of the final answer */
	struct ratelimit_info rl;
	bool has_job;
	struct a0_job job;         /* import, job, export; job-shaped errors */
	/* job errors: the list (array of {"user":{…},"errors":[{code,message,path}]}),
	 * or NULL for 204 and the job-object shape. */
	json_object *errors;
	/* users-by-email: the users array (in `errors`' place: same lifetime). */
	size_t download_bytes;
	unsigned requests;         /* HTTP requests this call made (token excluded) */
	size_t request_bytes;      /* body bytes of the last request sent */
};

typedef void (*a0_done_cb)(const struct a0_result *res, void *arg);

struct a0_client;
struct a0_call;

int a0_client_new(struct uvcurl *uc, const struct a0_client_config *cfg, struct a0_client **ret);
/* Cancels every call without callbacks. */
void a0_client_free(struct a0_client *c);
/* True when no call of the client runs (it may be freed without cancelling). */
bool a0_client_idle(const struct a0_client *c);
void a0_client_set_observer(struct a0_client *c, a0_observer_fn fn, void *arg);
struct a0_token *a0_client_token(struct a0_client *c);

struct a0_import_params {
	const char *users_path;     /* the chunk file (a JSON array) */
	const char *connection_id;
	bool upsert;
	const char *external_id;    /* NULL or "": not sent */
	bool send_completion_email;
};

/* Exact request body size for a users file of `users_bytes` bytes. */
size_t a0_import_request_bytes(const struct a0_import_params *p, size_t users_bytes);

int a0_import_submit(struct a0_client *c, const struct a0_import_params *p, a0_done_cb cb,
		     void *arg, struct a0_call **ret);
int a0_job_get(struct a0_client *c, const char *job_id, a0_done_cb cb, void *arg,
	       struct a0_call **ret);
int a0_job_errors(struct a0_client *c, const char *job_id, a0_done_cb cb, void *arg,
		  struct a0_call **ret);
/* `json_body`: the users-exports request body as JSON text. */
int a0_export_create(struct a0_client *c, const char *json_body, a0_done_cb cb, void *arg,
		     struct a0_call **ret);
/* Writes the file at `url` to `fd`, at most `max_bytes` (-EMSGSIZE past it). */
int a0_download(struct a0_client *c, const char *url, int fd, size_t max_bytes, a0_done_cb cb,
		void *arg, struct a0_call **ret);
/* GET <base>/api/v2/users-by-email?email=… (read:users): on A0_OK the
 * answer's array is in res->errors. */
int a0_users_by_email(struct a0_client *c, const char *email, a0_done_cb cb, void *arg,
		      struct a0_call **ret);
/* DELETE <base>/api/v2/users/{id} (delete:users): 204. */
int a0_user_delete(struct a0_client *c, const char *user_id, a0_done_cb cb, void *arg,
		   struct a0_call **ret);
/* Abandons a call: its callback never runs. */
void a0_call_cancel(struct a0_call *call);

/* Parses a job object (JSON text) → 0, or -EBADMSG. `ret->location` is
 * malloc'ed (free with a0_job_done). */
int a0_job_parse(const char *body, size_t len, struct a0_job *ret);
void a0_job_done(struct a0_job *job);
