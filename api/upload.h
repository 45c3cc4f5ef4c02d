/*
 * upload — POST /v1/imports bodies streamed to the spool.
 *
 * The users file (the raw body, or the multipart part named "users") is
 * written as it arrives to <state_dir>/spool/<random>.part (bounded writes
 * into the page cache on the loop), its size counted against
 * max_upload_bytes (the server answers 413 past it) and its SHA-256
 * computed on the way (Idempotency-Key). Text fields of a multipart body
 * and query parameters are collected (form fields win). When the body is
 * complete the handler calls upload_commit_file(), which in a uv worker
 * fsyncs the file and renames it to <state_dir>/imports/<id>/upload (the
 * directory fsynced too): from then on the upload is durable.
 *
 * A body that never completes (limit, disconnect, stop) has its .part file
 * removed by abort(); one left by a crash is removed at the next start
 * (intake_recover).
 */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

struct api_request;
struct api_body_sink;

/* Fields POST /v1/imports accepts (API.md). */
enum upload_field {
	UPLOAD_CONNECTION_ID = 0,
	UPLOAD_TENANT,
	UPLOAD_UPSERT,
	UPLOAD_SEND_COMPLETION_EMAIL,
	UPLOAD_EXTERNAL_ID,
	UPLOAD_ON_INVALID,
	UPLOAD_UNSUPPORTED_HASH,
	UPLOAD_STRIP_AUTH0_PREFIX,
	UPLOAD_NOTIFY_URL,
	UPLOAD_DRY_RUN,
	UPLOAD_WAIT,
	UPLOAD_MAX_ERRORS,
	UPLOAD_FIELD_COUNT,
};

struct upload;

/* The sink of the POST /v1/imports route (the spool is in the store's
 * state dir). */
extern const struct api_body_sink upload_sink;

/* The request's upload (NULL before begin()). */
struct upload *upload_of(struct api_request *req);
/* A field's value (form field, else query parameter), NULL when absent. */
const char *upload_field(const struct upload *u, enum upload_field f);
/* The first field that is not one of ours, NULL when none. */
const char *upload_unknown_field(const struct upload *u);
bool upload_has_file(const struct upload *u);
uint64_t upload_bytes(const struct upload *u);
/* Adds the request's normalised fields (text that names every field that
 * changes the import, defaults filled in) to the digest, after the users
 * file. Call once, after the body is complete and before upload_sha256();
 * -EALREADY once the digest is final. */
int upload_hash_fields(struct upload *u, const char *fields, size_t len);
/* Lowercase hex SHA-256 of what makes the import: the users file, then the
 * fields given to upload_hash_fields() (valid once the body is complete);
 * an Idempotency-Key repeat must match it. Finalises the digest. */
const char *upload_sha256(struct upload *u);

/*
 * Makes the users file durable as <state_dir>/imports/<id>/upload, off the
 * loop. done(status, arg) runs on the loop (0 or negative errno). The
 * upload must stay alive until done runs (hold a request reference).
 * After success abort() no longer removes anything.
 */
int upload_commit_file(uv_loop_t *loop, struct upload *u, const char *state_dir, const char *id,
		       void (*done)(int status, void *arg), void *arg);
/* Drops the spool file (no import is made of it). */
void upload_discard(struct upload *u);
