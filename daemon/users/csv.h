/*
 * csv — CSV users files: rows split by RFC 4180, the header row read as a
 * tree of import properties, and each row converted to the minified JSON
 * user that JSON files give (so validation, duplicates, chunks and
 * users_extract() work on CSV unchanged).
 *
 * Rows (RFC 4180): fields separated by ',', rows ended by CRLF or LF (or the
 * end of the file). A field that starts with '"' is quoted: it may hold
 * commas, line breaks and doubled quotes ("" is one "), and must be followed
 * by ',' or the end of the row. A quote inside an unquoted field is kept as
 * it is. Text is UTF-8 (checked); a NUL byte is malformed. A row whose
 * fields are all empty (a blank line, ",,,") is no user and is skipped (it
 * takes no index). A row with another number of fields than the header is
 * a malformed file (the position of the first extra field, or of the row's
 * end), not a per-user problem: its values cannot be told apart.
 * A row is at most USERS_ELEMENT_MAX bytes and CSV_COLUMNS_MAX fields.
 *
 * Header row: each field names an import property, spaces around it
 * trimmed; dots build nested objects (`user_metadata.plan`,
 * `custom_password_hash.hash.value`). A name may not be empty, have an
 * empty segment, repeat, or be both a value and an object
 * (`user_metadata` with `user_metadata.plan`). A header none of whose
 * first segments names a user property (case and '_', '-', ' ' folded) is
 * not a users file at all. A name the schema does not know is kept: its
 * cells become that property, and the validator reports UNKNOWN_PROPERTY
 * with its "did you mean" hint for every user that has a value there, just
 * as for a JSON user.
 *
 * Cells: an empty cell leaves the property out. Boolean properties take
 * `true` / `false` (any case), integer properties (keylen, cost, ...) an
 * optional '-' and at most 18 digits; a column naming a whole object or
 * array of the schema (`mfa_factors`, `app_metadata`,
 * `custom_password_hash`, ...) takes a JSON value; a column inside metadata
 * (`app_metadata.roles`) takes a JSON array or object when the cell is one
 * (`["admin","ops"]`), else the text. Anything else, and any cell that is
 * not what its property takes, is a JSON string, so the validator reports
 * the type problem per user as for JSON files.
 */
#pragma once

#include "daemon/users/scan.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define CSV_COLUMNS_MAX 1024u /* fields in a row */
#define CSV_NAME_MAX    512u  /* bytes of one header name */

struct csv;

/* What splitting one row found. Positions are bytes from the row's start. */
struct csv_split {
	size_t end;         /* DONE: bytes of the row, line break included */
	size_t content_end; /* DONE: where the line break (or the file) starts */
	uint32_t newlines;  /* DONE: newlines in the row, line break included */
	size_t last_nl;     /* DONE: position just after the last newline */
	size_t err;         /* ERROR: position */
	const char *why;    /* ERROR: what is wrong, static string */
	int error;          /* ERROR: -EBADMSG, or -ENOMEM */
};

int csv_new(struct csv **ret);
void csv_free(struct csv *c);

/*
 * Splits the row at buf[0] into fields (kept in c until the next call).
 * `eof`: no more bytes will come. DONE, MORE (read more and call again from
 * the row's start; a row over USERS_ELEMENT_MAX bytes stays MORE) or ERROR.
 */
enum scan_result csv_split_row(struct csv *c, const char *buf, size_t len, int eof,
                               struct csv_split *s);

/* Fields of the last row split, and whether they are all empty. */
size_t csv_fields(const struct csv *c);
bool csv_blank(const struct csv *c);

/*
 * Reads the last row split as the header. 0; -EBADMSG a bad header
 * (*ret_pos: the row position of the offending field, msg filled);
 * -ENOENT no field names a user property (not a users file; msg says why
 * when it can tell, e.g. ';' separators, else is empty); -ENOMEM.
 */
int csv_header(struct csv *c, size_t *ret_pos, char *msg, size_t msg_size);

/*
 * Converts the last row split into the minified JSON user (*ret_json,
 * NUL-terminated, valid until the next call). 0; -EBADMSG the row has
 * another number of fields than the header (*ret_pos and msg set); -E2BIG
 * the user is over USERS_ELEMENT_MAX bytes as JSON; -ENOMEM.
 */
int csv_convert(struct csv *c, const char **ret_json, size_t *ret_len, size_t *ret_pos,
                char *msg, size_t msg_size);
