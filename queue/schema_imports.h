/*
 * schema_imports — the store migration that creates the import/chunk model.
 *
 * Tables (one row per import, one per chunk, one per user Auth0 reported an
 * error for; never a row per valid user):
 *
 *   imports           an uploaded users file and what became of it.
 *                     `seq` is the creation order (list cursor), `id` the
 *                     public "imp_" + 16 hex id. Counters `users_total`,
 *                     `users_invalid`, `warnings_total` are set when
 *                     validation ends; `upload_bytes`/`validated_bytes` show
 *                     progress while `state = 'validating'`. `error` is the
 *                     import-wide problem (a problem+json object as text) of a
 *                     rejected-for-malformed or failed import.
 *   chunks            one Auth0 job's worth of valid users (a JSON array file
 *                     <state_dir>/imports/<id>/chunks/<chunk_no>.json).
 *                     `indices` is a BLOB of `users` little-endian uint32: the
 *                     original 0-based index in the uploaded file of each user
 *                     of the chunk, in chunk order. Pipeline columns: job_id,
 *                     attempts, next_attempt_at (unix ms), last_error,
 *                     resubmitted (1 when resubmitted after a crash left it in
 *                     'submitting'), summary_* (Auth0's job summary), assumed,
 *                     submitted_at, completed_at (unix s), errors_fetched.
 *   auth0_user_errors the per-user errors of Auth0 jobs (and CHUNK_FAILED of
 *                     chunks that failed as a whole), mapped to the original
 *                     index. `errors` is a JSON array of problems.
 *
 * Validation problems are NOT here: they live in the per-import NDJSON file
 * <state_dir>/imports/<id>/problems.ndjson (see queue/intake.h).
 *
 * Times are unix seconds unless the column says ms. Booleans are 0/1.
 * States are the strings of queue/import.h and queue/chunk.h.
 */
#pragma once

#define SCHEMA_IMPORTS_SQL \
	"CREATE TABLE imports (\n" \
	"  seq INTEGER PRIMARY KEY AUTOINCREMENT,\n" \
	"  id TEXT NOT NULL UNIQUE,\n" \
	"  state TEXT NOT NULL,\n" \
	"  tenant TEXT NOT NULL,\n" \
	"  connection_id TEXT NOT NULL,\n" \
	"  upsert INTEGER NOT NULL DEFAULT 0,\n" \
	"  send_completion_email INTEGER NOT NULL DEFAULT 0,\n" \
	"  external_id TEXT,\n" \
	"  on_invalid TEXT NOT NULL DEFAULT 'reject',\n" \
	"  unsupported_hash TEXT NOT NULL DEFAULT 'reject',\n" \
	"  strip_auth0_prefix INTEGER,\n" /* NULL = unset */ \
	"  notify_url TEXT,\n" \
	"  dry_run INTEGER NOT NULL DEFAULT 0,\n" \
	"  max_errors INTEGER NOT NULL DEFAULT 1000,\n" \
	"  idempotency_key TEXT,\n" \
	"  body_sha256 TEXT,\n" \
	"  created_at INTEGER NOT NULL,\n" \
	"  updated_at INTEGER NOT NULL,\n" \
	"  finished_at INTEGER,\n" \
	"  users_total INTEGER NOT NULL DEFAULT 0,\n" \
	"  users_invalid INTEGER NOT NULL DEFAULT 0,\n" \
	"  warnings_total INTEGER NOT NULL DEFAULT 0,\n" \
	"  upload_bytes INTEGER NOT NULL DEFAULT 0,\n" \
	"  validated_bytes INTEGER NOT NULL DEFAULT 0,\n" \
	"  error TEXT\n" \
	");\n" \
	"CREATE INDEX imports_by_state ON imports(state, seq);\n" \
	"CREATE INDEX imports_by_external_id ON imports(external_id, seq);\n" \
	"CREATE INDEX imports_by_idempotency_key ON imports(idempotency_key, seq);\n" \
	"CREATE TABLE chunks (\n" \
	"  import_id TEXT NOT NULL REFERENCES imports(id) ON DELETE CASCADE,\n" \
	"  chunk_no INTEGER NOT NULL,\n" \
	"  state TEXT NOT NULL,\n" \
	"  users INTEGER NOT NULL,\n" \
	"  bytes INTEGER NOT NULL,\n" \
	"  indices BLOB NOT NULL,\n" \
	"  job_id TEXT,\n" \
	"  attempts INTEGER NOT NULL DEFAULT 0,\n" \
	"  next_attempt_at INTEGER NOT NULL DEFAULT 0,\n" \
	"  last_error TEXT,\n" \
	"  resubmitted INTEGER NOT NULL DEFAULT 0,\n" \
	"  summary_inserted INTEGER NOT NULL DEFAULT 0,\n" \
	"  summary_updated INTEGER NOT NULL DEFAULT 0,\n" \
	"  summary_failed INTEGER NOT NULL DEFAULT 0,\n" \
	"  assumed INTEGER NOT NULL DEFAULT 0,\n" \
	"  submitted_at INTEGER,\n" \
	"  completed_at INTEGER,\n" \
	"  errors_fetched INTEGER NOT NULL DEFAULT 0,\n" \
	"  updated_at INTEGER NOT NULL,\n" \
	"  PRIMARY KEY (import_id, chunk_no)\n" \
	");\n" \
	"CREATE INDEX chunks_by_state ON chunks(state, next_attempt_at);\n" \
	"CREATE INDEX chunks_by_job_id ON chunks(job_id);\n" \
	"CREATE TABLE auth0_user_errors (\n" \
	"  import_id TEXT NOT NULL REFERENCES imports(id) ON DELETE CASCADE,\n" \
	"  idx INTEGER NOT NULL,\n" \
	"  chunk_no INTEGER NOT NULL,\n" \
	"  email TEXT,\n" \
	"  user_id TEXT,\n" \
	"  errors TEXT NOT NULL,\n" \
	"  PRIMARY KEY (import_id, idx)\n" \
	");\n"

/*
 * Covering indexes for the reads (migration 40): an import's counters, its
 * jobs and the ETA (chunks_agg), and the /metrics totals (chunks_totals)
 * read index entries only. The chunk's own row carries the indices BLOB
 * (4 bytes a user) before the summary columns, so reading those from the
 * table walks the blob's overflow pages for every chunk.
 */
#define SCHEMA_CHUNKS_INDEXES_SQL \
	"CREATE INDEX chunks_agg ON chunks(import_id, state, users, summary_inserted, " \
	"summary_updated, summary_failed, assumed, submitted_at, chunk_no, job_id);\n" \
	"CREATE INDEX chunks_totals ON chunks(state, users, summary_inserted, summary_updated, " \
	"summary_failed, assumed);\n"
