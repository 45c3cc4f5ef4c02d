/*
 * state_names — a state enum's name table, looked up both ways (chunk.c and
 * import.c share the shape). `names` has `n` entries indexed by the enum's
 * value; every entry is set.
 */
#pragma once

#include <errno.h>
#include <stddef.h>
#include <string.h>

/* The name of state `i`, "unknown" when out of range. */
static inline const char *state_names_get(const char *const *names, size_t n, unsigned i)
{
	return i < n ? names[i] : "unknown";
}

/* The state called `name`, or -EINVAL. */
static inline int state_names_find(const char *const *names, size_t n, const char *name)
{
	for (size_t i = 0; i < n; i++)
		if (strcmp(name, names[i]) == 0)
			return (int)i;
	return -EINVAL;
}
