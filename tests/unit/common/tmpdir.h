/* tmpdir: a private temporary directory for one unit test, created by
 * mkdtemp under /tmp and removed with everything below it afterwards.
 * Paths are at most TMPDIR_MAX bytes including the terminating NUL. */
#ifndef TESTS_UNIT_COMMON_TMPDIR_H
#define TESTS_UNIT_COMMON_TMPDIR_H

#include <stddef.h>

#define TMPDIR_MAX 64

/* Creates /tmp/importd-test-<tag>-XXXXXX into ret_path (ret_size bytes).
 * Returns 0 or a negative errno; ret_path is untouched on failure. */
int tmpdir_make(const char *tag, char *ret_path, size_t ret_size);

/* Removes path and everything below it (no symlink is followed).
 * Returns 0 or a negative errno. */
int tmpdir_remove(const char *path);

#endif
