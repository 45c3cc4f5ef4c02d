/* The hashes index: records file + open-addressing table on disk (convert.h). */
#include "daemon/convert/convert.h"
#include "daemon/convert/lines.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define SLOT_BYTES 16u
#define RECORD_MAX 1024u /* "<user_id>\t<hash>\n": ids are <= 255 bytes, hashes short */
#define COPY_BUF   (64u * 1024u)

struct convert_hashes {
	int rec_fd;
	int idx_fd;
	uint64_t cap; /* slots, a power of two */
};

/* 64-bit FNV-1a, then a finaliser; 0 is reserved for an empty slot. */
static uint64_t id_hash(const char *s, size_t len)
{
	uint64_t h = 1469598103934665603ull;
	for (size_t i = 0; i < len; i++) {
		h ^= (unsigned char)s[i];
		h *= 1099511628211ull;
	}
	h ^= h >> 33;
	h *= 0xff51afd7ed558ccdull;
	h ^= h >> 33;
	return h ? h : 1;
}

static int tmp_file(const char *dir, const char *suffix, int *ret_fd)
{
	char path[4096];
	int n = snprintf(path, sizeof(path), "%s/hashes-XXXXXX%s", dir, suffix);
	if (n < 0 || (size_t)n >= sizeof(path))
		return -ENAMETOOLONG;
	int fd = mkostemps(path, (int)strlen(suffix), O_CLOEXEC);
	if (fd < 0)
		return -errno;
	unlink(path);
	*ret_fd = fd;
	return 0;
}

static int pread_all(int fd, void *buf, size_t len, uint64_t off, size_t *ret_n)
{
	size_t got = 0;
	while (got < len) {
		ssize_t n = pread(fd, (char *)buf + got, len - got, (off_t)(off + got));
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		if (n == 0)
			break;
		got += (size_t)n;
	}
	*ret_n = got;
	return 0;
}

static int pwrite_all(int fd, const void *buf, size_t len, uint64_t off)
{
	size_t done = 0;
	while (done < len) {
		ssize_t n = pwrite(fd, (const char *)buf + done, len - done, (off_t)(off + done));
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		done += (size_t)n;
	}
	return 0;
}

/* One line of the hashes file → its id and hash; false when unusable. */
static bool parse_line(const char *line, size_t len, char *id, size_t idsize, char *hash,
		       size_t hashsize)
{
	json_tokener *tok = json_tokener_new();
	if (!tok)
		return false;
	json_object *o = json_tokener_parse_ex(tok, line, (int)len);
	bool ok = false;
	json_object *v, *oid = NULL, *alt = NULL, *ph;
	if (!o || json_tokener_get_error(tok) != json_tokener_success ||
	    !json_object_is_type(o, json_type_object))
		goto out;
	if (json_object_object_get_ex(o, "alt_id", &alt) && json_object_is_type(alt, json_type_string) &&
	    json_object_get_string_len(alt) > 0) {
		v = alt;
	} else if (json_object_object_get_ex(o, "_id", &v) &&
		   json_object_object_get_ex(v, "$oid", &oid) &&
		   json_object_is_type(oid, json_type_string) && json_object_get_string_len(oid) > 0) {
		v = oid;
	} else {
		goto out;
	}
	if (!json_object_object_get_ex(o, "passwordHash", &ph) ||
	    !json_object_is_type(ph, json_type_string) || json_object_get_string_len(ph) == 0)
		goto out;
	const char *s = json_object_get_string(v), *h = json_object_get_string(ph);
	if (strpbrk(s, "\t\n") || strpbrk(h, "\t\n"))
		goto out;
	int n = snprintf(id, idsize, "auth0|%s", s);
	int m = snprintf(hash, hashsize, "%s", h);
	ok = n > 0 && (size_t)n < idsize && m > 0 && (size_t)m < hashsize;
out:
	json_object_put(o);
	json_tokener_free(tok);
	return ok;
}

/* Reads the record at `off`: id and hash split in place in buf. */
static int read_record(int fd, uint64_t off, char *buf, size_t size, char **ret_id,
		       char **ret_hash)
{
	size_t n;
	int r = pread_all(fd, buf, size - 1, off, &n);
	if (r < 0)
		return r;
	buf[n] = '\0';
	char *nl = strchr(buf, '\n'), *tab = strchr(buf, '\t');
	if (!nl || !tab || tab > nl)
		return -EIO;
	*nl = *tab = '\0';
	*ret_id = buf;
	*ret_hash = tab + 1;
	return 0;
}

/* Finds the slot of `id`: its position and whether it is taken by it. */
static int probe(struct convert_hashes *h, const char *id, uint64_t hv, uint64_t *ret_pos,
		 bool *ret_found, uint64_t *ret_off)
{
	uint64_t pos = hv & (h->cap - 1);
	for (uint64_t tries = 0; tries < h->cap; tries++) {
		unsigned char slot[SLOT_BYTES];
		size_t n;
		int r = pread_all(h->idx_fd, slot, SLOT_BYTES, pos * SLOT_BYTES, &n);
		if (r < 0)
			return r;
		uint64_t sh = 0, so = 0;
		if (n == SLOT_BYTES) {
			memcpy(&sh, slot, 8);
			memcpy(&so, slot + 8, 8);
		}
		if (sh == 0) {
			*ret_pos = pos;
			*ret_found = false;
			return 0;
		}
		if (sh == hv) {
			char buf[RECORD_MAX], *rid, *rhash;
			r = read_record(h->rec_fd, so, buf, sizeof(buf), &rid, &rhash);
			if (r < 0)
				return r;
			if (strcmp(rid, id) == 0) {
				*ret_pos = pos;
				*ret_found = true;
				*ret_off = so;
				return 0;
			}
		}
		pos = (pos + 1) & (h->cap - 1);
	}
	return -ENOSPC;
}

int convert_hashes_open(const char *path, const char *tmp_dir, struct convert_hashes **ret,
			struct convert_hashes_stats *ret_stats, char *err, size_t errsize)
{
	struct convert_hashes_stats st = { 0 };
	struct convert_hashes *h = calloc(1, sizeof(*h));
	struct cv_lines l = { 0 };
	FILE *rec = NULL;
	char *wbuf = NULL;
	int r;
	if (!h)
		return -ENOMEM;
	h->rec_fd = h->idx_fd = -1;
	r = tmp_file(tmp_dir, ".rec", &h->rec_fd);
	if (r == 0)
		r = tmp_file(tmp_dir, ".idx", &h->idx_fd);
	if (r < 0) {
		snprintf(err, errsize, "cannot create the hashes index in %s: %s", tmp_dir, strerror(-r));
		goto fail;
	}
	r = cv_lines_open(&l, path);
	if (r < 0) {
		snprintf(err, errsize, "cannot open the hashes file: %s", strerror(-r));
		goto fail;
	}
	int dupfd = dup(h->rec_fd);
	rec = dupfd >= 0 ? fdopen(dupfd, "w") : NULL;
	if (!rec) {
		if (dupfd >= 0)
			close(dupfd);
		r = -errno;
		goto fail;
	}
	/* pass 1: compact records */
	char *line, id[300], hash[600];
	size_t len;
	uint64_t lineno, records = 0;
	while ((r = cv_lines_next(&l, false, &line, &len, &lineno)) > 0) {
		if (len == 0 || strspn(line, " \t\r") == len)
			continue;
		st.lines++;
		if (!parse_line(line, len, id, sizeof(id), hash, sizeof(hash))) {
			st.skipped++;
			continue;
		}
		if (fprintf(rec, "%s\t%s\n", id, hash) < 0) {
			r = -EIO;
			break;
		}
		records++;
	}
	if (r == -EBADMSG)
		snprintf(err, errsize, "hashes file line %llu is longer than %u bytes",
			 (unsigned long long)lineno, CONVERT_LINE_MAX);
	else if (r < 0)
		snprintf(err, errsize, "cannot read the hashes file: %s", strerror(-r));
	if (fclose(rec) != 0 && r == 0)
		r = -errno;
	rec = NULL;
	cv_lines_close(&l);
	if (r < 0)
		goto fail;
	if (records == 0 && st.lines > 0) {
		snprintf(err, errsize, "no line of the hashes file has an _id.$oid or alt_id and a "
			 "passwordHash (%llu lines)", (unsigned long long)st.lines);
		r = -EBADMSG;
		goto fail;
	}
	/* pass 2: the table */
	h->cap = 16;
	while (h->cap < records * 2)
		h->cap <<= 1;
	if (ftruncate(h->idx_fd, (off_t)(h->cap * SLOT_BYTES)) < 0) {
		r = -errno;
		snprintf(err, errsize, "cannot size the hashes index: %s", strerror(-r));
		goto fail;
	}
	wbuf = malloc(COPY_BUF + RECORD_MAX);
	if (!wbuf) {
		r = -ENOMEM;
		goto fail;
	}
	uint64_t off = 0;
	size_t have = 0;
	for (;;) {
		ssize_t n = pread(h->rec_fd, wbuf + have, COPY_BUF, (off_t)(off + have));
		if (n < 0) {
			r = -errno;
			goto fail;
		}
		have += (size_t)n;
		size_t pos = 0;
		for (;;) {
			char *nl = memchr(wbuf + pos, '\n', have - pos);
			if (!nl)
				break;
			char *tab = memchr(wbuf + pos, '\t', (size_t)(nl - (wbuf + pos)));
			if (!tab) {
				r = -EIO;
				goto fail;
			}
			*tab = '\0';
			const char *rid = wbuf + pos;
			uint64_t hv = id_hash(rid, strlen(rid)), spos, soff;
			bool found;
			r = probe(h, rid, hv, &spos, &found, &soff);
			if (r < 0)
				goto fail;
			if (found) {
				st.duplicates++;
			} else {
				unsigned char slot[SLOT_BYTES];
				uint64_t roff = off + pos;
				memcpy(slot, &hv, 8);
				memcpy(slot + 8, &roff, 8);
				r = pwrite_all(h->idx_fd, slot, SLOT_BYTES, spos * SLOT_BYTES);
				if (r < 0)
					goto fail;
				st.indexed++;
			}
			pos = (size_t)(nl - wbuf) + 1;
		}
		if (n == 0)
			break;
		memmove(wbuf, wbuf + pos, have - pos);
		off += pos;
		have -= pos;
	}
	free(wbuf);
	if (ret_stats)
		*ret_stats = st;
	*ret = h;
	return 0;
fail:
	free(wbuf);
	if (rec)
		fclose(rec);
	cv_lines_close(&l);
	convert_hashes_close(h);
	return r;
}

int convert_hashes_lookup(struct convert_hashes *h, const char *user_id, char *ret_hash, size_t size)
{
	uint64_t pos, off;
	bool found;
	int r = probe(h, user_id, id_hash(user_id, strlen(user_id)), &pos, &found, &off);
	if (r < 0)
		return r;
	if (!found)
		return -ENOENT;
	char buf[RECORD_MAX], *rid, *rhash;
	r = read_record(h->rec_fd, off, buf, sizeof(buf), &rid, &rhash);
	if (r < 0)
		return r;
	if (strlen(rhash) >= size)
		return -ENOSPC;
	memcpy(ret_hash, rhash, strlen(rhash) + 1);
	return 0;
}

void convert_hashes_close(struct convert_hashes *h)
{
	if (!h)
		return;
	if (h->rec_fd >= 0)
		close(h->rec_fd);
	if (h->idx_fd >= 0)
		close(h->idx_fd);
	free(h);
}
