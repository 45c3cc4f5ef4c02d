#include "api/auth.h"
#include "daemon/secret.h"

#include <string.h>
#include <strings.h>

bool auth_check_bearer(const struct secret *token, const char *authorization)
{
	if (!token)
		return true;
	if (!authorization || strncasecmp(authorization, "Bearer ", 7) != 0) {
		/* Spend the same comparison time on a missing header. */
		(void)secret_equal(token, "", 0);
		return false;
	}
	const char *v = authorization + 7;
	while (*v == ' ')
		v++;
	size_t len = strlen(v);
	while (len > 0 && (v[len - 1] == ' ' || v[len - 1] == '\t'))
		len--;
	return secret_equal(token, v, len);
}
