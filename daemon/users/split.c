/* Chunk files under a byte budget: see split.h. */
#include "daemon/users/split.h"
#include "daemon/users/users.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct split {
	char *dir;
	size_t budget;
	split_chunk_fn *on_chunk;
	void *ctx;
	char *buf;            /* "[" e1 "," e2 ... (no closing ']' yet) */
	size_t len;
	uint32_t *indices;
	uint32_t n, cap;
	uint32_t chunk_no;
	uint64_t bytes;
	/* The chunk written before, waiting for its fsync: done when the next
	 * one has been written (its writeback started meanwhile), so the disk
	 * works while the next chunk is validated. */
	int pending_fd;            /* -1: none */
	uint32_t pending_no, pending_n, pending_cap;
	uint32_t *pending_indices;
	size_t pending_len;
};

size_t users_multipart_overhead(void)
{
	/* The body of users.h, computed: each part is "--B\r\n" headers "\r\n"
	 * value "\r\n", then "--B--\r\n". */
	static const struct {
		const char *headers;
		size_t value_max;
	} parts[] = {
		{ "Content-Disposition: form-data; name=\"users\"; filename=\"users.json\"\r\n"
		  "Content-Type: application/json\r\n", 0 },
		{ "Content-Disposition: form-data; name=\"connection_id\"\r\n", 20 },
		{ "Content-Disposition: form-data; name=\"upsert\"\r\n", 5 },
		{ "Content-Disposition: form-data; name=\"external_id\"\r\n", USERS_MULTIPART_EXTERNAL_ID_MAX },
		{ "Content-Disposition: form-data; name=\"send_completion_email\"\r\n", 5 },
	};
	size_t total = 0;
	for (size_t i = 0; i < sizeof(parts) / sizeof(parts[0]); i++)
		total += 2 + USERS_MULTIPART_BOUNDARY_MAX + 2 + strlen(parts[i].headers) + 2 +
		         parts[i].value_max + 2;
	total += 2 + USERS_MULTIPART_BOUNDARY_MAX + 2 + 2;
	return total;
}

size_t users_chunk_budget_default(void)
{
	return USERS_REQUEST_MAX - USERS_MULTIPART_OVERHEAD;
}

int users_chunk_path(char *buf, size_t size, const char *dir, uint32_t chunk_no)
{
	int n = snprintf(buf, size, "%s/chunk-%06u.json", dir, chunk_no);
	if (n < 0 || (size_t)n >= size)
		return -ENAMETOOLONG;
	return 0;
}

static int write_all(int fd, const void *data, size_t len)
{
	const char *p = data;
	while (len) {
		ssize_t n = write(fd, p, len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

int split_write_file(const char *path, const void *data, size_t len)
{
	char tmp[PATH_MAX];
	char copy[PATH_MAX];
	int fd, err = 0;

	if (snprintf(copy, sizeof(copy), "%s", path) >= (int)sizeof(copy))
		return -ENAMETOOLONG;
	char *base = basename(copy);
	char dcopy[PATH_MAX];
	snprintf(dcopy, sizeof(dcopy), "%s", path);
	char *dir = dirname(dcopy);
	if (snprintf(tmp, sizeof(tmp), "%s/.%s.tmp", dir, base) >= (int)sizeof(tmp))
		return -ENAMETOOLONG;
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0)
		return -errno;
	err = write_all(fd, data, len);
	if (!err && fsync(fd) < 0)
		err = -errno;
	if (close(fd) < 0 && !err)
		err = -errno;
	if (!err && rename(tmp, path) < 0)
		err = -errno;
	if (err)
		unlink(tmp);
	return err;
}

int split_sync_dir(const char *dir)
{
	int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	int err = 0;
	if (fd < 0)
		return -errno;
	if (fsync(fd) < 0)
		err = -errno;
	close(fd);
	return err;
}

int split_new(const char *dir, size_t budget, split_chunk_fn *on_chunk, void *ctx,
              struct split **ret)
{
	struct split *s;
	if (budget < USERS_CHUNK_BUDGET_MIN)
		return -EINVAL;
	s = calloc(1, sizeof(*s));
	if (!s)
		return -ENOMEM;
	s->pending_fd = -1;
	s->dir = strdup(dir);
	s->buf = malloc(budget);
	s->cap = 1024;
	s->indices = malloc(s->cap * sizeof(uint32_t));
	if (!s->dir || !s->buf || !s->indices) {
		split_free(s);
		return -ENOMEM;
	}
	s->pending_fd = -1;
	s->budget = budget;
	s->on_chunk = on_chunk;
	s->ctx = ctx;
	*ret = s;
	return 0;
}

static int tmp_path(char *buf, size_t size, const char *dir, uint32_t chunk_no)
{
	int n = snprintf(buf, size, "%s/.chunk-%06u.json.tmp", dir, chunk_no);
	if (n < 0 || (size_t)n >= size)
		return -ENAMETOOLONG;
	return 0;
}

void split_free(struct split *s)
{
	if (!s)
		return;
	if (s->pending_fd >= 0) {
		char tmp[PATH_MAX];
		close(s->pending_fd);
		if (tmp_path(tmp, sizeof(tmp), s->dir, s->pending_no) == 0)
			unlink(tmp);
	}
	free(s->dir);
	free(s->buf);
	free(s->indices);
	free(s->pending_indices);
	free(s);
}

/* fsync, rename and announce the pending chunk. */
static int complete_pending(struct split *s)
{
	char tmp[PATH_MAX], path[PATH_MAX];
	int fd = s->pending_fd, err;

	if (fd < 0)
		return 0;
	s->pending_fd = -1;
	err = tmp_path(tmp, sizeof(tmp), s->dir, s->pending_no);
	if (err == 0)
		err = users_chunk_path(path, sizeof(path), s->dir, s->pending_no);
	if (err == 0 && fsync(fd) < 0)
		err = -errno;
	if (close(fd) < 0 && err == 0)
		err = -errno;
	if (err == 0 && rename(tmp, path) < 0)
		err = -errno;
	if (err < 0) {
		unlink(tmp);
		return err;
	}
	s->bytes += s->pending_len;
	if (s->on_chunk &&
	    s->on_chunk(s->ctx, s->pending_no, path, s->pending_n, s->pending_indices, s->pending_len))
		return -ECANCELED;
	return 0;
}

static int flush_chunk(struct split *s)
{
	char tmp[PATH_MAX];
	int fd, err;

	if (s->n == 0)
		return 0;
	s->buf[s->len++] = ']';
	err = tmp_path(tmp, sizeof(tmp), s->dir, s->chunk_no);
	if (err < 0)
		return err;
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0)
		return -errno;
	err = write_all(fd, s->buf, s->len);
	if (err < 0) {
		close(fd);
		unlink(tmp);
		return err;
	}
	/* Start the writeback now; the fsync comes after the next chunk. */
	(void)sync_file_range(fd, 0, 0, SYNC_FILE_RANGE_WRITE);
	err = complete_pending(s);
	if (err < 0) {
		close(fd);
		unlink(tmp);
		return err;
	}
	/* This chunk becomes the pending one: swap the index buffers. */
	uint32_t *t = s->pending_indices;
	uint32_t tcap = s->pending_cap;
	s->pending_indices = s->indices;
	s->pending_cap = s->cap;
	s->pending_n = s->n;
	s->pending_no = s->chunk_no;
	s->pending_len = s->len;
	s->pending_fd = fd;
	if (!t) {
		tcap = 1024;
		t = malloc(tcap * sizeof(uint32_t));
		if (!t)
			return -ENOMEM;
	}
	s->indices = t;
	s->cap = tcap;
	s->chunk_no++;
	s->n = 0;
	s->len = 0;
	return 0;
}

int split_add(struct split *s, const char *elem, size_t len, uint32_t index)
{
	int err;

	/* "[" or "," before, "]" after. */
	if (len + 2 > s->budget)
		return -E2BIG;
	if (s->n > 0 && s->len + 1 + len + 1 > s->budget) {
		err = flush_chunk(s);
		if (err < 0)
			return err;
	}
	if (s->n == s->cap) {
		uint32_t *p = realloc(s->indices, (size_t)s->cap * 2 * sizeof(uint32_t));
		if (!p)
			return -ENOMEM;
		s->indices = p;
		s->cap *= 2;
	}
	s->buf[s->len++] = s->n == 0 ? '[' : ',';
	memcpy(s->buf + s->len, elem, len);
	s->len += len;
	s->indices[s->n++] = index;
	return 0;
}

int split_finish(struct split *s)
{
	int err = flush_chunk(s);
	if (err == 0)
		err = complete_pending(s);
	if (err < 0)
		return err;
	return split_sync_dir(s->dir);
}

uint32_t split_chunks(const struct split *s)
{
	return s->chunk_no - (s->pending_fd >= 0 ? 1 : 0);
}

uint64_t split_bytes(const struct split *s)
{
	return s->bytes;
}
