/* A whole export file: read, convert, filter, write the JSON array. */
#include "daemon/convert/convert.h"
#include "daemon/convert/lines.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define PROGRESS_EVERY 4096u
#define CSV_CELLS_MAX  (CONVERT_FIELDS_MAX * 2u)

const char *convert_format_name(enum convert_format f)
{
	return f == CONVERT_FORMAT_NDJSON ? "ndjson" : f == CONVERT_FORMAT_CSV ? "csv" : "auto";
}

struct csv_cell {
	char *s;
	size_t len;
	bool quoted;
};

/* Splits one CSV record in place; quoted cells are unescaped ("" → ").
 * -EBADMSG on a stray quote or too many cells. */
static int csv_split(char *rec, size_t len, struct csv_cell *cells, size_t max, size_t *ret_n)
{
	size_t n = 0, i = 0;
	for (;;) {
		if (n == max)
			return -EBADMSG;
		struct csv_cell *c = &cells[n++];
		c->quoted = false;
		if (i < len && rec[i] == '"') {
			c->quoted = true;
			char *w = rec + i;
			c->s = w;
			i++;
			for (;;) {
				if (i >= len)
					return -EBADMSG;
				if (rec[i] == '"') {
					if (i + 1 < len && rec[i + 1] == '"') {
						*w++ = '"';
						i += 2;
						continue;
					}
					i++;
					break;
				}
				*w++ = rec[i++];
			}
			c->len = (size_t)(w - c->s);
			if (i < len && rec[i] != ',')
				return -EBADMSG;
		} else {
			c->s = rec + i;
			while (i < len && rec[i] != ',') {
				if (rec[i] == '"')
					return -EBADMSG;
				i++;
			}
			c->len = (size_t)(rec + i - c->s);
		}
		if (i >= len)
			break;
		i++; /* the comma */
	}
	for (size_t k = 0; k < n; k++)
		cells[k].s[cells[k].len] = '\0';
	*ret_n = n;
	return 0;
}

struct run {
	const struct convert_params *p;
	const struct convert_sink *sink;
	void *ctx;
	struct convert_summary sum;
	FILE *out;
	struct convert_jq *jq;
	struct convert_hashes *hashes;
	char header[CONVERT_FIELDS_MAX * 2u][CONVERT_NAME_MAX];
	size_t ncols;
	char *err;
	size_t errsize;
};

static int write_element(void *arg, const char *json, size_t len)
{
	struct run *r = arg;
	const char *sep = r->sum.users_out ? ",\n" : "[\n";
	if (fputs(sep, r->out) < 0 || fwrite(json, 1, len, r->out) != len)
		return -EIO;
	r->sum.users_out++;
	r->sum.bytes_out += strlen(sep) + len;
	return 0;
}

static int report(struct run *r, uint64_t index, uint64_t line, enum convert_user_result res,
		  const struct convert_notes *notes)
{
	if (r->sink && r->sink->on_user && r->sink->on_user(r->ctx, index, line, res, notes))
		return -ECANCELED;
	return 0;
}

static int one_user(struct run *r, json_object *in, uint64_t index, uint64_t line)
{
	struct convert_notes notes;
	json_object *user = NULL;
	int o = convert_user(in, r->p->fields, r->hashes, &user, &notes);
	if (o < 0)
		return o;
	if (o == CONVERT_DROPPED) {
		r->sum.dropped++;
		return report(r, index, line, CONVERT_USER_DROPPED, &notes);
	}
	if (o == CONVERT_CHANGED)
		r->sum.changed++;
	if (notes.hash_added)
		r->sum.hashes_added++;
	const char *text = json_object_to_json_string_ext(user,
		JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE);
	size_t tlen = strlen(text);
	int rc = 0;
	enum convert_user_result res = CONVERT_USER_WRITTEN;
	if (r->jq) {
		unsigned outputs = 0;
		bool changed = false;
		char msg[CONVERT_NOTE_MAX - 32];
		rc = convert_jq_apply(r->jq, text, tlen, write_element, r, &outputs, &changed, msg,
				      sizeof(msg));
		if (rc == -EINVAL) {
			r->sum.filter_errors++;
			r->sum.filter_dropped++;
			if (notes.n == CONVERT_NOTES_MAX)
				notes.n--;
			snprintf(notes.note[notes.n++], CONVERT_NOTE_MAX, "filter: %s", msg);
			notes.total++;
			res = CONVERT_USER_FILTER_ERROR;
			rc = 0;
		} else if (rc == 0 && outputs == 0) {
			r->sum.filter_dropped++;
			res = CONVERT_USER_FILTERED_OUT;
		} else if (rc == 0) {
			r->sum.filter_kept++;
			if (changed)
				r->sum.filter_changed++;
		}
	} else {
		rc = write_element(r, text, tlen);
	}
	json_object_put(user);
	if (rc == 0 && (res != CONVERT_USER_WRITTEN || o == CONVERT_CHANGED))
		rc = report(r, index, line, res, &notes);
	return rc;
}

static int malformed(struct run *r, uint64_t index, uint64_t line, const char *why)
{
	struct convert_notes notes;
	memset(&notes, 0, sizeof(notes));
	snprintf(notes.note[0], CONVERT_NOTE_MAX, "dropped: %s", why);
	notes.n = notes.total = 1;
	r->sum.dropped++;
	r->sum.malformed++;
	return report(r, index, line, CONVERT_USER_MALFORMED, &notes);
}

static int csv_header(struct run *r, char *rec, size_t len)
{
	struct csv_cell cells[CSV_CELLS_MAX];
	size_t n;
	if (len && (unsigned char)rec[0] == 0xef && len >= 3 && memcmp(rec, "\xef\xbb\xbf", 3) == 0) {
		rec += 3;
		len -= 3;
	}
	if (csv_split(rec, len, cells, CSV_CELLS_MAX, &n) < 0) {
		snprintf(r->err, r->errsize, "the CSV header row is not valid CSV");
		return -EBADMSG;
	}
	for (size_t i = 0; i < n; i++) {
		if (cells[i].len == 0 || cells[i].len >= CONVERT_NAME_MAX) {
			snprintf(r->err, r->errsize, "CSV header column %zu is empty or too long", i + 1);
			return -EBADMSG;
		}
		memcpy(r->header[i], cells[i].s, cells[i].len + 1);
	}
	r->ncols = n;
	return 0;
}

static int csv_record(struct run *r, char *rec, size_t len, uint64_t index, uint64_t line)
{
	struct csv_cell cells[CSV_CELLS_MAX];
	size_t n;
	if (csv_split(rec, len, cells, CSV_CELLS_MAX, &n) < 0)
		return malformed(r, index, line, "not a valid CSV record");
	if (n != r->ncols)
		return malformed(r, index, line, "the record has a different number of cells than the header");
	json_object *o = json_object_new_object();
	if (!o)
		return -ENOMEM;
	for (size_t i = 0; i < n; i++) {
		const char *s = cells[i].s;
		size_t l = cells[i].len;
		if (cells[i].quoted && l && s[0] == '\'') {
			s++;
			l--;
		}
		if (l == 0 && !cells[i].quoted)
			continue;
		json_object_object_add(o, r->header[i], json_object_new_string_len(s, (int)l));
	}
	int rc = one_user(r, o, index, line);
	json_object_put(o);
	return rc;
}

static int ndjson_record(struct run *r, const char *rec, size_t len, uint64_t index, uint64_t line)
{
	json_tokener *tok = json_tokener_new_ex(64);
	if (!tok)
		return -ENOMEM;
	json_object *o = json_tokener_parse_ex(tok, rec, (int)len);
	enum json_tokener_error e = json_tokener_get_error(tok);
	size_t end = json_tokener_get_parse_end(tok);
	bool trailing = e == json_tokener_success && end < len &&
			strspn(rec + end, " \t\r") != len - end;
	json_tokener_free(tok);
	int rc;
	if (!o || e != json_tokener_success || trailing || !json_object_is_type(o, json_type_object))
		rc = malformed(r, index, line, "the line is not a JSON object");
	else
		rc = one_user(r, o, index, line);
	json_object_put(o);
	return rc;
}

static int sync_dir_of(const char *path)
{
	char buf[4096];
	snprintf(buf, sizeof(buf), "%s", path);
	int fd = open(dirname(buf), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	int r = fsync(fd) < 0 ? -errno : 0;
	close(fd);
	return r;
}

int convert_run(const struct convert_params *p, const struct convert_sink *sink, void *ctx,
		struct convert_summary *ret_summary, char *err, size_t errsize)
{
	struct run *r = calloc(1, sizeof(*r));
	struct cv_lines l = { 0 };
	char tmp[4096];
	int rc;
	bool lines_open = false;
	if (!r)
		return -ENOMEM;
	r->p = p;
	r->sink = sink;
	r->ctx = ctx;
	r->hashes = p->hashes;
	r->err = err;
	r->errsize = errsize;
	r->sum.format = p->format;
	if (p->filter && p->filter[0]) {
		rc = convert_jq_new(p->filter, &r->jq, err, errsize);
		if (rc < 0)
			goto out;
	}
	rc = cv_lines_open(&l, p->export_path);
	if (rc < 0) {
		snprintf(err, errsize, "cannot open the export file: %s", strerror(-rc));
		goto out;
	}
	lines_open = true;
	if ((size_t)snprintf(tmp, sizeof(tmp), "%s.tmp", p->out_path) >= sizeof(tmp)) {
		rc = -ENAMETOOLONG;
		goto out;
	}
	r->out = fopen(tmp, "we");
	if (!r->out) {
		rc = -errno;
		snprintf(err, errsize, "cannot create %s: %s", tmp, strerror(-rc));
		goto out;
	}
	char *rec;
	size_t len;
	uint64_t line, index = 0;
	bool first = true;
	for (;;) {
		bool csv = r->sum.format == CONVERT_FORMAT_CSV;
		rc = cv_lines_next(&l, csv, &rec, &len, &line);
		if (rc == -EBADMSG) {
			snprintf(err, errsize, "line %llu is longer than %u bytes",
				 (unsigned long long)line, CONVERT_LINE_MAX);
			goto out;
		}
		if (rc < 0) {
			snprintf(err, errsize, "cannot read the export file: %s", strerror(-rc));
			goto out;
		}
		if (rc == 0)
			break;
		if (strspn(rec, " \t") == len)
			continue;
		if (first) {
			first = false;
			if (r->sum.format == CONVERT_FORMAT_AUTO) {
				const char *s = rec + strspn(rec, " \t");
				if (strncmp(s, "\xef\xbb\xbf", 3) == 0)
					s += 3;
				r->sum.format = *s == '{' ? CONVERT_FORMAT_NDJSON : CONVERT_FORMAT_CSV;
			}
			if (r->sum.format == CONVERT_FORMAT_CSV) {
				rc = csv_header(r, rec, len);
				if (rc < 0)
					goto out;
				continue;
			}
		}
		if (p->max_users && r->sum.users_in >= p->max_users) {
			snprintf(err, errsize, "more than %llu users", (unsigned long long)p->max_users);
			rc = -E2BIG;
			goto out;
		}
		r->sum.users_in++;
		if (r->sum.format == CONVERT_FORMAT_CSV)
			rc = csv_record(r, rec, len, index, line);
		else
			rc = ndjson_record(r, rec, len, index, line);
		index++;
		if (rc < 0) {
			if (rc == -ECANCELED)
				snprintf(err, errsize, "cancelled");
			else if (rc == -EIO)
				snprintf(err, errsize, "cannot write %s", tmp);
			else
				snprintf(err, errsize, "conversion failed: %s", strerror(-rc));
			goto out;
		}
		if (r->sum.users_in % PROGRESS_EVERY == 0 && sink && sink->on_progress &&
		    sink->on_progress(ctx, r->sum.users_in)) {
			snprintf(err, errsize, "cancelled");
			rc = -ECANCELED;
			goto out;
		}
	}
	if (sink && sink->on_progress && sink->on_progress(ctx, r->sum.users_in)) {
		snprintf(err, errsize, "cancelled");
		rc = -ECANCELED;
		goto out;
	}
	const char *end = r->sum.users_out ? "\n]\n" : "[]\n";
	if (fputs(end, r->out) < 0 || fflush(r->out) != 0) {
		rc = -EIO;
		snprintf(err, errsize, "cannot write %s", tmp);
		goto out;
	}
	r->sum.bytes_out += strlen(end);
	if (p->sync && fsync(fileno(r->out)) < 0) {
		rc = -errno;
		snprintf(err, errsize, "cannot fsync %s: %s", tmp, strerror(-rc));
		goto out;
	}
	if (fclose(r->out) != 0) {
		r->out = NULL;
		rc = -EIO;
		goto out;
	}
	r->out = NULL;
	if (rename(tmp, p->out_path) < 0) {
		rc = -errno;
		snprintf(err, errsize, "cannot rename %s: %s", tmp, strerror(-rc));
		goto out;
	}
	if (p->sync)
		sync_dir_of(p->out_path);
	rc = 0;
out:
	if (r->out) {
		fclose(r->out);
		unlink(tmp);
	}
	if (lines_open)
		cv_lines_close(&l);
	convert_jq_free(r->jq);
	if (ret_summary)
		*ret_summary = r->sum;
	free(r);
	return rc;
}

int convert_count_users(const char *path, enum convert_format format, uint64_t *ret)
{
	struct cv_lines l;
	int rc = cv_lines_open(&l, path);
	if (rc < 0)
		return rc;
	uint64_t n = 0, line;
	char *rec;
	size_t len;
	bool first = true, csv = format == CONVERT_FORMAT_CSV;
	while ((rc = cv_lines_next(&l, csv, &rec, &len, &line)) > 0) {
		if (strspn(rec, " \t") == len)
			continue;
		if (first) {
			first = false;
			if (format == CONVERT_FORMAT_AUTO)
				csv = rec[strspn(rec, " \t")] != '{';
			if (csv)
				continue;
		}
		n++;
	}
	cv_lines_close(&l);
	if (rc < 0)
		return rc;
	*ret = n;
	return 0;
}
