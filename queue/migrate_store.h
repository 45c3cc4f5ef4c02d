/*
 * migrate_store — rows of the exports and migrations tables (migration 21)
 * and their JSON faces. Internal to queue/migrate.c and the API's reads
 * (through migrate.h). *_tx run inside a store transaction on the writer
 * thread; the others take the loop's read connection. Times: unix seconds.
 */
#pragma once

#include <json-c/json.h>
#include <stdbool.h>
#include <stdint.h>

struct sqlite3;

#define MIGRATE_SCHEMA_SQL \
	"CREATE TABLE exports (\n" \
	"  seq INTEGER PRIMARY KEY AUTOINCREMENT,\n" \
	"  id TEXT NOT NULL UNIQUE,\n" \
	"  state TEXT NOT NULL,\n" \
	"  tenant TEXT NOT NULL,\n" \
	"  connection_id TEXT,\n" \
	"  format TEXT NOT NULL,\n" \
	"  fields TEXT NOT NULL,\n" /* the JSON array sent to Auth0 */ \
	"  lim INTEGER,\n" \
	"  migration_id TEXT,\n" \
	"  auth0_job_id TEXT,\n" \
	"  users INTEGER,\n" \
	"  bytes INTEGER,\n" \
	"  error TEXT,\n" /* a problem object as text */ \
	"  created_at INTEGER NOT NULL,\n" \
	"  updated_at INTEGER NOT NULL\n" \
	");\n" \
	"CREATE INDEX exports_by_state ON exports(state, seq);\n" \
	"CREATE TABLE migrations (\n" \
	"  seq INTEGER PRIMARY KEY AUTOINCREMENT,\n" \
	"  id TEXT NOT NULL UNIQUE,\n" \
	"  state TEXT NOT NULL,\n" \
	"  source_tenant TEXT NOT NULL,\n" \
	"  source_connection_id TEXT NOT NULL,\n" \
	"  target_tenant TEXT NOT NULL,\n" \
	"  target_connection_id TEXT NOT NULL,\n" \
	"  filter TEXT,\n" \
	"  upsert INTEGER NOT NULL DEFAULT 0,\n" \
	"  has_hashes INTEGER NOT NULL DEFAULT 0,\n" \
	"  export_id TEXT NOT NULL,\n" \
	"  import_id TEXT,\n" \
	"  convert TEXT,\n" /* the convert and filter counts, JSON */ \
	"  error TEXT,\n" \
	"  created_at INTEGER NOT NULL,\n" \
	"  updated_at INTEGER NOT NULL\n" \
	");\n" \
	"CREATE INDEX migrations_by_state ON migrations(state, seq);\n" \
	"CREATE TABLE undos (\n" \
	"  import_id TEXT PRIMARY KEY,\n" \
	"  state TEXT NOT NULL,\n" /* preparing, running, completed, failed */ \
	"  total INTEGER NOT NULL DEFAULT 0,\n" \
	"  done INTEGER NOT NULL DEFAULT 0,\n" \
	"  deleted INTEGER NOT NULL DEFAULT 0,\n" \
	"  not_found INTEGER NOT NULL DEFAULT 0,\n" \
	"  kept INTEGER NOT NULL DEFAULT 0,\n" /* upsert: existed before the import */ \
	"  failed INTEGER NOT NULL DEFAULT 0,\n" \
	"  cursor INTEGER NOT NULL DEFAULT 0,\n" /* byte offset in the targets file */ \
	"  error TEXT,\n" \
	"  started_at INTEGER NOT NULL,\n" \
	"  updated_at INTEGER NOT NULL\n" \
	");\n"

struct export_row {
	char id[32], state[16], tenant[64], connection_id[72], format[8];
	char *fields;
	int64_t limit;
	char migration_id[32], job_id[128];
	int64_t users, bytes;     /* -1: unknown */
	char *error;
	int64_t created_at, updated_at;
};

struct migration_row {
	char id[32], state[24];
	char source_tenant[64], source_connection_id[72];
	char target_tenant[64], target_connection_id[72];
	char *filter;
	bool upsert, has_hashes;
	char export_id[32], import_id[32];
	char *convert, *error;
	int64_t created_at, updated_at;
};

int export_insert_tx(struct sqlite3 *db, const struct export_row *r, int64_t now);
/* NULL / -1 arguments leave the column as it is. -ENOENT. */
int export_update_tx(struct sqlite3 *db, const char *id, const char *state, const char *job_id,
		     int64_t users, int64_t bytes, const char *error, int64_t now);
int export_load(struct sqlite3 *db, const char *id, struct export_row *ret);
void export_row_done(struct export_row *r);
int export_foreach_unfinished(struct sqlite3 *db, int (*fn)(const struct export_row *r, void *ctx),
			      void *ctx);
json_object *export_row_json(const struct export_row *r);

int migration_insert_tx(struct sqlite3 *db, const struct migration_row *r, int64_t now);
int migration_update_tx(struct sqlite3 *db, const char *id, const char *state, const char *import_id,
			const char *convert_json, const char *error, int64_t now);
int migration_load(struct sqlite3 *db, const char *id, struct migration_row *ret);
void migration_row_done(struct migration_row *r);
int migration_foreach_unfinished(struct sqlite3 *db,
				 int (*fn)(const struct migration_row *r, void *ctx), void *ctx);
