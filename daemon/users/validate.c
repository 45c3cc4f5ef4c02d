/* One user against the schema tables and the import's policies: see validate.h. */
#include "daemon/users/validate.h"
#include "daemon/users/hint.h"
#include "daemon/users/schema.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#define SHOW_MAX 64 /* bytes of a value quoted back in a message */

size_t validate_utf8_chars(const char *s)
{
	size_t n = 0;
	for (const unsigned char *p = (const unsigned char *)s; *p; p++)
		if ((*p & 0xC0) != 0x80)
			n++;
	return n;
}

void validate_path_join(char *out, size_t size, const char *base, const char *key)
{
	size_t o = strlen(base);
	if (o >= size)
		o = size - 1;
	memmove(out, base, o);
	if (o + 1 < size)
		out[o++] = '/';
	for (const char *k = key; *k && o + 2 < size; k++) {
		if (*k == '~') {
			out[o++] = '~';
			out[o++] = '0';
		} else if (*k == '/') {
			out[o++] = '~';
			out[o++] = '1';
		} else
			out[o++] = *k;
	}
	out[o] = '\0';
}

static const char *arena_dup(struct validate *v, const char *s, size_t len)
{
	if (v->arena_len + len + 1 > sizeof(v->arena))
		return NULL;
	char *d = v->arena + v->arena_len;
	memcpy(d, s, len);
	d[len] = '\0';
	v->arena_len += len + 1;
	return d;
}

void validate_add(struct validate *v, bool warning, const char *path, const char *code,
                  const char *hint, const char *fmt, ...)
{
	char msg[512];
	va_list ap;

	if (v->n >= VALIDATE_PROBLEMS_MAX) {
		v->dropped++;
		return;
	}
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	struct users_problem *p = &v->problems[v->n];
	p->path = arena_dup(v, path, strlen(path));
	p->message = arena_dup(v, msg, strlen(msg));
	p->hint = hint ? arena_dup(v, hint, strlen(hint)) : NULL;
	p->code = code; /* static strings only */
	p->warning = warning;
	p->line = 0;
	if (!p->path || !p->message || (hint && !p->hint)) {
		v->dropped++;
		return;
	}
	v->n++;
}

#define ERROR(v, path, code, hint, ...) validate_add((v), false, (path), (code), (hint), __VA_ARGS__)
#define WARN(v, path, code, hint, ...) validate_add((v), true, (path), (code), (hint), __VA_ARGS__)

/* A value quoted back in a message: at most SHOW_MAX bytes, cut on a UTF-8
 * boundary, with "…" when cut. */
static const char *show(const char *s, char *buf, size_t size)
{
	size_t len = strlen(s);
	if (len <= SHOW_MAX && len < size)
		return s;
	size_t cut = SHOW_MAX < size - 4 ? SHOW_MAX : size - 4;
	while (cut > 0 && ((unsigned char)s[cut] & 0xC0) == 0x80)
		cut--;
	memcpy(buf, s, cut);
	memcpy(buf + cut, "\xE2\x80\xA6", 4);
	return buf;
}

static const char *type_name(const struct ujv *o)
{
	switch (o->type) {
	case UJV_NULL: return "null";
	case UJV_BOOL: return "boolean";
	case UJV_DOUBLE: return "number";
	case UJV_INT: return "integer";
	case UJV_OBJECT: return "object";
	case UJV_ARRAY: return "array";
	case UJV_STRING: return "string";
	}
	return "unknown";
}

static const char *kind_name(enum schema_kind k)
{
	switch (k) {
	case SCHEMA_STRING: return "string";
	case SCHEMA_BOOLEAN: return "boolean";
	case SCHEMA_INTEGER: return "integer";
	case SCHEMA_OBJECT: return "object";
	case SCHEMA_ARRAY: return "array";
	}
	return "unknown";
}

static bool kind_matches(enum schema_kind k, const struct ujv *o)
{
	unsigned t = o->type;
	switch (k) {
	case SCHEMA_STRING: return t == UJV_STRING;
	case SCHEMA_BOOLEAN: return t == UJV_BOOL;
	case SCHEMA_INTEGER: return t == UJV_INT;
	case SCHEMA_OBJECT: return t == UJV_OBJECT;
	case SCHEMA_ARRAY: return t == UJV_ARRAY;
	}
	return false;
}

static bool in_list(const char *s, const char *const *list)
{
	for (; *list; list++)
		if ((*list)[0] == s[0] && strcmp(s, *list) == 0)
			return true;
	return false;
}

static void list_join(const char *const *list, char *buf, size_t size)
{
	size_t o = 0;
	buf[0] = '\0';
	for (; *list; list++) {
		int n = snprintf(buf + o, size - o, "%s%s", o ? ", " : "", *list);
		if (n < 0 || (size_t)n >= size - o)
			break;
		o += (size_t)n;
	}
}

static void validate_object(struct validate *v, const struct ujv *obj,
                            const struct schema_table *t, const char *path);

static void validate_string_prop(struct validate *v, const struct schema_prop *p,
                                 const char *path, const struct ujv *val)
{
	const char *s = ujv_str(v->doc, val);
	char sb[SHOW_MAX + 8];

	if (p->min_len || p->max_len || p->warn_len) {
		size_t chars = validate_utf8_chars(s);
		if (p->min_len && chars < p->min_len) {
			ERROR(v, path, "MIN_LENGTH", NULL, "String is too short (%zu chars), minimum %u",
			      chars, p->min_len);
			return;
		}
		if (p->max_len && chars > p->max_len) {
			ERROR(v, path, "MAX_LENGTH", NULL, "String is too long (%zu chars), maximum %u",
			      chars, p->max_len);
			return;
		}
		if (p->warn_len && chars > p->warn_len)
			WARN(v, path, "MAX_LENGTH",
			     "a connection may limit the length further; check the target connection's settings",
			     "String is longer than %u chars (%zu): the recorded database connection allows 1 to %u",
			     p->warn_len, chars, p->warn_len);
	}
	if (p->enum_values && !in_list(s, p->enum_values)) {
		char all[256];
		const char *h;
		char hb[300];
		size_t n = 0;
		while (p->enum_values[n])
			n++;
		h = hint_property(s, p->enum_values, n);
		list_join(p->enum_values, all, sizeof(all));
		if (h)
			snprintf(hb, sizeof(hb), "did you mean \"%s\"? (one of %s)", h, all);
		else
			snprintf(hb, sizeof(hb), "one of %s", all);
		ERROR(v, path, "ENUM_MISMATCH", hb, "No enum match for: %s", show(s, sb, sizeof(sb)));
		return;
	}
}

static void validate_prop(struct validate *v, const struct schema_prop *p,
                          const char *path, const struct ujv *val)
{
	if (!kind_matches(p->kind, val)) {
		ERROR(v, path, "INVALID_TYPE", NULL, "Expected type %s but found type %s",
		      kind_name(p->kind), type_name(val));
		return;
	}
	size_t before = v->n;
	if (p->kind == SCHEMA_STRING)
		validate_string_prop(v, p, path, val);
	else if (p->kind == SCHEMA_OBJECT && p->object)
		validate_object(v, val, p->object, path);
	/* Hooks see values whose own checks passed; object hooks (cross-field
	 * rules) run anyway and cope with missing or mistyped members. */
	if (p->check && (p->kind == SCHEMA_OBJECT || v->n == before))
		p->check(v, path, val);
}

static void validate_object(struct validate *v, const struct ujv *obj,
                            const struct schema_table *t, const char *path)
{
	char sub[VALIDATE_PATH_MAX];

	uint64_t present = 0; /* bit i: t->props[i] seen */

	ujv_foreach(v->doc, obj, val) {
		const char *key = ujv_key(v->doc, val);
		const struct schema_prop *p = schema_find(t, key);
		validate_path_join(sub, sizeof(sub), path, key);
		if (p)
			present |= (uint64_t)1 << (p - t->props);
		if (!p) {
			const char *h = hint_property(key, t->names, t->n);
			char hb[128];
			char kb[SHOW_MAX + 8];
			if (h)
				snprintf(hb, sizeof(hb), "did you mean \"%s\"?", h);
			ERROR(v, sub, "UNKNOWN_PROPERTY", h ? hb : NULL,
			      "Additional properties not allowed: %s", show(key, kb, sizeof(kb)));
			continue;
		}
		validate_prop(v, p, sub, val);
	}
	for (size_t i = 0; i < t->n; i++) {
		if (!t->props[i].required || (present & ((uint64_t)1 << i)))
			continue;
		validate_path_join(sub, sizeof(sub), path, t->props[i].name);
		ERROR(v, sub, "OBJECT_REQUIRED", NULL, "Missing required property: %s", t->props[i].name);
	}
}

/* ---- formats --------------------------------------------------------- */

static bool has_space_or_ctl(const char *s)
{
	for (const unsigned char *p = (const unsigned char *)s; *p; p++)
		if (*p <= 0x20 || *p == 0x7f)
			return true;
	return false;
}

/* local@domain, no spaces, a dot inside the domain, at most 254 chars. */
static const char *email_problem(const char *s)
{
	const char *at = strrchr(s, '@');
	if (has_space_or_ctl(s))
		return "no spaces";
	if (!at)
		return "an '@'";
	if (at == s)
		return "a name before the '@'";
	const char *dom = at + 1;
	if (!*dom)
		return "a domain after the '@'";
	const char *dot = strchr(dom, '.');
	if (!dot)
		return "a dot in the domain (e.g. example.com)";
	if (dom[0] == '.' || dom[strlen(dom) - 1] == '.' || strstr(dom, ".."))
		return "a domain without empty labels";
	if (strchr(dom, '@') || memchr(s, '@', (size_t)(at - s)))
		return "a single '@'";
	return NULL;
}

void validate_hook_email(struct validate *v, const char *path, const struct ujv *val)
{
	const char *s = ujv_str(v->doc, val);
	char sb[SHOW_MAX + 8];
	size_t chars = validate_utf8_chars(s);

	if (chars > 254) {
		ERROR(v, path, "MAX_LENGTH", NULL, "String is too long (%zu chars), maximum 254", chars);
		return;
	}
	const char *why = email_problem(s);
	if (!why)
		return;
	char hint[160];
	size_t len = strlen(s);
	if (len && (s[0] == ' ' || s[len - 1] == ' '))
		snprintf(hint, sizeof(hint), "remove the spaces around the address");
	else
		snprintf(hint, sizeof(hint), "an email address needs %s", why);
	ERROR(v, path, "FORMAT", hint, "Object didn't pass validation for format email: %s",
	      show(s, sb, sizeof(sb)));
}

void validate_hook_phone(struct validate *v, const char *path, const struct ujv *val)
{
	const char *s = ujv_str(v->doc, val);
	size_t len = strlen(s);
	bool ok = len >= 2 && len <= 16 && s[0] == '+';
	char sb[SHOW_MAX + 8];

	for (size_t i = 1; ok && i < len; i++)
		if (s[i] < '0' || s[i] > '9')
			ok = false;
	if (ok)
		return;
	char hint[96] = "E.164: '+', the country code and the number, digits only (e.g. +14155550100)";
	if (len && s[0] != '+')
		snprintf(hint, sizeof(hint), "E.164 starts with '+' and the country code (e.g. +14155550100)");
	ERROR(v, path, "PATTERN", hint, "String does not match pattern ^\\+[0-9]{1,15}$: %s",
	      show(s, sb, sizeof(sb)));
}

void validate_hook_user_id(struct validate *v, const char *path, const struct ujv *val)
{
	const char *s = ujv_str(v->doc, val);
	char sb[SHOW_MAX + 8];

	v->user_id = s;
	if (has_space_or_ctl(s)) {
		ERROR(v, path, "PATTERN", "remove the whitespace from the user_id",
		      "user_id must not contain whitespace: %s", show(s, sb, sizeof(sb)));
		return;
	}
	if (strncmp(s, "auth0|", 6) != 0)
		return;
	switch (v->opts->strip_auth0_prefix) {
	case USERS_AUTH0_PREFIX_UNSET:
		ERROR(v, path, "AUTH0_PREFIX",
		      "set strip_auth0_prefix=true to import it as the id after 'auth0|', or strip_auth0_prefix=false to keep it as is",
		      "user_id starts with 'auth0|', which Auth0 adds itself (it would become auth0|auth0|...): %s",
		      show(s, sb, sizeof(sb)));
		break;
	case USERS_AUTH0_PREFIX_STRIP:
		if (!s[6]) {
			ERROR(v, path, "MIN_LENGTH", NULL,
			      "user_id is empty once 'auth0|' is stripped");
			return;
		}
		v->strip_prefix = true;
		v->user_id = s + 6;
		break;
	case USERS_AUTH0_PREFIX_KEEP:
		break;
	}
}

void validate_hook_url(struct validate *v, const char *path, const struct ujv *val)
{
	const char *s = ujv_str(v->doc, val);
	const char *p = s;
	char sb[SHOW_MAX + 8];
	bool ok = (*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z');

	while (ok && *p && *p != ':') {
		if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
		      (*p >= '0' && *p <= '9') || *p == '+' || *p == '-' || *p == '.'))
			ok = false;
		p++;
	}
	ok = ok && *p == ':' && p[1] && !has_space_or_ctl(s);
	if (!ok)
		ERROR(v, path, "FORMAT", "an absolute URL such as https://example.com/avatar.png",
		      "Object didn't pass validation for format uri: %s", show(s, sb, sizeof(sb)));
}

/* ---- hashes ---------------------------------------------------------- */

static bool is_bcrypt_b64(char c)
{
	return c == '.' || c == '/' || (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
	       (c >= '0' && c <= '9');
}

/* "$2?$NN$" + 53 chars; returns the cost or -1. `prefix_len` 4. */
static int bcrypt_cost(const char *s)
{
	size_t len = strlen(s);
	if (len != 60 || s[0] != '$' || s[1] != '2' || s[3] != '$' || s[6] != '$')
		return -1;
	if (s[4] < '0' || s[4] > '9' || s[5] < '0' || s[5] > '9')
		return -1;
	int cost = (s[4] - '0') * 10 + (s[5] - '0');
	if (cost < 4 || cost > 31)
		return -1;
	for (size_t i = 7; i < 60; i++)
		if (!is_bcrypt_b64(s[i]))
			return -1;
	return cost;
}

static bool starts(const char *s, const char *prefix)
{
	return strncmp(s, prefix, strlen(prefix)) == 0;
}

void validate_hook_password_hash(struct validate *v, const char *path, const struct ujv *val)
{
	const char *s = ujv_str(v->doc, val);

	if (starts(s, "$2a$") || starts(s, "$2b$")) {
		int cost = bcrypt_cost(s);
		if (cost < 0)
			ERROR(v, path, "PATTERN", "a bcrypt hash is 60 characters: $2b$10$ then 53 of [./A-Za-z0-9]",
			      "password_hash is not a valid bcrypt hash");
		else if (cost != 10)
			ERROR(v, path, "PATTERN",
			      "password_hash takes bcrypt hashes of cost 10; put others in custom_password_hash with algorithm bcrypt",
			      "password_hash has bcrypt cost %d; Auth0 accepts 10 here", cost);
		return;
	}
	if (starts(s, "$2y$")) {
		ERROR(v, path, "PATTERN",
		      "move it to custom_password_hash: {\"algorithm\":\"bcrypt\",\"hash\":{\"value\":\"$2y$...\"}}",
		      "password_hash takes $2a$ or $2b$ bcrypt hashes; $2y$ is accepted only in custom_password_hash");
		return;
	}
	if (starts(s, "$argon2") || starts(s, "$pbkdf2") || s[0] == '{') {
		const char *alg = starts(s, "$argon2") ? "argon2" : starts(s, "$pbkdf2") ? "pbkdf2" : "ldap";
		char hint[160];
		snprintf(hint, sizeof(hint),
		         "move it to custom_password_hash with algorithm %s", alg);
		ERROR(v, path, "PATTERN", hint,
		      "password_hash takes only bcrypt ($2a$ or $2b$) hashes");
		return;
	}
	ERROR(v, path, "UNSUPPORTED_HASH",
	      "use custom_password_hash for other supported algorithms, or import with unsupported_hash=strip (the user then resets the password)",
	      "password_hash is not a bcrypt $2a$ or $2b$ hash");
}

static bool is_hex_string(const char *s)
{
	size_t n = 0;
	for (; *s; s++, n++)
		if (!((*s >= '0' && *s <= '9') || (*s >= 'a' && *s <= 'f') || (*s >= 'A' && *s <= 'F')))
			return false;
	return n > 0 && n % 2 == 0;
}

/* Standard or URL-safe base64, padding optional. Returns decoded bytes or -1. */
static long base64_len(const char *s)
{
	size_t n = 0, pad = 0;
	for (const char *p = s; *p; p++) {
		char c = *p;
		if (c == '=') {
			pad++;
			continue;
		}
		if (pad)
			return -1; /* data after padding */
		if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
		      c == '+' || c == '/' || c == '-' || c == '_'))
			return -1;
		n++;
	}
	if (n == 0 || pad > 2 || n % 4 == 1 || (pad && (n + pad) % 4 != 0))
		return -1;
	return (long)(n / 4 * 3 + (n % 4 ? n % 4 - 1 : 0));
}

static long digest_bytes(const char *d)
{
	static const struct { const char *n; long b; } t[] = {
		{ "md4", 16 }, { "md5", 16 }, { "ripemd160", 20 }, { "sha1", 20 }, { "sha224", 28 },
		{ "sha256", 32 }, { "sha384", 48 }, { "sha512", 64 }, { "whirlpool", 64 },
	};
	for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++)
		if (strcmp(d, t[i].n) == 0)
			return t[i].b;
	return -1;
}

static const char *get_str(const struct validate *v, const struct ujv *o, const char *key)
{
	const struct ujv *x = o ? ujv_get(v->doc, o, key) : NULL;
	return x && x->type == UJV_STRING ? ujv_str(v->doc, x) : NULL;
}

static const struct ujv *get_obj(const struct validate *v, const struct ujv *o, const char *key)
{
	const struct ujv *x = o ? ujv_get(v->doc, o, key) : NULL;
	return x && x->type == UJV_OBJECT ? x : NULL;
}

static bool has(const struct validate *v, const struct ujv *o, const char *key)
{
	return o && ujv_get(v->doc, o, key) != NULL;
}

static bool is_phc_b64(const char *s, size_t n)
{
	if (n == 0)
		return false;
	for (size_t i = 0; i < n; i++) {
		char c = s[i];
		if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
		      c == '+' || c == '/' || c == '.' || c == '-' || c == '_' || c == '='))
			return false;
	}
	return true;
}

static bool digits(const char *s, size_t n)
{
	if (n == 0)
		return false;
	for (size_t i = 0; i < n; i++)
		if (s[i] < '0' || s[i] > '9')
			return false;
	return true;
}

/* Splits "$a$b$c..." into fields (without the leading empty one). */
static size_t split_dollar(const char *s, const char **f, size_t *fl, size_t max)
{
	size_t n = 0;
	if (*s != '$')
		return 0;
	s++;
	while (n < max) {
		const char *e = strchr(s, '$');
		f[n] = s;
		fl[n] = e ? (size_t)(e - s) : strlen(s);
		n++;
		if (!e)
			return n;
		s = e + 1;
	}
	return max + 1;
}

/* params "k=v,k=v" with keys among `keys` (each at most once, all when `all`). */
static bool phc_params(const char *p, size_t n, const char *keys, bool all)
{
	char seen[8] = { 0 };
	size_t i = 0;
	while (i < n) {
		if (i + 2 > n || p[i + 1] != '=')
			return false;
		const char *k = strchr(keys, p[i]);
		if (!k || seen[k - keys])
			return false;
		seen[k - keys] = 1;
		size_t j = i + 2;
		while (j < n && p[j] != ',')
			j++;
		if (!digits(p + i + 2, j - i - 2))
			return false;
		i = j + 1;
		if (j == n)
			break;
		if (i >= n)
			return false; /* trailing comma */
	}
	if (all)
		for (size_t k = 0; keys[k]; k++)
			if (!seen[k])
				return false;
	return true;
}

static bool argon2_phc(const char *s)
{
	const char *f[6];
	size_t fl[6];
	size_t n = split_dollar(s, f, fl, 5);
	size_t i = 0;
	if (n < 4 || n > 5)
		return false;
	if (!((fl[0] == 8 && strncmp(f[0], "argon2id", 8) == 0) ||
	      (fl[0] == 7 && (strncmp(f[0], "argon2i", 7) == 0 || strncmp(f[0], "argon2d", 7) == 0))))
		return false;
	i = 1;
	if (n == 5) {
		if (fl[1] < 3 || strncmp(f[1], "v=", 2) != 0 || !digits(f[1] + 2, fl[1] - 2))
			return false;
		i = 2;
	}
	return phc_params(f[i], fl[i], "mtp", true) && is_phc_b64(f[i + 1], fl[i + 1]) &&
	       is_phc_b64(f[i + 2], fl[i + 2]);
}

static bool pbkdf2_phc(const char *s)
{
	static const char *const dg[] = { "sha1", "sha224", "sha256", "sha384", "sha512", "md5", NULL };
	const char *f[5];
	size_t fl[5];
	size_t n = split_dollar(s, f, fl, 4);
	bool ok = false;
	if (n < 3 || n > 4 || fl[0] < 8 || strncmp(f[0], "pbkdf2-", 7) != 0)
		return false;
	for (size_t k = 0; dg[k]; k++)
		if (fl[0] - 7 == strlen(dg[k]) && strncmp(f[0] + 7, dg[k], fl[0] - 7) == 0)
			ok = true;
	if (!ok)
		return false;
	size_t i = 1;
	if (n == 4) {
		if (!phc_params(f[1], fl[1], "il", false))
			return false;
		i = 2;
	}
	return is_phc_b64(f[i], fl[i]) && is_phc_b64(f[i + 1], fl[i + 1]);
}

/* Checks `value` in `encoding` (hex/base64); expect_bytes >= 0 checks the
 * decoded size. */
static void check_encoded(struct validate *v, const char *path, const char *value,
                          const char *encoding, long expect_bytes, const char *what)
{
	long bytes = -1;
	if (strcmp(encoding, "hex") == 0) {
		if (!is_hex_string(value)) {
			ERROR(v, path, "FORMAT", "hex digits 0-9a-f, an even number of them",
			      "%s is not hex", what);
			return;
		}
		bytes = (long)(strlen(value) / 2);
	} else if (strcmp(encoding, "base64") == 0) {
		bytes = base64_len(value);
		if (bytes < 0) {
			ERROR(v, path, "FORMAT", "base64: A-Z a-z 0-9 + / with optional '=' padding",
			      "%s is not base64", what);
			return;
		}
	} else
		return;
	if (expect_bytes >= 0 && bytes != expect_bytes)
		ERROR(v, path, "FORMAT", NULL, "%s decodes to %ld bytes; the digest is %ld bytes",
		      what, bytes, expect_bytes);
}

void validate_hook_positive(struct validate *v, const char *path, const struct ujv *val)
{
	int64_t n = val->i;
	if (n <= 0)
		ERROR(v, path, "NOT_PASSED", NULL, "Value must be greater than 0 (found %lld)", (long long)n);
}

void validate_hook_cost(struct validate *v, const char *path, const struct ujv *val)
{
	int64_t n = val->i;
	if (n <= 1 || (n & (n - 1)) != 0)
		ERROR(v, path, "NOT_PASSED", "e.g. 16384 (2^14)",
		      "cost must be a power of two greater than 1 (found %lld)", (long long)n);
}

static void require_member(struct validate *v, const char *base, const char *rel,
                           const char *alg)
{
	char p[VALIDATE_PATH_MAX];
	snprintf(p, sizeof(p), "%s%s", base, rel);
	ERROR(v, p, "OBJECT_REQUIRED", NULL, "Missing required property: %s (required for %s)",
	      strrchr(rel, '/') + 1, alg);
}

void validate_hook_custom_password_hash(struct validate *v, const char *path, const struct ujv *obj)
{
	const char *alg = get_str(v, obj, "algorithm");
	const struct ujv *hash = get_obj(v, obj, "hash");
	const char *value = get_str(v, hash, "value");
	const char *enc = get_str(v, hash, "encoding");
	bool has_salt = has(v, obj, "salt");
	char p_alg[VALIDATE_PATH_MAX], p_val[VALIDATE_PATH_MAX], p_enc[VALIDATE_PATH_MAX];
	char p_salt[VALIDATE_PATH_MAX], sb[SHOW_MAX + 8];

	if (!alg)
		return;
	if (enc && strcmp(enc, "utf8") != 0 && strcmp(enc, "hex") != 0 && strcmp(enc, "base64") != 0)
		enc = NULL; /* ENUM_MISMATCH already said */
	snprintf(p_alg, sizeof(p_alg), "%s/algorithm", path);
	snprintf(p_val, sizeof(p_val), "%s/hash/value", path);
	snprintf(p_enc, sizeof(p_enc), "%s/hash/encoding", path);
	snprintf(p_salt, sizeof(p_salt), "%s/salt", path);

	if (!in_list(alg, schema_hash_algorithms)) {
		size_t n = 0;
		char all[160], hb[400];
		while (schema_hash_algorithms[n])
			n++;
		list_join(schema_hash_algorithms, all, sizeof(all));
		const char *h = hint_property(alg, schema_hash_algorithms, n);
		if (h && hint_folded_equal(alg, h)) {
			/* "SHA256", "sha-256": the right algorithm, misspelt. */
			snprintf(hb, sizeof(hb), "did you mean \"%s\"? (one of %s)", h, all);
			ERROR(v, p_alg, "ENUM_MISMATCH", hb, "No enum match for: %s", show(alg, sb, sizeof(sb)));
		} else {
			if (h)
				snprintf(hb, sizeof(hb),
				         "did you mean \"%s\"? Otherwise import with unsupported_hash=strip (the user then resets the password); supported: %s",
				         h, all);
			else
				snprintf(hb, sizeof(hb),
				         "supported: %s; or import with unsupported_hash=strip (the user then resets the password)", all);
			ERROR(v, p_alg, "UNSUPPORTED_HASH", hb, "Unsupported hash algorithm: %s",
			      show(alg, sb, sizeof(sb)));
		}
		return;
	}

	bool utf8_only = strcmp(alg, "argon2") == 0 || strcmp(alg, "bcrypt") == 0 ||
	                 strcmp(alg, "ldap") == 0 || strcmp(alg, "pbkdf2") == 0;
	if (utf8_only) {
		if (enc && strcmp(enc, "utf8") != 0) {
			char hb[96];
			snprintf(hb, sizeof(hb), "%s hashes are text: use \"utf8\" or leave encoding out", alg);
			ERROR(v, p_enc, "ENUM_MISMATCH", hb, "hash.encoding must be utf8 for %s (found %s)",
			      alg, show(enc, sb, sizeof(sb)));
		}
		if (has_salt && strcmp(alg, "bcrypt") != 0) {
			char hb[96];
			snprintf(hb, sizeof(hb), "the salt is part of the %s value; remove salt", alg);
			ERROR(v, p_salt, "NOT_PASSED", hb, "%s takes no separate salt", alg);
		} else if (has_salt)
			ERROR(v, p_salt, "NOT_PASSED", "the salt is part of the bcrypt value; remove salt",
			      "bcrypt takes no separate salt");
	} else {
		if (!enc && hash && !has(v, hash, "encoding"))
			require_member(v, path, "/hash/encoding", alg);
		else if (enc && strcmp(enc, "hex") != 0 && strcmp(enc, "base64") != 0) {
			char hb[96];
			snprintf(hb, sizeof(hb), "%s hashes are binary: use \"hex\" or \"base64\"", alg);
			ERROR(v, p_enc, "ENUM_MISMATCH", hb, "hash.encoding must be hex or base64 for %s (found %s)",
			      alg, show(enc, sb, sizeof(sb)));
			enc = NULL;
		}
	}

	if (strcmp(alg, "argon2") == 0) {
		if (value && !argon2_phc(value))
			ERROR(v, p_val, "FORMAT", "$argon2id$v=19$m=65536,t=3,p=4$<salt>$<hash> (argon2i and argon2d too)",
			      "hash.value is not an argon2 PHC string");
	} else if (strcmp(alg, "bcrypt") == 0) {
		if (!value)
			;
		else if (starts(value, "$2$") || starts(value, "$2x$"))
			ERROR(v, p_val, "UNSUPPORTED_HASH",
			      "$2$ and $2x$ bcrypt variants cannot be imported; import with unsupported_hash=strip (the user then resets the password)",
			      "bcrypt variant %.4s is not supported", value);
		else if (!(starts(value, "$2a$") || starts(value, "$2b$") || starts(value, "$2y$")) ||
		         bcrypt_cost(value) < 0)
			ERROR(v, p_val, "FORMAT", "$2a$, $2b$ or $2y$, the cost, '$', then 53 of [./A-Za-z0-9]",
			      "hash.value is not a bcrypt hash");
	} else if (strcmp(alg, "ldap") == 0) {
		if (value) {
			static const char *const schemes[] = {
				"MD5", "SMD5", "SHA", "SSHA", "SHA256", "SSHA256", "SHA384", "SSHA384",
				"SHA512", "SSHA512", NULL,
			};
			const char *close = value[0] == '{' ? strchr(value, '}') : NULL;
			char scheme[16];
			size_t sl = close ? (size_t)(close - value - 1) : 0;
			if (!close || sl == 0 || sl >= sizeof(scheme)) {
				ERROR(v, p_val, "FORMAT", "RFC 2307: {SCHEME}base64, e.g. {SSHA}...",
				      "hash.value is not an RFC 2307 LDAP value");
			} else {
				for (size_t i = 0; i < sl; i++) {
					char c = value[1 + i];
					scheme[i] = (char)((c >= 'a' && c <= 'z') ? c - 'a' + 'A' : c);
				}
				scheme[sl] = '\0';
				if (!in_list(scheme, schemes))
					ERROR(v, p_val, "UNSUPPORTED_HASH",
					      "supported schemes: MD5, SMD5, SHA, SSHA, SHA256, SSHA256, SHA384, SSHA384, SHA512, SSHA512; or import with unsupported_hash=strip",
					      "LDAP scheme {%s} is not supported", scheme);
				else if (base64_len(close + 1) < 0)
					ERROR(v, p_val, "FORMAT", "RFC 2307: {SCHEME}base64",
					      "hash.value after {%s} is not base64", scheme);
			}
		}
	} else if (strcmp(alg, "pbkdf2") == 0) {
		if (value && !pbkdf2_phc(value))
			ERROR(v, p_val, "FORMAT", "$pbkdf2-sha512$i=100000,l=64$<salt>$<hash> (i and l optional)",
			      "hash.value is not a pbkdf2 PHC string");
	} else if (strcmp(alg, "hmac") == 0) {
		const char *digest = get_str(v, hash, "digest");
		if (hash && !has(v, hash, "digest"))
			require_member(v, path, "/hash/digest", alg);
		if (hash && !has(v, hash, "key"))
			require_member(v, path, "/hash/key", alg);
		if (value && enc)
			check_encoded(v, p_val, value, enc, digest ? digest_bytes(digest) : -1, "hash.value");
	} else if (strcmp(alg, "scrypt") == 0) {
		if (!has(v, obj, "keylen"))
			require_member(v, path, "/keylen", alg);
		if (value && enc)
			check_encoded(v, p_val, value, enc, -1, "hash.value");
	} else {
		/* md4, md5, sha1, sha256, sha512 */
		if (value && enc)
			check_encoded(v, p_val, value, enc, digest_bytes(alg), "hash.value");
	}

	/* A salt's value must match its own encoding. */
	const struct ujv *salt = get_obj(v, obj, "salt");
	const char *svalue = get_str(v, salt, "value");
	const char *senc = get_str(v, salt, "encoding");
	if (svalue && senc) {
		char p_sv[VALIDATE_PATH_MAX];
		snprintf(p_sv, sizeof(p_sv), "%s/salt/value", path);
		check_encoded(v, p_sv, svalue, senc, -1, "salt.value");
	}
}

/* ---- metadata and MFA ------------------------------------------------ */

static void metadata_keys(struct validate *v, const struct ujv *o, const char *path,
                          const char *which, unsigned depth)
{
	char sub[VALIDATE_PATH_MAX];
	char kb[SHOW_MAX + 8];

	if (depth > 40)
		return;
	if (o->type == UJV_ARRAY) {
		size_t i = 0;
		ujv_foreach(v->doc, o, el) {
			char idx[24];
			snprintf(idx, sizeof(idx), "%zu", i++);
			validate_path_join(sub, sizeof(sub), path, idx);
			metadata_keys(v, el, sub, which, depth + 1);
		}
		return;
	}
	if (o->type != UJV_OBJECT)
		return;
	ujv_foreach(v->doc, o, val) {
		const char *key = ujv_key(v->doc, val);
		validate_path_join(sub, sizeof(sub), path, key);
		if (strchr(key, '.') || strchr(key, '$')) {
			char hb[160];
			char fixed[SHOW_MAX + 8];
			snprintf(fixed, sizeof(fixed), "%s", show(key, kb, sizeof(kb)));
			for (char *c = fixed; *c; c++)
				if (*c == '.' || *c == '$')
					*c = '_';
			snprintf(hb, sizeof(hb), "rename it, e.g. \"%s\"", fixed);
			ERROR(v, sub, "PATTERN", hb, "Property names in %s must not contain '.' or '$': %s",
			      which, show(key, kb, sizeof(kb)));
		}
		metadata_keys(v, val, sub, which, depth + 1);
	}
}

void validate_hook_app_metadata(struct validate *v, const char *path, const struct ujv *val)
{
	char sub[VALIDATE_PATH_MAX];
	ujv_foreach(v->doc, val, member) {
		const char *key = ujv_key(v->doc, member);
		if (in_list(key, schema_app_metadata_reserved)) {
			validate_path_join(sub, sizeof(sub), path, key);
			ERROR(v, sub, "NOT_PASSED", "rename it, or move it to user_metadata",
			      "app_metadata.%s is reserved by Auth0", key);
		}
	}
	metadata_keys(v, val, path, "app_metadata", 0);
}

void validate_hook_user_metadata(struct validate *v, const char *path, const struct ujv *val)
{
	metadata_keys(v, val, path, "user_metadata", 0);
}

void validate_hook_totp_secret(struct validate *v, const char *path, const struct ujv *val)
{
	const char *s = ujv_str(v->doc, val);
	bool lower = false, pad = false, ok = true;
	for (const char *p = s; *p; p++) {
		if ((*p >= 'A' && *p <= 'Z') || (*p >= '2' && *p <= '7'))
			continue;
		ok = false;
		if (*p >= 'a' && *p <= 'z')
			lower = true;
		if (*p == '=')
			pad = true;
	}
	if (ok)
		return;
	ERROR(v, path, "PATTERN",
	      lower ? "base32 secrets are upper case" :
	      pad ? "remove the '=' padding" : "a base32 secret: A-Z and 2-7",
	      "String does not match pattern ^[A-Z2-7]+$");
}

void validate_hook_mfa_factors(struct validate *v, const char *path, const struct ujv *val)
{
	size_t n = val->n;
	char sub[VALIDATE_PATH_MAX];

	if (n < 1) {
		ERROR(v, path, "ARRAY_LENGTH_SHORT", "leave mfa_factors out when there is none",
		      "Array is too short (0), minimum 1");
		return;
	}
	if (n > 10) {
		ERROR(v, path, "ARRAY_LENGTH_LONG", NULL, "Array is too long (%zu), maximum 10", n);
		return;
	}
	size_t i = 0;
	for (const struct ujv *item = ujv_child(v->doc, val); item; item = ujv_next(v->doc, item), i++) {
		char idx[24];
		snprintf(idx, sizeof(idx), "%zu", i);
		validate_path_join(sub, sizeof(sub), path, idx);
		if (item->type != UJV_OBJECT) {
			ERROR(v, sub, "INVALID_TYPE", NULL, "Expected type object but found type %s",
			      type_name(item));
			continue;
		}
		size_t known = 0;
		ujv_foreach(v->doc, item, member) {
			const char *key = ujv_key(v->doc, member);
			if (schema_find(&schema_mfa_factor, key))
				known++;
		}
		size_t before = v->n;
		validate_object(v, item, &schema_mfa_factor, sub);
		if (known != 1 && v->n == before)
			ERROR(v, sub, "NOT_PASSED", "{\"totp\":{\"secret\":...}}, {\"phone\":{\"value\":...}} or {\"email\":{\"value\":...}}",
			      "Data does not match exactly one of totp, phone, email (found %zu)", known);
		else if (known != 1 && known > 1)
			ERROR(v, sub, "NOT_PASSED", "one factor per item",
			      "Data does not match exactly one of totp, phone, email (found %zu)", known);
	}
}

/* ---- the user -------------------------------------------------------- */

static bool under(const char *path, const char *key)
{
	size_t kl = strlen(key);
	return path[0] == '/' && strncmp(path + 1, key, kl) == 0 &&
	       (path[1 + kl] == '\0' || path[1 + kl] == '/');
}

/* unsupported_hash=strip: the hash goes, its problems with it, and a
 * warning says the user must reset the password. */
static void apply_strip(struct validate *v)
{
	const char *key = NULL;
	for (size_t i = 0; i < v->n && !key; i++) {
		if (v->problems[i].warning || strcmp(v->problems[i].code, "UNSUPPORTED_HASH") != 0)
			continue;
		if (under(v->problems[i].path, "custom_password_hash"))
			key = "custom_password_hash";
		else if (under(v->problems[i].path, "password_hash"))
			key = "password_hash";
	}
	if (!key)
		return;
	size_t o = 0;
	for (size_t i = 0; i < v->n; i++)
		if (!under(v->problems[i].path, key) &&
		    !(strcmp(v->problems[i].code, "NOT_PASSED") == 0 &&
		      strstr(v->problems[i].message, "cannot be used together")))
			v->problems[o++] = v->problems[i];
	v->n = o;
	v->strip_key = key;
	char p[64];
	snprintf(p, sizeof(p), "/%s", key);
	WARN(v, p, "UNSUPPORTED_HASH", "the user must reset the password at first login",
	     "the password hash uses an unsupported algorithm and was removed: the user is imported without a password");
}

void validate_reset(struct validate *v, const struct users_options *opts)
{
	v->opts = opts;
	v->doc = NULL;
	v->n = v->n_errors = v->n_warnings = v->dropped = 0;
	v->arena_len = 0;
	v->email = v->user_id = v->username = NULL;
	v->strip_key = NULL;
	v->strip_member = v->user_id_node = NULL;
	v->strip_prefix = false;
}

void validate_user(struct validate *v, const struct ujv_doc *doc, const struct users_options *opts)
{
	const struct ujv *user = ujv_root(doc);

	validate_reset(v, opts);
	v->doc = doc;
	if (user->type != UJV_OBJECT) {
		ERROR(v, "", "INVALID_TYPE", "each element of the array must be one user object",
		      "Expected type object but found type %s", type_name(user));
		return;
	}
	validate_object(v, user, &schema_user, "");
	v->email = get_str(v, user, "email");
	v->username = get_str(v, user, "username");
	if (!v->user_id)
		v->user_id = get_str(v, user, "user_id");
	if (has(v, user, "password_hash") &&
	    has(v, user, "custom_password_hash"))
		ERROR(v, "/custom_password_hash", "NOT_PASSED", "keep only one of the two",
		      "password_hash and custom_password_hash cannot be used together");
	v->user_id_node = ujv_get(doc, user, "user_id");
	if (opts->unsupported_hash == USERS_UNSUPPORTED_HASH_STRIP)
		apply_strip(v);
	if (v->strip_key)
		v->strip_member = ujv_get(doc, user, v->strip_key);
}

void validate_finish(struct validate *v)
{
	struct users_problem tmp[VALIDATE_PROBLEMS_MAX];
	size_t o = 0;
	for (size_t i = 0; i < v->n; i++)
		if (!v->problems[i].warning)
			tmp[o++] = v->problems[i];
	v->n_errors = o;
	for (size_t i = 0; i < v->n; i++)
		if (v->problems[i].warning)
			tmp[o++] = v->problems[i];
	v->n_warnings = o - v->n_errors;
	memcpy(v->problems, tmp, o * sizeof(tmp[0]));
}
