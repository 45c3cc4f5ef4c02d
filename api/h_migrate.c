#include "api/h_migrate.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include <json-c/json.h>

#include "api/router.h"
#include "api/server.h"
#include "daemon/config.h"
#include "daemon/convert/convert.h"
#include "daemon/log.h"
#include "queue/migrate.h"
#include "queue/store.h"
#include "queue/undo.h"

#define JSON_BODY_MAX (1024u * 1024u)
#define CSV_FIELDS_MAX 30u

struct h_migrate {
	struct store *store;
	struct migrate *m;
	struct undo *undo;
};

int h_migrate_new(struct store *store, struct migrate *m, struct undo *u, struct h_migrate **ret)
{
	struct h_migrate *h = calloc(1, sizeof(*h));
	if (!h)
		return -ENOMEM;
	h->store = store;
	h->m = m;
	h->undo = u;
	*ret = h;
	return 0;
}

void h_migrate_free(struct h_migrate *h)
{
	free(h);
}

/* ---- helpers ------------------------------------------------------------------- */

static bool tenant_known(const struct config *cfg, const char *name)
{
	for (size_t i = 0; cfg && i < cfg->n_tenants; i++)
		if (strcmp(cfg->tenants[i].name, name) == 0)
			return true;
	return false;
}

static bool connection_ok(const char *s)
{
	if (strncmp(s, "con_", 4) != 0 || strlen(s) != 20)
		return false;
	for (const char *p = s + 4; *p; p++)
		if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9')))
			return false;
	return true;
}

static const char *str_member(json_object *o, const char *key)
{
	json_object *v;
	if (!json_object_object_get_ex(o, key, &v) || !json_object_is_type(v, json_type_string))
		return NULL;
	return json_object_get_string(v);
}

static void add_location(struct api_request *req, const char *kind, const char *id)
{
	char loc[128];
	snprintf(loc, sizeof(loc), "/v1/%s/%s", kind, id);
	api_response_header(req, "Location", loc);
}

struct file_stream {
	int fd;
};

static long file_read(void *arg, uint64_t pos, char *buf, size_t max)
{
	struct file_stream *s = arg;
	ssize_t n = pread(s->fd, buf, max, (off_t)pos);
	return n < 0 ? -1 : (long)n;
}

static void file_free(void *arg)
{
	struct file_stream *s = arg;
	close(s->fd);
	free(s);
}

static int respond_file(struct api_request *req, const char *path, const char *ctype)
{
	struct file_stream *s = calloc(1, sizeof(*s));
	if (!s)
		return -ENOMEM;
	s->fd = open(path, O_RDONLY | O_CLOEXEC);
	if (s->fd < 0) {
		free(s);
		return api_respond_problem(req, 410, "gone", "the file is no longer kept");
	}
	return api_respond_stream(req, 200, ctype, file_read, s, file_free);
}

/* ---- POST /v1/exports ------------------------------------------------------------ */

static void export_created(int status, const char *id, void *arg)
{
	struct api_request *req = arg;
	json_object *o = NULL;
	if (status < 0 || export_json(store_reader(api_request_store(req)), id, &o) < 0) {
		api_respond_problem(req, 500, "internal", "the export could not be stored");
	} else {
		add_location(req, "exports", id);
		api_respond_json(req, 202, o);
	}
	api_request_unref(req);
}

static int h_export_create(struct api_request *req, void *ud)
{
	struct h_migrate *h = ud;
	struct config *cfg = api_request_config(req);
	size_t len;
	const char *body = api_request_body(req, &len);
	json_object *o = len ? json_tokener_parse(body) : json_object_new_object();
	char err[256];
	int r = 0;
	if (!o || !json_object_is_type(o, json_type_object)) {
		r = api_respond_problem(req, 400, "bad-field", "the body must be a JSON object");
		goto out;
	}
	const char *tenant = str_member(o, "tenant");
	if (!tenant)
		tenant = "default";
	if (!tenant_known(cfg, tenant)) {
		r = api_respond_problem(req, 400, "unknown-tenant", "no tenant '%.40s' is configured", tenant);
		goto out;
	}
	const char *conn = str_member(o, "connection_id");
	if (json_object_object_get_ex(o, "connection_id", NULL) && (!conn || !connection_ok(conn))) {
		r = api_respond_problem(req, 400, "bad-field", "connection_id must match ^con_[A-Za-z0-9]{16}$");
		goto out;
	}
	const char *format = str_member(o, "format");
	if (!format)
		format = "json";
	if (strcmp(format, "json") != 0 && strcmp(format, "csv") != 0) {
		r = api_respond_problem(req, 400, "bad-field", "format must be \"json\" or \"csv\"");
		goto out;
	}
	json_object *v = NULL;
	int64_t limit = 0;
	if (json_object_object_get_ex(o, "limit", &v)) {
		if (!json_object_is_type(v, json_type_int) || json_object_get_int64(v) < 1) {
			r = api_respond_problem(req, 400, "bad-field", "limit must be a positive integer");
			goto out;
		}
		limit = json_object_get_int64(v);
	}
	struct convert_fields f;
	json_object *fields = NULL;
	json_object_object_get_ex(o, "fields", &fields);
	if (convert_fields_parse(fields, &f, err, sizeof(err)) < 0) {
		r = api_respond_problem(req, 400, "bad-field", "%s", err);
		goto out;
	}
	if (convert_fields_complete(&f) < 0 || (strcmp(format, "csv") == 0 && f.n > CSV_FIELDS_MAX)) {
		r = api_respond_problem(req, 400, "bad-field",
					"too many fields: an export names every field an import needs "
					"besides those asked for, and a csv export allows at most %u",
					CSV_FIELDS_MAX);
		goto out;
	}
	json_object *fj = convert_fields_to_json(&f);
	struct export_params p = {
		.tenant = tenant, .connection_id = conn, .format = format, .fields = fj, .limit = limit,
	};
	api_request_ref(req);
	r = migrate_export_create(h->m, &p, export_created, req);
	json_object_put(fj);
	if (r < 0) {
		api_request_unref(req);
		r = api_respond_problem(req, 503, "unavailable", "the export could not be queued");
	}
out:
	json_object_put(o);
	return r;
}

static int h_export_get(struct api_request *req, void *ud)
{
	struct h_migrate *h = ud;
	char id[64];
	json_object *o;
	if (!api_request_param(req, "id", id, sizeof(id)) ||
	    export_json(store_reader(h->store), id, &o) < 0)
		return api_respond_problem(req, 404, "not-found", "no such export");
	return api_respond_json(req, 200, o);
}

/* -- GET /v1/exports/{id}/file?as=import: converted once, in a worker, then kept -- */

struct as_import {
	uv_work_t work;
	struct api_request *req;
	char export_path[4096], out_path[4096];
	char *fields_json;
	int status;
	char err[256];
};

static void as_import_work(uv_work_t *w)
{
	struct as_import *a = w->data;
	struct convert_fields f;
	json_object *fj = json_tokener_parse(a->fields_json);
	a->status = convert_fields_parse(fj, &f, a->err, sizeof(a->err));
	json_object_put(fj);
	if (a->status < 0)
		return;
	/* a name of its own: two requests may convert at once; the last rename wins */
	char mine[4200];
	unsigned char rnd[4] = { 0 };
	if (getrandom(rnd, sizeof(rnd), 0) != (ssize_t)sizeof(rnd))
		memset(rnd, 0, sizeof(rnd));
	snprintf(mine, sizeof(mine), "%s.%02x%02x%02x%02x", a->out_path, rnd[0], rnd[1], rnd[2], rnd[3]);
	struct convert_params p = {
		.export_path = a->export_path, .fields = &f, .out_path = mine, .sync = false,
	};
	struct convert_summary sum;
	a->status = convert_run(&p, NULL, NULL, &sum, a->err, sizeof(a->err));
	if (a->status == 0 && rename(mine, a->out_path) < 0) {
		a->status = -errno;
		snprintf(a->err, sizeof(a->err), "cannot keep the converted file");
		unlink(mine);
	}
}

static void as_import_after(uv_work_t *w, int status)
{
	struct as_import *a = w->data;
	if (status < 0 || a->status < 0) {
		log_warn("api", "conversion of %s failed: %s", a->export_path, a->err);
		api_respond_problem(a->req, 500, "internal", "the export could not be converted: %s", a->err);
	} else {
		respond_file(a->req, a->out_path, "application/json");
	}
	api_request_unref(a->req);
	free(a->fields_json);
	free(a);
}

static int h_export_file(struct api_request *req, void *ud)
{
	struct h_migrate *h = ud;
	char id[64], state[32], format[16];
	char *fields = NULL;
	if (!api_request_param(req, "id", id, sizeof(id)) ||
	    export_load_brief(store_reader(h->store), id, state, sizeof(state), format, sizeof(format),
			      &fields) < 0)
		return api_respond_problem(req, 404, "not-found", "no such export");
	const char *as = api_request_query(req, "as");
	const char *state_dir = store_state_dir(h->store);
	int r;
	if (strcmp(state, "completed") != 0) {
		free(fields);
		return api_respond_problem(req, 409, "conflict", "the export is %s, not completed", state);
	}
	if (as && strcmp(as, "import") != 0 && strcmp(as, "export") != 0) {
		free(fields);
		return api_respond_problem(req, 400, "bad-field", "as must be \"import\"");
	}
	if (!as || strcmp(as, "export") == 0) {
		char path[4096];
		free(fields);
		if (export_file_path(state_dir, id, path, sizeof(path)) < 0)
			return -ENAMETOOLONG;
		char cd[128];
		snprintf(cd, sizeof(cd), "attachment; filename=\"%s.%s.gz\"", id,
			 strcmp(format, "csv") == 0 ? "csv" : "ndjson");
		api_response_header(req, "Content-Disposition", cd);
		return respond_file(req, path, "application/gzip");
	}
	struct as_import *a = calloc(1, sizeof(*a));
	if (!a) {
		free(fields);
		return -ENOMEM;
	}
	a->fields_json = fields;
	export_file_path(state_dir, id, a->export_path, sizeof(a->export_path));
	export_import_path(state_dir, id, a->out_path, sizeof(a->out_path));
	struct stat st;
	if (stat(a->out_path, &st) == 0) {
		r = respond_file(req, a->out_path, "application/json");
		free(a->fields_json);
		free(a);
		return r;
	}
	a->work.data = a;
	a->req = api_request_ref(req);
	r = uv_queue_work(api_request_loop(req), &a->work, as_import_work, as_import_after);
	if (r < 0) {
		api_request_unref(req);
		free(a->fields_json);
		free(a);
		return api_respond_problem(req, 503, "unavailable", "no worker for the conversion");
	}
	return 0;
}

/* ---- POST /v1/migrations: JSON body or multipart with a `hashes` file part ---- */

struct mig_req {
	struct h_migrate *h;
	char *raw;
	size_t raw_len;
	json_object *fields;
	int fd;
	char spool[4096];   /* "" once handed over */
	bool file_seen;
};

static void mig_req_free(void *arg)
{
	struct mig_req *c = arg;
	if (c->fd >= 0)
		close(c->fd);
	if (c->spool[0])
		unlink(c->spool);
	free(c->raw);
	json_object_put(c->fields);
	free(c);
}

static int mig_begin(struct api_request *req, void *ud)
{
	struct mig_req *c = calloc(1, sizeof(*c));
	if (!c)
		return -ENOMEM;
	c->h = ud;
	c->fd = -1;
	c->fields = json_object_new_object();
	api_request_set_ctx(req, c, mig_req_free);
	struct config *cfg = api_request_config(req);
	api_request_set_body_limit(req, cfg && cfg->max_upload_bytes ? cfg->max_upload_bytes : (2ull << 30));
	return 0;
}

static int mig_raw(struct api_request *req, const char *data, size_t len)
{
	struct mig_req *c = api_request_ctx(req);
	if (c->raw_len + len > JSON_BODY_MAX) {
		api_respond_problem(req, 413, "upload-too-large", "a JSON body is at most %u bytes",
				    JSON_BODY_MAX);
		return -EMSGSIZE;
	}
	char *n = realloc(c->raw, c->raw_len + len + 1);
	if (!n)
		return -ENOMEM;
	memcpy(n + c->raw_len, data, len);
	c->raw = n;
	c->raw_len += len;
	c->raw[c->raw_len] = '\0';
	return 0;
}

static int mig_field(struct api_request *req, const char *name, const char *value, size_t len)
{
	struct mig_req *c = api_request_ctx(req);
	json_object_object_add(c->fields, name, json_object_new_string_len(value, (int)len));
	return 0;
}

static int mig_file(struct api_request *req, const char *field, const char *filename,
		    const char *ctype, const char *data, size_t len, uint64_t off)
{
	struct mig_req *c = api_request_ctx(req);
	if (strcmp(field, "hashes") != 0) {
		api_respond_problem(req, 400, "bad-field", "the only file part is \"hashes\", not \"%.40s\"",
				    field);
		return -EINVAL;
	}
	if (off == 0 && c->fd < 0) {
		if (c->file_seen) {
			api_respond_problem(req, 400, "bad-field", "one hashes file only");
			return -EINVAL;
		}
		c->file_seen = true;
		const char *sd = store_state_dir(c->h->store);
		unsigned char rnd[6];
		if (getrandom(rnd, sizeof(rnd), 0) != (ssize_t)sizeof(rnd))
			return -EIO;
		snprintf(c->spool, sizeof(c->spool), "%s/spool", sd);
		mkdir(c->spool, 0700);
		snprintf(c->spool, sizeof(c->spool), "%s/spool/hashes-%02x%02x%02x%02x%02x%02x.part", sd,
			 rnd[0], rnd[1], rnd[2], rnd[3], rnd[4], rnd[5]);
		c->fd = open(c->spool, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
		if (c->fd < 0) {
			c->spool[0] = '\0';
			return -errno;
		}
	}
	while (len > 0) {
		ssize_t n = write(c->fd, data, len);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		data += n;
		len -= (size_t)n;
	}
	return 0;
}

static int mig_file_end(struct api_request *req, const char *field)
{
	return 0;
}

static void mig_abort(struct api_request *req)
{
	struct mig_req *c = api_request_ctx(req);
	if (!c)
		return;
	if (c->fd >= 0) {
		close(c->fd);
		c->fd = -1;
	}
	if (c->spool[0]) {
		unlink(c->spool);
		c->spool[0] = '\0';
	}
}

static const struct api_body_sink mig_sink = {
	.begin = mig_begin,
	.raw = mig_raw,
	.field = mig_field,
	.file_data = mig_file,
	.file_end = mig_file_end,
	.abort = mig_abort,
};

static void migration_created(int status, const char *id, void *arg)
{
	struct api_request *req = arg;
	json_object *o = NULL;
	if (status < 0 || !id || migration_json(store_reader(api_request_store(req)), id, &o) < 0) {
		api_respond_problem(req, 500, "internal", "the migration could not be stored");
	} else {
		add_location(req, "migrations", id);
		api_respond_json(req, 202, o);
	}
	api_request_unref(req);
}

static int get_bool(json_object *o, const char *key, bool *ret)
{
	json_object *v;
	if (!json_object_object_get_ex(o, key, &v))
		return 0;
	if (json_object_is_type(v, json_type_boolean)) {
		*ret = json_object_get_boolean(v);
		return 0;
	}
	if (json_object_is_type(v, json_type_string)) {
		const char *s = json_object_get_string(v);
		if (strcmp(s, "true") == 0 || strcmp(s, "false") == 0) {
			*ret = s[0] == 't';
			return 0;
		}
	}
	return -EINVAL;
}

/* After validation (and the filter compiled in a worker): hand the hashes
 * file over and create the migration. Takes nothing; o stays the caller's. */
static int migration_go(struct api_request *req, struct h_migrate *h, json_object *o)
{
	struct mig_req *c = api_request_ctx(req);
	bool upsert = false;
	get_bool(o, "upsert", &upsert);
	const char *dst = str_member(o, "target_tenant");
	if (c->fd >= 0) {
		close(c->fd);
		c->fd = -1;
	}
	char hashes[4096] = "";
	if (c->spool[0]) {
		snprintf(hashes, sizeof(hashes), "%s", c->spool);
		c->spool[0] = '\0'; /* the migration owns it now */
	}
	struct migration_params p = {
		.source_tenant = str_member(o, "source_tenant"),
		.source_connection_id = str_member(o, "source_connection_id"),
		.target_tenant = dst ? dst : "default",
		.target_connection_id = str_member(o, "target_connection_id"),
		.filter = str_member(o, "filter"), .upsert = upsert,
		.hashes_path = hashes[0] ? hashes : NULL,
	};
	api_request_ref(req);
	int r = migrate_migration_create(h->m, &p, migration_created, req);
	if (r < 0) {
		api_request_unref(req);
		if (hashes[0])
			unlink(hashes);
		r = api_respond_problem(req, 503, "unavailable", "the migration could not be queued");
	}
	return r;
}

/* Compiling a jq program costs libjq ~90 ms (its builtins): a worker does it,
 * with a jq_state of its own that never leaves that thread. */
struct filter_check {
	uv_work_t work;
	struct api_request *req;
	struct h_migrate *h;
	json_object *o;
	int status;
	char err[512];
};

static void filter_check_work(uv_work_t *w)
{
	struct filter_check *f = w->data;
	struct convert_jq *q = NULL;
	f->status = convert_jq_new(str_member(f->o, "filter"), &q, f->err, sizeof(f->err));
	convert_jq_free(q);
}

static void filter_check_after(uv_work_t *w, int status)
{
	struct filter_check *f = w->data;
	if (api_request_gone(f->req)) {
		/* nothing to answer; the spool file goes with the request */
	} else if (status < 0) {
		api_respond_problem(f->req, 503, "unavailable", "no worker to check the filter");
	} else if (f->status < 0) {
		api_respond_problem(f->req, 400, "bad-field", "the filter does not compile: %s", f->err);
	} else if (migration_go(f->req, f->h, f->o) < 0) {
		api_respond_problem(f->req, 500, "internal", "the migration could not be created");
	}
	api_request_unref(f->req);
	json_object_put(f->o);
	free(f);
}

static int check_filter(struct api_request *req, struct h_migrate *h, json_object *o)
{
	struct filter_check *f = calloc(1, sizeof(*f));
	if (!f) {
		json_object_put(o);
		return -ENOMEM;
	}
	f->work.data = f;
	f->h = h;
	f->o = o; /* the caller's reference moves here */
	f->req = api_request_ref(req);
	int r = uv_queue_work(api_request_loop(req), &f->work, filter_check_work, filter_check_after);
	if (r < 0) {
		api_request_unref(req);
		json_object_put(o);
		free(f);
		return api_respond_problem(req, 503, "unavailable", "no worker to check the filter");
	}
	return 0;
}

static int h_migration_create(struct api_request *req, void *ud)
{
	struct h_migrate *h = ud;
	struct mig_req *c = api_request_ctx(req);
	struct config *cfg = api_request_config(req);
	json_object *o = NULL;
	if (!c)
		return -EINVAL;
	if (c->raw_len) {
		o = json_tokener_parse(c->raw);
		if (!o || !json_object_is_type(o, json_type_object)) {
			json_object_put(o);
			return api_respond_problem(req, 400, "bad-field", "the body must be a JSON object");
		}
	} else {
		o = json_object_get(c->fields);
	}
	int r;
	const char *src = str_member(o, "source_tenant"), *src_con = str_member(o, "source_connection_id");
	const char *dst = str_member(o, "target_tenant"), *dst_con = str_member(o, "target_connection_id");
	const char *filter = str_member(o, "filter");
	bool upsert = false;
	if (!dst)
		dst = "default";
	if (!src) {
		r = api_respond_problem(req, 400, "bad-field", "source_tenant is required");
		goto out;
	}
	if (!tenant_known(cfg, src) || !tenant_known(cfg, dst)) {
		r = api_respond_problem(req, 400, "unknown-tenant", "no tenant '%.40s' is configured",
					tenant_known(cfg, src) ? dst : src);
		goto out;
	}
	if (!src_con || !connection_ok(src_con) || !dst_con || !connection_ok(dst_con)) {
		r = api_respond_problem(req, 400, "bad-field", "source_connection_id and target_connection_id "
					"are required and match ^con_[A-Za-z0-9]{16}$");
		goto out;
	}
	if (strcmp(src, dst) == 0 && strcmp(src_con, dst_con) == 0) {
		r = api_respond_problem(req, 400, "bad-field", "the source and the target are the same connection");
		goto out;
	}
	if (get_bool(o, "upsert", &upsert) < 0) {
		r = api_respond_problem(req, 400, "bad-field", "upsert must be true or false");
		goto out;
	}
	if (filter && filter[0])
		return check_filter(req, h, o);
	r = migration_go(req, h, o);
out:
	json_object_put(o);
	return r;
}

static int h_migration_get(struct api_request *req, void *ud)
{
	struct h_migrate *h = ud;
	char id[64];
	json_object *o;
	if (!api_request_param(req, "id", id, sizeof(id)) ||
	    migration_json(store_reader(h->store), id, &o) < 0)
		return api_respond_problem(req, 404, "not-found", "no such migration");
	return api_respond_json(req, 200, o);
}

struct cancel_req {
	struct api_request *req;
	struct h_migrate *h;
};

static void answer_migration(struct api_request *req, struct h_migrate *h, unsigned status,
			     const char *id)
{
	json_object *o;
	if (migration_json(store_reader(h->store), id, &o) < 0) {
		api_respond_problem(req, 404, "not-found", "no such migration");
		return;
	}
	const char *live = migrate_migration_state(h->m, id);
	if (live)
		json_object_object_add(o, "state", json_object_new_string(live));
	api_respond_json(req, status, o);
}

static void migration_cancelled(int status, const char *id, void *arg)
{
	struct cancel_req *c = arg;
	if (status < 0)
		api_respond_problem(c->req, 500, "internal", "the cancel could not be stored");
	else
		answer_migration(c->req, c->h, 202, id);
	api_request_unref(c->req);
	free(c);
}

static int h_migration_cancel(struct api_request *req, void *ud)
{
	struct h_migrate *h = ud;
	char id[64];
	if (!api_request_param(req, "id", id, sizeof(id)))
		return api_respond_problem(req, 404, "not-found", "no such migration");
	struct cancel_req *c = calloc(1, sizeof(*c));
	if (!c)
		return -ENOMEM;
	c->req = api_request_ref(req);
	c->h = h;
	int r = migrate_migration_cancel(h->m, id, migration_cancelled, c);
	if (r == 0)
		return 0;
	api_request_unref(req);
	free(c);
	if (r == 1) {
		answer_migration(req, h, 200, id);
		return 0;
	}
	if (r == -ENOENT)
		return api_respond_problem(req, 404, "not-found", "no such migration");
	if (r == -EPERM)
		return api_respond_problem(req, 409, "conflict", "the migration has ended");
	if (r == -EAGAIN) {
		api_response_header(req, "Retry-After", "1");
		return api_respond_problem(req, 409, "conflict", "the migration is changing state; retry");
	}
	return r;
}

/* ---- POST /v1/imports/{id}/undo ---------------------------------------------------- */

struct undo_req {
	struct api_request *req;
};

static void undo_started(int status, const char *id, void *arg)
{
	struct api_request *req = arg;
	if (status == -EEXIST) {
		api_respond_problem(req, 409, "conflict", "this import was undone already, or its undo is running");
	} else if (status < 0) {
		api_respond_problem(req, 500, "internal", "the undo could not be stored");
	} else {
		json_object *o = NULL;
		if (undo_import_json(store_reader(api_request_store(req)), id, &o) < 0) {
			api_respond_problem(req, 500, "internal", "the import could not be read");
		} else {
			char loc[128];
			snprintf(loc, sizeof(loc), "/v1/imports/%s", id);
			api_response_header(req, "Location", loc);
			api_respond_json(req, 202, o);
		}
	}
	api_request_unref(req);
}

static int h_undo(struct api_request *req, void *ud)
{
	struct h_migrate *h = ud;
	char id[64];
	size_t len;
	if (!api_request_param(req, "id", id, sizeof(id)))
		return api_respond_problem(req, 404, "not-found", "no such import");
	const char *body = api_request_body(req, &len);
	json_object *o = len ? json_tokener_parse(body) : NULL;
	const char *confirm = o ? str_member(o, "confirm") : NULL;
	int r;
	if (!confirm || strcmp(confirm, id) != 0) {
		json_object_put(o);
		return api_respond_problem(req, 400, "bad-field",
					   "an undo deletes users from the tenant: send {\"confirm\": \"%s\"}", id);
	}
	json_object_put(o);
	char why[256] = "";
	api_request_ref(req);
	r = undo_start(h->undo, id, undo_started, req, why, sizeof(why));
	if (r == 0)
		return 0;
	api_request_unref(req);
	if (r == -ENOENT)
		return api_respond_problem(req, 404, "not-found", "no import %s", id);
	if (r == -EPERM || r == -EEXIST || r == -EBUSY)
		return api_respond_problem(req, 409, "conflict", "%s", why[0] ? why : "the import cannot be undone now");
	if (r == -ESHUTDOWN)
		return api_respond_problem(req, 503, "unavailable", "stopping");
	return r;
}

static const struct api_route h_migrate_routes[] = {
	{ "POST", "/v1/exports", h_export_create, NULL, 0 },
	{ "GET", "/v1/exports/{id}", h_export_get, NULL, 0 },
	{ "GET", "/v1/exports/{id}/file", h_export_file, NULL, 0 },
	{ "POST", "/v1/migrations", h_migration_create, &mig_sink, 0 },
	{ "GET", "/v1/migrations/{id}", h_migration_get, NULL, 0 },
	{ "DELETE", "/v1/migrations/{id}", h_migration_cancel, NULL, 0 },
	{ "POST", "/v1/imports/{id}/undo", h_undo, NULL, 0 },
};

int h_migrate_register(struct api_server *server, struct h_migrate *h)
{
	return api_server_add_routes(server, h_migrate_routes,
				     sizeof(h_migrate_routes) / sizeof(h_migrate_routes[0]), h);
}
