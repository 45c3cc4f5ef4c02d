/* sql: small SQLite helpers shared by the queue/ store modules (internal to
 * queue/, which is the only user of sqlite3.h).
 *
 * Errors map to negative errno: SQLITE_CONSTRAINT → -EEXIST, SQLITE_NOMEM →
 * -ENOMEM, SQLITE_BUSY/SQLITE_LOCKED → -EBUSY, anything else → -EIO. A failed
 * prepare is logged once with the SQL text (never with bound values). */
#ifndef QUEUE_SQL_H
#define QUEUE_SQL_H

#include <sqlite3.h>

/* Maps a SQLite result code to a negative errno as above. */
int sql_err(int rc);

/* sqlite3_prepare_v2 of the whole text; logs and maps a failure. */
int sql_prepare(sqlite3 *db, const char *sql, sqlite3_stmt **ret);

/* Binds s as text (SQLITE_STATIC), or NULL when s is NULL. */
void sql_bind_text_or_null(sqlite3_stmt *st, int i, const char *s);

/* Prepares sql, binds the variadic values to ?1, ?2, ... as fmt says, steps
 * once expecting SQLITE_DONE and finalizes. One fmt character per value:
 *   't'  const char *        text, SQL NULL when the pointer is NULL
 *   'i'  int64_t             integer (pass int64_t, not int)
 *   'b'  const void *, int   blob of that many bytes
 * Values are bound SQLITE_STATIC: they need only live through the call.
 * Returns 0 or a negative errno; sqlite3_changes(db) tells the rows hit. */
int sql_exec(sqlite3 *db, const char *sql, const char *fmt, ...);

#endif
