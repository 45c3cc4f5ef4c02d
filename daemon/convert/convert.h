/*
 * convert — Auth0 users-export files to import-ready users files.
 *
 * A pure library (json-c, zlib, libjq: no event loop, no logging, no
 * SQLite). The daemon runs it in a uv worker thread; the tests call it
 * directly.
 *
 * Terms
 *   export file   what an Auth0 users-export job produces: gzip NDJSON (one
 *                 user per line, format "json") or gzip CSV (a header row of
 *                 the export_as names, then one row per user; strings quoted
 *                 and prefixed with ', " doubled; dates, booleans and numbers
 *                 bare). A plain (not gzipped) file is read the same way.
 *   fields        the `fields` list of the export request: {name, export_as}
 *                 pairs. An exported key is a field's export_as (or its name
 *                 when export_as is absent); conversion maps it back to the
 *                 field's name, and a dotted name (user_metadata.plan) builds
 *                 the nested object. The caller passes the list the export
 *                 was made with.
 *   import user   an object with the bulk-import properties only (AUTH0.md
 *                 "The users file"); what conversion writes.
 *   note          one sentence saying what conversion changed in a user or
 *                 why it dropped the user ("removed the auth0| prefix from
 *                 user_id", "dropped: no email").
 *   hashes file   Auth0 support's decrypted password-hash export: NDJSON
 *                 (optionally gzip), one {"_id":{"$oid":…},"alt_id":…,
 *                 "passwordHash":…,"email":…} per line. The user's id is
 *                 auth0|<alt_id> when alt_id is present, else auth0|<oid>.
 *   index         0-based position of a user (a data row / line) in the
 *                 export file; line is 1-based in the decompressed text.
 *
 * What conversion does to one exported user, in order
 *   1. keys are mapped back through the fields list; keys that are not
 *      import properties (identities, logins_count, created_at, updated_at,
 *      last_login, last_ip, …) are dropped, JSON nulls and empty CSV cells
 *      too;
 *   2. strings become booleans ("true"/"false") where the property is
 *      boolean, and objects/arrays (JSON text) where it is one (CSV);
 *   3. user_id loses one leading "auth0|" (Auth0 adds it back on import, so
 *      the user keeps the same id; without this the target would hold
 *      auth0|auth0|…); a user_id of another identity provider ("google-
 *      oauth2|…") drops the user (only database users can be imported);
 *   4. a user without an email is dropped (the import schema requires one);
 *   5. with a hashes index, a user without a hash gets password_hash from
 *      the line for its original (prefixed) user_id;
 *   6. with a filter, the jq program runs on the import user: each object it
 *      outputs is written (zero outputs: the user is filtered out; a non-
 *      object output or a runtime error drops the user with jq's message).
 * Conversion does not validate against the import schema: the import's own
 * validation does that next.
 *
 * Invariants and units
 *   - Memory is bounded whatever the file sizes: one line / CSV record of at
 *     most CONVERT_LINE_MAX bytes, one user at a time, and a constant-size
 *     hashes index in memory (its table lives in a temporary file: see
 *     convert_hashes_open).
 *   - Functions return 0 or a negative errno; outputs are untouched on
 *     failure; error messages go to caller buffers (err, errsize).
 *   - Strings handed to callbacks are valid only during the call.
 *   - jq: a convert_jq and every jv it makes stay on the thread that created
 *     it (libjq 1.6 is not thread-safe per state).
 */
#pragma once

#include <json-c/json.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define CONVERT_LINE_MAX    (1024u * 1024u) /* one NDJSON line or CSV record, bytes */
#define CONVERT_FIELDS_MAX  64u             /* fields of one export (Auth0's CSV allows 30) */
#define CONVERT_NAME_MAX    128u            /* one field name or export_as, bytes with NUL */
#define CONVERT_NOTES_MAX   16u             /* notes kept per user (more are counted) */
#define CONVERT_NOTE_MAX    256u            /* one note, bytes with NUL */
#define CONVERT_FILTER_MAX  (64u * 1024u)   /* a jq program, bytes */

/* ---- fields ------------------------------------------------------------- */

struct convert_field {
	char name[CONVERT_NAME_MAX];
	char export_as[CONVERT_NAME_MAX]; /* "" when absent */
};

struct convert_fields {
	size_t n;
	struct convert_field f[CONVERT_FIELDS_MAX];
};

/* Every field an import needs, export_as absent: email, email_verified,
 * user_id, username, given_name, family_name, name, nickname, picture,
 * blocked, phone_number, phone_verified, app_metadata, user_metadata. */
void convert_fields_default(struct convert_fields *ret);

/* Parses a `fields` JSON array ([{"name":…, "export_as":…}, …]). NULL
 * gives the default list. -EINVAL with a message for a bad list (not an
 * array, a field without a string name, names too long, too many,
 * duplicate names). */
int convert_fields_parse(json_object *arr, struct convert_fields *ret, char *err, size_t errsize);

/* Appends every default field the list does not name yet (an export for a
 * migration must carry all of them). -E2BIG past CONVERT_FIELDS_MAX. */
int convert_fields_complete(struct convert_fields *f);

/* The list as the export request's `fields` array (new reference). */
json_object *convert_fields_to_json(const struct convert_fields *f);

/* ---- one user ------------------------------------------------------------- */

struct convert_hashes;

struct convert_notes {
	size_t n;         /* notes kept (<= CONVERT_NOTES_MAX) */
	size_t total;     /* notes made */
	bool hash_added;  /* password_hash came from the hashes index */
	char note[CONVERT_NOTES_MAX][CONVERT_NOTE_MAX];
};

enum convert_outcome {
	CONVERT_SAME = 0,  /* converted, nothing changed */
	CONVERT_CHANGED,   /* converted with changes (notes say which) */
	CONVERT_DROPPED,   /* not convertible (the last note says why) */
};

/*
 * Converts one exported user (an object; `in` is not modified). On
 * CONVERT_SAME / CONVERT_CHANGED *ret_user is a new import user; on
 * CONVERT_DROPPED it is NULL. `hashes` may be NULL. Returns the outcome
 * (>= 0) or a negative errno (-ENOMEM, or an I/O error of the hashes
 * index).
 */
int convert_user(json_object *in, const struct convert_fields *f, struct convert_hashes *hashes,
		 json_object **ret_user, struct convert_notes *notes);

/* ---- the hashes index ----------------------------------------------------- */

struct convert_hashes_stats {
	uint64_t lines;      /* non-empty lines read */
	uint64_t indexed;    /* users with a hash in the index */
	uint64_t skipped;    /* lines that are not JSON objects with an id and a passwordHash */
	uint64_t duplicates; /* later lines for an id already indexed (the first wins) */
};

/*
 * Indexes a hashes file for lookups by user_id, with memory independent of
 * its size: one pass copies each usable line as a compact record
 * ("<user_id>\t<hash>\n") into <tmp_dir>/hashes-XXXXXX.rec, a second builds
 * an open-addressing table of 16-byte slots (64-bit hash of the user_id,
 * record offset) in <tmp_dir>/hashes-XXXXXX.idx sized to the next power of
 * two >= 2 x users, written and read with pwrite/pread. Disk: about
 * 32 bytes + the record per user; memory: one line buffer. Both files are
 * unlinked at once (they live as long as the index). A lookup costs a
 * probe or two plus one record read.
 * -EBADMSG with a message when no line at all is usable but some exist.
 */
int convert_hashes_open(const char *path, const char *tmp_dir, struct convert_hashes **ret,
			struct convert_hashes_stats *ret_stats, char *err, size_t errsize);
/* 0 and the hash copied, -ENOENT when the id has none, -ENOSPC when `size`
 * is too small, other negative errno on I/O errors. */
int convert_hashes_lookup(struct convert_hashes *h, const char *user_id, char *ret_hash, size_t size);
void convert_hashes_close(struct convert_hashes *h);

/* ---- the jq filter -------------------------------------------------------- */

struct convert_jq;

/* Compiles `program` (at most CONVERT_FILTER_MAX bytes): -EINVAL with jq's
 * own message when it does not compile. */
int convert_jq_new(const char *program, struct convert_jq **ret, char *err, size_t errsize);
void convert_jq_free(struct convert_jq *q);

/* Called for each object the program outputs: minified JSON text. */
typedef int (*convert_jq_out_fn)(void *ctx, const char *json, size_t len);

/*
 * Runs the program on one user (JSON text). *ret_outputs counts the
 * outputs, *ret_changed is true when some output differs from the input.
 * -EINVAL with the message for a runtime error or a non-object output (the
 * outputs before it were delivered); an error from `out` stops and is
 * returned.
 */
int convert_jq_apply(struct convert_jq *q, const char *json, size_t len, convert_jq_out_fn out,
		     void *ctx, unsigned *ret_outputs, bool *ret_changed, char *err, size_t errsize);

/* ---- a whole file --------------------------------------------------------- */

enum convert_format {
	CONVERT_FORMAT_AUTO = 0, /* '{' first: NDJSON, else CSV */
	CONVERT_FORMAT_NDJSON,
	CONVERT_FORMAT_CSV,
};

struct convert_params {
	const char *export_path;
	enum convert_format format;
	const struct convert_fields *fields;  /* NULL: the default list */
	struct convert_hashes *hashes;        /* NULL: none */
	const char *filter;                   /* NULL or "": none */
	const char *out_path;                 /* the import-ready JSON array */
	uint64_t max_users;                   /* 0: no limit; more: -E2BIG */
	bool sync;                            /* fsync the output and its directory */
};

/* What happened to one user, for reports. */
enum convert_user_result {
	CONVERT_USER_WRITTEN = 0,   /* written (changed or not) */
	CONVERT_USER_DROPPED,       /* not convertible */
	CONVERT_USER_FILTERED_OUT,  /* the filter output nothing */
	CONVERT_USER_FILTER_ERROR,  /* the filter failed on it: the last note is jq's message */
	CONVERT_USER_MALFORMED,     /* the line is not a JSON object / a bad CSV record */
};

struct convert_sink {
	/* Every user that was changed, dropped, filtered out or not readable
	 * (not the ones written unchanged). May be NULL. Non-zero stops the run
	 * with -ECANCELED. */
	int (*on_user)(void *ctx, uint64_t index, uint64_t line, enum convert_user_result result,
		       const struct convert_notes *notes);
	/* Every 4096 users and at the end; non-zero stops (-ECANCELED). */
	int (*on_progress)(void *ctx, uint64_t users_in);
};

struct convert_summary {
	uint64_t users_in;        /* records read */
	uint64_t users_out;       /* users written */
	uint64_t changed;         /* converted with changes */
	uint64_t dropped;         /* not convertible, malformed records included */
	uint64_t malformed;       /* of which: records that could not be read */
	uint64_t hashes_added;    /* users that got a password_hash from the index */
	uint64_t filter_kept;     /* users for which the filter output something */
	uint64_t filter_dropped;  /* users for which it output nothing, or failed */
	uint64_t filter_changed;  /* users the filter changed */
	uint64_t filter_errors;   /* of filter_dropped: runtime errors, non-objects */
	uint64_t bytes_out;
	enum convert_format format;
};

/*
 * Reads the export file, converts and filters every user, and writes the
 * import-ready JSON array to out_path ("[\n" u1 ",\n" u2 … "\n]\n", "[]\n"
 * when empty) through a temporary name renamed at the end (fsynced when
 * params->sync). Returns 0 when the whole file was read, else a negative
 * errno with a message (-EINVAL: the filter does not compile; -EBADMSG: a
 * bad CSV header or a record over CONVERT_LINE_MAX; -E2BIG; -ECANCELED;
 * I/O errors); ret_summary is filled in both cases.
 */
int convert_run(const struct convert_params *params, const struct convert_sink *sink, void *ctx,
		struct convert_summary *ret_summary, char *err, size_t errsize);

/* Counts the users (NDJSON non-empty lines, CSV records after the header)
 * of an export file; -EBADMSG for a record over CONVERT_LINE_MAX. */
int convert_count_users(const char *path, enum convert_format format, uint64_t *ret);

/* "ndjson", "csv", "auto". */
const char *convert_format_name(enum convert_format f);
