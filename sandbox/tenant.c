#include "sandbox/tenant.h"

#include "sandbox/export.h"
#include "sandbox/schema.h"
#include "sandbox/util.h"

#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#define MAX_TOKENS 4096
#define LOG_CAP 20000
#define JOB_TIMEOUT_MS (2 * 3600 * 1000)

const struct connection tenant_connections[TENANT_CONNECTIONS] = {
	{ "con_SandboxUsers0001", "Username-Password-Authentication", "auth0", true, true },
	{ "con_SandboxGoogle001", "google-oauth2", "google-oauth2", false, true },
	{ "con_SandboxDisabled1", "Disabled-Database", "auth0", true, false },
};

static pthread_mutex_t tenant_mutex = PTHREAD_MUTEX_INITIALIZER;

/* Signalled when a job is created and when a prepare ends. */
static pthread_cond_t prep_cond = PTHREAD_COND_INITIALIZER;
void tenant_lock(void) { pthread_mutex_lock(&tenant_mutex); }
void tenant_unlock(void) { pthread_mutex_unlock(&tenant_mutex); }

int tenant_conn_index(const char *id)
{
	for (int i = 0; i < TENANT_CONNECTIONS; i++)
		if (strcmp(tenant_connections[i].id, id) == 0)
			return i;
	return -1;
}

static void maps_new(struct tenant *t)
{
	for (int i = 0; i < TENANT_CONNECTIONS; i++) {
		t->by_email[i] = json_object_new_object();
		t->by_uid[i] = json_object_new_object();
		t->by_username[i] = json_object_new_object();
		t->by_phone[i] = json_object_new_object();
	}
}

static void maps_free(struct tenant *t)
{
	for (int i = 0; i < TENANT_CONNECTIONS; i++) {
		json_object_put(t->by_email[i]);
		json_object_put(t->by_uid[i]);
		json_object_put(t->by_username[i]);
		json_object_put(t->by_phone[i]);
	}
}

static void user_free(struct user *u)
{
	if (!u)
		return;
	free(u->user_id);
	free(u->email);
	json_object_put(u->profile);
	free(u);
}

static void job_free(struct job *j)
{
	if (!j)
		return;
	for (size_t i = 0; j->prep_errs && i < j->prep_n; i++)
		json_object_put(j->prep_errs[i]);
	free(j->prep_errs);
	json_object_put(j->prep_arr);
	free(j->external_id);
	free(j->users);
	json_object_put(j->errors);
	json_object_put(j->fields);
	free(j->file);
	free(j);
}

static void clear_state(struct tenant *t)
{
	/* a job being prepared off the lock is still the prepare thread's */
	while (t->prep_current || t->advancing)
		pthread_cond_wait(&prep_cond, &tenant_mutex);
	for (size_t i = 0; i < t->nusers; i++)
		user_free(t->users[i]);
	t->nusers = 0;
	for (size_t i = 0; i < t->njobs; i++)
		job_free(t->jobs[i]);
	t->njobs = 0;
	maps_free(t);
	maps_new(t);
	json_object_put(t->users_hashes);
	json_object_put(t->endpoint_counts);
	json_object_put(t->status_counts);
	t->users_hashes = json_object_new_object();
	t->endpoint_counts = json_object_new_object();
	t->status_counts = json_object_new_object();
	for (size_t i = 0; i < t->log_len; i++)
		json_object_put(t->log[(t->log_head + i) % t->log_cap]);
	t->log_len = 0;
	t->log_head = 0;
	memset(&t->stats, 0, sizeof(t->stats));
	t->nscripts = 0;
	t->token_ttl_override = 0;
	t->wait_until_ms = 0;
	t->bucket = t->opt.burst;
}

int tenant_init(struct tenant *t, const struct tenant_options *opt, const char *base_url)
{
	memset(t, 0, sizeof(*t));
	t->opt = *opt;
	t->initial = *opt;
	snprintf(t->base_url, sizeof(t->base_url), "%s", base_url);
	sbx_rand_alnum(t->sign_key, 32);
	t->conns = tenant_connections;
	t->log_cap = LOG_CAP;
	t->log = calloc(t->log_cap, sizeof(*t->log));
	if (!t->log)
		return -ENOMEM;
	maps_new(t);
	t->users_hashes = json_object_new_object();
	t->endpoint_counts = json_object_new_object();
	t->status_counts = json_object_new_object();
	t->bucket = opt->burst;
	t->bucket_ms = sbx_now_ms();
	return 0;
}

void tenant_done(struct tenant *t)
{
	if (t->prep_started) {
		tenant_lock();
		t->prep_stop = true;
		pthread_cond_broadcast(&prep_cond);
		tenant_unlock();
		pthread_join(t->prep_thread, NULL);
		t->prep_started = false;
	}
	clear_state(t);
	maps_free(t);
	json_object_put(t->users_hashes);
	json_object_put(t->endpoint_counts);
	json_object_put(t->status_counts);
	free(t->users);
	free(t->jobs);
	free(t->tokens);
	free(t->log);
	memset(t, 0, sizeof(*t));
}

void tenant_reset(struct tenant *t)
{
	/* credentials and the listener stay; everything else starts over */
	char *id = t->opt.client_id, *secret = t->opt.client_secret, *scopes = t->opt.scopes;
	t->opt = t->initial;
	t->opt.client_id = id;
	t->opt.client_secret = secret;
	t->opt.scopes = scopes;
	clear_state(t);
	t->bucket_ms = sbx_now_ms();
}

/* ---- tokens ---------------------------------------------------------- */

const struct token *tenant_token_issue(struct tenant *t, const char *scopes, int64_t now)
{
	/* drop expired and revoked tokens; keep at most MAX_TOKENS */
	size_t k = 0;
	for (size_t i = 0; i < t->ntokens; i++)
		if (!t->tokens[i].revoked && t->tokens[i].expires_ms > now - 3600 * 1000)
			t->tokens[k++] = t->tokens[i];
	t->ntokens = k;
	if (t->ntokens == MAX_TOKENS) {
		memmove(t->tokens, t->tokens + 1, (t->ntokens - 1) * sizeof(*t->tokens));
		t->ntokens--;
	}
	if (t->ntokens == t->captokens) {
		size_t cap = t->captokens ? t->captokens * 2 : 16;
		struct token *p = realloc(t->tokens, cap * sizeof(*p));
		if (!p)
			return NULL;
		t->tokens = p;
		t->captokens = cap;
	}
	struct token *tok = &t->tokens[t->ntokens++];
	memset(tok, 0, sizeof(*tok));
	memcpy(tok->value, "sbx.", 4);
	sbx_rand_alnum(tok->value + 4, 40);
	long ttl = t->token_ttl_override > 0 ? t->token_ttl_override : t->opt.token_ttl;
	tok->expires_ms = now + (int64_t)ttl * 1000;
	snprintf(tok->scopes, sizeof(tok->scopes), "%s", scopes);
	t->stats.tokens_issued++;
	return tok;
}

const struct token *tenant_token_find(struct tenant *t, const char *value)
{
	for (size_t i = 0; i < t->ntokens; i++)
		if (strcmp(t->tokens[i].value, value) == 0)
			return &t->tokens[i];
	return NULL;
}

void tenant_tokens_revoke(struct tenant *t)
{
	for (size_t i = 0; i < t->ntokens; i++)
		t->tokens[i].revoked = true;
}

/* ---- the token bucket -------------------------------------------------- */

bool tenant_bucket_take(struct tenant *t, int64_t now, long *ret_remaining, long *ret_reset,
			long *ret_retry_after)
{
	double burst = t->opt.burst;
	if (now > t->bucket_ms) {
		t->bucket += (double)(now - t->bucket_ms) / 1000.0 * t->opt.rate;
		if (t->bucket > burst)
			t->bucket = burst;
		t->bucket_ms = now;
	}
	bool ok = t->bucket >= 1.0;
	if (ok)
		t->bucket -= 1.0;
	/* when the next whole token is added (now when full) */
	double missing = t->bucket >= burst ? 0.0 : 1.0 - (t->bucket - floor(t->bucket));
	double next_s = missing > 0 && t->opt.rate > 0 ? missing / t->opt.rate : 0.0;
	*ret_remaining = (long)floor(t->bucket);
	*ret_reset = (long)ceil((double)now / 1000.0 + next_s);
	double wait = t->bucket >= 1.0 ? 0.0 : (1.0 - t->bucket) / (t->opt.rate > 0 ? t->opt.rate : 1e-9);
	long ra = (long)ceil(wait);
	*ret_retry_after = ra < 1 ? 1 : ra;
	return ok;
}

/* ---- users ------------------------------------------------------------- */

static struct user *map_get(struct tenant *t, json_object *map, const char *key)
{
	json_object *v;
	if (!key || !json_object_object_get_ex(map, key, &v))
		return NULL;
	size_t i = (size_t)json_object_get_int64(v);
	return i < t->nusers ? t->users[i] : NULL;
}

static void map_put(json_object *map, const char *key, size_t idx)
{
	if (key)
		json_object_object_add(map, key, json_object_new_int64((int64_t)idx));
}

static const char *str_field(json_object *o, const char *key)
{
	json_object *v;
	if (o && json_object_object_get_ex(o, key, &v) && json_object_is_type(v, json_type_string))
		return json_object_get_string(v);
	return NULL;
}

struct user *tenant_user_by_email(struct tenant *t, int conn, const char *email)
{
	char *low = sbx_strdup_lower(email);
	struct user *u = low ? map_get(t, t->by_email[conn], low) : NULL;
	free(low);
	return u && !u->deleted ? u : NULL;
}

/* A live user whose user_id / username / phone is this value. */
static struct user *user_by(struct tenant *t, int conn, json_object *map, const char *field,
			    const char *value, bool fold)
{
	if (!value)
		return NULL;
	char *key = fold ? sbx_strdup_lower(value) : strdup(value);
	struct user *u = key ? map_get(t, map, key) : NULL;
	free(key);
	if (!u || u->deleted)
		return NULL;
	const char *cur = strcmp(field, "user_id") == 0 ? u->user_id : str_field(u->profile, field);
	if (!cur || (fold ? strcasecmp(cur, value) : strcmp(cur, value)) != 0)
		return NULL;
	return u;
}

struct user *tenant_user_by_id(struct tenant *t, const char *id)
{
	if (strncmp(id, "auth0|", 6) != 0)
		return NULL;
	for (int c = 0; c < TENANT_CONNECTIONS; c++) {
		struct user *u = user_by(t, c, t->by_uid[c], "user_id", id + 6, false);
		if (u)
			return u;
	}
	return NULL;
}

int tenant_user_delete(struct tenant *t, struct user *u, int64_t now)
{
	u->deleted = true;
	u->updated_ms = now;
	return 0;
}

static void index_user(struct tenant *t, size_t idx)
{
	struct user *u = t->users[idx];
	char *low;
	map_put(t->by_email[u->conn], u->email, idx);
	map_put(t->by_uid[u->conn], u->user_id, idx);
	const char *un = str_field(u->profile, "username");
	if (un && (low = sbx_strdup_lower(un))) {
		map_put(t->by_username[u->conn], low, idx);
		free(low);
	}
	map_put(t->by_phone[u->conn], str_field(u->profile, "phone_number"), idx);
}

/* Stores a new user (or revives a deleted record with the same email) from
 * a valid profile. Takes a reference to profile. */
static struct user *user_insert(struct tenant *t, int conn, json_object *profile, int64_t now,
				bool seeded)
{
	const char *email = str_field(profile, "email");
	char *low = sbx_strdup_lower(email ? email : "");
	json_object *v;
	struct user *u = NULL;
	size_t idx;
	if (!low)
		return NULL;
	json_object_object_add(profile, "email", json_object_new_string(low));
	if (json_object_object_get_ex(t->by_email[conn], low, &v)) {
		idx = (size_t)json_object_get_int64(v);
		u = t->users[idx];
		json_object_put(u->profile);
		free(u->user_id);
		free(u->email);
	} else {
		if (t->nusers == t->capusers) {
			size_t cap = t->capusers ? t->capusers * 2 : 256;
			struct user **p = realloc(t->users, cap * sizeof(*p));
			if (!p) {
				free(low);
				return NULL;
			}
			t->users = p;
			t->capusers = cap;
		}
		u = calloc(1, sizeof(*u));
		if (!u) {
			free(low);
			return NULL;
		}
		idx = t->nusers;
		t->users[t->nusers++] = u;
	}
	u->conn = conn;
	u->email = low;
	u->profile = json_object_get(profile);
	const char *uid = str_field(profile, "user_id");
	if (uid) {
		u->user_id = strdup(uid);
	} else {
		char gen[25];
		for (int i = 0; i < 24; i++)
			gen[i] = "0123456789abcdef"[sbx_rand_u64() % 16];
		gen[24] = '\0';
		u->user_id = strdup(gen);
	}
	u->created_ms = now;
	u->updated_ms = now;
	u->deleted = false;
	u->seeded = u->seeded || seeded;
	if (!seeded)
		u->inserted++;
	index_user(t, idx);
	return u;
}

/* upsert=true on an existing user: only these fields change; metadata is
 * replaced; email_verified falls back to false unless given. */
static void user_update(struct user *u, json_object *incoming, int64_t now)
{
	static const char *const changeable[] = { "given_name", "family_name", "name",
		"nickname", "picture", "custom_password_hash", "app_metadata", "user_metadata",
		NULL };
	json_object *v;
	for (const char *const *f = changeable; *f; f++)
		if (json_object_object_get_ex(incoming, *f, &v))
			json_object_object_add(u->profile, *f, json_object_get(v));
	if (json_object_object_get_ex(incoming, "email_verified", &v))
		json_object_object_add(u->profile, "email_verified", json_object_get(v));
	else
		json_object_object_add(u->profile, "email_verified", json_object_new_boolean(0));
	u->updated_ms = now;
	u->updated++;
}

int tenant_seed(struct tenant *t, int conn, json_object *users, int64_t now)
{
	int n = 0;
	size_t len = json_object_array_length(users);
	for (size_t i = 0; i < len; i++) {
		json_object *p = json_object_array_get_idx(users, i);
		if (!json_object_is_type(p, json_type_object) || !str_field(p, "email"))
			continue;
		json_object *copy = NULL;
		if (json_object_deep_copy(p, &copy, NULL) != 0)
			continue;
		if (user_insert(t, conn, copy, now, true))
			n++;
		json_object_put(copy);
	}
	return n;
}

json_object *tenant_user_json(const struct tenant *t, const struct user *u)
{
	json_object *o = json_object_new_object();
	char when[32], uid[300];
	const char *email = u->email;
	json_object *v;
	sbx_iso8601(u->created_ms, when, sizeof(when));
	json_object_object_add(o, "created_at", json_object_new_string(when));
	json_object_object_add(o, "email", json_object_new_string(email));
	json_object_object_add(o, "email_verified",
		json_object_new_boolean(json_object_object_get_ex(u->profile, "email_verified", &v) &&
					json_object_get_boolean(v)));
	json_object *ids = json_object_new_array();
	json_object *id = json_object_new_object();
	json_object_object_add(id, "connection", json_object_new_string(t->conns[u->conn].name));
	json_object_object_add(id, "user_id", json_object_new_string(u->user_id));
	json_object_object_add(id, "provider", json_object_new_string("auth0"));
	json_object_object_add(id, "isSocial", json_object_new_boolean(0));
	json_object_array_add(ids, id);
	json_object_object_add(o, "identities", ids);
	static const char *const shown[] = { "username", "phone_number", "phone_verified",
		"given_name", "family_name", "picture", "blocked", "app_metadata", "user_metadata",
		NULL };
	for (const char *const *f = shown; *f; f++)
		if (json_object_object_get_ex(u->profile, *f, &v))
			json_object_object_add(o, *f, json_object_get(v));
	const char *name = str_field(u->profile, "name");
	json_object_object_add(o, "name", json_object_new_string(name ? name : email));
	const char *nick = str_field(u->profile, "nickname");
	if (nick) {
		json_object_object_add(o, "nickname", json_object_new_string(nick));
	} else {
		const char *at = strchr(email, '@');
		json_object_object_add(o, "nickname",
			json_object_new_string_len(email, at ? (int)(at - email) : (int)strlen(email)));
	}
	sbx_iso8601(u->updated_ms, when, sizeof(when));
	json_object_object_add(o, "updated_at", json_object_new_string(when));
	snprintf(uid, sizeof(uid), "auth0|%s", u->user_id);
	json_object_object_add(o, "user_id", json_object_new_string(uid));
	return o;
}

/* ---- imports ----------------------------------------------------------- */

/* The submitted user with its hash values replaced by "*****". */
static json_object *masked_copy(json_object *user)
{
	json_object *copy = NULL, *chp, *h, *k;
	if (json_object_deep_copy(user, &copy, NULL) != 0)
		return json_object_new_object();
	if (!json_object_is_type(copy, json_type_object))
		return copy;
	if (json_object_object_get_ex(copy, "password_hash", NULL))
		json_object_object_add(copy, "password_hash", json_object_new_string("*****"));
	if (json_object_object_get_ex(copy, "custom_password_hash", &chp) &&
	    json_object_is_type(chp, json_type_object) &&
	    json_object_object_get_ex(chp, "hash", &h) && json_object_is_type(h, json_type_object)) {
		if (json_object_object_get_ex(h, "value", NULL))
			json_object_object_add(h, "value", json_object_new_string("*****"));
		if (json_object_object_get_ex(h, "key", &k) && json_object_is_type(k, json_type_object) &&
		    json_object_object_get_ex(k, "value", NULL))
			json_object_object_add(k, "value", json_object_new_string("*****"));
	}
	return copy;
}

static json_object *one_error(const char *code, const char *message)
{
	json_object *list = json_object_new_array();
	json_object *e = json_object_new_object();
	json_object_object_add(e, "code", json_object_new_string(code));
	json_object_object_add(e, "message", json_object_new_string(message));
	json_object_array_add(list, e);
	return list;
}

static void add_failure(struct job *j, json_object *user, json_object *errors)
{
	json_object *entry = json_object_new_object();
	json_object_object_add(entry, "user", masked_copy(user));
	json_object_object_add(entry, "errors", errors);
	json_object_array_add(j->errors, entry);
	j->failed_users++;
}

/* Parses the users part as one JSON value; NULL unless the whole part is
 * one array. */
static json_object *parse_users(const char *data, size_t len)
{
	json_tokener *tok = json_tokener_new_ex(64);
	if (!tok)
		return NULL;
	json_object *v = json_tokener_parse_ex(tok, data, (int)len);
	if (v && (json_tokener_get_error(tok) != json_tokener_success ||
		  (size_t)json_tokener_get_parse_end(tok) < len)) {
		/* trailing bytes: only whitespace is allowed */
		for (size_t i = json_tokener_get_parse_end(tok); i < len; i++) {
			char c = data[i];
			if (c != ' ' && c != '\t' && c != '\r' && c != '\n') {
				json_object_put(v);
				v = NULL;
				break;
			}
		}
	}
	json_tokener_free(tok);
	if (v && !json_object_is_type(v, json_type_array)) {
		json_object_put(v);
		v = NULL;
	}
	return v;
}

static bool seen(json_object *set, const char *value, bool fold)
{
	if (!value)
		return false;
	char *key = fold ? sbx_strdup_lower(value) : strdup(value);
	if (!key)
		return false;
	bool was = json_object_object_get_ex(set, key, NULL);
	if (!was)
		json_object_object_add(set, key, NULL);
	free(key);
	return was;
}

/* The part of an import that depends only on its users file: parse, schema
 * and in-file duplicates. Touches no tenant state, so the prepare thread runs
 * it off the lock (the caller owns the job's prep fields meanwhile). */
static void prep_import(struct job *j)
{
	json_object *arr = parse_users(j->users, j->users_len);
	if (!arr)
		return;
	size_t n = json_object_array_length(arr);
	json_object **errs_of = calloc(n ? n : 1, sizeof(*errs_of));
	if (!errs_of) {
		json_object_put(arr);
		return;
	}
	json_object *emails = json_object_new_object(), *uids = json_object_new_object(),
		    *unames = json_object_new_object();
	for (size_t i = 0; i < n; i++) {
		json_object *user = json_object_array_get_idx(arr, i);
		json_object *errs = json_object_new_array();
		if (schema_check_user(user, errs) > 0) {
			errs_of[i] = errs;
			continue;
		}
		json_object_put(errs);
		/* the same email, username (case-insensitive) or user_id twice */
		const char *dup = seen(emails, str_field(user, "email"), true) ? "email" :
				  seen(unames, str_field(user, "username"), true) ? "username" :
				  seen(uids, str_field(user, "user_id"), false) ? "user_id" : NULL;
		if (dup) {
			char msg[96];
			snprintf(msg, sizeof(msg), "A user with this %s was already provided.", dup);
			errs_of[i] = one_error("DUPLICATED_USER", msg);
		}
	}
	json_object_put(emails);
	json_object_put(uids);
	json_object_put(unames);
	j->prep_arr = arr;
	j->prep_errs = errs_of;
	j->prep_n = n;
}

static void *prep_main(void *arg)
{
	struct tenant *t = arg;
	tenant_lock();
	while (!t->prep_stop) {
		struct job *next = NULL;
		for (size_t i = 0; i < t->njobs; i++) {
			struct job *j = t->jobs[i];
			if (j->kind == JOB_IMPORT && !j->processed && j->prep_state == 0 &&
			    (!next || j->end_ms < next->end_ms))
				next = j;
		}
		if (!next) {
			/* Nothing to prepare: end jobs when they are due, as Auth0
			 * does, rather than in the first request that comes after
			 * (which would pay for it). */
			int64_t due = INT64_MAX, now = sbx_now_ms();
			for (size_t i = 0; i < t->njobs; i++)
				if (!t->jobs[i]->processed && t->jobs[i]->end_ms < due)
					due = t->jobs[i]->end_ms;
			if (due <= now) {
				tenant_advance(t, now);
				continue;
			}
			if (due == INT64_MAX) {
				pthread_cond_wait(&prep_cond, &tenant_mutex);
			} else {
				struct timespec ts = { .tv_sec = (time_t)(due / 1000),
						       .tv_nsec = (long)(due % 1000) * 1000000L };
				pthread_cond_timedwait(&prep_cond, &tenant_mutex, &ts);
			}
			continue;
		}
		next->prep_state = 1;
		t->prep_current = next;
		tenant_unlock();
		prep_import(next);
		tenant_lock();
		next->prep_state = 2;
		t->prep_current = NULL;
		pthread_cond_broadcast(&prep_cond);
	}
	tenant_unlock();
	return NULL;
}

/* The job's end: its users meet the store, in the order of the file. */
static void process_import(struct tenant *t, struct job *j, int64_t now)
{
	while (j->prep_state == 1)
		pthread_cond_wait(&prep_cond, &tenant_mutex);
	if (j->prep_state == 0) {
		prep_import(j);
		j->prep_state = 2;
	}
	json_object *arr = j->prep_arr;
	json_object **errs_of = j->prep_errs;
	size_t n = j->prep_n;
	j->prep_arr = NULL;
	j->prep_errs = NULL;
	j->prep_n = 0;
	j->processed = true;
	free(j->users);
	j->users = NULL;
	j->errors = json_object_new_array();
	if (!arr || j->end_ms - j->created_ms >= JOB_TIMEOUT_MS) {
		j->failed = true;
		for (size_t i = 0; errs_of && i < n; i++)
			json_object_put(errs_of[i]);
		free(errs_of);
		json_object_put(arr);
		return;
	}
	j->total = (int)n;
	for (size_t i = 0; i < n; i++) {
		json_object *user = json_object_array_get_idx(arr, i);
		if (errs_of[i]) {
			add_failure(j, user, errs_of[i]);
			continue;
		}
		const char *email = str_field(user, "email");
		const char *uid = str_field(user, "user_id");
		const char *uname = str_field(user, "username");
		const char *phone = str_field(user, "phone_number");
		int c = j->conn;
		struct user *by_email = tenant_user_by_email(t, c, email);
		if (j->upsert && by_email) {
			user_update(by_email, user, now);
			j->updated++;
			continue;
		}
		struct user *other = by_email;
		if (!other)
			other = user_by(t, c, t->by_uid[c], "user_id", uid, false);
		if (!other)
			other = user_by(t, c, t->by_username[c], "username", uname, true);
		if (!other)
			other = user_by(t, c, t->by_phone[c], "phone_number", phone, false);
		if (other) {
			if (j->upsert)
				add_failure(j, user, one_error("CONFLICT",
					"A user with this user_id, username or phone number already exists."));
			else
				add_failure(j, user, one_error("DUPLICATED_USER",
					"The user already exist and upsert parameter is false"));
			continue;
		}
		/* the parsed array is dropped below: the store takes the user itself */
		if (user_insert(t, c, user, now, false))
			j->inserted++;
		else
			add_failure(j, user, one_error("INVALID_FORMAT", "Internal error storing user"));
	}
	free(errs_of);
	json_object_put(arr);
}

static void process_export(struct tenant *t, struct job *j)
{
	j->processed = true;
	if (export_file_build(t, j, &j->file, &j->file_len) < 0)
		j->failed = true;
}

void tenant_advance(struct tenant *t, int64_t now)
{
	/* one at a time: a job's end may wait for its prepare (lock released) */
	while (t->advancing)
		pthread_cond_wait(&prep_cond, &tenant_mutex);
	t->advancing = true;
	/* complete due jobs in the order of their end times */
	for (;;) {
		struct job *next = NULL;
		for (size_t i = 0; i < t->njobs; i++) {
			struct job *j = t->jobs[i];
			if (!j->processed && j->end_ms <= now && (!next || j->end_ms < next->end_ms))
				next = j;
		}
		if (!next)
			break;
		if (next->kind == JOB_IMPORT)
			process_import(t, next, next->end_ms);
		else
			process_export(t, next);
	}
	/* drop job data past retention */
	size_t k = 0;
	for (size_t i = 0; i < t->njobs; i++) {
		struct job *j = t->jobs[i];
		if (j->processed && j->created_ms + (int64_t)t->opt.retention * 1000 <= now)
			job_free(j);
		else
			t->jobs[k++] = j;
	}
	t->njobs = k;
	t->advancing = false;
	pthread_cond_broadcast(&prep_cond);
}

/* ---- jobs -------------------------------------------------------------- */

struct job *tenant_job_find(struct tenant *t, const char *id)
{
	for (size_t i = 0; i < t->njobs; i++)
		if (strcmp(t->jobs[i]->id, id) == 0)
			return t->jobs[i];
	return NULL;
}

int tenant_active_imports(const struct tenant *t, int64_t now)
{
	int n = 0;
	for (size_t i = 0; i < t->njobs; i++) {
		const struct job *j = t->jobs[i];
		if (j->kind == JOB_IMPORT && !j->processed && j->end_ms > now)
			n++;
	}
	return n;
}

static struct job *job_new(struct tenant *t, enum job_kind kind, int conn, int64_t now)
{
	if (t->njobs == t->capjobs) {
		size_t cap = t->capjobs ? t->capjobs * 2 : 64;
		struct job **p = realloc(t->jobs, cap * sizeof(*p));
		if (!p)
			return NULL;
		t->jobs = p;
		t->capjobs = cap;
	}
	struct job *j = calloc(1, sizeof(*j));
	if (!j)
		return NULL;
	memcpy(j->id, "job_", 4);
	sbx_rand_alnum(j->id + 4, 16);
	j->kind = kind;
	j->conn = conn;
	j->created_ms = now;
	sbx_iso8601(now, j->created_at, sizeof(j->created_at));
	t->jobs[t->njobs++] = j;
	return j;
}

static int64_t duration_ms(const struct tenant *t, long users)
{
	double ms = (double)users * t->opt.ms_per_user;
	if (ms > JOB_TIMEOUT_MS)
		ms = JOB_TIMEOUT_MS;
	return (int64_t)ceil(ms);
}

struct job *tenant_import_create(struct tenant *t, int conn, const char *users, size_t len,
				 bool upsert, bool send_email, const char *external_id,
				 int64_t now)
{
	char hex[17];
	json_object *count;
	struct job *j = job_new(t, JOB_IMPORT, conn, now);
	if (!j)
		return NULL;
	j->users = malloc(len + 1);
	if (!j->users) {
		t->njobs--;
		job_free(j);
		return NULL;
	}
	memcpy(j->users, users, len);
	j->users[len] = '\0';
	j->users_len = len;
	j->upsert = upsert;
	j->send_email = send_email;
	j->external_id = external_id && *external_id ? strdup(external_id) : NULL;
	json_object *arr = parse_users(users, len);
	j->nusers = arr ? (int)json_object_array_length(arr) : 1;
	json_object_put(arr);
	j->end_ms = now + duration_ms(t, j->nusers);
	j->users_hash = sbx_hash64(users, len);
	snprintf(hex, sizeof(hex), "%016llx", (unsigned long long)j->users_hash);
	if (json_object_object_get_ex(t->users_hashes, hex, &count)) {
		t->stats.duplicate_users_parts++;
		json_object_set_int64(count, json_object_get_int64(count) + 1);
	} else {
		json_object_object_add(t->users_hashes, hex, json_object_new_int64(1));
	}
	t->stats.import_jobs++;
	t->stats.completion_emails += send_email;
	int active = tenant_active_imports(t, now);
	if (active > t->stats.max_active_jobs)
		t->stats.max_active_jobs = active;
	if (!t->prep_started && pthread_create(&t->prep_thread, NULL, prep_main, t) == 0)
		t->prep_started = true;
	pthread_cond_broadcast(&prep_cond);
	return j;
}

static long users_in(const struct tenant *t, int conn)
{
	long n = 0;
	for (size_t i = 0; i < t->nusers; i++)
		if (!t->users[i]->deleted && (conn < 0 || t->users[i]->conn == conn))
			n++;
	return n;
}

struct job *tenant_export_create(struct tenant *t, int conn, const char *format,
				 json_object *fields, long limit, int64_t now)
{
	struct job *j = job_new(t, JOB_EXPORT, conn, now);
	if (!j)
		return NULL;
	snprintf(j->format, sizeof(j->format), "%s", format);
	j->fields = fields ? json_object_get(fields) : NULL;
	j->limit = limit;
	long n = users_in(t, conn);
	if (limit > 0 && n > limit)
		n = limit;
	j->end_ms = now + duration_ms(t, n > 0 ? n : 1);
	t->stats.export_jobs++;
	return j;
}

static const char *job_status(const struct job *j, int64_t now)
{
	if (j->processed)
		return j->failed ? "failed" : "completed";
	/* the first tenth of its run (at most 1 s) a job is still pending */
	int64_t pending = (j->end_ms - j->created_ms) / 10;
	if (pending > 1000)
		pending = 1000;
	return now < j->created_ms + pending ? "pending" : "processing";
}

void tenant_export_location(struct tenant *t, const struct job *j, int64_t now, char *buf,
			    size_t size)
{
	char material[128];
	/* whole seconds, rounded up: a link is valid for at least the ttl */
	long long expires = (long long)((now + (int64_t)t->opt.export_url_ttl * 1000 + 999) / 1000);
	snprintf(material, sizeof(material), "%s|%s|%lld", t->sign_key, j->id, expires);
	unsigned long long sig = (unsigned long long)sbx_hash64(material, strlen(material));
	snprintf(buf, size, "%s/__exports/%s.%s.gz?Expires=%lld&Signature=%016llx", t->base_url,
		 j->id, strcmp(j->format, "csv") == 0 ? "csv" : "json", expires, sig);
}

int tenant_export_check(struct tenant *t, const char *job_id, const char *expires,
			const char *sig, int64_t now, const struct job **ret_job)
{
	char material[128], want[17];
	struct job *j = tenant_job_find(t, job_id);
	if (!j || j->kind != JOB_EXPORT || !j->processed || j->failed)
		return -ENOENT;
	if (!expires || !sig)
		return -EACCES;
	char *end;
	long long exp = strtoll(expires, &end, 10);
	if (*end || exp * 1000 <= now)
		return -EACCES;
	snprintf(material, sizeof(material), "%s|%s|%lld", t->sign_key, j->id, exp);
	snprintf(want, sizeof(want), "%016llx",
		 (unsigned long long)sbx_hash64(material, strlen(material)));
	if (strcmp(want, sig) != 0)
		return -EACCES;
	*ret_job = j;
	return 0;
}

json_object *tenant_job_json(struct tenant *t, const struct job *j, int64_t now)
{
	json_object *o = json_object_new_object();
	/* at creation a job is always pending, whatever its length */
	const char *status = now <= j->created_ms ? "pending" : job_status(j, now);
	json_object_object_add(o, "type", json_object_new_string(
		j->kind == JOB_IMPORT ? "users_import" : "users_export"));
	json_object_object_add(o, "status", json_object_new_string(status));
	if (j->conn >= 0) {
		json_object_object_add(o, "connection_id", json_object_new_string(t->conns[j->conn].id));
		json_object_object_add(o, "connection", json_object_new_string(t->conns[j->conn].name));
	}
	if (j->kind == JOB_EXPORT) {
		json_object_object_add(o, "format", json_object_new_string(j->format));
		if (j->limit > 0)
			json_object_object_add(o, "limit", json_object_new_int64(j->limit));
		if (j->fields)
			json_object_object_add(o, "fields", json_object_get(j->fields));
	}
	json_object_object_add(o, "created_at", json_object_new_string(j->created_at));
	json_object_object_add(o, "id", json_object_new_string(j->id));
	if (j->external_id)
		json_object_object_add(o, "external_id", json_object_new_string(j->external_id));
	if (!j->processed && strcmp(status, "processing") == 0) {
		int64_t span = j->end_ms - j->created_ms;
		int pct = span > 0 ? (int)((now - j->created_ms) * 100 / span) : 100;
		if (pct > 99)
			pct = 99;
		json_object_object_add(o, "percentage_done", json_object_new_int(pct));
		json_object_object_add(o, "time_left_seconds",
			json_object_new_int64((j->end_ms - now + 999) / 1000));
	}
	if (j->processed && j->kind == JOB_IMPORT && !j->failed) {
		json_object *s = json_object_new_object();
		json_object_object_add(s, "failed", json_object_new_int(j->failed_users));
		json_object_object_add(s, "updated", json_object_new_int(j->updated));
		json_object_object_add(s, "inserted", json_object_new_int(j->inserted));
		json_object_object_add(s, "total", json_object_new_int(j->total));
		json_object_object_add(o, "summary", s);
	}
	if (j->processed && j->kind == JOB_EXPORT && !j->failed) {
		char loc[512];
		tenant_export_location(t, j, now, loc, sizeof(loc));
		json_object_object_add(o, "location", json_object_new_string(loc));
	}
	return o;
}

json_object *tenant_job_admin_json(struct tenant *t, const struct job *j, int64_t now)
{
	json_object *o = tenant_job_json(t, j, now);
	char hex[17], when[32];
	if (j->kind == JOB_IMPORT) {
		snprintf(hex, sizeof(hex), "%016llx", (unsigned long long)j->users_hash);
		json_object_object_add(o, "users_hash", json_object_new_string(hex));
		json_object_object_add(o, "users_bytes", json_object_new_int64((int64_t)j->users_len));
		json_object_object_add(o, "users_count", json_object_new_int(j->nusers));
		json_object_object_add(o, "upsert", json_object_new_boolean(j->upsert));
		json_object_object_add(o, "send_completion_email", json_object_new_boolean(j->send_email));
	}
	sbx_iso8601(j->end_ms, when, sizeof(when));
	json_object_object_add(o, "ends_at", json_object_new_string(when));
	json_object_object_add(o, "created_ms", json_object_new_int64(j->created_ms));
	json_object_object_add(o, "ends_ms", json_object_new_int64(j->end_ms));
	return o;
}

/* ---- the request log and stats ---------------------------------------- */

json_object *tenant_log_request(struct tenant *t, const char *method, const char *path,
				const char *endpoint, int64_t now, size_t body_bytes)
{
	char when[32];
	json_object *r = json_object_new_object();
	json_object_object_add(r, "seq", json_object_new_int64(++t->log_seq));
	sbx_iso8601(now, when, sizeof(when));
	json_object_object_add(r, "time", json_object_new_string(when));
	json_object_object_add(r, "time_ms", json_object_new_int64(now));
	json_object_object_add(r, "method", json_object_new_string(method));
	json_object_object_add(r, "path", json_object_new_string(path));
	json_object_object_add(r, "endpoint", json_object_new_string(endpoint));
	json_object_object_add(r, "body_bytes", json_object_new_int64((int64_t)body_bytes));
	bool early = now < t->wait_until_ms;
	json_object_object_add(r, "early_after_429", json_object_new_boolean(early));
	if (early)
		t->stats.early_after_429++;
	t->stats.requests++;
	if ((long)body_bytes > t->stats.largest_body)
		t->stats.largest_body = (long)body_bytes;
	json_object *c;
	if (json_object_object_get_ex(t->endpoint_counts, endpoint, &c))
		json_object_set_int64(c, json_object_get_int64(c) + 1);
	else
		json_object_object_add(t->endpoint_counts, endpoint, json_object_new_int64(1));
	if (t->log_len == t->log_cap) {
		json_object_put(t->log[t->log_head]);
		t->log_head = (t->log_head + 1) % t->log_cap;
		t->log_len--;
	}
	t->log[(t->log_head + t->log_len) % t->log_cap] = r;
	t->log_len++;
	return r; /* borrowed: the caller adds the status and details */
}

json_object *tenant_stats_json(struct tenant *t, int64_t now)
{
	const struct request_stats *s = &t->stats;
	json_object *o = json_object_new_object();
#define ADD(name, v) json_object_object_add(o, name, json_object_new_int64((int64_t)(v)))
	ADD("requests", s->requests);
	ADD("rate_limited", s->rate_limited);
	ADD("active_jobs_429", s->active_jobs_429);
	ADD("early_after_429", s->early_after_429);
	ADD("largest_request_body", s->largest_body);
	ADD("duplicate_users_parts", s->duplicate_users_parts);
	ADD("import_jobs", s->import_jobs);
	ADD("export_jobs", s->export_jobs);
	ADD("completion_emails", s->completion_emails);
	ADD("active_import_jobs", tenant_active_imports(t, now));
	ADD("max_active_import_jobs", s->max_active_jobs);
	ADD("tokens_issued", s->tokens_issued);
	long live = 0, inserted = 0, updated = 0, over = 0;
	for (size_t i = 0; i < t->nusers; i++) {
		live += !t->users[i]->deleted;
		inserted += t->users[i]->inserted;
		updated += t->users[i]->updated;
		over += t->users[i]->inserted > 1;
	}
	ADD("users", live);
	ADD("users_inserted", inserted);
	ADD("users_updated", updated);
	ADD("users_inserted_more_than_once", over);
	json_object *f = json_object_new_object();
	json_object_object_add(f, "5xx", json_object_new_int64(s->faults_5xx));
	json_object_object_add(f, "429", json_object_new_int64(s->faults_429));
	json_object_object_add(f, "reset", json_object_new_int64(s->faults_reset));
	json_object_object_add(f, "slow", json_object_new_int64(s->faults_slow));
	json_object_object_add(o, "faults_injected", f);
	json_object_object_add(o, "requests_by_endpoint", json_object_get(t->endpoint_counts));
	json_object_object_add(o, "responses_by_status", json_object_get(t->status_counts));
	json_object_object_add(o, "users_parts", json_object_get(t->users_hashes));
#undef ADD
	return o;
}
