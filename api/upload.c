#include "api/upload.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include "api/server.h"
#include "api/sha256.h"
#include "daemon/config.h"
#include "daemon/log.h"
#include "queue/store.h"

static const char *const field_names[UPLOAD_FIELD_COUNT] = {
	[UPLOAD_CONNECTION_ID] = "connection_id",
	[UPLOAD_TENANT] = "tenant",
	[UPLOAD_UPSERT] = "upsert",
	[UPLOAD_SEND_COMPLETION_EMAIL] = "send_completion_email",
	[UPLOAD_EXTERNAL_ID] = "external_id",
	[UPLOAD_ON_INVALID] = "on_invalid",
	[UPLOAD_UNSUPPORTED_HASH] = "unsupported_hash",
	[UPLOAD_STRIP_AUTH0_PREFIX] = "strip_auth0_prefix",
	[UPLOAD_NOTIFY_URL] = "notify_url",
	[UPLOAD_DRY_RUN] = "dry_run",
	[UPLOAD_WAIT] = "wait",
	[UPLOAD_MAX_ERRORS] = "max_errors",
};

struct upload {
	struct api_request *req;
	char part_path[1100];
	char final_path[1100];
	char import_dir[1024];
	int fd;
	bool committed;
	bool has_file;
	bool file_done;
	uint64_t bytes;
	struct sha256 sha;
	char sha_hex[65];
	char *fields[UPLOAD_FIELD_COUNT];
	char *unknown;

	/* upload_commit_file */
	uv_work_t work;
	int work_status;
	void (*done)(int status, void *arg);
	void *done_arg;
};

static void upload_free(void *p)
{
	struct upload *u = p;
	if (!u)
		return;
	upload_discard(u);
	for (int i = 0; i < UPLOAD_FIELD_COUNT; i++)
		free(u->fields[i]);
	free(u->unknown);
	free(u);
}

struct upload *upload_of(struct api_request *req)
{
	return api_request_ctx(req);
}

const char *upload_field(const struct upload *u, enum upload_field f)
{
	if (u->fields[f])
		return u->fields[f];
	return api_request_query(u->req, field_names[f]);
}

const char *upload_unknown_field(const struct upload *u)
{
	return u->unknown;
}

bool upload_has_file(const struct upload *u)
{
	return u->has_file;
}

uint64_t upload_bytes(const struct upload *u)
{
	return u->bytes;
}

int upload_hash_fields(struct upload *u, const char *fields, size_t len)
{
	char sep[64];
	if (u->sha_hex[0])
		return -EALREADY;
	/* The file's length keeps the boundary unambiguous: no users file can
	 * end in text that passes for another request's fields. */
	int n = snprintf(sep, sizeof(sep), "%c%llu%cfields%c", 0, (unsigned long long)u->bytes, 0, 0);
	sha256_update(&u->sha, sep, (size_t)n);
	sha256_update(&u->sha, fields, len);
	return 0;
}

const char *upload_sha256(struct upload *u)
{
	if (!u->sha_hex[0])
		sha256_final_hex(&u->sha, u->sha_hex);
	return u->sha_hex;
}

static int up_begin(struct api_request *req, void *userdata)
{
	const char *state_dir = store_state_dir(api_request_store(req));
	struct config *cfg = api_request_config(req);
	struct upload *u = calloc(1, sizeof(*u));
	unsigned char rnd[8];

	if (!u)
		return -ENOMEM;
	u->fd = -1;
	u->req = req;
	sha256_init(&u->sha);
	api_request_set_ctx(req, u, upload_free);
	if (cfg)
		api_request_set_body_limit(req, cfg->max_upload_bytes);
	if (getrandom(rnd, sizeof(rnd), 0) != (ssize_t)sizeof(rnd))
		return -EIO;
	snprintf(u->part_path, sizeof(u->part_path), "%s/spool/%02x%02x%02x%02x%02x%02x%02x%02x.part",
		 state_dir, rnd[0], rnd[1], rnd[2], rnd[3], rnd[4], rnd[5], rnd[6], rnd[7]);
	u->fd = open(u->part_path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (u->fd < 0 && errno == ENOENT) {
		char dir[1024];
		snprintf(dir, sizeof(dir), "%s/spool", state_dir);
		mkdir(dir, 0700);
		u->fd = open(u->part_path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	}
	if (u->fd < 0) {
		int r = -errno;
		u->part_path[0] = '\0';
		log_error("api", "cannot create a spool file: %s", strerror(-r));
		return r;
	}
	return 0;
}

static int spool_write(struct upload *u, const char *data, size_t len)
{
	sha256_update(&u->sha, data, len);
	u->bytes += len;
	while (len > 0) {
		ssize_t n = write(u->fd, data, len);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			int r = -errno;
			log_error("api", "writing the spool failed: %s", strerror(-r));
			return r;
		}
		data += n;
		len -= (size_t)n;
	}
	return 0;
}

static int up_raw(struct api_request *req, const char *data, size_t len)
{
	struct upload *u = api_request_ctx(req);
	u->has_file = true;
	return spool_write(u, data, len);
}

static int up_field(struct api_request *req, const char *name, const char *value, size_t len)
{
	struct upload *u = api_request_ctx(req);
	if (strcmp(name, "users") == 0) {
		/* curl -F 'users=[...]' (inline text rather than @file) */
		if (u->has_file) {
			api_respond_problem(req, 400, "bad-field", "more than one users file");
			return -EINVAL;
		}
		u->has_file = true;
		u->file_done = true;
		return spool_write(u, value, len);
	}
	for (int i = 0; i < UPLOAD_FIELD_COUNT; i++) {
		if (strcmp(name, field_names[i]) == 0) {
			free(u->fields[i]);
			u->fields[i] = strdup(value);
			return u->fields[i] ? 0 : -ENOMEM;
		}
	}
	if (!u->unknown)
		u->unknown = strdup(name);
	return 0;
}

static int up_file_data(struct api_request *req, const char *field, const char *filename,
			const char *content_type, const char *data, size_t len, uint64_t off)
{
	struct upload *u = api_request_ctx(req);
	if (strcmp(field, "users") != 0) {
		api_respond_problem(req, 400, "bad-field",
				    "unexpected file part '%.64s': the users file goes in the part named 'users'",
				    field);
		return -EINVAL;
	}
	if (off == 0 && u->has_file) {
		api_respond_problem(req, 400, "bad-field", "more than one users file");
		return -EINVAL;
	}
	u->has_file = true;
	return spool_write(u, data, len);
}

static int up_file_end(struct api_request *req, const char *field)
{
	struct upload *u = api_request_ctx(req);
	u->file_done = true;
	return 0;
}

static void up_abort(struct api_request *req)
{
	struct upload *u = api_request_ctx(req);
	if (u)
		upload_discard(u);
}

const struct api_body_sink upload_sink = {
	.begin = up_begin,
	.raw = up_raw,
	.field = up_field,
	.file_data = up_file_data,
	.file_end = up_file_end,
	.abort = up_abort,
};

static int fsync_dir(const char *path)
{
	int fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	int r = fsync(fd) < 0 ? -errno : 0;
	close(fd);
	return r;
}

/* Worker thread: fsync, mkdir, rename, fsync the directories. */
static void commit_work(uv_work_t *w)
{
	struct upload *u = w->data;
	char parent[1100];
	int r = 0;

	if (fsync(u->fd) < 0) {
		r = -errno;
		goto out;
	}
	if (mkdir(u->import_dir, 0700) < 0 && errno != EEXIST) {
		r = -errno;
		goto out;
	}
	if (rename(u->part_path, u->final_path) < 0) {
		r = -errno;
		goto out;
	}
	r = fsync_dir(u->import_dir);
	if (r == 0) {
		snprintf(parent, sizeof(parent), "%s/..", u->import_dir);
		r = fsync_dir(parent);
	}
out:
	u->work_status = r;
}

static void commit_after(uv_work_t *w, int status)
{
	struct upload *u = w->data;
	int r = status < 0 ? status : u->work_status;
	if (r == 0) {
		u->committed = true;
		snprintf(u->part_path, sizeof(u->part_path), "%s", u->final_path);
	}
	close(u->fd);
	u->fd = -1;
	u->done(r, u->done_arg);
}

int upload_commit_file(uv_loop_t *loop, struct upload *u, const char *state_dir, const char *id,
		       void (*done)(int status, void *arg), void *arg)
{
	if (u->fd < 0)
		return -EBADF;
	int n = snprintf(u->import_dir, sizeof(u->import_dir), "%s/imports/%s", state_dir, id);
	if (n < 0 || (size_t)n >= sizeof(u->import_dir))
		return -ENAMETOOLONG;
	snprintf(u->final_path, sizeof(u->final_path), "%s/upload", u->import_dir);
	upload_sha256(u);
	u->done = done;
	u->done_arg = arg;
	u->work.data = u;
	return uv_queue_work(loop, &u->work, commit_work, commit_after);
}

void upload_discard(struct upload *u)
{
	if (u->fd >= 0) {
		close(u->fd);
		u->fd = -1;
	}
	if (!u->committed && u->part_path[0]) {
		unlink(u->part_path);
		u->part_path[0] = '\0';
	}
}
