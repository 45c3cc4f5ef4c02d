/* The store's schema, as numbered migrations (see queue/store.h "Adding a
 * migration"). Append new entries at the end with a number above the last
 * one: a store at version N skips every entry <= N, so a lower number would
 * never reach an existing store. Never edit a released entry. */
#include "queue/store.h"
#include "queue/schema_imports.h"
#include "queue/migrate_store.h"
#include "queue/notifier.h"

#include <stddef.h>

const struct store_migration store_migrations[] = {
	{ 1, "meta",
	  "CREATE TABLE meta ("
	  "  key TEXT PRIMARY KEY,"
	  "  value TEXT NOT NULL"
	  ") STRICT;"
	  "INSERT INTO meta (key, value) VALUES ('created_at', strftime('%Y-%m-%dT%H:%M:%SZ', 'now'));",
	  NULL },
	/* Imports, their chunks and Auth0's per-user errors (queue/import.h,
	 * queue/chunk.h). */
	{ 10, "imports", SCHEMA_IMPORTS_SQL, NULL },
	/* Exports, migrations and undos (queue/migrate.h). */
	{ 21, "exports_migrations", MIGRATE_SCHEMA_SQL, NULL },
	/* Operator retry and notify_url deliveries. */
	{ 30, "chunks_retryable",
	  "ALTER TABLE chunks ADD COLUMN retryable INTEGER NOT NULL DEFAULT 0;", NULL },
	{ 31, "notifications", SCHEMA_NOTIFICATIONS_SQL, NULL },
	/* Covering indexes for the read paths (import view, list, /metrics). */
	{ 40, "chunks_covering_indexes", SCHEMA_CHUNKS_INDEXES_SQL, NULL },
	/* Next: { 41, "name", "SQL", NULL }, */
};

const size_t store_n_migrations = sizeof(store_migrations) / sizeof(store_migrations[0]);
