/* config: one table of settings; raw values are gathered from file, env and
 * flags (in that order, later wins), then each is parsed and checked once,
 * with the origin of its value in the error message. */
#include "daemon/config.h"
#include "daemon/secret.h"
#include "daemon/users/users.h"

#include "build_config.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <ini.h>
#include <inttypes.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define ORIGIN_MAX 320

enum stype {
	ST_STRING,   /* listen, state_dir */
	ST_SIZE,     /* bytes with K/M/G */
	ST_DURATION, /* seconds with s/m/h/d */
	ST_UINT,     /* plain count */
	ST_DOUBLE,   /* plain decimal */
	ST_LEVEL,    /* log level */
	ST_FORMAT,   /* log format */
	ST_HOSTS,    /* comma-separated host list */
	ST_SECRET,   /* value, or with is_file a path */
};

/* The daemon settings: ONE table (API.md "Settings"). */
enum dkey {
	D_LISTEN,
	D_STATE_DIR,
	D_MAX_UPLOAD,
	D_MAX_USERS,
	D_CHUNK_BYTES,
	D_SPOOL_RETENTION,
	D_IDEMPOTENCY_TTL,
	D_SHUTDOWN_TIMEOUT,
	D_NOTIFY_HOSTS,
	D_API_TOKEN,
	D_LOG_LEVEL,
	D_LOG_FORMAT,
	D__COUNT,
};

struct setting {
	const char *name;      /* [daemon] key; "<name>_file" too for ST_SECRET */
	enum stype type;
	uint64_t min, max;
	const char *def;       /* NULL: computed (state_dir) or none */
	bool reloadable;
	const char *env;       /* NULL: none; "<env>_FILE" too for ST_SECRET */
	const char *flag;      /* NULL: none */
};

_Static_assert(CONFIG_AUTH0_REQUEST_MAX == USERS_REQUEST_MAX, "one limit for an Auth0 import request");

static const struct setting daemon_settings[D__COUNT] = {
	[D_LISTEN]           = { "listen", ST_STRING, 0, 0, "127.0.0.1:8484", false, "IMPORTD_LISTEN", "--listen" },
	[D_STATE_DIR]        = { "state_dir", ST_STRING, 0, 0, NULL, false, "IMPORTD_STATE_DIR", "--state-dir" },
	[D_MAX_UPLOAD]       = { "max_upload_bytes", ST_SIZE, 1024, UINT64_C(1) << 40, "2G", true, "IMPORTD_MAX_UPLOAD_BYTES", "--max-upload-bytes" },
	[D_MAX_USERS]        = { "max_users_per_import", ST_UINT, 1, 1000000000, "10000000", true, "IMPORTD_MAX_USERS", NULL },
	[D_CHUNK_BYTES]      = { "chunk_bytes", ST_SIZE, USERS_CHUNK_BUDGET_MIN, USERS_REQUEST_MAX - USERS_MULTIPART_OVERHEAD, "0", true, "IMPORTD_CHUNK_BYTES", NULL },
	[D_SPOOL_RETENTION]  = { "spool_retention", ST_DURATION, 0, 3650ull * 86400, "7d", true, "IMPORTD_SPOOL_RETENTION", NULL },
	[D_IDEMPOTENCY_TTL]  = { "idempotency_ttl", ST_DURATION, 0, 365ull * 86400, "24h", true, NULL, NULL },
	[D_SHUTDOWN_TIMEOUT] = { "shutdown_timeout", ST_DURATION, 0, 3600, "5s", true, NULL, NULL },
	[D_NOTIFY_HOSTS]     = { "notify_allowed_hosts", ST_HOSTS, 0, 0, "", true, NULL, NULL },
	[D_API_TOKEN]        = { "api_token", ST_SECRET, 0, 0, NULL, true, "IMPORTD_API_TOKEN", NULL },
	[D_LOG_LEVEL]        = { "log_level", ST_LEVEL, 0, 0, "info", true, "IMPORTD_LOG_LEVEL", "--log-level" },
	[D_LOG_FORMAT]       = { "log_format", ST_FORMAT, 0, 0, "text", true, "IMPORTD_LOG_FORMAT", NULL },
};

/* Per-tenant keys; env applies to tenant "default". */
enum tkey {
	T_DOMAIN,
	T_CLIENT_ID,
	T_CLIENT_SECRET,
	T_AUDIENCE,
	T_MAX_JOBS,
	T_MAX_RPS,
	T__COUNT,
};

static const struct setting tenant_settings[T__COUNT] = {
	[T_DOMAIN]        = { "domain", ST_STRING, 0, 0, NULL, true, "AUTH0_DOMAIN", NULL },
	[T_CLIENT_ID]     = { "client_id", ST_STRING, 0, 0, NULL, true, "AUTH0_CLIENT_ID", NULL },
	[T_CLIENT_SECRET] = { "client_secret", ST_SECRET, 0, 0, NULL, true, "AUTH0_CLIENT_SECRET", NULL },
	[T_AUDIENCE]      = { "audience", ST_STRING, 0, 0, NULL, true, "AUTH0_AUDIENCE", NULL },
	[T_MAX_JOBS]      = { "max_concurrent_jobs", ST_UINT, 1, 100, "2", true, "AUTH0_MAX_CONCURRENT_JOBS", NULL },
	[T_MAX_RPS]       = { "max_requests_per_second", ST_DOUBLE, 0, 100000, "0", true, "AUTH0_MAX_RPS", NULL },
};

/* A value before parsing, with where it came from. */
struct raw {
	char *val;
	bool is_file;               /* ST_SECRET: val is a path */
	char *base_dir;             /* for relative *_file paths (config dir) */
	char origin[ORIGIN_MAX];    /* "/etc/x.conf:12: key 'listen'" */
};

struct raw_tenant {
	char name[CONFIG_TENANT_NAME_MAX + 1];
	char origin[ORIGIN_MAX];
	struct raw v[T__COUNT];
};

struct loader {
	struct raw d[D__COUNT];
	struct raw_tenant *t;
	size_t n_t;
	const char *file;           /* config path (for messages) */
	char *file_dir;
	unsigned line;              /* current line in the reader */
	FILE *fp;
	char section[64];           /* current section, "" before any */
	bool in_tenant;
	char *err;
	size_t errlen;
	bool failed;
	bool sandbox;
	const char *config_flag;
};

static void fail(struct loader *l, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void fail(struct loader *l, const char *fmt, ...)
{
	if (l->failed)
		return;
	l->failed = true;
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(l->err, l->errlen, fmt, ap);
	va_end(ap);
}

static void raw_set(struct raw *r, const char *val, bool is_file, const char *base_dir,
		    const char *origin)
{
	free(r->val);
	free(r->base_dir);
	r->val = strdup(val);
	r->is_file = is_file;
	r->base_dir = base_dir ? strdup(base_dir) : NULL;
	snprintf(r->origin, sizeof(r->origin), "%s", origin);
}

static void raw_clear(struct raw *r)
{
	free(r->val);
	free(r->base_dir);
	r->val = NULL;
	r->base_dir = NULL;
}

/* ---- "did you mean" ---------------------------------------------------- */

static size_t edit_distance(const char *a, const char *b)
{
	size_t la = strlen(a), lb = strlen(b);
	if (la > 64 || lb > 64)
		return SIZE_MAX;
	size_t prev[65], cur[65];
	for (size_t j = 0; j <= lb; j++)
		prev[j] = j;
	for (size_t i = 1; i <= la; i++) {
		cur[0] = i;
		for (size_t j = 1; j <= lb; j++) {
			size_t cost = tolower((unsigned char)a[i - 1]) == tolower((unsigned char)b[j - 1]) ? 0 : 1;
			size_t best = prev[j - 1] + cost;
			if (prev[j] + 1 < best)
				best = prev[j] + 1;
			if (cur[j - 1] + 1 < best)
				best = cur[j - 1] + 1;
			cur[j] = best;
		}
		memcpy(prev, cur, (lb + 1) * sizeof(size_t));
	}
	return prev[lb];
}

/* Closest of candidates within a small distance, or NULL. */
static const char *closest(const char *word, const char *const *cands, size_t n)
{
	const char *best = NULL;
	size_t bestd = SIZE_MAX;
	size_t limit = strlen(word) / 3 + 1;
	if (limit > 3)
		limit = 3;
	for (size_t i = 0; i < n; i++) {
		if (!cands[i])
			continue;
		size_t d = edit_distance(word, cands[i]);
		if (d < bestd) {
			bestd = d;
			best = cands[i];
		}
	}
	return bestd <= limit ? best : NULL;
}

/* " (did you mean <open>candidate<close>?)" or "". */
static void hint(char *buf, size_t len, const char *open, const char *close, const char *word,
		 const char *const *cands, size_t n)
{
	const char *c = closest(word, cands, n);
	if (c)
		snprintf(buf, len, " (did you mean %s%s%s?)", open, c, close);
	else
		buf[0] = '\0';
}

/* ---- parsers ----------------------------------------------------------- */

static int parse_u64(const char *s, uint64_t *ret, const char **ret_end)
{
	if (!isdigit((unsigned char)*s))
		return -EINVAL;
	uint64_t v = 0;
	for (; isdigit((unsigned char)*s); s++) {
		unsigned d = (unsigned)(*s - '0');
		if (v > (UINT64_MAX - d) / 10)
			return -ERANGE;
		v = v * 10 + d;
	}
	*ret = v;
	*ret_end = s;
	return 0;
}

static int parse_scaled(const char *s, const char *suffixes, const uint64_t *mults, uint64_t *ret)
{
	uint64_t v, m = 1;
	const char *end;
	int r = parse_u64(s, &v, &end);
	if (r < 0)
		return r;
	if (*end) {
		const char *p = strchr(suffixes, *end);
		if (!p || end[1])
			return -EINVAL;
		m = mults[p - suffixes];
	}
	if (m && v > UINT64_MAX / m)
		return -ERANGE;
	*ret = v * m;
	return 0;
}

int config_parse_size(const char *s, uint64_t *ret)
{
	static const uint64_t mults[] = { 1024, 1024ull * 1024, 1024ull * 1024 * 1024,
					  1024, 1024ull * 1024, 1024ull * 1024 * 1024 };
	return parse_scaled(s, "KMGkmg", mults, ret);
}

int config_parse_duration(const char *s, uint64_t *ret)
{
	static const uint64_t mults[] = { 1, 60, 3600, 86400 };
	return parse_scaled(s, "smhd", mults, ret);
}

bool config_host_is_loopback(const char *host)
{
	if (!host)
		return false;
	if (strcasecmp(host, "localhost") == 0)
		return true;
	struct in_addr a4;
	if (inet_pton(AF_INET, host, &a4) == 1)
		return (ntohl(a4.s_addr) >> 24) == 127;
	struct in6_addr a6;
	if (inet_pton(AF_INET6, host, &a6) == 1)
		return memcmp(&a6, &in6addr_loopback, sizeof(a6)) == 0;
	return false;
}

/* Splits "host:port" / "[v6]:port" into host (no brackets) and port. */
static int split_host_port(const char *s, char *host, size_t hostlen, long *ret_port)
{
	const char *colon;
	size_t hl;
	const char *h = s;
	if (*s == '[') {
		const char *rb = strchr(s, ']');
		if (!rb || rb[1] != ':')
			return -EINVAL;
		h = s + 1;
		hl = (size_t)(rb - h);
		colon = rb + 1;
	} else {
		colon = strrchr(s, ':');
		if (!colon || memchr(s, ':', (size_t)(colon - s)))
			return -EINVAL;
		hl = (size_t)(colon - s);
	}
	if (hl == 0 || hl >= hostlen)
		return -EINVAL;
	memcpy(host, h, hl);
	host[hl] = '\0';
	char *end;
	errno = 0;
	long port = strtol(colon + 1, &end, 10);
	if (colon[1] == '\0' || *end || errno || port < 0 || port > 65535)
		return -EINVAL;
	*ret_port = port;
	return 0;
}

/* listen: an IPv4 or [IPv6] literal with a port, or unix:/absolute/path. */
static int listen_check(const char *listen, bool *ret_local)
{
	if (strncmp(listen, "unix:", 5) == 0) {
		if (listen[5] != '/' || strlen(listen + 5) >= 108)
			return -EINVAL;
		*ret_local = true;
		return 0;
	}
	char host[64];
	long port;
	if (split_host_port(listen, host, sizeof(host), &port) < 0)
		return -EINVAL;
	struct in_addr a4;
	struct in6_addr a6;
	bool v6 = listen[0] == '[';
	if (v6 ? inet_pton(AF_INET6, host, &a6) != 1 : inet_pton(AF_INET, host, &a4) != 1)
		return -EINVAL;
	*ret_local = config_host_is_loopback(host);
	return 0;
}

bool config_listen_is_local(const char *listen)
{
	bool local = false;
	return listen_check(listen, &local) == 0 && local;
}

int config_normalize_base_url(const char *in, char **ret)
{
	const char *rest;
	bool http = false;
	for (const char *p = in; *p; p++)
		if (isspace((unsigned char)*p) || !isprint((unsigned char)*p))
			return -EINVAL;
	if (strncasecmp(in, "https://", 8) == 0)
		rest = in + 8;
	else if (strncasecmp(in, "http://", 7) == 0) {
		rest = in + 7;
		http = true;
	} else if (strstr(in, "://"))
		return -EINVAL;
	else
		rest = in;
	size_t len = strlen(rest);
	while (len > 0 && rest[len - 1] == '/')
		len--;
	if (len == 0 || len > 255)
		return -EINVAL;
	char auth[256];
	size_t alen = strcspn(rest, "/");
	if (alen > len)
		alen = len;
	memcpy(auth, rest, alen);
	auth[alen] = '\0';
	if (alen == 0 || strpbrk(rest, "?#@") )
		return -EINVAL;
	if (rest == in && alen != len)
		return -EINVAL; /* a bare domain has no path */
	/* Host without port. */
	char host[256];
	long port;
	if (strchr(auth, ':') || auth[0] == '[') {
		if (split_host_port(auth, host, sizeof(host), &port) < 0 || port == 0)
			return -EINVAL;
	} else
		snprintf(host, sizeof(host), "%s", auth);
	if (auth[0] != '[')
		for (const char *p = host; *p; p++)
			if (!isalnum((unsigned char)*p) && *p != '.' && *p != '-')
				return -EINVAL;
	if (http && !config_host_is_loopback(host))
		return -EPERM;
	char *out;
	if (asprintf(&out, "%s%.*s", http ? "http://" : "https://", (int)len, rest) < 0)
		return -ENOMEM;
	/* Lower-case the authority only. */
	for (char *p = out + (http ? 7 : 8); *p && *p != '/'; p++)
		*p = (char)tolower((unsigned char)*p);
	*ret = out;
	return 0;
}

static bool tenant_name_ok(const char *n)
{
	size_t len = strlen(n);
	if (len == 0 || len > CONFIG_TENANT_NAME_MAX)
		return false;
	for (; *n; n++)
		if (!(islower((unsigned char)*n) || isdigit((unsigned char)*n) || *n == '_' || *n == '-'))
			return false;
	return true;
}

/* ---- gathering raw values ---------------------------------------------- */

static struct raw_tenant *tenant_get(struct loader *l, const char *name, const char *origin)
{
	for (size_t i = 0; i < l->n_t; i++)
		if (strcmp(l->t[i].name, name) == 0)
			return &l->t[i];
	struct raw_tenant *t = realloc(l->t, (l->n_t + 1) * sizeof(*t));
	if (!t) {
		fail(l, "out of memory");
		return NULL;
	}
	l->t = t;
	t = &l->t[l->n_t++];
	memset(t, 0, sizeof(*t));
	snprintf(t->name, sizeof(t->name), "%s", name);
	snprintf(t->origin, sizeof(t->origin), "%s", origin);
	return t;
}

/* Finds the setting index for key in a table; "<name>_file" for secrets. */
static int setting_find(const struct setting *tab, size_t n, const char *key, bool *ret_is_file)
{
	for (size_t i = 0; i < n; i++) {
		if (strcmp(tab[i].name, key) == 0) {
			*ret_is_file = false;
			return (int)i;
		}
		if (tab[i].type == ST_SECRET) {
			size_t nl = strlen(tab[i].name);
			if (strncmp(key, tab[i].name, nl) == 0 && strcmp(key + nl, "_file") == 0) {
				*ret_is_file = true;
				return (int)i;
			}
		}
	}
	return -1;
}

static void unknown_key(struct loader *l, const struct setting *tab, size_t n, const char *key)
{
	const char *cands[2 * D__COUNT + 2];
	char files[D__COUNT][64];
	size_t nc = 0;
	for (size_t i = 0; i < n && nc + 2 < sizeof(cands) / sizeof(cands[0]); i++) {
		cands[nc++] = tab[i].name;
		if (tab[i].type == ST_SECRET) {
			snprintf(files[i], sizeof(files[i]), "%s_file", tab[i].name);
			cands[nc++] = files[i];
		}
	}
	char h[96];
	hint(h, sizeof(h), "'", "'", key, cands, nc);
	fail(l, "%s:%u: unknown key '%s' in [%s]%s", l->file, l->line, key, l->section, h);
}

static int ini_cb(void *user, const char *section, const char *name, const char *value)
{
	struct loader *l = user;
	char origin[ORIGIN_MAX];
	if (l->failed)
		return 0;
	snprintf(origin, sizeof(origin), "%s:%u: key '%s'", l->file, l->line, name);
	if (strcmp(section, "daemon") == 0) {
		bool is_file;
		int i = setting_find(daemon_settings, D__COUNT, name, &is_file);
		if (i < 0) {
			unknown_key(l, daemon_settings, D__COUNT, name);
			return 0;
		}
		if (l->d[i].val && l->d[i].is_file != is_file) {
			fail(l, "%s:%u: key '%s': both '%s' and '%s_file' given in [daemon]; keep one",
			     l->file, l->line, name, daemon_settings[i].name, daemon_settings[i].name);
			return 0;
		}
		raw_set(&l->d[i], value, is_file, l->file_dir, origin);
		return 1;
	}
	if (strncmp(section, "tenant.", 7) == 0) {
		struct raw_tenant *t = tenant_get(l, section + 7, origin);
		if (!t)
			return 0;
		bool is_file;
		int i = setting_find(tenant_settings, T__COUNT, name, &is_file);
		if (i < 0) {
			unknown_key(l, tenant_settings, T__COUNT, name);
			return 0;
		}
		if (t->v[i].val && strncmp(t->v[i].origin, l->file, strlen(l->file)) == 0 &&
		    t->v[i].is_file != is_file) {
			fail(l, "%s:%u: key '%s': both '%s' and '%s_file' given in [%s]; keep one",
			     l->file, l->line, name, tenant_settings[i].name, tenant_settings[i].name, section);
			return 0;
		}
		raw_set(&t->v[i], value, is_file, l->file_dir, origin);
		return 1;
	}
	/* Sections are checked in the reader; this is only reached for a key
	 * before any section. */
	fail(l, "%s:%u: key '%s' outside of a section ([daemon] or [tenant.NAME])", l->file, l->line, name);
	return 0;
}

/* Line reader for ini_parse_stream: counts lines (inih gives no line to the
 * handler) and checks section headers where they are. */
static char *config_line_reader(char *str, int num, void *stream)
{
	struct loader *l = stream;
	if (l->failed)
		return NULL;
	if (!fgets(str, num, l->fp))
		return NULL;
	l->line++;
	size_t len = strlen(str);
	if (len == (size_t)num - 1 && str[len - 1] != '\n' && !feof(l->fp)) {
		fail(l, "%s:%u: line longer than %d bytes", l->file, l->line, num - 2);
		return NULL;
	}
	const char *p = str;
	while (isspace((unsigned char)*p))
		p++;
	if (*p == '[') {
		const char *e = strchr(p, ']');
		if (!e) {
			fail(l, "%s:%u: section header without ']'", l->file, l->line);
			return NULL;
		}
		char sec[64];
		size_t sl = (size_t)(e - p - 1);
		if (sl >= sizeof(sec))
			sl = sizeof(sec) - 1;
		memcpy(sec, p + 1, sl);
		sec[sl] = '\0';
		snprintf(l->section, sizeof(l->section), "%s", sec);
		if (strcmp(sec, "daemon") == 0)
			return str;
		if (strncmp(sec, "tenant.", 7) == 0) {
			if (!tenant_name_ok(sec + 7)) {
				fail(l, "%s:%u: section [%s]: tenant names match [a-z0-9_-]{1,32}",
				     l->file, l->line, sec);
				return NULL;
			}
			char origin[ORIGIN_MAX];
			snprintf(origin, sizeof(origin), "%s:%u: section [%s]", l->file, l->line, sec);
			if (!tenant_get(l, sec + 7, origin))
				return NULL;
			return str;
		}
		static const char *const secs[] = { "daemon", "tenant" };
		char h[96];
		hint(h, sizeof(h), "[", "]", sec, secs, 2);
		if (!h[0] && strncmp(sec, "tenant", 6) == 0)
			snprintf(h, sizeof(h), " (did you mean [tenant.NAME]?)");
		else if (strcmp(h, " (did you mean [tenant]?)") == 0)
			snprintf(h, sizeof(h), " (did you mean [tenant.NAME]?)");
		fail(l, "%s:%u: unknown section [%s]%s", l->file, l->line, sec, h);
		return NULL;
	}
	return str;
}

static int load_file(struct loader *l, const char *path)
{
	l->file = path;
	l->fp = fopen(path, "re");
	if (!l->fp) {
		int r = -errno;
		fail(l, "cannot read config file %s: %s", path, strerror(errno));
		return r;
	}
	char *slash = strrchr(path, '/');
	l->file_dir = slash ? strndup(path, (size_t)(slash - path) + (slash == path)) : strdup(".");
	int r = ini_parse_stream(config_line_reader, l, ini_cb, l);
	fclose(l->fp);
	l->fp = NULL;
	if (l->failed)
		return -EINVAL;
	if (r > 0) {
		fail(l, "%s:%d: syntax error (expected 'key = value' or '[section]')", path, r);
		return -EINVAL;
	}
	if (r < 0) {
		fail(l, "cannot read config file %s", path);
		return -EIO;
	}
	return 0;
}

static const char *env_get(char *const *envp, const char *name)
{
	if (!envp)
		return NULL;
	size_t nl = strlen(name);
	for (; *envp; envp++)
		if (strncmp(*envp, name, nl) == 0 && (*envp)[nl] == '=')
			return *envp + nl + 1;
	return NULL;
}

static void load_env(struct loader *l, char *const *envp)
{
	char origin[ORIGIN_MAX], fname[128];
	for (size_t i = 0; i < D__COUNT; i++) {
		const struct setting *s = &daemon_settings[i];
		if (!s->env)
			continue;
		const char *v = env_get(envp, s->env);
		if (v) {
			snprintf(origin, sizeof(origin), "environment variable %s", s->env);
			raw_set(&l->d[i], v, false, NULL, origin);
		}
		if (s->type == ST_SECRET) {
			snprintf(fname, sizeof(fname), "%s_FILE", s->env);
			const char *fv = env_get(envp, fname);
			if (fv && v) {
				fail(l, "both %s and %s are set; keep one", s->env, fname);
				return;
			}
			if (fv) {
				snprintf(origin, sizeof(origin), "environment variable %s", fname);
				raw_set(&l->d[i], fv, true, NULL, origin);
			}
		}
	}
	struct raw_tenant *t = NULL;
	for (size_t i = 0; i < T__COUNT; i++) {
		const struct setting *s = &tenant_settings[i];
		const char *v = env_get(envp, s->env);
		const char *fv = NULL;
		if (s->type == ST_SECRET) {
			snprintf(fname, sizeof(fname), "%s_FILE", s->env);
			fv = env_get(envp, fname);
			if (fv && v) {
				fail(l, "both %s and %s are set; keep one", s->env, fname);
				return;
			}
		}
		if (!v && !fv)
			continue;
		if (!t && !(t = tenant_get(l, "default", "environment (AUTH0_*)")))
			return;
		snprintf(origin, sizeof(origin), "environment variable %s", v ? s->env : fname);
		raw_set(&t->v[i], v ? v : fv, !v, NULL, origin);
	}
}

static const char *const flag_names[] = {
	"--config", "--listen", "--state-dir", "--max-upload-bytes", "--log-level",
	"--sandbox", "--version", "--help",
};

/* Two passes over argv: the first finds --config/--help/--version (so the
 * file is read before the flags override it), the second applies. */
static int load_flags(struct loader *l, int argc, char *const *argv, bool apply)
{
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		char name[64];
		const char *val = NULL;
		if (strncmp(a, "--", 2) != 0 || a[2] == '\0') {
			fail(l, "unexpected argument '%s' (see --help)", a);
			return -EINVAL;
		}
		const char *eq = strchr(a, '=');
		size_t nl = eq ? (size_t)(eq - a) : strlen(a);
		if (nl >= sizeof(name)) {
			fail(l, "unknown option '%.40s...'", a);
			return -EINVAL;
		}
		memcpy(name, a, nl);
		name[nl] = '\0';
		if (eq)
			val = eq + 1;
		bool boolean = strcmp(name, "--sandbox") == 0 || strcmp(name, "--version") == 0 ||
			       strcmp(name, "--help") == 0;
		bool known = boolean;
		for (size_t k = 0; k < sizeof(flag_names) / sizeof(flag_names[0]); k++)
			if (strcmp(name, flag_names[k]) == 0)
				known = true;
		if (!known) {
			char h[96];
			hint(h, sizeof(h), "'", "'", name, flag_names,
			     sizeof(flag_names) / sizeof(flag_names[0]));
			fail(l, "unknown option '%s'%s", name, h);
			return -EINVAL;
		}
		if (boolean) {
			if (val) {
				fail(l, "option '%s' takes no value", name);
				return -EINVAL;
			}
			if (!apply) {
				if (strcmp(name, "--help") == 0)
					return CONFIG_EXIT_HELP;
				if (strcmp(name, "--version") == 0)
					return CONFIG_EXIT_VERSION;
			}
			if (strcmp(name, "--sandbox") == 0)
				l->sandbox = true;
			continue;
		}
		if (!val) {
			if (i + 1 >= argc) {
				fail(l, "option '%s' needs a value", name);
				return -EINVAL;
			}
			val = argv[++i];
		}
		if (strcmp(name, "--config") == 0) {
			if (!apply)
				l->config_flag = val;
			continue;
		}
		if (!apply)
			continue;
		for (size_t k = 0; k < D__COUNT; k++) {
			if (daemon_settings[k].flag && strcmp(daemon_settings[k].flag, name) == 0) {
				char origin[ORIGIN_MAX];
				snprintf(origin, sizeof(origin), "option %s", name);
				raw_set(&l->d[k], val, false, NULL, origin);
			}
		}
	}
	return 0;
}

/* ---- parsing the final values ------------------------------------------ */

static int read_secret(struct loader *l, const struct raw *r, struct secret **ret)
{
	int e;
	if (!r->is_file) {
		e = secret_new(r->val, strlen(r->val), ret);
		if (e < 0)
			fail(l, "%s: empty secret", r->origin);
		return e;
	}
	char *path = NULL;
	if (r->val[0] != '/' && r->base_dir) {
		if (asprintf(&path, "%s/%s", r->base_dir, r->val) < 0)
			return -ENOMEM;
	} else if (!(path = strdup(r->val)))
		return -ENOMEM;
	e = secret_from_file(path, ret);
	if (e < 0)
		fail(l, "%s: cannot read secret file %s: %s", r->origin, path,
		     e == -EINVAL ? "empty file" : strerror(-e));
	free(path);
	return e;
}

static int parse_number(struct loader *l, const struct setting *s, const struct raw *r, uint64_t *ret)
{
	int e;
	const char *what;
	if (s->type == ST_SIZE) {
		e = config_parse_size(r->val, ret);
		what = "a size (bytes, or with K/M/G)";
	} else if (s->type == ST_DURATION) {
		e = config_parse_duration(r->val, ret);
		what = "a duration (seconds, or with s/m/h/d)";
	} else {
		const char *end;
		e = parse_u64(r->val, ret, &end);
		if (e == 0 && *end)
			e = -EINVAL;
		what = "a whole number";
	}
	if (e < 0) {
		fail(l, "%s: '%s' is not %s", r->origin, r->val, what);
		return -EINVAL;
	}
	/* chunk_bytes 0 (the default) means the largest the splitter accepts. */
	if (*ret == 0 && s == &daemon_settings[D_CHUNK_BYTES])
		return 0;
	if (*ret < s->min || *ret > s->max) {
		fail(l, "%s: %s must be between %" PRIu64 " and %" PRIu64 ", got %s", r->origin,
		     s->name, s->min, s->max, r->val);
		return -EINVAL;
	}
	return 0;
}

static int default_state_dir(char *const *envp, char **ret)
{
	const char *v = env_get(envp, "STATE_DIRECTORY");
	if (v && *v) {
		size_t n = strcspn(v, ":");
		*ret = strndup(v, n);
	} else if (geteuid() == 0) {
		*ret = strdup("/var/lib/auth0-importd");
	} else {
		const char *x = env_get(envp, "XDG_STATE_HOME");
		const char *home = env_get(envp, "HOME");
		if (x && *x == '/') {
			if (asprintf(ret, "%s/auth0-importd", x) < 0)
				return -ENOMEM;
		} else if (home && *home) {
			if (asprintf(ret, "%s/.local/state/auth0-importd", home) < 0)
				return -ENOMEM;
		} else
			return -EINVAL;
	}
	return *ret ? 0 : -ENOMEM;
}

static char *absolute(const char *p)
{
	if (p[0] == '/')
		return strdup(p);
	char cwd[PATH_MAX];
	char *out;
	if (!getcwd(cwd, sizeof(cwd)) || asprintf(&out, "%s/%s", cwd, p) < 0)
		return NULL;
	return out;
}

static int build_tenant(struct loader *l, const struct raw_tenant *rt, struct tenant_config *t)
{
	uint64_t u;
	snprintf(t->name, sizeof(t->name), "%s", rt->name);
	t->max_concurrent_jobs = 2;
	const struct raw *r = &rt->v[T_DOMAIN];
	if (!r->val) {
		fail(l, "%s: tenant '%s' has no domain", rt->origin, rt->name);
		return -EINVAL;
	}
	int e = config_normalize_base_url(r->val, &t->base_url);
	if (e < 0) {
		fail(l, "%s: '%s' is not a domain or base URL%s", r->origin, r->val,
		     e == -EPERM ? " (http:// is allowed for loopback hosts only)" : "");
		return -EINVAL;
	}
	if (rt->v[T_CLIENT_ID].val && !(t->client_id = strdup(rt->v[T_CLIENT_ID].val)))
		return -ENOMEM;
	if (rt->v[T_CLIENT_SECRET].val && (e = read_secret(l, &rt->v[T_CLIENT_SECRET], &t->client_secret)) < 0)
		return e;
	if (rt->v[T_AUDIENCE].val && !(t->audience = strdup(rt->v[T_AUDIENCE].val)))
		return -ENOMEM;
	if (rt->v[T_MAX_JOBS].val) {
		if (parse_number(l, &tenant_settings[T_MAX_JOBS], &rt->v[T_MAX_JOBS], &u) < 0)
			return -EINVAL;
		t->max_concurrent_jobs = (unsigned)u;
	}
	if ((r = &rt->v[T_MAX_RPS])->val) {
		char *end;
		errno = 0;
		double d = strtod(r->val, &end);
		if (errno || *end || end == r->val || !(d >= 0 && d <= 100000)) {
			fail(l, "%s: '%s' is not a number of requests per second (0-100000)", r->origin, r->val);
			return -EINVAL;
		}
		t->max_rps = d;
	}
	return 0;
}

static int tenant_cmp(const void *a, const void *b)
{
	return strcmp(((const struct tenant_config *)a)->name, ((const struct tenant_config *)b)->name);
}

static int build(struct loader *l, char *const *envp, struct config *c)
{
	uint64_t u;
	int e;
	/* Defaults fill what nobody set. */
	for (size_t i = 0; i < D__COUNT; i++)
		if (!l->d[i].val && daemon_settings[i].def) {
			char origin[ORIGIN_MAX];
			snprintf(origin, sizeof(origin), "default of %s", daemon_settings[i].name);
			raw_set(&l->d[i], daemon_settings[i].def, false, NULL, origin);
		}
	c->sandbox = l->sandbox;
	if (!(c->listen = strdup(l->d[D_LISTEN].val)))
		return -ENOMEM;
	bool local = false;
	if (listen_check(c->listen, &local) < 0) {
		fail(l, "%s: '%s' is not a listen address (127.0.0.1:PORT, [::1]:PORT or unix:/path)",
		     l->d[D_LISTEN].origin, c->listen);
		return -EINVAL;
	}
	if (l->d[D_STATE_DIR].val)
		c->state_dir = absolute(l->d[D_STATE_DIR].val);
	else if ((e = default_state_dir(envp, &c->state_dir)) < 0) {
		fail(l, "no state directory: set --state-dir, IMPORTD_STATE_DIR or HOME");
		return -EINVAL;
	}
	if (!c->state_dir)
		return -ENOMEM;
	uint64_t *nums[] = {
		[D_MAX_UPLOAD] = &c->max_upload_bytes, [D_MAX_USERS] = &c->max_users_per_import,
		[D_CHUNK_BYTES] = &c->chunk_bytes, [D_SPOOL_RETENTION] = &c->spool_retention,
		[D_IDEMPOTENCY_TTL] = &c->idempotency_ttl, [D_SHUTDOWN_TIMEOUT] = &c->shutdown_timeout,
	};
	for (size_t i = D_MAX_UPLOAD; i <= D_SHUTDOWN_TIMEOUT; i++) {
		if (parse_number(l, &daemon_settings[i], &l->d[i], &u) < 0)
			return -EINVAL;
		*nums[i] = u;
	}
	/* notify_allowed_hosts: comma-separated, empty = loopback only. */
	const char *h = l->d[D_NOTIFY_HOSTS].val;
	while (h && *h) {
		size_t n = strcspn(h, ",");
		const char *s = h;
		while (n && isspace((unsigned char)*s)) {
			s++;
			n--;
		}
		while (n && isspace((unsigned char)s[n - 1]))
			n--;
		if (n) {
			char **v = realloc(c->notify_allowed_hosts, (c->n_notify_allowed_hosts + 1) * sizeof(*v));
			if (!v)
				return -ENOMEM;
			c->notify_allowed_hosts = v;
			if (!(v[c->n_notify_allowed_hosts] = strndup(s, n)))
				return -ENOMEM;
			for (char *p = v[c->n_notify_allowed_hosts]; *p; p++)
				*p = (char)tolower((unsigned char)*p);
			c->n_notify_allowed_hosts++;
		}
		h += strcspn(h, ",");
		if (*h == ',')
			h++;
	}
	if (l->d[D_API_TOKEN].val && (e = read_secret(l, &l->d[D_API_TOKEN], &c->api_token)) < 0)
		return e == -ENOMEM ? e : -EINVAL;
	if (log_level_from_string(l->d[D_LOG_LEVEL].val, &c->log_level) < 0) {
		fail(l, "%s: '%s' is not a log level (debug, info, warn, error)", l->d[D_LOG_LEVEL].origin,
		     l->d[D_LOG_LEVEL].val);
		return -EINVAL;
	}
	if (strcmp(l->d[D_LOG_FORMAT].val, "text") == 0)
		c->log_format = LOG_FORMAT_TEXT;
	else if (strcmp(l->d[D_LOG_FORMAT].val, "json") == 0)
		c->log_format = LOG_FORMAT_JSON;
	else {
		fail(l, "%s: '%s' is not a log format (text, json)", l->d[D_LOG_FORMAT].origin,
		     l->d[D_LOG_FORMAT].val);
		return -EINVAL;
	}
	if (!local && !c->api_token) {
		fail(l, "%s: listening on %s (not loopback) needs a control-API token "
			"(api_token, IMPORTD_API_TOKEN or IMPORTD_API_TOKEN_FILE)",
		     l->d[D_LISTEN].origin, c->listen);
		return -EINVAL;
	}
	if (l->n_t) {
		c->tenants = calloc(l->n_t, sizeof(*c->tenants));
		if (!c->tenants)
			return -ENOMEM;
		for (size_t i = 0; i < l->n_t; i++) {
			c->n_tenants++;
			if ((e = build_tenant(l, &l->t[i], &c->tenants[i])) < 0)
				return e;
		}
		qsort(c->tenants, c->n_tenants, sizeof(*c->tenants), tenant_cmp);
	}
	return 0;
}

static void config_free(struct config *c)
{
	if (!c)
		return;
	free(c->config_path);
	free(c->listen);
	free(c->state_dir);
	for (size_t i = 0; i < c->n_notify_allowed_hosts; i++)
		free(c->notify_allowed_hosts[i]);
	free(c->notify_allowed_hosts);
	secret_free(c->api_token);
	for (size_t i = 0; i < c->n_tenants; i++) {
		free(c->tenants[i].base_url);
		free(c->tenants[i].client_id);
		secret_free(c->tenants[i].client_secret);
		free(c->tenants[i].audience);
	}
	free(c->tenants);
	free(c);
}

int config_load(int argc, char *const *argv, char *const *envp, const struct config *previous,
		struct config **ret, char *err, size_t errlen)
{
	struct loader l = { .err = err, .errlen = errlen };
	struct config *c = NULL;
	int r;
	(void)previous;
	if (errlen)
		err[0] = '\0';
	r = load_flags(&l, argc, argv, false);
	if (r != 0)
		goto out;
	c = calloc(1, sizeof(*c));
	if (!c) {
		r = -ENOMEM;
		goto out;
	}
	c->refs = 1;
	if (l.config_flag) {
		if (!(c->config_path = absolute(l.config_flag))) {
			r = -ENOMEM;
			goto out;
		}
		if ((r = load_file(&l, c->config_path)) < 0)
			goto out;
	}
	load_env(&l, envp);
	if (l.failed) {
		r = -EINVAL;
		goto out;
	}
	if ((r = load_flags(&l, argc, argv, true)) < 0)
		goto out;
	r = build(&l, envp, c);
	if (r == 0 && l.failed)
		r = -EINVAL;
out:
	if (r < 0 && !l.failed && errlen)
		snprintf(err, errlen, "config: %s", strerror(-r));
	for (size_t i = 0; i < D__COUNT; i++)
		raw_clear(&l.d[i]);
	for (size_t i = 0; i < l.n_t; i++)
		for (size_t k = 0; k < T__COUNT; k++)
			raw_clear(&l.t[i].v[k]);
	free(l.t);
	free(l.file_dir);
	if (r != 0) {
		config_free(c);
		return r;
	}
	*ret = c;
	return 0;
}

const char *config_usage(void)
{
	return "Usage: auth0-importd [--config FILE] [--listen ADDR] [--state-dir DIR]\n"
	       "                     [--max-upload-bytes N] [--sandbox]\n"
	       "                     [--log-level debug|info|warn|error] [--version] [--help]\n"
	       "       auth0-importd check FILE|- [options]\n"
	       "\n"
	       "Imports users into Auth0 in bulk through a local REST API.\n"
	       "\n"
	       "  --config FILE           INI file with [daemon] and [tenant.NAME] sections\n"
	       "  --listen ADDR           127.0.0.1:PORT (default 127.0.0.1:8484), [::1]:PORT,\n"
	       "                          unix:/path; other addresses need an API token\n"
	       "  --state-dir DIR         durable queue and spool (created 0700)\n"
	       "  --max-upload-bytes N    largest accepted upload (K/M/G suffixes; default 2G)\n"
	       "  --sandbox               run against the bundled Auth0 emulator\n"
	       "  --log-level LEVEL       debug, info, warn or error (default info)\n"
	       "  --version               print the version and exit\n"
	       "  --help                  print this text and exit\n"
	       "\n"
	       "Environment: IMPORTD_LISTEN, IMPORTD_STATE_DIR, IMPORTD_MAX_UPLOAD_BYTES,\n"
	       "IMPORTD_MAX_USERS, IMPORTD_CHUNK_BYTES, IMPORTD_SPOOL_RETENTION,\n"
	       "IMPORTD_API_TOKEN[_FILE], IMPORTD_LOG_LEVEL, IMPORTD_LOG_FORMAT,\n"
	       "AUTH0_DOMAIN, AUTH0_CLIENT_ID, AUTH0_CLIENT_SECRET[_FILE], AUTH0_AUDIENCE,\n"
	       "AUTH0_MAX_CONCURRENT_JOBS, AUTH0_MAX_RPS (tenant 'default').\n"
	       "A flag beats the environment, which beats the file.\n";
}

struct config *config_ref(struct config *cfg)
{
	if (cfg)
		cfg->refs++;
	return cfg;
}

void config_unref(struct config *cfg)
{
	if (cfg && --cfg->refs == 0)
		config_free(cfg);
}

const struct tenant_config *config_tenant(const struct config *cfg, const char *name)
{
	for (size_t i = 0; cfg && i < cfg->n_tenants; i++)
		if (strcmp(cfg->tenants[i].name, name) == 0)
			return &cfg->tenants[i];
	return NULL;
}

int config_restart_needed(const struct config *o, const struct config *n, char *buf, size_t buflen)
{
	int count = 0;
	if (buflen)
		buf[0] = '\0';
	if (strcmp(o->listen, n->listen) != 0) {
		snprintf(buf, buflen, "listen");
		count++;
	}
	if (strcmp(o->state_dir, n->state_dir) != 0) {
		size_t used = strlen(buf);
		snprintf(buf + used, buflen - used, "%sstate_dir", count ? ", " : "");
		count++;
	}
	return count;
}
