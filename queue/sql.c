/* sql: prepare/bind/step/finalize in one call, one SQLite→errno mapping. */
#include "queue/sql.h"

#include <errno.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include "daemon/log.h"

int sql_err(int rc)
{
	if (rc == SQLITE_CONSTRAINT)
		return -EEXIST;
	if (rc == SQLITE_NOMEM)
		return -ENOMEM;
	if (rc == SQLITE_BUSY || rc == SQLITE_LOCKED)
		return -EBUSY;
	return -EIO;
}

int sql_prepare(sqlite3 *db, const char *sql, sqlite3_stmt **ret)
{
	int rc = sqlite3_prepare_v2(db, sql, -1, ret, NULL);
	if (rc != SQLITE_OK) {
		log_error("queue", "prepare failed: %s (%s)", sqlite3_errmsg(db), sql);
		return sql_err(rc);
	}
	return 0;
}

void sql_bind_text_or_null(sqlite3_stmt *st, int i, const char *s)
{
	if (s)
		sqlite3_bind_text(st, i, s, -1, SQLITE_STATIC);
	else
		sqlite3_bind_null(st, i);
}

int sql_exec(sqlite3 *db, const char *sql, const char *fmt, ...)
{
	sqlite3_stmt *st = NULL;
	int r = sql_prepare(db, sql, &st);
	if (r < 0)
		return r;
	va_list ap;
	va_start(ap, fmt);
	for (int i = 1; fmt[i - 1]; i++) {
		switch (fmt[i - 1]) {
		case 't':
			sql_bind_text_or_null(st, i, va_arg(ap, const char *));
			break;
		case 'i':
			sqlite3_bind_int64(st, i, va_arg(ap, int64_t));
			break;
		case 'b': {
			const void *p = va_arg(ap, const void *);
			int n = va_arg(ap, int);
			sqlite3_bind_blob(st, i, p, n, SQLITE_STATIC);
			break;
		}
		default:
			r = -EINVAL;
			break;
		}
		if (r < 0)
			break;
	}
	va_end(ap);
	if (r == 0) {
		int rc = sqlite3_step(st);
		r = rc == SQLITE_DONE ? 0 : sql_err(rc);
	}
	sqlite3_finalize(st);
	return r;
}
