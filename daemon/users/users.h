/*
 * users — the Auth0 bulk-import users file: read, validate, split.
 *
 * A pure library (zlib only: no event loop, no logging, no SQLite; users
 * are parsed by ujv.h, not json-c). `auth0-importd check` and the daemon's
 * intake (in a uv worker thread) both call users_process(); nothing here
 * blocks on anything but the files it is given.
 *
 * Terms
 *   users file   a JSON array of user objects, NDJSON (one object per
 *                line), or CSV with a header row naming import properties
 *                (csv.h: dotted names build nested objects), any of them
 *                optionally gzip-compressed. The format is told by content
 *                (gzip magic 1f 8b, then the first byte after an optional
 *                UTF-8 BOM and whitespace: '[' array, '{' NDJSON, anything
 *                else a CSV header row), never by a declared type.
 *   index        0-based position of a user in the file (uint32_t).
 *   line         1-based line of the decompressed text where the user starts
 *                (for CSV, where its row starts; line breaks inside quoted
 *                fields count).
 *   problem      one diagnostic in API.md's shape
 *                {index, path (JSON pointer), code, message, hint?}; a
 *                warning has the same shape and leaves the user valid.
 *   element      one user's bytes, minified: whitespace outside strings
 *                removed and nothing else changed (escapes, number spelling,
 *                key order kept byte for byte). A CSV row's element is the
 *                JSON user it converts to (csv.h). Chunk files and
 *                users_extract() carry elements.
 *   chunk        <chunk_dir>/chunk-%06u.json (chunk numbers from 0): a JSON
 *                array "[e1,e2,...]" of valid users' elements in file order,
 *                at most the byte budget long, written to a temporary name,
 *                fsynced and renamed. Its index map (uint32_t original
 *                indices, ascending) is handed to the caller.
 *
 * Invariants and units
 *   - Memory is bounded whatever the file size: one element at a time
 *     (USERS_ELEMENT_MAX), one chunk buffer (the budget), and for duplicate
 *     detection 3 x 64-bit hashes per user (24 bytes per user; see
 *     "Duplicates" below).
 *   - Sizes and offsets are bytes. Offsets, lines and columns of a malformed
 *     file refer to the decompressed text; lines and columns are 1-based,
 *     columns count bytes.
 *   - All strings handed to callbacks are valid only during the call.
 *   - Functions return 0 or a negative errno; outputs are untouched on
 *     failure except `ret_failure`, which is filled on every failure of
 *     users_process().
 *
 * Duplicates: email (ASCII case-insensitive), user_id (exact) and username
 * (ASCII case-insensitive) are hashed with a 64-bit hash; the second user
 * whose hash matches an earlier one is DUPLICATED_USER. Every user's values
 * count, an invalid user's too (the file holds the duplicate either way).
 * Memory: 8 bytes per value kept (a sorted array) plus a fixed 2 MiB table
 * of recent values (dedup.h). Collisions are not confirmed by re-reading:
 * with 64-bit hashes the chance of any false duplicate among m values (up
 * to 3 per user) is about m^2 / 2^65, 2.4e-5 for 10 million users with all
 * three; a documented and accepted rate.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Hard bounds (fixed, not configurable). */
#define USERS_ELEMENT_MAX   (1024u * 1024u) /* one user's raw bytes (as written, whitespace included) */
#define USERS_DEPTH_MAX     32u             /* JSON nesting inside one user (the user object is depth 1) */
#define USERS_PROFILE_MAX   10240u          /* minified UTF-8 bytes of a user: PROFILE_SIZE_EXCEEDED above */

/*
 * Auth0 refuses a request body over 512000 bytes (multipart overhead
 * included). The daemon's POST /api/v2/jobs/users-imports body is exactly
 * (CRLF = "\r\n", B = the boundary, at most USERS_MULTIPART_BOUNDARY_MAX = 70
 * characters, RFC 2046):
 *
 *   --B CRLF
 *   Content-Disposition: form-data; name="users"; filename="users.json" CRLF
 *   Content-Type: application/json CRLF
 *   CRLF
 *   <chunk file bytes> CRLF
 *   --B CRLF
 *   Content-Disposition: form-data; name="connection_id" CRLF
 *   CRLF
 *   <con_ + 16 characters: 20 bytes> CRLF
 *   --B CRLF
 *   Content-Disposition: form-data; name="upsert" CRLF
 *   CRLF
 *   <true|false: at most 5 bytes> CRLF
 *   --B CRLF
 *   Content-Disposition: form-data; name="external_id" CRLF
 *   CRLF
 *   <"<import id>-<chunk number>": at most 64 bytes> CRLF
 *   --B CRLF
 *   Content-Disposition: form-data; name="send_completion_email" CRLF
 *   CRLF
 *   <true|false: at most 5 bytes> CRLF
 *   --B-- CRLF
 *
 * With every field at its maximum that is USERS_MULTIPART_OVERHEAD = 876
 * bytes besides the chunk (users part 179, connection_id 152, upsert 130,
 * external_id 194, send_completion_email 145, closing delimiter 76), so the
 * default chunk budget is 512000 - 876 = 511124 bytes. A client that sends
 * fewer or shorter headers stays under 512000; one that sends more (another
 * part, a longer boundary, another Content-Type) must lower chunk_bytes.
 * users_multipart_overhead() computes the figure from these strings (a unit
 * test checks it equals the constant).
 */
#define USERS_REQUEST_MAX              512000u
#define USERS_MULTIPART_BOUNDARY_MAX   70u
#define USERS_MULTIPART_EXTERNAL_ID_MAX 64u
#define USERS_MULTIPART_OVERHEAD       876u

size_t users_multipart_overhead(void);
/* USERS_REQUEST_MAX - USERS_MULTIPART_OVERHEAD = 511124. */
size_t users_chunk_budget_default(void);
/* Smallest budget accepted: "[" + one USERS_PROFILE_MAX user + "]". */
#define USERS_CHUNK_BUDGET_MIN (USERS_PROFILE_MAX + 2u)

enum users_format {
	USERS_FORMAT_UNKNOWN = 0,
	USERS_FORMAT_JSON_ARRAY,
	USERS_FORMAT_NDJSON,
	USERS_FORMAT_CSV,
};
/* "json", "ndjson", "csv", "unknown"; static strings. */
const char *users_format_name(enum users_format f);

enum users_on_invalid {
	USERS_ON_INVALID_REJECT = 0, /* any invalid user rejects the import */
	USERS_ON_INVALID_SKIP,       /* invalid users are left out, the rest go */
};

enum users_unsupported_hash {
	USERS_UNSUPPORTED_HASH_REJECT = 0, /* UNSUPPORTED_HASH is an error */
	USERS_UNSUPPORTED_HASH_STRIP,      /* the hash is removed, a warning says the user must reset the password */
};

enum users_auth0_prefix {
	USERS_AUTH0_PREFIX_UNSET = 0, /* user_id "auth0|..." is an error AUTH0_PREFIX with a hint */
	USERS_AUTH0_PREFIX_STRIP,     /* "auth0|" removed; the chunk carries the stripped id */
	USERS_AUTH0_PREFIX_KEEP,      /* kept as is */
};

struct users_options {
	enum users_on_invalid on_invalid;
	enum users_unsupported_hash unsupported_hash;
	enum users_auth0_prefix strip_auth0_prefix;
	/* More users than this fails with USERS_FAILURE_TOO_MANY_USERS
	 * (-E2BIG). 0: no limit. */
	uint32_t max_users;
	/* on_problems is called for at most this many invalid users (their
	 * warnings included); later invalid users are only counted. Users with
	 * warnings only are always reported. 0: no limit (the daemon keeps the
	 * whole list). */
	uint32_t max_errors;
	/* Byte budget of one chunk file; 0: users_chunk_budget_default().
	 * Must be >= USERS_CHUNK_BUDGET_MIN and <= users_chunk_budget_default(),
	 * else -EINVAL. */
	size_t chunk_bytes;
};

/* Zero-initialised options are the API defaults (reject, reject, unset). */
void users_options_init(struct users_options *opts);

struct users_problem {
	const char *path;    /* JSON pointer into the user ("" = the user itself), e.g. "/custom_password_hash/hash/value" */
	const char *code;    /* "FORMAT", "UNKNOWN_PROPERTY", ... (API.md vocabulary) */
	const char *message; /* one sentence, no trailing period */
	const char *hint;    /* NULL when there is none */
	bool warning;        /* true: leaves the user valid */
	uint32_t line;       /* CSV: 1-based line where the user's row starts; 0 for JSON files */
};

/*
 * Every callback may be NULL. A non-zero return from any callback stops
 * users_process(), which then returns -ECANCELED (failure kind CANCELLED).
 */
struct users_sink {
	/* A user with problems. `problems` lists errors then warnings;
	 * warnings_only is true when the user is valid (only warnings).
	 * email / user_id: the user's values when they are strings, else NULL.
	 * line: where the user starts (1-based). */
	int (*on_problems)(void *ctx, uint32_t index, uint32_t line,
	                   const char *email, const char *user_id,
	                   const struct users_problem *problems, size_t n_problems,
	                   bool warnings_only);
	/* A chunk file is complete: fsynced and renamed (announced once the
	 * next chunk has been written, the last one at the end; the chunk
	 * directory is fsynced before users_process() returns 0).
	 * indices: the original index of each user in the chunk, ascending. */
	int (*on_chunk)(void *ctx, uint32_t chunk_no, const char *path,
	                uint32_t n_users, const uint32_t *indices, size_t bytes);
	/* Called every USERS_PROGRESS_EVERY users and at the end; the place to
	 * check for cancellation. bytes_total is the file's size on disk (0 for
	 * a pipe); bytes_read counts the same (compressed) bytes. */
	int (*on_progress)(void *ctx, uint64_t bytes_read, uint64_t bytes_total,
	                   uint64_t users_seen);
};
#define USERS_PROGRESS_EVERY 4096u

struct users_summary {
	uint64_t users_total;   /* users seen (valid + invalid) */
	uint64_t users_valid;   /* valid users (those written to chunks when chunk_dir was given) */
	uint64_t users_invalid; /* users with at least one error */
	uint64_t users_warned;  /* valid users with at least one warning */
	uint64_t errors_total;  /* error problems, all users */
	uint64_t warnings_total;/* warning problems, all users */
	uint32_t chunks;        /* chunk files written */
	uint64_t chunk_bytes;   /* their total size */
	uint64_t bytes_read;    /* file bytes read (compressed size for gzip) */
	uint64_t bytes_text;    /* decompressed bytes */
	enum users_format format;
	bool gzip;
};

enum users_failure_kind {
	USERS_FAILURE_NONE = 0,
	USERS_FAILURE_MALFORMED,      /* "malformed-file": offset/line/column set */
	USERS_FAILURE_NOT_AN_ARRAY,   /* "not-an-array": neither '[' nor '{' first, nor a CSV header row */
	USERS_FAILURE_EMPTY,          /* "empty-file": no bytes, or whitespace only */
	USERS_FAILURE_TOO_MANY_USERS, /* "too-many-users": over max_users */
	USERS_FAILURE_IO,             /* "internal": open/read/write/fsync failed (errno in `error`) */
	USERS_FAILURE_CANCELLED,      /* a callback returned non-zero */
};

struct users_failure {
	enum users_failure_kind kind;
	const char *slug;     /* API.md problem slug, static string */
	int error;            /* the negative errno returned */
	uint64_t offset;      /* 0-based byte offset in the decompressed text */
	uint32_t line;        /* 1-based */
	uint32_t column;      /* 1-based, bytes */
	char message[256];    /* e.g. "expected ',' or ']' after an array element" */
};

/*
 * Reads `path` ("-" reads stdin), validates every user, and when chunk_dir
 * is not NULL writes the valid users into chunk files there (the directory
 * must exist; existing chunk-*.json in it are overwritten).
 *
 * With on_invalid=reject, once a user is invalid no further chunk is written
 * (the import will be rejected) but validation runs to the end so every
 * problem is reported; chunks announced before are the caller's to discard
 * (users_chunks_remove()). With unsupported_hash=strip the stripped users'
 * chunks carry no password hash; with strip_auth0_prefix=true the stripped
 * user_id: the member is cut out of (or the prefix out of) the minified
 * element, everything else byte for byte; a user_id whose "auth0|" was
 * written with escapes is re-encoded. Every other element is written byte
 * for byte as minified from the file.
 *
 * Returns 0 when the whole file was read (invalid users or not: see
 * ret_summary), else a negative errno with ret_failure filled:
 * -EBADMSG (malformed, not an array, empty), -E2BIG (too many users),
 * -ECANCELED, -EINVAL (bad options), other -errno (I/O).
 * ret_summary is filled in both cases (counts so far on failure).
 */
int users_process(const char *path, const struct users_options *opts,
                  const char *chunk_dir, const struct users_sink *sink,
                  void *ctx, struct users_summary *ret_summary,
                  struct users_failure *ret_failure);

/* Removes <dir>/chunk-*.json (and their temporary files). */
int users_chunks_remove(const char *dir);

/* "<dir>/chunk-%06u.json" into buf; -ENAMETOOLONG when it does not fit. */
int users_chunk_path(char *buf, size_t size, const char *dir, uint32_t chunk_no);

/*
 * Streams the original records at `sorted_indices` (ascending, no
 * repetition) as one JSON array, one element per line, hashes intact and
 * nothing changed but whitespace outside strings:
 *   "[\n" e1 ",\n" e2 ... "\n]\n"    ("[]\n" when n is 0)
 * A CSV file's records come back as the JSON users its rows convert to
 * (the resubmit file is a JSON array whatever the upload's format).
 * Indices past the end of the file are ignored. write_cb returns 0 or a
 * negative errno (which stops and is returned).
 */
typedef int (*users_write_fn)(void *ctx, const void *buf, size_t len);
int users_extract(const char *path, const uint32_t *sorted_indices, size_t n,
                  users_write_fn write_cb, void *ctx);

/*
 * Reads a chunk file back: calls cb for each element in order (pos 0-based
 * within the chunk). -EBADMSG when the file is not a chunk.
 */
typedef int (*users_element_fn)(void *ctx, uint32_t pos, const char *elem, size_t len);
int users_chunk_foreach(const char *chunk_path, users_element_fn cb, void *ctx);

/*
 * Splits a chunk of n >= 2 users in two halves (a 413 from Auth0): the first
 * n/2 elements go to out_a, the rest to out_b, each written to a temporary
 * name, fsynced and renamed, then out_a's directory fsynced (keep both halves
 * in one directory). The chunk's index map splits the same way: its
 * first *ret_n_a entries belong to out_a. -EINVAL for a chunk of fewer than
 * 2 users.
 */
int users_chunk_split(const char *chunk_path, const char *out_a,
                      const char *out_b, uint32_t *ret_n_a, uint32_t *ret_n_b);
