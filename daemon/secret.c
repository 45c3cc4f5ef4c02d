#include "daemon/secret.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define SECRET_FILE_MAX (64u * 1024u)

struct secret {
	size_t len;
	char value[]; /* len bytes + NUL */
};

/* memset that the compiler may not drop. */
static void wipe(void *p, size_t n)
{
	volatile unsigned char *v = p;
	while (n--)
		*v++ = 0;
}

int secret_new(const char *value, size_t len, struct secret **ret)
{
	if (!value || len == 0 || memchr(value, '\0', len))
		return -EINVAL;
	struct secret *s = malloc(sizeof(*s) + len + 1);
	if (!s)
		return -ENOMEM;
	s->len = len;
	memcpy(s->value, value, len);
	s->value[len] = '\0';
	*ret = s;
	return 0;
}

int secret_from_file(const char *path, struct secret **ret)
{
	char buf[SECRET_FILE_MAX + 1];
	size_t len = 0;
	int r;
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
	if (fd < 0)
		return -errno;
	for (;;) {
		ssize_t n = read(fd, buf + len, sizeof(buf) - len);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			r = -errno;
			goto out;
		}
		if (n == 0)
			break;
		len += (size_t)n;
		if (len > SECRET_FILE_MAX) {
			r = -EFBIG;
			goto out;
		}
	}
	if (len > 0 && buf[len - 1] == '\n')
		len--;
	if (len > 0 && buf[len - 1] == '\r')
		len--;
	r = secret_new(buf, len, ret);
out:
	wipe(buf, sizeof(buf));
	close(fd);
	return r;
}

int secret_dup(const struct secret *s, struct secret **ret)
{
	if (!s)
		return -EINVAL;
	return secret_new(s->value, s->len, ret);
}

const char *secret_value(const struct secret *s) { return s ? s->value : NULL; }
size_t secret_len(const struct secret *s) { return s ? s->len : 0; }

bool secret_equal(const struct secret *s, const char *value, size_t len)
{
	if (!s || !value)
		return false;
	/* Walk the secret's length whatever len is; fold the length mismatch
	 * into the accumulator instead of returning early. */
	unsigned char diff = (unsigned char)(len != s->len);
	for (size_t i = 0; i < s->len; i++) {
		unsigned char c = i < len ? (unsigned char)value[i] : 0;
		diff |= (unsigned char)(c ^ (unsigned char)s->value[i]);
	}
	return diff == 0;
}

void secret_free(struct secret *s)
{
	if (!s)
		return;
	wipe(s->value, s->len);
	free(s);
}
