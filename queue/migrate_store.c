/* migrate_store — the exports and migrations rows, and their JSON (migrate.h). */
#include "queue/migrate_store.h"

#include <errno.h>
#include <inttypes.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "daemon/log.h"
#include "queue/import.h"
#include "queue/migrate.h"
#include "queue/store.h"

static void time_text(int64_t t, char *buf, size_t len)
{
	time_t tt = (time_t)t;
	struct tm tm;
	gmtime_r(&tt, &tm);
	strftime(buf, len, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

static json_object *time_json(int64_t t)
{
	char buf[32];
	if (t <= 0)
		return NULL;
	time_text(t, buf, sizeof(buf));
	return json_object_new_string(buf);
}

static int prep(sqlite3 *db, const char *sql, sqlite3_stmt **st)
{
	int rc = sqlite3_prepare_v2(db, sql, -1, st, NULL);
	return rc == SQLITE_OK ? 0 : store_errno(rc);
}

static void bind_opt(sqlite3_stmt *st, int i, const char *s)
{
	if (s)
		sqlite3_bind_text(st, i, s, -1, SQLITE_TRANSIENT);
	else
		sqlite3_bind_null(st, i);
}

static int step_done(sqlite3_stmt *st)
{
	int rc = sqlite3_step(st);
	sqlite3_finalize(st);
	return rc == SQLITE_DONE ? 0 : store_errno(rc);
}

static void col_text(sqlite3_stmt *st, int i, char *buf, size_t len)
{
	const unsigned char *s = sqlite3_column_text(st, i);
	snprintf(buf, len, "%s", s ? (const char *)s : "");
}

/* ---- exports ---------------------------------------------------------------- */

int export_insert_tx(sqlite3 *db, const struct export_row *r, int64_t now)
{
	sqlite3_stmt *st;
	int rc = prep(db, "INSERT INTO exports (id, state, tenant, connection_id, format, fields, lim, "
		      "migration_id, created_at, updated_at) VALUES (?1, 'queued', ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?8)",
		      &st);
	if (rc < 0)
		return rc;
	sqlite3_bind_text(st, 1, r->id, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, r->tenant, -1, SQLITE_STATIC);
	bind_opt(st, 3, r->connection_id[0] ? r->connection_id : NULL);
	sqlite3_bind_text(st, 4, r->format, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 5, r->fields ? r->fields : "[]", -1, SQLITE_STATIC);
	if (r->limit > 0)
		sqlite3_bind_int64(st, 6, r->limit);
	else
		sqlite3_bind_null(st, 6);
	bind_opt(st, 7, r->migration_id[0] ? r->migration_id : NULL);
	sqlite3_bind_int64(st, 8, now);
	rc = step_done(st);
	if (rc == 0)
		log_info("queue", "export %s: created (tenant %s, %s)", r->id, r->tenant, r->format);
	return rc;
}

int export_update_tx(sqlite3 *db, const char *id, const char *state, const char *job_id,
		     int64_t users, int64_t bytes, const char *error, int64_t now)
{
	sqlite3_stmt *st;
	int rc = prep(db, "UPDATE exports SET state = ?2, auth0_job_id = COALESCE(?3, auth0_job_id), "
		      "users = COALESCE(?4, users), bytes = COALESCE(?5, bytes), "
		      "error = COALESCE(?6, error), updated_at = ?7 WHERE id = ?1", &st);
	if (rc < 0)
		return rc;
	sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, state, -1, SQLITE_STATIC);
	bind_opt(st, 3, job_id && job_id[0] ? job_id : NULL);
	if (users >= 0)
		sqlite3_bind_int64(st, 4, users);
	else
		sqlite3_bind_null(st, 4);
	if (bytes >= 0)
		sqlite3_bind_int64(st, 5, bytes);
	else
		sqlite3_bind_null(st, 5);
	bind_opt(st, 6, error);
	sqlite3_bind_int64(st, 7, now);
	rc = step_done(st);
	if (rc == 0 && sqlite3_changes(db) == 0)
		return -ENOENT;
	if (rc == 0)
		log_info("queue", "export %s: -> %s", id, state);
	return rc;
}

static void export_row_read(sqlite3_stmt *st, struct export_row *r)
{
	memset(r, 0, sizeof(*r));
	col_text(st, 0, r->id, sizeof(r->id));
	col_text(st, 1, r->state, sizeof(r->state));
	col_text(st, 2, r->tenant, sizeof(r->tenant));
	col_text(st, 3, r->connection_id, sizeof(r->connection_id));
	col_text(st, 4, r->format, sizeof(r->format));
	const unsigned char *f = sqlite3_column_text(st, 5);
	r->fields = strdup(f ? (const char *)f : "[]");
	r->limit = sqlite3_column_int64(st, 6);
	col_text(st, 7, r->migration_id, sizeof(r->migration_id));
	col_text(st, 8, r->job_id, sizeof(r->job_id));
	r->users = sqlite3_column_type(st, 9) == SQLITE_NULL ? -1 : sqlite3_column_int64(st, 9);
	r->bytes = sqlite3_column_type(st, 10) == SQLITE_NULL ? -1 : sqlite3_column_int64(st, 10);
	const unsigned char *e = sqlite3_column_text(st, 11);
	r->error = e ? strdup((const char *)e) : NULL;
	r->created_at = sqlite3_column_int64(st, 12);
	r->updated_at = sqlite3_column_int64(st, 13);
}

#define EXPORT_COLS "id, state, tenant, connection_id, format, fields, lim, migration_id, " \
	"auth0_job_id, users, bytes, error, created_at, updated_at"

int export_load(sqlite3 *db, const char *id, struct export_row *ret)
{
	sqlite3_stmt *st;
	int rc = prep(db, "SELECT " EXPORT_COLS " FROM exports WHERE id = ?1", &st);
	if (rc < 0)
		return rc;
	sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		export_row_read(st, ret);
		rc = 0;
	} else {
		rc = rc == SQLITE_DONE ? -ENOENT : store_errno(rc);
	}
	sqlite3_finalize(st);
	return rc;
}

void export_row_done(struct export_row *r)
{
	free(r->fields);
	free(r->error);
	r->fields = r->error = NULL;
}

int export_foreach_unfinished(sqlite3 *db, int (*fn)(const struct export_row *r, void *ctx), void *ctx)
{
	sqlite3_stmt *st;
	int rc = prep(db, "SELECT " EXPORT_COLS " FROM exports WHERE state IN "
		      "('queued', 'running', 'downloading') ORDER BY seq", &st);
	if (rc < 0)
		return rc;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		struct export_row r;
		export_row_read(st, &r);
		int x = fn(&r, ctx);
		export_row_done(&r);
		if (x) {
			sqlite3_finalize(st);
			return x;
		}
	}
	sqlite3_finalize(st);
	return rc == SQLITE_DONE ? 0 : store_errno(rc);
}

static json_object *error_json(const char *e)
{
	if (!e)
		return NULL;
	json_object *o = json_tokener_parse(e);
	return o ? o : json_object_new_string(e);
}

json_object *export_row_json(const struct export_row *r)
{
	json_object *o = json_object_new_object();
	json_object_object_add(o, "id", json_object_new_string(r->id));
	json_object_object_add(o, "state", json_object_new_string(r->state));
	json_object_object_add(o, "tenant", json_object_new_string(r->tenant));
	json_object_object_add(o, "connection_id",
			       r->connection_id[0] ? json_object_new_string(r->connection_id) : NULL);
	json_object_object_add(o, "format", json_object_new_string(r->format));
	json_object_object_add(o, "fields", json_tokener_parse(r->fields ? r->fields : "[]"));
	json_object_object_add(o, "limit", r->limit > 0 ? json_object_new_int64(r->limit) : NULL);
	json_object_object_add(o, "users", r->users >= 0 ? json_object_new_int64(r->users) : NULL);
	json_object_object_add(o, "bytes", r->bytes >= 0 ? json_object_new_int64(r->bytes) : NULL);
	json_object_object_add(o, "auth0_job_id", r->job_id[0] ? json_object_new_string(r->job_id) : NULL);
	json_object_object_add(o, "migration_id",
			       r->migration_id[0] ? json_object_new_string(r->migration_id) : NULL);
	json_object_object_add(o, "error", error_json(r->error));
	json_object_object_add(o, "created_at", time_json(r->created_at));
	json_object_object_add(o, "updated_at", time_json(r->updated_at));
	return o;
}

int export_json(sqlite3 *db, const char *id, json_object **ret)
{
	struct export_row r;
	int rc = export_load(db, id, &r);
	if (rc < 0)
		return rc;
	*ret = export_row_json(&r);
	export_row_done(&r);
	return 0;
}

int export_load_brief(sqlite3 *db, const char *id, char *ret_state, size_t state_len,
		      char *ret_format, size_t format_len, char **ret_fields_json)
{
	struct export_row r;
	int rc = export_load(db, id, &r);
	if (rc < 0)
		return rc;
	snprintf(ret_state, state_len, "%s", r.state);
	snprintf(ret_format, format_len, "%s", r.format);
	*ret_fields_json = r.fields;
	r.fields = NULL;
	export_row_done(&r);
	return 0;
}

/* ---- migrations ---------------------------------------------------------- */

int migration_insert_tx(sqlite3 *db, const struct migration_row *r, int64_t now)
{
	sqlite3_stmt *st;
	int rc = prep(db, "INSERT INTO migrations (id, state, source_tenant, source_connection_id, "
		      "target_tenant, target_connection_id, filter, upsert, has_hashes, export_id, "
		      "created_at, updated_at) VALUES (?1, 'exporting', ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?10)",
		      &st);
	if (rc < 0)
		return rc;
	sqlite3_bind_text(st, 1, r->id, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, r->source_tenant, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 3, r->source_connection_id, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 4, r->target_tenant, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 5, r->target_connection_id, -1, SQLITE_STATIC);
	bind_opt(st, 6, r->filter && r->filter[0] ? r->filter : NULL);
	sqlite3_bind_int(st, 7, r->upsert);
	sqlite3_bind_int(st, 8, r->has_hashes);
	sqlite3_bind_text(st, 9, r->export_id, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 10, now);
	rc = step_done(st);
	if (rc == 0)
		log_info("queue", "migration %s: created (%s -> %s)", r->id, r->source_tenant, r->target_tenant);
	return rc;
}

int migration_update_tx(sqlite3 *db, const char *id, const char *state, const char *import_id,
			const char *convert_json, const char *error, int64_t now)
{
	sqlite3_stmt *st;
	int rc = prep(db, "UPDATE migrations SET state = ?2, import_id = COALESCE(?3, import_id), "
		      "convert = COALESCE(?4, convert), error = COALESCE(?5, error), updated_at = ?6 "
		      "WHERE id = ?1", &st);
	if (rc < 0)
		return rc;
	sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, state, -1, SQLITE_STATIC);
	bind_opt(st, 3, import_id && import_id[0] ? import_id : NULL);
	bind_opt(st, 4, convert_json);
	bind_opt(st, 5, error);
	sqlite3_bind_int64(st, 6, now);
	rc = step_done(st);
	if (rc == 0 && sqlite3_changes(db) == 0)
		return -ENOENT;
	if (rc == 0)
		log_info("queue", "migration %s: -> %s", id, state);
	return rc;
}

static void migration_row_read(sqlite3_stmt *st, struct migration_row *r)
{
	memset(r, 0, sizeof(*r));
	col_text(st, 0, r->id, sizeof(r->id));
	col_text(st, 1, r->state, sizeof(r->state));
	col_text(st, 2, r->source_tenant, sizeof(r->source_tenant));
	col_text(st, 3, r->source_connection_id, sizeof(r->source_connection_id));
	col_text(st, 4, r->target_tenant, sizeof(r->target_tenant));
	col_text(st, 5, r->target_connection_id, sizeof(r->target_connection_id));
	const unsigned char *f = sqlite3_column_text(st, 6);
	r->filter = f ? strdup((const char *)f) : NULL;
	r->upsert = sqlite3_column_int(st, 7) != 0;
	r->has_hashes = sqlite3_column_int(st, 8) != 0;
	col_text(st, 9, r->export_id, sizeof(r->export_id));
	col_text(st, 10, r->import_id, sizeof(r->import_id));
	const unsigned char *c = sqlite3_column_text(st, 11);
	r->convert = c ? strdup((const char *)c) : NULL;
	const unsigned char *e = sqlite3_column_text(st, 12);
	r->error = e ? strdup((const char *)e) : NULL;
	r->created_at = sqlite3_column_int64(st, 13);
	r->updated_at = sqlite3_column_int64(st, 14);
}

#define MIGRATION_COLS "id, state, source_tenant, source_connection_id, target_tenant, " \
	"target_connection_id, filter, upsert, has_hashes, export_id, import_id, convert, error, " \
	"created_at, updated_at"

int migration_load(sqlite3 *db, const char *id, struct migration_row *ret)
{
	sqlite3_stmt *st;
	int rc = prep(db, "SELECT " MIGRATION_COLS " FROM migrations WHERE id = ?1", &st);
	if (rc < 0)
		return rc;
	sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		migration_row_read(st, ret);
		rc = 0;
	} else {
		rc = rc == SQLITE_DONE ? -ENOENT : store_errno(rc);
	}
	sqlite3_finalize(st);
	return rc;
}

void migration_row_done(struct migration_row *r)
{
	free(r->filter);
	free(r->convert);
	free(r->error);
	r->filter = r->convert = r->error = NULL;
}

int migration_foreach_unfinished(sqlite3 *db, int (*fn)(const struct migration_row *r, void *ctx),
				 void *ctx)
{
	sqlite3_stmt *st;
	int rc = prep(db, "SELECT " MIGRATION_COLS " FROM migrations WHERE state IN "
		      "('exporting', 'converting', 'importing', 'cancelling') ORDER BY seq", &st);
	if (rc < 0)
		return rc;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		struct migration_row r;
		migration_row_read(st, &r);
		int x = fn(&r, ctx);
		migration_row_done(&r);
		if (x) {
			sqlite3_finalize(st);
			return x;
		}
	}
	sqlite3_finalize(st);
	return rc == SQLITE_DONE ? 0 : store_errno(rc);
}

static json_object *member(json_object *o, const char *key)
{
	json_object *v = NULL;
	if (o && json_object_object_get_ex(o, key, &v))
		return json_object_get(v);
	return NULL;
}

int migration_json(sqlite3 *db, const char *id, json_object **ret)
{
	struct migration_row r;
	int rc = migration_load(db, id, &r);
	if (rc < 0)
		return rc;
	json_object *o = json_object_new_object();
	json_object_object_add(o, "id", json_object_new_string(r.id));
	json_object_object_add(o, "state", json_object_new_string(r.state));
	json_object_object_add(o, "source_tenant", json_object_new_string(r.source_tenant));
	json_object_object_add(o, "source_connection_id", json_object_new_string(r.source_connection_id));
	json_object_object_add(o, "target_tenant", json_object_new_string(r.target_tenant));
	json_object_object_add(o, "target_connection_id", json_object_new_string(r.target_connection_id));
	json_object_object_add(o, "filter", r.filter ? json_object_new_string(r.filter) : NULL);
	json_object_object_add(o, "upsert", json_object_new_boolean(r.upsert));
	json_object_object_add(o, "hashes", json_object_new_boolean(r.has_hashes));
	json_object_object_add(o, "export_id", json_object_new_string(r.export_id));
	json_object_object_add(o, "import_id", r.import_id[0] ? json_object_new_string(r.import_id) : NULL);

	json_object *stages = json_object_new_object();
	json_object *ex = NULL;
	if (export_json(db, r.export_id, &ex) < 0)
		ex = NULL;
	json_object_object_add(stages, "export", ex);
	json_object *conv = r.convert ? json_tokener_parse(r.convert) : NULL;
	if (conv) {
		json_object *c = json_object_new_object();
		const char *keys[] = { "users_in", "users_out", "changed", "dropped", "malformed",
				       "hashes_added", "not_imported", NULL };
		for (size_t i = 0; keys[i]; i++)
			json_object_object_add(c, keys[i], member(conv, keys[i]));
		json_object_object_add(stages, "convert", c);
		json_object_object_add(stages, "filter", member(conv, "filter"));
		json_object_put(conv);
	} else {
		json_object_object_add(stages, "convert", NULL);
		json_object_object_add(stages, "filter", NULL);
	}
	json_object *imp = NULL;
	if (r.import_id[0] && import_json(db, r.import_id, false, (int64_t)time(NULL), &imp) < 0)
		imp = NULL;
	if (imp) {
		json_object *users = NULL, *v = json_object_new_object();
		json_object_object_get_ex(imp, "users", &users);
		json_object_object_add(v, "state", member(imp, "state"));
		json_object_object_add(v, "users", member(users, "total"));
		json_object_object_add(v, "invalid", member(users, "invalid"));
		json_object_object_add(v, "warnings", member(imp, "warnings_total"));
		json_object_object_add(stages, "validate", v);
	} else {
		json_object_object_add(stages, "validate", NULL);
	}
	json_object_object_add(stages, "import", imp);
	json_object_object_add(o, "stages", stages);
	json_object_object_add(o, "error", error_json(r.error));
	json_object_object_add(o, "created_at", time_json(r.created_at));
	json_object_object_add(o, "updated_at", time_json(r.updated_at));
	migration_row_done(&r);
	*ret = o;
	return 0;
}
