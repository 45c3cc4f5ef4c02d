/* The users library's entry points: see users.h. */
#include "daemon/users/users.h"
#include "daemon/users/dedup.h"
#include "daemon/users/ujv.h"
#include "daemon/users/reader.h"
#include "daemon/users/split.h"
#include "daemon/users/validate.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

void users_options_init(struct users_options *opts)
{
	memset(opts, 0, sizeof(*opts));
}

struct process {
	const struct users_options *opts;
	const struct users_sink *sink;
	void *ctx;
	struct users_reader *reader;
	struct ujv_doc doc;
	char *rewrite;      /* an element after a policy rewrite */
	struct dedup *dedup;
	struct split *split;
	struct validate *v;
	struct users_summary sum;
	bool stop_chunks;   /* reject policy after an invalid user */
	uint64_t reported_invalid;
};

static int chunk_cb(void *ctx, uint32_t chunk_no, const char *path, uint32_t n,
                    const uint32_t *indices, size_t bytes)
{
	struct process *p = ctx;
	if (!p->sink || !p->sink->on_chunk)
		return 0;
	return p->sink->on_chunk(p->ctx, chunk_no, path, n, indices, bytes);
}

static void check_duplicates(struct process *p, struct validate *v, int *err)
{
	static const struct {
		enum dedup_kind kind;
		const char *path;
		const char *what;
	} keys[] = {
		{ DEDUP_EMAIL, "/email", "email" },
		{ DEDUP_USER_ID, "/user_id", "user_id" },
		{ DEDUP_USERNAME, "/username", "username" },
	};
	for (size_t k = 0; k < 3; k++) {
		const char *val = k == 0 ? v->email : k == 1 ? v->user_id : v->username;
		bool seen = false;
		if (!val)
			continue;
		int r = dedup_add(p->dedup, dedup_hash(keys[k].kind, val), &seen);
		if (r < 0) {
			*err = r;
			return;
		}
		if (seen)
			validate_add(v, false, keys[k].path, "DUPLICATED_USER",
			             "each email, user_id and username may appear once per file",
			             "A user with this %s was already provided", keys[k].what);
	}
}

/* An edit of the minified element: bytes [from, to) become `with`. */
struct edit {
	size_t from, to;
	const char *with;
	size_t with_len;
};

/* JSON string for `s` with only the escapes JSON requires. Returns length. */
static size_t encode_string(const char *s, char *out)
{
	static const char hex[] = "0123456789abcdef";
	size_t o = 0;
	out[o++] = '"';
	for (const unsigned char *c = (const unsigned char *)s; *c; c++) {
		if (*c == '"' || *c == '\\') {
			out[o++] = '\\';
			out[o++] = (char)*c;
		} else if (*c < 0x20) {
			memcpy(out + o, "\\u00", 4);
			o += 4;
			out[o++] = hex[*c >> 4];
			out[o++] = hex[*c & 15];
		} else
			out[o++] = (char)*c;
	}
	out[o++] = '"';
	return o;
}

/* The element with the policies applied: a member removed (unsupported hash
 * stripped) and/or user_id without "auth0|". Everything else stays byte for
 * byte. Returns the new length (into p->rewrite). */
static size_t rewrite_element(struct process *p, const struct validate *v, const char *src,
                              size_t len)
{
	struct edit ed[2];
	size_t n = 0, o = 0, at = 0;
	char enc[8 * 256 + 8];

	if (v->strip_member) {
		const struct ujv *m = v->strip_member;
		const struct ujv *root = ujv_root(&p->doc);
		bool first = m->mstart == root->start + 1;
		if (first && m->next)
			ed[n++] = (struct edit){ m->mstart, (size_t)m->end + 1, "", 0 };
		else if (!first)
			ed[n++] = (struct edit){ (size_t)m->mstart - 1, m->end, "", 0 };
		else
			ed[n++] = (struct edit){ m->mstart, m->end, "", 0 };
	}
	if (v->strip_prefix && v->user_id_node) {
		const struct ujv *u = v->user_id_node;
		if (u->end - u->start > 7 && memcmp(src + u->start + 1, "auth0|", 6) == 0)
			ed[n++] = (struct edit){ (size_t)u->start + 1, (size_t)u->start + 7, "", 0 };
		else {
			/* Escapes in the prefix: write the stripped value afresh
			 * (user_id is at most 255 characters: bounded). */
			const char *val = ujv_str(&p->doc, u) + 6;
			if (strlen(val) * 6 + 2 < sizeof(enc))
				ed[n++] = (struct edit){ u->start, u->end, enc, encode_string(val, enc) };
		}
	}
	if (n == 2 && ed[1].from < ed[0].from) {
		struct edit t = ed[0];
		ed[0] = ed[1];
		ed[1] = t;
	}
	for (size_t k = 0; k < n; k++) {
		memcpy(p->rewrite + o, src + at, ed[k].from - at);
		o += ed[k].from - at;
		memcpy(p->rewrite + o, ed[k].with, ed[k].with_len);
		o += ed[k].with_len;
		at = ed[k].to;
	}
	memcpy(p->rewrite + o, src + at, len - at);
	o += len - at;
	p->rewrite[o] = '\0';
	return o;
}

/* One user. 0, or < 0 to stop (failure to fill by the caller). */
static int process_user(struct process *p, const struct users_element *e, struct users_failure *f)
{
	struct validate *v = p->v;
	const char *bytes = e->min;
	size_t len = e->min_len;
	bool parsed;
	int err = 0;

	err = ujv_parse(&p->doc, e->min, e->min_len);
	if (err == -ENOMEM)
		goto out;
	parsed = err == 0;
	err = 0;
	if (!parsed) {
		/* Never for scanner output; kept as a per-user error. */
		validate_reset(v, p->opts);
		validate_add(v, false, "", "INVALID_TYPE", NULL, "The user could not be parsed");
	} else
		validate_user(v, &p->doc, p->opts);

	check_duplicates(p, v, &err);
	if (err < 0)
		goto out;

	/* The bytes Auth0 gets: spliced only when a policy changed the user. */
	if (parsed && (v->strip_member || v->strip_prefix)) {
		len = rewrite_element(p, v, e->min, e->min_len);
		bytes = p->rewrite;
	}
	if (len > USERS_PROFILE_MAX)
		validate_add(v, false, "", "PROFILE_SIZE_EXCEEDED", "shorten the metadata or other long fields",
		             "The user profile is %zu bytes (minified UTF-8); at most %u", len, USERS_PROFILE_MAX);
	validate_finish(v);
	if (users_reader_format(p->reader) == USERS_FORMAT_CSV)
		for (size_t i = 0; i < v->n; i++)
			v->problems[i].line = e->line;

	bool invalid = v->n_errors > 0 || v->dropped > 0;
	p->sum.users_total++;
	p->sum.errors_total += v->n_errors;
	p->sum.warnings_total += v->n_warnings;
	if (invalid) {
		p->sum.users_invalid++;
		if (p->opts->on_invalid == USERS_ON_INVALID_REJECT)
			p->stop_chunks = true;
	} else {
		p->sum.users_valid++;
		if (v->n_warnings)
			p->sum.users_warned++;
	}

	if (v->n > 0 && p->sink && p->sink->on_problems &&
	    (!invalid || !p->opts->max_errors || p->reported_invalid < p->opts->max_errors)) {
		if (invalid)
			p->reported_invalid++;
		/* email/user_id as in the file (before any policy rewrite). */
		const char *email = NULL, *uid = NULL;
		if (parsed) {
			const struct ujv *root = ujv_root(&p->doc);
			const struct ujv *x = ujv_get(&p->doc, root, "email");
			if (x && x->type == UJV_STRING)
				email = ujv_str(&p->doc, x);
			x = ujv_get(&p->doc, root, "user_id");
			if (x && x->type == UJV_STRING)
				uid = ujv_str(&p->doc, x);
		}
		if (p->sink->on_problems(p->ctx, e->index, e->line, email, uid, v->problems, v->n, !invalid)) {
			err = -ECANCELED;
			goto out;
		}
	}

	if (!invalid && p->split && !p->stop_chunks) {
		err = split_add(p->split, bytes, len, e->index);
		if (err == -ECANCELED)
			goto out;
		if (err < 0) {
			users_failure_set(f, USERS_FAILURE_IO, err, e->offset, e->line, 0,
			                  "writing a chunk file: %s", strerror(-err));
			goto out;
		}
	}
out:
	return err;
}

static void summary_io(struct process *p)
{
	p->sum.bytes_read = users_reader_bytes_in(p->reader);
	p->sum.bytes_text = users_reader_bytes_text(p->reader);
	p->sum.format = users_reader_format(p->reader);
	p->sum.gzip = users_reader_gzip(p->reader);
}

int users_process(const char *path, const struct users_options *opts,
                  const char *chunk_dir, const struct users_sink *sink,
                  void *ctx, struct users_summary *ret_summary,
                  struct users_failure *ret_failure)
{
	struct process p = { .opts = opts, .sink = sink, .ctx = ctx };
	struct users_failure f = { 0 };
	struct users_element e;
	size_t budget = opts->chunk_bytes ? opts->chunk_bytes : users_chunk_budget_default();
	int err;

	if (budget < USERS_CHUNK_BUDGET_MIN || budget > users_chunk_budget_default()) {
		users_failure_set(&f, USERS_FAILURE_IO, -EINVAL, 0, 0, 0,
		                  "chunk budget %zu out of range [%u, %zu]", budget,
		                  USERS_CHUNK_BUDGET_MIN, users_chunk_budget_default());
		err = -EINVAL;
		goto out;
	}
	err = users_reader_open(path, &p.reader);
	if (err < 0) {
		users_failure_set(&f, USERS_FAILURE_IO, err, 0, 0, 0, "cannot read %s: %s",
		                  path, strerror(-err));
		goto out;
	}
	ujv_doc_init(&p.doc);
	p.v = malloc(sizeof(*p.v));
	p.rewrite = malloc(USERS_ELEMENT_MAX + 1);
	err = dedup_new(&p.dedup);
	if (!err && (!p.rewrite || !p.v))
		err = -ENOMEM;
	if (!err && chunk_dir)
		err = split_new(chunk_dir, budget, chunk_cb, &p, &p.split);
	if (err < 0) {
		users_failure_set(&f, USERS_FAILURE_IO, err, 0, 0, 0, "%s", strerror(-err));
		goto out;
	}

	for (;;) {
		int r = users_reader_next(p.reader, &e);
		if (r == 0)
			break;
		if (r < 0) {
			f = *users_reader_failure(p.reader);
			err = r;
			goto out;
		}
		if (opts->max_users && e.index >= opts->max_users) {
			users_failure_set(&f, USERS_FAILURE_TOO_MANY_USERS, -E2BIG, e.offset, e.line, 0,
			                  "the file has more than %u users", opts->max_users);
			err = -E2BIG;
			goto out;
		}
		err = process_user(&p, &e, &f);
		if (err == -ECANCELED) {
			users_failure_set(&f, USERS_FAILURE_CANCELLED, err, e.offset, e.line, 0, "cancelled");
			goto out;
		}
		if (err < 0) {
			if (f.kind == USERS_FAILURE_NONE)
				users_failure_set(&f, USERS_FAILURE_IO, err, e.offset, e.line, 0, "%s",
				                  strerror(-err));
			goto out;
		}
		if (sink && sink->on_progress && p.sum.users_total % USERS_PROGRESS_EVERY == 0) {
			summary_io(&p);
			if (sink->on_progress(ctx, p.sum.bytes_read, users_reader_size(p.reader),
			                      p.sum.users_total)) {
				err = -ECANCELED;
				users_failure_set(&f, USERS_FAILURE_CANCELLED, err, e.offset, e.line, 0, "cancelled");
				goto out;
			}
		}
	}
	if (p.split && !p.stop_chunks) {
		err = split_finish(p.split);
		if (err == -ECANCELED) {
			users_failure_set(&f, USERS_FAILURE_CANCELLED, err, 0, 0, 0, "cancelled");
			goto out;
		}
		if (err < 0) {
			users_failure_set(&f, USERS_FAILURE_IO, err, 0, 0, 0, "writing a chunk file: %s",
			                  strerror(-err));
			goto out;
		}
	}
	summary_io(&p);
	if (sink && sink->on_progress &&
	    sink->on_progress(ctx, p.sum.bytes_read, users_reader_size(p.reader), p.sum.users_total)) {
		err = -ECANCELED;
		users_failure_set(&f, USERS_FAILURE_CANCELLED, err, 0, 0, 0, "cancelled");
		goto out;
	}
	err = 0;
out:
	if (p.reader)
		summary_io(&p);
	if (p.split) {
		p.sum.chunks = split_chunks(p.split);
		p.sum.chunk_bytes = split_bytes(p.split);
	}
	if (ret_summary)
		*ret_summary = p.sum;
	if (err < 0 && ret_failure)
		*ret_failure = f;
	split_free(p.split);
	dedup_free(p.dedup);
	free(p.v);
	free(p.rewrite);
	ujv_doc_done(&p.doc);
	users_reader_free(p.reader);
	return err;
}

int users_chunks_remove(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *de;
	int err = 0;

	if (!d)
		return -errno;
	while ((de = readdir(d))) {
		const char *n = de->d_name;
		size_t l = strlen(n);
		bool chunk = strncmp(n, "chunk-", 6) == 0 && l > 11 && strcmp(n + l - 5, ".json") == 0;
		bool tmp = strncmp(n, ".chunk-", 7) == 0 && l > 4 && strcmp(n + l - 4, ".tmp") == 0;
		if (!chunk && !tmp)
			continue;
		if (unlinkat(dirfd(d), n, 0) < 0 && errno != ENOENT)
			err = -errno;
	}
	closedir(d);
	return err;
}

int users_extract(const char *path, const uint32_t *sorted_indices, size_t n,
                  users_write_fn write_cb, void *ctx)
{
	struct users_reader *r = NULL;
	struct users_element e;
	size_t k = 0, written = 0;
	int err;

	err = write_cb(ctx, "[", 1);
	if (err < 0)
		return err;
	if (n > 0) {
		err = users_reader_open(path, &r);
		if (err < 0)
			return err;
		while (k < n) {
			int rc = users_reader_next(r, &e);
			if (rc == 0)
				break;
			if (rc < 0) {
				err = rc;
				goto out;
			}
			while (k < n && sorted_indices[k] < e.index)
				k++; /* not ascending: skip */
			if (k < n && sorted_indices[k] == e.index) {
				err = write_cb(ctx, written == 0 ? "\n" : ",\n", written == 0 ? 1 : 2);
				if (err >= 0)
					err = write_cb(ctx, e.min, e.min_len);
				if (err < 0)
					goto out;
				k++;
				written++;
			}
		}
	}
	err = write_cb(ctx, written ? "\n]\n" : "]\n", written ? 3 : 2);
out:
	users_reader_free(r);
	return err < 0 ? err : 0;
}

/* Reads a whole chunk file (bounded by USERS_REQUEST_MAX). */
static int read_chunk(const char *path, char **ret, size_t *ret_len)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	struct stat st;
	char *buf = NULL;
	size_t len = 0;
	int err = 0;

	if (fd < 0)
		return -errno;
	if (fstat(fd, &st) < 0) {
		err = -errno;
		goto out;
	}
	if (st.st_size > (off_t)USERS_REQUEST_MAX) {
		err = -EFBIG;
		goto out;
	}
	buf = malloc((size_t)st.st_size + 1);
	if (!buf) {
		err = -ENOMEM;
		goto out;
	}
	while (len < (size_t)st.st_size) {
		ssize_t n = read(fd, buf + len, (size_t)st.st_size - len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			err = -errno;
			goto out;
		}
		if (n == 0)
			break;
		len += (size_t)n;
	}
	*ret = buf;
	*ret_len = len;
	buf = NULL;
out:
	free(buf);
	close(fd);
	return err;
}

int users_chunk_foreach(const char *chunk_path, users_element_fn cb, void *ctx)
{
	char *data = NULL;
	size_t len = 0;
	struct users_reader *r = NULL;
	struct users_element e;
	int err = read_chunk(chunk_path, &data, &len);

	if (err < 0)
		return err;
	err = users_reader_open_mem(data, len, &r);
	if (err < 0)
		goto out;
	for (;;) {
		int rc = users_reader_next(r, &e);
		if (rc == 0)
			break;
		if (rc < 0 || users_reader_format(r) != USERS_FORMAT_JSON_ARRAY) {
			err = -EBADMSG;
			goto out;
		}
		err = cb(ctx, e.index, e.min, e.min_len);
		if (err)
			goto out;
	}
	if (users_reader_format(r) != USERS_FORMAT_JSON_ARRAY)
		err = -EBADMSG;
out:
	users_reader_free(r);
	free(data);
	return err;
}

struct halves {
	char *buf[2];
	size_t len[2];
	uint32_t n[2];
	uint32_t total;
};

static int count_cb(void *ctx, uint32_t pos, const char *elem, size_t len)
{
	(void)pos; (void)elem; (void)len;
	((struct halves *)ctx)->total++;
	return 0;
}

static int half_cb(void *ctx, uint32_t pos, const char *elem, size_t len)
{
	struct halves *h = ctx;
	int k = pos < h->total / 2 ? 0 : 1;
	h->buf[k][h->len[k]++] = h->n[k] ? ',' : '[';
	memcpy(h->buf[k] + h->len[k], elem, len);
	h->len[k] += len;
	h->n[k]++;
	return 0;
}

int users_chunk_split(const char *chunk_path, const char *out_a,
                      const char *out_b, uint32_t *ret_n_a, uint32_t *ret_n_b)
{
	struct halves h = { 0 };
	struct stat st;
	int err;

	if (stat(chunk_path, &st) < 0)
		return -errno;
	err = users_chunk_foreach(chunk_path, count_cb, &h);
	if (err < 0)
		return err;
	if (h.total < 2)
		return -EINVAL;
	for (int k = 0; k < 2; k++) {
		h.buf[k] = malloc((size_t)st.st_size + 2);
		if (!h.buf[k]) {
			err = -ENOMEM;
			goto out;
		}
	}
	err = users_chunk_foreach(chunk_path, half_cb, &h);
	if (err < 0)
		goto out;
	for (int k = 0; k < 2; k++)
		h.buf[k][h.len[k]++] = ']';
	err = split_write_file(out_a, h.buf[0], h.len[0]);
	if (err >= 0)
		err = split_write_file(out_b, h.buf[1], h.len[1]);
	if (err < 0)
		goto out;
	{
		/* Both renames durable before the caller records the halves. */
		char d[PATH_MAX];
		snprintf(d, sizeof(d), "%s", out_a);
		char *slash = strrchr(d, '/');
		if (slash)
			*slash = '\0';
		err = split_sync_dir(slash ? (d[0] ? d : "/") : ".");
		if (err < 0)
			goto out;
	}
	*ret_n_a = h.n[0];
	*ret_n_b = h.n[1];
	err = 0;
out:
	free(h.buf[0]);
	free(h.buf[1]);
	return err;
}
