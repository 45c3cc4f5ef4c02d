/*
 * auth0-sandbox — an Auth0 Management API emulator for tests and
 * `auth0-importd --sandbox` rehearsals (API.md, "The sandbox emulator's
 * command line"). Loopback only. Without --client-secret, the secret comes
 * from the environment variable SANDBOX_CLIENT_SECRET, else it is random. Prints one JSON ready line on stdout, then
 * logs to stderr; SIGTERM or SIGINT stops it with exit 0. Exit 2: bad
 * command line; exit 1: cannot listen.
 */
#include "build_config.h"
#include "daemon/log.h"
#include "sandbox/server.h"
#include "sandbox/tenant.h"
#include "sandbox/util.h"

#include <arpa/inet.h>
#include <errno.h>
#include <json-c/json.h>
#include <math.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <unistd.h>

static const char usage[] =
	"usage: auth0-sandbox [--listen 127.0.0.1:PORT] [--client-id ID] [--client-secret SECRET]\n"
	"                     [--scopes LIST] [--token-ttl SECONDS] [--max-active-jobs N]\n"
	"                     [--rate N] [--burst N] [--ms-per-user N] [--retention SECONDS]\n"
	"                     [--fault-5xx P] [--fault-429 P] [--fault-reset P] [--fault-slow P:SECONDS]\n"
	"                     [--retry-after on|off] [--seed N] [--export-url-ttl SECONDS]\n"
	"                     [--log-level debug|info|warn|error] [--exit-with-parent]\n";

struct cli {
	struct tenant_options opt;
	char listen[128];
	char *log_level;
	bool have_seed;
	unsigned long long seed;
	bool exit_with_parent;
};

static int bad_arg(const char *name, const char *value)
{
	fprintf(stderr, "auth0-sandbox: bad value for --%s: '%s'\n%s", name, value, usage);
	return -EINVAL;
}

static int parse_double(const char *name, const char *v, double min, double max, double *ret)
{
	char *end;
	errno = 0;
	double d = strtod(v, &end);
	if (errno || end == v || *end || !isfinite(d) || d < min || d > max)
		return bad_arg(name, v);
	*ret = d;
	return 0;
}

static int parse_long(const char *name, const char *v, long min, long max, long *ret)
{
	char *end;
	errno = 0;
	long n = strtol(v, &end, 10);
	if (errno || end == v || *end || n < min || n > max)
		return bad_arg(name, v);
	*ret = n;
	return 0;
}

static int parse_args(int argc, char **argv, struct cli *c)
{
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
			fputs(usage, stdout);
			exit(0);
		}
		if (strcmp(a, "--version") == 0) {
			printf("auth0-sandbox %s\n", IMPORTD_VERSION);
			exit(0);
		}
		if (strcmp(a, "--exit-with-parent") == 0) {
			/* a supervisor (auth0-importd --sandbox) going away takes us along */
			c->exit_with_parent = true;
			continue;
		}
		if (strncmp(a, "--", 2) != 0) {
			fprintf(stderr, "auth0-sandbox: unexpected argument '%s'\n%s", a, usage);
			return -EINVAL;
		}
		char name[64];
		const char *v;
		const char *eq = strchr(a, '=');
		if (eq) {
			snprintf(name, sizeof(name), "%.*s", (int)(eq - a - 2), a + 2);
			v = eq + 1;
		} else {
			snprintf(name, sizeof(name), "%s", a + 2);
			if (i + 1 >= argc) {
				fprintf(stderr, "auth0-sandbox: --%s needs a value\n%s", name, usage);
				return -EINVAL;
			}
			v = argv[++i];
		}
		struct tenant_options *o = &c->opt;
		long n;
		int r = 0;
		if (strcmp(name, "listen") == 0) {
			snprintf(c->listen, sizeof(c->listen), "%s", v);
		} else if (strcmp(name, "client-id") == 0) {
			if (!*v)
				return bad_arg(name, v);
			o->client_id = strdup(v);
		} else if (strcmp(name, "client-secret") == 0) {
			if (!*v)
				return bad_arg(name, v);
			o->client_secret = strdup(v);
		} else if (strcmp(name, "scopes") == 0) {
			o->scopes = strdup(v);
		} else if (strcmp(name, "token-ttl") == 0) {
			r = parse_long(name, v, 1, 2592000, &o->token_ttl);
		} else if (strcmp(name, "max-active-jobs") == 0) {
			r = parse_long(name, v, 1, 1000, &n);
			o->max_active_jobs = (int)n;
		} else if (strcmp(name, "rate") == 0) {
			r = parse_double(name, v, 0.001, 1e6, &o->rate);
		} else if (strcmp(name, "burst") == 0) {
			r = parse_long(name, v, 1, 1000000, &n);
			o->burst = (int)n;
		} else if (strcmp(name, "ms-per-user") == 0) {
			r = parse_double(name, v, 0, 3600000, &o->ms_per_user);
		} else if (strcmp(name, "retention") == 0) {
			r = parse_long(name, v, 0, 30L * 86400, &o->retention);
		} else if (strcmp(name, "export-url-ttl") == 0) {
			r = parse_long(name, v, 0, 86400, &o->export_url_ttl);
		} else if (strcmp(name, "fault-5xx") == 0) {
			r = parse_double(name, v, 0, 1, &o->fault_5xx);
		} else if (strcmp(name, "fault-429") == 0) {
			r = parse_double(name, v, 0, 1, &o->fault_429);
		} else if (strcmp(name, "fault-reset") == 0) {
			r = parse_double(name, v, 0, 1, &o->fault_reset);
		} else if (strcmp(name, "fault-slow") == 0) {
			char p[64];
			const char *colon = strchr(v, ':');
			if (!colon || (size_t)(colon - v) >= sizeof(p))
				return bad_arg(name, v);
			snprintf(p, sizeof(p), "%.*s", (int)(colon - v), v);
			r = parse_double(name, p, 0, 1, &o->fault_slow);
			if (r == 0)
				r = parse_double(name, colon + 1, 0, 600, &o->slow_seconds);
		} else if (strcmp(name, "retry-after") == 0) {
			if (strcmp(v, "on") == 0)
				o->retry_after = true;
			else if (strcmp(v, "off") == 0)
				o->retry_after = false;
			else
				return bad_arg(name, v);
		} else if (strcmp(name, "seed") == 0) {
			char *end;
			errno = 0;
			c->seed = strtoull(v, &end, 10);
			if (errno || end == v || *end)
				return bad_arg(name, v);
			c->have_seed = true;
		} else if (strcmp(name, "log-level") == 0) {
			c->log_level = strdup(v);
		} else {
			fprintf(stderr, "auth0-sandbox: unknown option --%s\n%s", name, usage);
			return -EINVAL;
		}
		if (r < 0)
			return r;
	}
	return 0;
}

/* HOST:PORT or [V6]:PORT, loopback only. */
static int parse_listen(const char *s, struct sockaddr_storage *ret, socklen_t *ret_len,
			bool *ret_v6)
{
	char host[64];
	const char *colon;
	if (s[0] == '[') {
		const char *close = strchr(s, ']');
		if (!close || close[1] != ':' || (size_t)(close - s - 1) >= sizeof(host))
			return -EINVAL;
		snprintf(host, sizeof(host), "%.*s", (int)(close - s - 1), s + 1);
		colon = close + 1;
	} else {
		colon = strrchr(s, ':');
		if (!colon || (size_t)(colon - s) >= sizeof(host))
			return -EINVAL;
		snprintf(host, sizeof(host), "%.*s", (int)(colon - s), s);
	}
	char *end;
	long port = strtol(colon + 1, &end, 10);
	if (*end || end == colon + 1 || port < 0 || port > 65535)
		return -EINVAL;
	memset(ret, 0, sizeof(*ret));
	if (strcmp(host, "localhost") == 0)
		snprintf(host, sizeof(host), "127.0.0.1");
	struct sockaddr_in *a4 = (struct sockaddr_in *)ret;
	struct sockaddr_in6 *a6 = (struct sockaddr_in6 *)ret;
	if (inet_pton(AF_INET, host, &a4->sin_addr) == 1) {
		if ((ntohl(a4->sin_addr.s_addr) >> 24) != 127)
			return -EPERM;
		a4->sin_family = AF_INET;
		a4->sin_port = htons((uint16_t)port);
		*ret_len = sizeof(*a4);
		*ret_v6 = false;
		return 0;
	}
	if (inet_pton(AF_INET6, host, &a6->sin6_addr) == 1) {
		if (!IN6_IS_ADDR_LOOPBACK(&a6->sin6_addr))
			return -EPERM;
		a6->sin6_family = AF_INET6;
		a6->sin6_port = htons((uint16_t)port);
		*ret_len = sizeof(*a6);
		*ret_v6 = true;
		return 0;
	}
	return -EPERM;
}

static char *random_string(size_t n)
{
	char *s = malloc(n + 1);
	if (s)
		sbx_rand_alnum(s, n);
	return s;
}

static void print_ready(const struct tenant *t)
{
	json_object *o = json_object_new_object();
	json_object_object_add(o, "base_url", json_object_new_string(t->base_url));
	json_object_object_add(o, "client_id", json_object_new_string(t->opt.client_id));
	json_object_object_add(o, "client_secret", json_object_new_string(t->opt.client_secret));
	json_object *list = json_object_new_array();
	for (int i = 0; i < TENANT_CONNECTIONS; i++) {
		const struct connection *c = &tenant_connections[i];
		json_object *co = json_object_new_object();
		json_object_object_add(co, "id", json_object_new_string(c->id));
		json_object_object_add(co, "name", json_object_new_string(c->name));
		json_object_object_add(co, "strategy", json_object_new_string(c->strategy));
		json_object_object_add(co, "enabled", json_object_new_boolean(c->enabled));
		json_object_array_add(list, co);
	}
	json_object_object_add(o, "connections", list);
	printf("%s\n", json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN |
						      JSON_C_TO_STRING_NOSLASHESCAPE));
	fflush(stdout);
	json_object_put(o);
}

int main(int argc, char **argv)
{
	struct cli c = {
		.opt = {
			.token_ttl = 86400, .max_active_jobs = 2, .rate = 2, .burst = 10,
			.ms_per_user = 2, .retention = 86400, .export_url_ttl = 60,
		},
	};
	snprintf(c.listen, sizeof(c.listen), "127.0.0.1:0");
	int rc = 2, fd = -1;
	struct tenant *t = NULL;
	struct MHD_Daemon *d = NULL;

	pid_t parent = getppid();
	if (parse_args(argc, argv, &c) < 0)
		goto out;
	if (c.exit_with_parent) {
		/* SIGTERM when the parent dies; it may already have died */
		prctl(PR_SET_PDEATHSIG, SIGTERM);
		if (getppid() != parent)
			goto out;
	}
	if (c.log_level) {
		enum log_level lv;
		if (log_level_from_string(c.log_level, &lv) < 0) {
			bad_arg("log-level", c.log_level);
			goto out;
		}
		log_set_level(lv);
	}
	struct sockaddr_storage addr;
	socklen_t alen = 0;
	bool v6 = false;
	int r = parse_listen(c.listen, &addr, &alen, &v6);
	if (r == -EPERM) {
		fprintf(stderr, "auth0-sandbox: --listen %s: the emulator listens on loopback only\n",
			c.listen);
		goto out;
	} else if (r < 0) {
		bad_arg("listen", c.listen);
		goto out;
	}
	{
		/* ids and secrets are random (from the clock unless --seed) */
		uint64_t seed = c.have_seed ? (uint64_t)c.seed :
			(uint64_t)sbx_now_ms() ^ ((uint64_t)getpid() << 32);
		sbx_rand_seed(seed);
	}
	if (!c.opt.client_id)
		c.opt.client_id = random_string(32);
	if (!c.opt.client_secret) {
		/* a supervisor passes it here rather than on the command line,
		 * which every local user can read */
		const char *env = getenv("SANDBOX_CLIENT_SECRET");
		c.opt.client_secret = env && *env ? strdup(env) : random_string(64);
		unsetenv("SANDBOX_CLIENT_SECRET");
	}
	if (!c.opt.scopes)
		c.opt.scopes = strdup("create:users read:users delete:users");

	rc = 1;
	fd = socket(addr.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	int one = 1;
	if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0 ||
	    bind(fd, (struct sockaddr *)&addr, alen) < 0 || listen(fd, 128) < 0) {
		log_error("sandbox", "cannot listen on %s: %s", c.listen, strerror(errno));
		goto out;
	}
	alen = sizeof(addr);
	getsockname(fd, (struct sockaddr *)&addr, &alen);
	char base[128], ip[INET6_ADDRSTRLEN];
	if (v6) {
		struct sockaddr_in6 *a6 = (struct sockaddr_in6 *)&addr;
		inet_ntop(AF_INET6, &a6->sin6_addr, ip, sizeof(ip));
		snprintf(base, sizeof(base), "http://[%s]:%u", ip, ntohs(a6->sin6_port));
	} else {
		struct sockaddr_in *a4 = (struct sockaddr_in *)&addr;
		inet_ntop(AF_INET, &a4->sin_addr, ip, sizeof(ip));
		snprintf(base, sizeof(base), "http://%s:%u", ip, ntohs(a4->sin_port));
	}

	/* signals: handled by sigwait here; every other thread has them blocked */
	sigset_t set;
	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	pthread_sigmask(SIG_BLOCK, &set, NULL);
	signal(SIGPIPE, SIG_IGN);

	t = calloc(1, sizeof(*t));
	if (!t || tenant_init(t, &c.opt, base) < 0) {
		log_error("sandbox", "out of memory");
		goto out;
	}
	if (server_start(t, fd, v6, &d) < 0) {
		log_error("sandbox", "cannot start the HTTP server on %s", base);
		goto out;
	}
	print_ready(t);
	log_info("sandbox", "Auth0 emulator serving at %s (rate %g/s, burst %d, %g ms per user, %d active jobs)",
		 base, c.opt.rate, c.opt.burst, c.opt.ms_per_user, c.opt.max_active_jobs);
	int sig = 0;
	sigwait(&set, &sig);
	log_info("sandbox", "stopping (signal %d)", sig);
	rc = 0;
out:
	if (d)
		server_stop(d);
	if (fd >= 0)
		close(fd);
	if (t) {
		tenant_done(t);
		free(t);
	}
	free(c.opt.client_id);
	free(c.opt.client_secret);
	free(c.opt.scopes);
	free(c.log_level);
	return rc;
}
