#include "sandbox/admin.h"

#include "daemon/log.h"
#include "sandbox/util.h"

#include <microhttpd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CT "application/json"

static void answer(struct reply *out, int status, json_object *body)
{
	out->status = status;
	out->json = body;
	out->ctype = CT;
}

static void bad(struct reply *out, const char *msg)
{
	json_object *o = json_object_new_object();
	json_object_object_add(o, "error", json_object_new_string(msg));
	answer(out, 400, o);
}

static json_object *users_json(struct tenant *t, const char *conn_filter)
{
	json_object *list = json_object_new_array();
	char when[32], uid[300];
	for (size_t i = 0; i < t->nusers; i++) {
		const struct user *u = t->users[i];
		const char *cid = t->conns[u->conn].id;
		if (conn_filter && strcmp(conn_filter, cid) != 0)
			continue;
		json_object *o = json_object_new_object();
		json_object_object_add(o, "connection_id", json_object_new_string(cid));
		snprintf(uid, sizeof(uid), "auth0|%s", u->user_id);
		json_object_object_add(o, "user_id", json_object_new_string(uid));
		json_object_object_add(o, "email", json_object_new_string(u->email));
		json_object_object_add(o, "inserted", json_object_new_int(u->inserted));
		json_object_object_add(o, "updated", json_object_new_int(u->updated));
		json_object_object_add(o, "seeded", json_object_new_boolean(u->seeded));
		json_object_object_add(o, "deleted", json_object_new_boolean(u->deleted));
		sbx_iso8601(u->created_ms, when, sizeof(when));
		json_object_object_add(o, "created_at", json_object_new_string(when));
		sbx_iso8601(u->updated_ms, when, sizeof(when));
		json_object_object_add(o, "updated_at", json_object_new_string(when));
		json_object_object_add(o, "profile", json_object_get(u->profile));
		json_object_array_add(list, o);
	}
	json_object *o = json_object_new_object();
	json_object_object_add(o, "users", list);
	return o;
}

static json_object *faults_json(struct tenant *t)
{
	const struct tenant_options *p = &t->opt;
	json_object *o = json_object_new_object();
	json_object_object_add(o, "fault_5xx", json_object_new_double(p->fault_5xx));
	json_object_object_add(o, "fault_429", json_object_new_double(p->fault_429));
	json_object_object_add(o, "fault_reset", json_object_new_double(p->fault_reset));
	json_object_object_add(o, "fault_slow", json_object_new_double(p->fault_slow));
	json_object_object_add(o, "slow_seconds", json_object_new_double(p->slow_seconds));
	json_object_object_add(o, "retry_after", json_object_new_boolean(p->retry_after));
	json_object_object_add(o, "token_ttl", json_object_new_int64(
		t->token_ttl_override > 0 ? t->token_ttl_override : p->token_ttl));
	json_object_object_add(o, "export_url_ttl", json_object_new_int64(p->export_url_ttl));
	json_object_object_add(o, "rate", json_object_new_double(p->rate));
	json_object_object_add(o, "burst", json_object_new_int(p->burst));
	json_object_object_add(o, "ms_per_user", json_object_new_double(p->ms_per_user));
	json_object_object_add(o, "max_active_jobs", json_object_new_int(p->max_active_jobs));
	json_object_object_add(o, "retention", json_object_new_int64(p->retention));
	json_object *scripts = json_object_new_array();
	static const char *const actions[] = { "none", "status", "reset", "reset-after", "slow" };
	for (size_t i = 0; i < t->nscripts; i++) {
		const struct fault_script *s = &t->scripts[i];
		json_object *so = json_object_new_object();
		json_object_object_add(so, "endpoint", json_object_new_string(s->endpoint));
		json_object_object_add(so, "skip", json_object_new_int(s->skip));
		json_object_object_add(so, "next", json_object_new_int(s->next));
		json_object_object_add(so, "action", json_object_new_string(actions[s->action]));
		if (s->action == FAULT_STATUS)
			json_object_object_add(so, "status", json_object_new_int(s->status));
		if (s->action == FAULT_SLOW)
			json_object_object_add(so, "seconds", json_object_new_double(s->seconds));
		json_object_array_add(scripts, so);
	}
	json_object_object_add(o, "scripts", scripts);
	return o;
}

static bool num(json_object *body, const char *key, double min, double max, double *ret)
{
	json_object *v;
	if (!json_object_object_get_ex(body, key, &v))
		return true;
	if (!json_object_is_type(v, json_type_int) && !json_object_is_type(v, json_type_double))
		return false;
	double d = json_object_get_double(v);
	if (d < min || d > max)
		return false;
	*ret = d;
	return true;
}

static int add_script(struct tenant *t, json_object *s, const char **ret_err)
{
	json_object *v;
	struct fault_script f = { .next = 1, .action = FAULT_STATUS, .status = 503 };
	if (!json_object_is_type(s, json_type_object) || t->nscripts == TENANT_MAX_SCRIPTS) {
		*ret_err = "a script is an object (at most 32 scripts)";
		return -1;
	}
	if (!json_object_object_get_ex(s, "endpoint", &v) || !json_object_is_type(v, json_type_string)) {
		*ret_err = "a script needs an endpoint: token, users-imports, users-exports, job, "
			   "job-errors, users-by-email, users-delete or any";
		return -1;
	}
	snprintf(f.endpoint, sizeof(f.endpoint), "%s", json_object_get_string(v));
	if (json_object_object_get_ex(s, "next", &v))
		f.next = json_object_get_int(v);
	if (json_object_object_get_ex(s, "skip", &v))
		f.skip = json_object_get_int(v);
	if (json_object_object_get_ex(s, "status", &v))
		f.status = json_object_get_int(v);
	if (json_object_object_get_ex(s, "seconds", &v))
		f.seconds = json_object_get_double(v);
	if (json_object_object_get_ex(s, "action", &v)) {
		const char *a = json_object_get_string(v);
		if (strcmp(a, "status") == 0)
			f.action = FAULT_STATUS;
		else if (strcmp(a, "reset") == 0)
			f.action = FAULT_RESET;
		else if (strcmp(a, "reset-after") == 0)
			f.action = FAULT_RESET_AFTER;
		else if (strcmp(a, "slow") == 0)
			f.action = FAULT_SLOW;
		else {
			*ret_err = "action is status, reset, reset-after or slow";
			return -1;
		}
	}
	if (f.next < 1 || f.skip < 0 || (f.action == FAULT_STATUS && (f.status < 400 || f.status > 599)) ||
	    f.seconds < 0 || f.seconds > 600) {
		*ret_err = "next >= 1, skip >= 0, status 400-599, seconds 0-600";
		return -1;
	}
	t->scripts[t->nscripts++] = f;
	return 0;
}

/* POST faults: probabilities, scripts, token expiry and runtime knobs. */
static void post_faults(struct tenant *t, json_object *body, int64_t now, struct reply *out)
{
	struct tenant_options o = t->opt;
	double ttl = 0, url_ttl = (double)o.export_url_ttl, burst = o.burst,
	       max_jobs = o.max_active_jobs, retention = (double)o.retention;
	json_object *v;
	const char *err = NULL;
	if (!num(body, "fault_5xx", 0, 1, &o.fault_5xx) || !num(body, "fault_429", 0, 1, &o.fault_429) ||
	    !num(body, "fault_reset", 0, 1, &o.fault_reset) ||
	    !num(body, "fault_slow", 0, 1, &o.fault_slow) ||
	    !num(body, "slow_seconds", 0, 600, &o.slow_seconds) ||
	    !num(body, "token_ttl", 1, 2592000, &ttl) ||
	    !num(body, "export_url_ttl", 0, 86400, &url_ttl) ||
	    !num(body, "rate", 0.001, 100000, &o.rate) || !num(body, "burst", 1, 1000000, &burst) ||
	    !num(body, "ms_per_user", 0, 3600000, &o.ms_per_user) ||
	    !num(body, "max_active_jobs", 1, 1000, &max_jobs) ||
	    !num(body, "retention", 0, 30 * 86400, &retention)) {
		bad(out, "a number is out of range or not a number");
		return;
	}
	if (json_object_object_get_ex(body, "retry_after", &v))
		o.retry_after = json_object_is_type(v, json_type_boolean) ? json_object_get_boolean(v) :
				strcmp(json_object_get_string(v), "on") == 0;
	if (json_object_object_get_ex(body, "clear_scripts", &v) && json_object_get_boolean(v))
		t->nscripts = 0;
	if (json_object_object_get_ex(body, "endpoint", NULL) && add_script(t, body, &err) < 0) {
		bad(out, err);
		return;
	}
	if (json_object_object_get_ex(body, "scripts", &v)) {
		size_t n = json_object_is_type(v, json_type_array) ? json_object_array_length(v) : 0;
		for (size_t i = 0; i < n; i++) {
			if (add_script(t, json_object_array_get_idx(v, i), &err) < 0) {
				bad(out, err);
				return;
			}
		}
	}
	o.export_url_ttl = (long)url_ttl;
	o.burst = (int)burst;
	o.max_active_jobs = (int)max_jobs;
	o.retention = (long)retention;
	if (o.burst != t->opt.burst && t->bucket > o.burst)
		t->bucket = o.burst;
	t->opt = o;
	if (ttl > 0)
		t->token_ttl_override = (long)ttl;
	/* expire_tokens: every token issued so far is now expired */
	if (json_object_object_get_ex(body, "expire_tokens", &v) && json_object_get_boolean(v))
		for (size_t i = 0; i < t->ntokens; i++)
			if (t->tokens[i].expires_ms > now)
				t->tokens[i].expires_ms = now;
	answer(out, 200, faults_json(t));
}

static void get_requests(struct tenant *t, const struct request *in, struct reply *out)
{
	const char *s = MHD_lookup_connection_value(in->conn, MHD_GET_ARGUMENT_KIND, "since");
	long since = s ? strtol(s, NULL, 10) : 0;
	json_object *list = json_object_new_array();
	for (size_t i = 0; i < t->log_len; i++) {
		json_object *r = t->log[(t->log_head + i) % t->log_cap], *seq;
		json_object_object_get_ex(r, "seq", &seq);
		if (json_object_get_int64(seq) > since)
			json_object_array_add(list, json_object_get(r));
	}
	json_object *o = json_object_new_object();
	json_object_object_add(o, "requests", list);
	json_object_object_add(o, "last_seq", json_object_new_int64(t->log_seq));
	answer(out, 200, o);
}

void admin_handle(struct tenant *t, const struct request *in, struct reply *out)
{
	const char *what = in->url + 11;
	bool get = strcmp(in->method, "GET") == 0, post = strcmp(in->method, "POST") == 0;
	json_object *body = NULL;
	if (post && in->body_over) {
		bad(out, "body too large");
		return;
	}
	if (post && in->body_len > 0) {
		body = json_tokener_parse(in->body);
		if (!body || !json_object_is_type(body, json_type_object)) {
			json_object_put(body);
			bad(out, "the body must be a JSON object");
			return;
		}
	}
	tenant_lock();
	int64_t now = sbx_now_ms();
	tenant_advance(t, now);
	if (get && strcmp(what, "stats") == 0) {
		answer(out, 200, tenant_stats_json(t, now));
	} else if (get && strcmp(what, "users") == 0) {
		answer(out, 200, users_json(t, MHD_lookup_connection_value(in->conn,
			MHD_GET_ARGUMENT_KIND, "connection_id")));
	} else if (get && strcmp(what, "jobs") == 0) {
		json_object *list = json_object_new_array();
		for (size_t i = 0; i < t->njobs; i++)
			json_object_array_add(list, tenant_job_admin_json(t, t->jobs[i], now));
		json_object *o = json_object_new_object();
		json_object_object_add(o, "jobs", list);
		answer(out, 200, o);
	} else if (get && strcmp(what, "requests") == 0) {
		get_requests(t, in, out);
	} else if (get && strcmp(what, "faults") == 0) {
		answer(out, 200, faults_json(t));
	} else if (post && strcmp(what, "faults") == 0) {
		if (body)
			post_faults(t, body, now, out);
		else
			bad(out, "the body must be a JSON object");
	} else if (post && strcmp(what, "seed") == 0) {
		json_object *cid, *users;
		int c = -1;
		if (body && json_object_object_get_ex(body, "connection_id", &cid))
			c = tenant_conn_index(json_object_get_string(cid));
		if (c < 0 || !json_object_object_get_ex(body, "users", &users) ||
		    !json_object_is_type(users, json_type_array)) {
			bad(out, "seed needs a known connection_id and a users array");
		} else {
			json_object *o = json_object_new_object();
			json_object_object_add(o, "seeded", json_object_new_int(tenant_seed(t, c, users, now)));
			answer(out, 200, o);
		}
	} else if (post && strcmp(what, "reset") == 0) {
		tenant_reset(t);
		answer(out, 200, json_object_new_object());
		log_info("sandbox", "reset");
	} else if (post && strcmp(what, "revoke-tokens") == 0) {
		tenant_tokens_revoke(t);
		answer(out, 200, json_object_new_object());
	} else {
		json_object *o = json_object_new_object();
		json_object_object_add(o, "error", json_object_new_string("no such admin endpoint"));
		answer(out, 404, o);
	}
	handlers_reply_freeze(out);
	tenant_unlock();
	json_object_put(body);
}
