/*
 * undo — deletes from Auth0 the users an import inserted
 * (POST /v1/imports/{id}/undo).
 *
 * Which users: those of the import's completed chunks without a per-user
 * Auth0 error (read from the chunk files and the store, in a uv worker,
 * into the targets file <state_dir>/imports/<id>/undo-targets.ndjson, one
 * {"u": user_id or null, "e": email} per line; memory: the sorted indices
 * of the users Auth0 reported errors for, 8 bytes each). With upsert=false
 * every such user was inserted and is deleted by id (DELETE
 * /api/v2/users/auth0|<id>), or, without a user_id in the file, by the id
 * GET /api/v2/users-by-email finds. With upsert=true a user may have existed
 * before: each is looked up by email and deleted only when its Auth0
 * created_at is not earlier than the import's first job (`kept` counts the
 * others).
 *
 * Every request waits for the tenant's rate limiter (pipeline slots). The
 * undo row (table undos) holds the counters and the byte offset of the next
 * target, written at most once a second and at the end; a restart resumes
 * there (a user handled again is deleted again: a 204, or not found).
 * States: preparing ─▶ running ─▶ completed | failed. One undo per import:
 * only a failed one may be started again.
 *
 * The import object shows it under `undo`: {"state", "total", "done",
 * "deleted", "not_found", "kept", "failed", "progress", "eta_seconds",
 * "started_at", "error"}; eta from the pace so far.
 */
#pragma once

#include <json-c/json.h>
#include <stdbool.h>
#include <stddef.h>
#include <uv.h>

struct store;
struct pipeline;
struct undo;
struct sqlite3;

int undo_new(uv_loop_t *loop, struct store *store, struct pipeline *pl, struct undo **ret);
/* Resumes the undos left preparing or running. */
int undo_resume(struct undo *u);
/* Before pipeline_stop: cancels the calls and slots. */
void undo_stop(struct undo *u);
bool undo_busy(const struct undo *u);
void undo_free(struct undo *u);

typedef void (*undo_done_fn)(int status, const char *import_id, void *arg);
/*
 * Starts undoing import `id`: done(0) once the undo row is committed
 * (-EEXIST there when the import was undone already or its undo runs).
 * Synchronous refusals (with a
 * sentence in why): -ENOENT, -EBUSY (the import has not ended), -EPERM
 * (nothing was imported: dry run, rejected; or the tenant is not
 * configured), -ESHUTDOWN.
 */
int undo_start(struct undo *u, const char *id, undo_done_fn done, void *arg, char *why,
	       size_t whylen);

/* Adds `undo` to an import object when the import has one (bounded read). */
void undo_json_add(struct sqlite3 *db, const char *import_id, json_object *import_obj);
/* The import object with its undo: 0 or -ENOENT. */
int undo_import_json(struct sqlite3 *db, const char *import_id, json_object **ret);
