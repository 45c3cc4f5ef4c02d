/*
 * config — the daemon's settings and tenants, from flags, environment and
 * the INI file (API.md "Settings"), as ONE table in config.c.
 *
 * Terms:
 *   setting   a row of the table: name, type, bounds, default, reloadable,
 *             env var, flag. The [daemon] section uses the names verbatim.
 *   tenant    an Auth0 tenant the daemon may import into: a [tenant.NAME]
 *             section, or the environment (AUTH0_*) for tenant "default".
 *   base URL  how a tenant is reached: "https://" + bare domain, or a full
 *             URL with the trailing "/" removed; "http://" only for loopback
 *             hosts (127.0.0.0/8, ::1, localhost).
 *
 * Precedence: flag > environment > file > default. The environment fills or
 * overrides tenant "default".
 *
 * Units: sizes in bytes (suffixes K/M/G = 1024^n), durations in seconds
 * (suffixes s/m/h/d). Every setting has bounds; out of bounds is an error.
 *
 * Errors: config_load() fills `err` with one line naming the file, line and
 * key ("/etc/x.conf:12: unknown key 'listn' in [daemon] (did you mean
 * 'listen'?)") or the flag/env var, and returns -EINVAL. The caller exits 2
 * at start, or keeps the old config at SIGHUP.
 *
 * Lifetime: a struct config is immutable once loaded; a reload builds a new
 * one and swaps it in. Code that keeps a config pointer across a loop
 * iteration must take a reference (config_ref/config_unref); the owner of the
 * "current" config holds one reference.
 *
 * Usage:
 *     struct config *cfg;
 *     char err[512];
 *     int r = config_load(argc, argv, environ, NULL, &cfg, err, sizeof(err));
 *     if (r == CONFIG_EXIT_HELP || r == CONFIG_EXIT_VERSION) ...print, exit 0
 *     if (r < 0) { fprintf(stderr, "auth0-importd: %s\n", err); exit 2; }
 *     const struct tenant_config *t = config_tenant(cfg, "default");
 *     ...
 *     config_unref(cfg);
 */
#pragma once

#include "daemon/log.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct secret;

/* Tenant names match [a-z0-9_-]{1,32}. */
#define CONFIG_TENANT_NAME_MAX 32
/* Auth0's limit for one import request body (AUTH0.md). chunk_bytes
 * (0: the largest) is checked at load against the splitter's real bounds:
 * USERS_CHUNK_BUDGET_MIN to this minus USERS_MULTIPART_OVERHEAD
 * (daemon/users/users.h), so no value passes that every import would then
 * fail on. */
#define CONFIG_AUTH0_REQUEST_MAX 512000u

struct tenant_config {
	char name[CONFIG_TENANT_NAME_MAX + 1];
	char *base_url;                /* "https://x.eu.auth0.com", no trailing '/' */
	char *client_id;               /* NULL when not configured */
	struct secret *client_secret;  /* NULL when not configured; never print */
	char *audience;                /* NULL: "<base_url>/api/v2/" */
	unsigned max_concurrent_jobs;  /* 1..100, default 2 */
	double max_rps;                /* requests/s ceiling; 0 = none */
};

struct config {
	/* --- process (not reloadable: a change is logged as needing restart) */
	char *config_path;             /* --config, absolute; NULL when none */
	char *listen;                  /* "127.0.0.1:8484", "[::1]:0", "unix:/p" */
	char *state_dir;               /* absolute */
	bool sandbox;                  /* --sandbox */

	/* --- reloadable limits */
	uint64_t max_upload_bytes;     /* bytes, default 2G */
	uint64_t max_users_per_import; /* default 10000000 */
	uint64_t chunk_bytes;          /* bytes; 0 = automatic (the largest that
	                                  fits one 512000-byte request) */
	uint64_t spool_retention;      /* seconds, default 7d */
	uint64_t idempotency_ttl;      /* seconds, default 24h */
	uint64_t shutdown_timeout;     /* seconds, default 5 */
	/* Hosts a notify_url may name. n == 0 means loopback only (the
	 * default). Comma-separated in file/env; exact host names, lower case. */
	char **notify_allowed_hosts;
	size_t n_notify_allowed_hosts;

	struct secret *api_token;      /* NULL: no token (loopback only) */
	enum log_level log_level;
	enum log_format log_format;

	struct tenant_config *tenants; /* sorted by name */
	size_t n_tenants;

	int refs;                      /* private: config_ref/config_unref */
};

/* Positive results of config_load that are not a config: the caller prints
 * config_usage() / the version and exits 0. */
#define CONFIG_EXIT_HELP    1
#define CONFIG_EXIT_VERSION 2

/*
 * Builds the config from the command line (argv[0] skipped), the environment
 * (envp, NULL-terminated "K=V"; NULL means none) and the file named by
 * --config. `previous` (may be NULL) is used at SIGHUP: argv is the original
 * command line again, so flags keep beating the file.
 * Returns 0 and *ret (refs = 1), CONFIG_EXIT_HELP, CONFIG_EXIT_VERSION, or
 * -EINVAL / -ENOENT / -EACCES with `err` set (also for an unreadable secret
 * file). -ENOMEM.
 */
int config_load(int argc, char *const *argv, char *const *envp,
		const struct config *previous, struct config **ret,
		char *err, size_t errlen);

/* The --help text. */
const char *config_usage(void);

struct config *config_ref(struct config *cfg);
void config_unref(struct config *cfg);

/* NULL when no tenant has that name. */
const struct tenant_config *config_tenant(const struct config *cfg, const char *name);

/* true when host (a literal address or name, no port, IPv6 without
 * brackets) is loopback: 127.0.0.0/8, ::1, "localhost". */
bool config_host_is_loopback(const char *host);

/* true when a listen address is loopback or a unix socket. */
bool config_listen_is_local(const char *listen);

/* Base URL normalisation (exposed for tests and the sandbox option):
 * "example.eu.auth0.com" → "https://example.eu.auth0.com";
 * "http://127.0.0.1:9000/" → "http://127.0.0.1:9000"; http:// to a
 * non-loopback host, a path, a query, spaces → -EINVAL. *ret is malloc'd. */
int config_normalize_base_url(const char *in, char **ret);

/* Parsers for sizes ("2G", "512K", "1000") and durations ("7d", "90s",
 * "5") with overflow checks. 0 or -EINVAL/-ERANGE. */
int config_parse_size(const char *s, uint64_t *ret);
int config_parse_duration(const char *s, uint64_t *ret);

/* Lists the settings that differ between old and new and are not
 * reloadable (listen, state_dir), as "listen, state_dir" in buf; returns
 * the count. */
int config_restart_needed(const struct config *old_cfg, const struct config *new_cfg,
			  char *buf, size_t buflen);
