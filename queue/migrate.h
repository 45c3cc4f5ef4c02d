/*
 * migrate — Auth0 users exports and tenant-to-tenant migrations.
 *
 * Export (POST /v1/exports): an Auth0 users-export job of one tenant,
 * followed to its file, which is kept in the state dir.
 *   queued ─▶ running ─▶ downloading ─▶ completed
 *      └──────────┴────────────┴───────▶ failed | cancelled
 *   queued       the row is committed; the job is created when the tenant's
 *                bucket allows (pipeline slots: the same rate limiter as
 *                the imports). A restart creates it then.
 *   running      auth0_job_id known; the job is polled (500 ms growing to
 *                5 s). A restart polls it again (never creates a second).
 *   downloading  the job completed: it is read again for a fresh `location`
 *                (a signed link valid 60 s) and the gzip file downloaded,
 *                WITHOUT the Authorization header, to
 *                <state_dir>/exports/<id>/export.part (bounded page-cache
 *                writes on the loop, one curl buffer at a time); fsync and
 *                rename to export.gz, and counting its users, run in a uv
 *                worker. An expired link (403 from the file host) reads the
 *                job again for a new link (at most 5 times). A restart
 *                downloads again.
 *   The request always names every field an import needs
 *   (convert_fields_complete), whatever `fields` the client gave.
 *
 * Migration (POST /v1/migrations): export → convert → filter → validate →
 * import, each stage's outcome committed before the next starts.
 *   exporting ─▶ converting ─▶ importing ─▶ completed | completed_with_errors | failed
 *   (any) ─▶ cancelling ─▶ cancelled; (any) ─▶ failed
 *   exporting    its export (migration_id set) runs as above.
 *   converting   in a uv worker: the export file is converted (daemon/convert:
 *                auth0| stripped, non-importable properties dropped, hashes
 *                joined when a hashes file came with the request) and
 *                filtered by the jq program into an import-ready JSON array,
 *                which becomes the upload of a new import
 *                (<state_dir>/imports/<import id>/upload, fsynced, renamed);
 *                the import row (state validating) and the migration's move
 *                to importing with the convert/filter counts are ONE
 *                transaction. A restart converts again (an orphan import
 *                directory is removed by intake_recover).
 *   importing    the import (on_invalid=skip, strip_auth0_prefix=false:
 *                conversion already stripped one prefix) is validated by the
 *                intake and carried by the pipeline like any other; the
 *                migration follows its state (a 1 s timer, one row read).
 *   A conversion that leaves no user completes the migration without an
 *   import. stages.convert.not_imported lists the first 100 users that
 *   conversion dropped or the filter failed on ({index, line, stage,
 *   notes}); users the filter simply left out are only counted.
 *
 * Files: <state_dir>/exports/<id>/{export.gz, import.json (?as=import)},
 * <state_dir>/migrations/<id>/{hashes, import.json.tmp}.
 *
 * Lifetime: migrate_new after the pipeline and the intake; migrate_start
 * resumes what the last run left; migrate_stop BEFORE pipeline_stop (it
 * cancels its Auth0 calls and slots, which pipeline_stop frees); run the
 * loop; migrate_free after store_close. All on the loop thread.
 */
#pragma once

#include <json-c/json.h>
#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

struct store;
struct pipeline;
struct intake;
struct migrate;
struct sqlite3;

#define MIGRATE_ID_LEN 20 /* "exp_"/"mig_" + 16 hex */
#define EXPORT_MAX_BYTES (4ull << 30)
#define EXPORT_LINK_REFRESHES_MAX 5u

struct export_params {
	const char *tenant;
	const char *connection_id;   /* NULL: every connection */
	const char *format;          /* "json" | "csv" */
	json_object *fields;         /* the completed fields array (borrowed) */
	int64_t limit;               /* 0: none */
};

struct migration_params {
	const char *source_tenant, *source_connection_id;
	const char *target_tenant, *target_connection_id;
	const char *filter;          /* NULL or "": none (compiled by the caller first) */
	bool upsert;
	const char *hashes_path;     /* a durable-to-be spool file, or NULL */
};

int migrate_new(uv_loop_t *loop, struct store *store, struct pipeline *pl, struct intake *in,
		struct migrate **ret);
/* Resumes the exports and migrations left unfinished. */
int migrate_start(struct migrate *m);
void migrate_stop(struct migrate *m);
bool migrate_busy(const struct migrate *m);
void migrate_free(struct migrate *m);

typedef void (*migrate_done_fn)(int status, const char *id, void *arg);

/* Commits a new export (state queued) and starts it; done(0, id) once
 * durable. */
int migrate_export_create(struct migrate *m, const struct export_params *p, migrate_done_fn done,
			  void *arg);
/* Moves the hashes file in (worker: fsync, rename), commits the migration
 * and its export, starts it; done(0, id). */
int migrate_migration_create(struct migrate *m, const struct migration_params *p,
			     migrate_done_fn done, void *arg);
/* DELETE: done(0) cancelled or cancelling, -ENOENT, -EPERM (ended). */
int migrate_migration_cancel(struct migrate *m, const char *id, migrate_done_fn done, void *arg);

/* The state the runner holds for a migration (may be ahead of the store
 * while a write is pending), or NULL when it is not running. */
const char *migrate_migration_state(struct migrate *m, const char *id);

/* Reads (the loop's read connection; bounded). *ret new references. */
int export_json(struct sqlite3 *db, const char *id, json_object **ret);
int migration_json(struct sqlite3 *db, const char *id, json_object **ret);

/* Paths into buf (-ENAMETOOLONG). */
int export_file_path(const char *state_dir, const char *id, char *buf, size_t len);
int export_import_path(const char *state_dir, const char *id, char *buf, size_t len);

/* The export's state, format and fields (for GET …/file): 0 or -ENOENT. */
int export_load_brief(struct sqlite3 *db, const char *id, char *ret_state, size_t state_len,
		      char *ret_format, size_t format_len, char **ret_fields_json);
