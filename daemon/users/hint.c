/* "Did you mean": see hint.h. */
#include "daemon/users/hint.h"

#include <stdint.h>
#include <string.h>

#define HINT_NAME_MAX 64

/* Lower-case ASCII, without '_', '-', ' ', '.'. Returns the length, or
 * SIZE_MAX when the name does not fit. */
static size_t fold(const char *in, char *out)
{
	size_t n = 0;
	for (const char *p = in; *p; p++) {
		char c = *p;
		if (c == '_' || c == '-' || c == ' ' || c == '.')
			continue;
		if (c >= 'A' && c <= 'Z')
			c = (char)(c - 'A' + 'a');
		if (n >= HINT_NAME_MAX)
			return SIZE_MAX;
		out[n++] = c;
	}
	out[n] = '\0';
	return n;
}

size_t hint_distance(const char *a, const char *b)
{
	size_t la = strlen(a), lb = strlen(b);
	size_t d[HINT_NAME_MAX + 1][HINT_NAME_MAX + 1];

	if (la > HINT_NAME_MAX || lb > HINT_NAME_MAX)
		return SIZE_MAX;
	for (size_t i = 0; i <= la; i++)
		d[i][0] = i;
	for (size_t j = 0; j <= lb; j++)
		d[0][j] = j;
	for (size_t i = 1; i <= la; i++) {
		for (size_t j = 1; j <= lb; j++) {
			size_t cost = a[i - 1] == b[j - 1] ? 0 : 1;
			size_t v = d[i - 1][j] + 1;
			if (d[i][j - 1] + 1 < v)
				v = d[i][j - 1] + 1;
			if (d[i - 1][j - 1] + cost < v)
				v = d[i - 1][j - 1] + cost;
			if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] &&
			    d[i - 2][j - 2] + 1 < v)
				v = d[i - 2][j - 2] + 1;
			d[i][j] = v;
		}
	}
	return d[la][lb];
}

/* Folded alias → property. */
static const struct {
	const char *alias;
	const char *target;
} aliases[] = {
	{ "id", "user_id" },
	{ "uid", "user_id" },
	{ "userid", "user_id" },
	{ "phone", "phone_number" },
	{ "mobile", "phone_number" },
	{ "phonenumber", "phone_number" },
	{ "tel", "phone_number" },
	{ "firstname", "given_name" },
	{ "first", "given_name" },
	{ "lastname", "family_name" },
	{ "surname", "family_name" },
	{ "last", "family_name" },
	{ "fullname", "name" },
	{ "displayname", "name" },
	{ "verified", "email_verified" },
	{ "emailaddress", "email" },
	{ "mail", "email" },
	{ "avatar", "picture" },
	{ "photo", "picture" },
	{ "image", "picture" },
	{ "metadata", "user_metadata" },
	{ "appmetadata", "app_metadata" },
	{ "password", "custom_password_hash" },
	{ "hash", "custom_password_hash" },
	{ "passwordhash", "password_hash" },
	{ "login", "username" },
	{ "user", "username" },
	{ "mfa", "mfa_factors" },
	{ "disabled", "blocked" },
};

const char *hint_property(const char *name, const char *const *candidates, size_t n)
{
	char fn[HINT_NAME_MAX + 1], fc[HINT_NAME_MAX + 1];
	size_t ln = fold(name, fn);
	const char *best = NULL;
	size_t best_d = SIZE_MAX;

	if (ln == SIZE_MAX || ln == 0)
		return NULL;
	for (size_t i = 0; i < n; i++) {
		if (fold(candidates[i], fc) == SIZE_MAX)
			continue;
		if (strcmp(fn, fc) == 0)
			return candidates[i];
	}
	for (size_t k = 0; k < sizeof(aliases) / sizeof(aliases[0]); k++) {
		if (strcmp(fn, aliases[k].alias) != 0)
			continue;
		for (size_t i = 0; i < n; i++)
			if (strcmp(candidates[i], aliases[k].target) == 0)
				return candidates[i];
	}
	size_t maxd = ln <= 4 ? 1 : ln <= 10 ? 2 : 3;
	for (size_t i = 0; i < n; i++) {
		size_t lc = fold(candidates[i], fc);
		if (lc == SIZE_MAX)
			continue;
		size_t d = hint_distance(fn, fc);
		if (d > maxd || d >= lc)
			continue;
		/* Ties go to a candidate the name begins ("utf16" → "utf16le"). */
		size_t score = d * 2 + (strncmp(fc, fn, ln) == 0 ? 0 : 1);
		if (score < best_d) {
			best = candidates[i];
			best_d = score;
		}
	}
	return best;
}

bool hint_folded_equal(const char *a, const char *b)
{
	char fa[HINT_NAME_MAX + 1], fb[HINT_NAME_MAX + 1];
	if (fold(a, fa) == SIZE_MAX || fold(b, fb) == SIZE_MAX)
		return false;
	return strcmp(fa, fb) == 0;
}
