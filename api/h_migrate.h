/*
 * h_migrate — exports, migrations and undo in the control API (API.md
 * "Exports and migrations"):
 *   POST   /v1/exports                  {"tenant","connection_id","format","fields","limit"} → 202
 *   GET    /v1/exports/{id}             the export object
 *   GET    /v1/exports/{id}/file        the file as exported (gzip); ?as=import: an
 *                                       import-ready JSON array (converted once in a
 *                                       worker, then kept beside the export)
 *   POST   /v1/migrations               JSON, or multipart with an optional `hashes` file
 *                                       part (streamed to the spool) → 202
 *   GET    /v1/migrations/{id}          the migration with its stages
 *   DELETE /v1/migrations/{id}          cancel
 *   POST   /v1/imports/{id}/undo        {"confirm": "<id>"} → 202, progress under `undo`
 *                                       in the import object
 * A filter that does not compile is a 400 bad-field carrying jq's message.
 */
#pragma once

struct api_server;
struct store;
struct migrate;
struct undo;
struct h_migrate;

int h_migrate_new(struct store *store, struct migrate *m, struct undo *u, struct h_migrate **ret);
void h_migrate_free(struct h_migrate *h);
int h_migrate_register(struct api_server *server, struct h_migrate *h);
