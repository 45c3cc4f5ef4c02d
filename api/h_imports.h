/*
 * h_imports — the imports resource of the control API (API.md):
 *   POST   /v1/imports                     create (upload.c streams the body)
 *   GET    /v1/imports                     list, newest first, paged
 *   GET    /v1/imports/{id}                one import object
 *   GET    /v1/imports/{id}/errors         per-user problems (JSON or NDJSON, streamed)
 *   GET    /v1/imports/{id}/jobs           every Auth0 job of the import, paged
 *   GET    /v1/imports/{id}/failed-users   original records to fix and resubmit
 *   DELETE /v1/imports/{id}                cancel
 *
 * Everything a client sees comes from the store (plus the live progress of a
 * validation still running). Writes go through the store's writer thread and
 * file work through uv workers; handlers only do bounded work on the loop.
 */
#pragma once

#include <stddef.h>

struct api_server;
struct metrics;
struct store;
struct intake;
struct h_imports;

int h_imports_new(struct store *store, struct intake *intake, struct h_imports **ret);
void h_imports_free(struct h_imports *h);
/* Publishes importd_imports{state} and importd_users{outcome} in /metrics. */
int h_imports_add_metrics(struct metrics *m, struct h_imports *h);
/* Adds the routes above to the server (userdata = h). */
int h_imports_register(struct api_server *server, struct h_imports *h);
