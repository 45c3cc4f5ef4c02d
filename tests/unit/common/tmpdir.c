/* tmpdir: mkdtemp under /tmp, removal by a depth-first nftw walk. */
#include "tests/unit/common/tmpdir.h"

#include <errno.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int tmpdir_make(const char *tag, char *ret_path, size_t ret_size)
{
	char buf[TMPDIR_MAX];
	int n = snprintf(buf, sizeof(buf), "/tmp/importd-test-%s-XXXXXX", tag);
	if (n < 0 || (size_t)n >= sizeof(buf) || (size_t)n >= ret_size)
		return -ENAMETOOLONG;
	if (!mkdtemp(buf))
		return -errno;
	memcpy(ret_path, buf, (size_t)n + 1);
	return 0;
}

static int remove_one(const char *path, const struct stat *sb, int type, struct FTW *ftw)
{
	(void)sb;
	(void)type;
	(void)ftw;
	return remove(path) == 0 ? 0 : -errno;
}

int tmpdir_remove(const char *path)
{
	int rc = nftw(path, remove_one, 16, FTW_DEPTH | FTW_PHYS);
	if (rc == -1)
		return -errno;
	return rc;
}
