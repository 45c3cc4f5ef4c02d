#include "daemon/sandbox_child.h"

#include "build_config.h"
#include "daemon/config.h"
#include "daemon/log.h"
#include "daemon/secret.h"

#include <errno.h>
#include <ftw.h>
#include <json-c/json.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#define READY_TIMEOUT_MS 15000
#define KILL_AFTER_MS 5000
#define READY_LINE_MAX 65536
#define MAX_DEATHS 5
#define DEATH_WINDOW_MS 60000
#define MAX_ARGS 64

enum sc_state { SC_STARTING, SC_RUNNING, SC_RESTARTING, SC_STOPPING, SC_FAILED };

/* One spawn of the emulator: its process and stdout pipe, freed when both
 * handles are closed. */
struct run {
	uv_process_t proc;
	uv_pipe_t out;
	struct sandbox_child *sc;
	int open;                /* handles not yet closed */
	bool exited;
	bool ready;
	char line[READY_LINE_MAX];
	size_t len;
};

struct sandbox_child {
	uv_loop_t *loop;
	enum sc_state state;
	char *bin;
	char *dir;
	char listen[64];         /* 127.0.0.1:0 first, then the port it got */
	char client_id[32];
	struct secret *client_secret;
	char *base_url;
	char *extra;             /* IMPORTD_SANDBOX_ARGS */
	struct run *run;         /* the current spawn, NULL between spawns */
	uv_timer_t timer;        /* ready timeout, restart backoff, kill */
	bool timer_open;
	bool held;               /* sandbox_child_start still looks at it */
	uint64_t deaths[MAX_DEATHS];
	unsigned n_deaths;
	char err[256];
};

static int live_children;

static void maybe_free(struct sandbox_child *sc)
{
	if (sc->state != SC_STOPPING && sc->state != SC_FAILED)
		return;
	if (sc->run || sc->timer_open || sc->held)
		return;
	free(sc->bin);
	free(sc->dir);
	free(sc->base_url);
	free(sc->extra);
	secret_free(sc->client_secret);
	free(sc);
	live_children--;
}

static void on_timer_closed(uv_handle_t *h)
{
	struct sandbox_child *sc = h->data;
	sc->timer_open = false;
	maybe_free(sc);
}

static void on_run_handle_closed(uv_handle_t *h)
{
	struct run *run = h->data;
	if (--run->open > 0)
		return;
	struct sandbox_child *sc = run->sc;
	if (sc->run == run)
		sc->run = NULL;
	free(run);
	maybe_free(sc);
}

static void close_run_handle(struct run *run, uv_handle_t *h)
{
	if (!uv_is_closing(h))
		uv_close(h, on_run_handle_closed);
}

static void finish_stop(struct sandbox_child *sc)
{
	if (sc->timer_open && !uv_is_closing((uv_handle_t *)&sc->timer))
		uv_close((uv_handle_t *)&sc->timer, on_timer_closed);
	maybe_free(sc);
}

/* ---- the ready line ------------------------------------------------------ */

static const char *jstr(json_object *o, const char *key)
{
	json_object *v;
	if (json_object_object_get_ex(o, key, &v) && json_object_is_type(v, json_type_string))
		return json_object_get_string(v);
	return NULL;
}

static void on_ready_line(struct sandbox_child *sc, struct run *run, const char *line)
{
	json_object *o = json_tokener_parse(line);
	const char *base = o ? jstr(o, "base_url") : NULL;
	const char *id = o ? jstr(o, "client_id") : NULL;
	if (!base || !id || strcmp(id, sc->client_id) != 0 || strncmp(base, "http://127.", 11) != 0) {
		log_error("sandbox", "the emulator's ready line is not what was expected; stopping it");
		json_object_put(o);
		uv_process_kill(&run->proc, SIGTERM);
		return;
	}
	run->ready = true;
	if (!sc->base_url) {
		sc->base_url = strdup(base);
		const char *port = strrchr(base, ':');
		snprintf(sc->listen, sizeof(sc->listen), "127.0.0.1:%s", port ? port + 1 : "0");
	} else if (strcmp(sc->base_url, base) != 0) {
		log_error("sandbox", "the restarted emulator answers at %s, not %s", base, sc->base_url);
	}
	json_object_put(o);
	if (sc->state == SC_STARTING || sc->state == SC_RESTARTING) {
		log_info("sandbox", "emulator ready at %s (pid %d)%s", sc->base_url, run->proc.pid,
			 sc->state == SC_RESTARTING ? " after a restart" : "");
		sc->state = SC_RUNNING;
		uv_timer_stop(&sc->timer);
	}
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
	struct run *run = h->data;
	if (run->ready || run->len + 1 >= sizeof(run->line)) {
		/* after the ready line: read into a scratch area and drop it */
		static char scratch[4096];
		buf->base = scratch;
		buf->len = sizeof(scratch);
		return;
	}
	buf->base = run->line + run->len;
	buf->len = sizeof(run->line) - run->len - 1;
}

static void on_read(uv_stream_t *s, ssize_t n, const uv_buf_t *buf)
{
	struct run *run = s->data;
	if (n < 0) {
		close_run_handle(run, (uv_handle_t *)&run->out);
		return;
	}
	if (run->ready || buf->base != run->line + run->len)
		return;
	run->len += (size_t)n;
	run->line[run->len] = '\0';
	char *nl = strchr(run->line, '\n');
	if (nl) {
		*nl = '\0';
		on_ready_line(run->sc, run, run->line);
	} else if (run->len + 1 >= sizeof(run->line)) {
		log_error("sandbox", "the emulator's ready line is too long; stopping it");
		uv_process_kill(&run->proc, SIGTERM);
	}
}

/* ---- spawning and supervision ---------------------------------------------- */

static int spawn_run(struct sandbox_child *sc);

static void on_timer(uv_timer_t *t)
{
	struct sandbox_child *sc = t->data;
	switch (sc->state) {
	case SC_STARTING:
	case SC_RESTARTING:
		if (sc->run) {
			snprintf(sc->err, sizeof(sc->err), "the emulator %s printed no ready line "
				 "within %d s", sc->bin, READY_TIMEOUT_MS / 1000);
			log_error("sandbox", "%s; killing it", sc->err);
			uv_process_kill(&sc->run->proc, SIGKILL);
		} else if (spawn_run(sc) < 0) {
			/* counts as a death: the exit path is not reached */
			sc->state = SC_FAILED;
			log_error("sandbox", "cannot restart the emulator: %s; giving up, tenant "
				  "\"default\" is unreachable", sc->err);
			finish_stop(sc);
		} else {
			uv_timer_start(&sc->timer, on_timer, READY_TIMEOUT_MS, 0);
		}
		break;
	case SC_STOPPING:
		if (sc->run && !sc->run->exited) {
			log_warn("sandbox", "the emulator did not stop on SIGTERM; killing it");
			uv_process_kill(&sc->run->proc, SIGKILL);
		}
		break;
	default:
		break;
	}
}

static void on_child_exit(uv_process_t *p, int64_t status, int sig)
{
	struct run *run = p->data;
	struct sandbox_child *sc = run->sc;
	run->exited = true;
	close_run_handle(run, (uv_handle_t *)&run->proc);
	/* the pipe may still hold unread output: it is closed at EOF */

	if (sc->state == SC_STOPPING) {
		log_info("sandbox", "emulator stopped");
		finish_stop(sc);
		return;
	}
	if (sc->state == SC_FAILED)
		return;
	if (sc->state == SC_STARTING) {
		if (!sc->err[0])
			snprintf(sc->err, sizeof(sc->err), "the emulator %s exited (status %lld, "
				 "signal %d) before it was ready", sc->bin, (long long)status, sig);
		sc->state = SC_FAILED;
		uv_timer_stop(&sc->timer);
		finish_stop(sc);
		return;
	}
	/* it died while serving (or while restarting): restart, within reason */
	uint64_t now = uv_now(sc->loop);
	sc->deaths[sc->n_deaths++ % MAX_DEATHS] = now;
	unsigned recent = 0;
	for (unsigned i = 0; i < MAX_DEATHS && i < sc->n_deaths; i++)
		recent += now - sc->deaths[i] < DEATH_WINDOW_MS;
	if (recent >= MAX_DEATHS) {
		sc->state = SC_FAILED;
		log_error("sandbox", "the emulator died %d times within %d s (last: status %lld, "
			  "signal %d); giving up, tenant \"default\" is unreachable", MAX_DEATHS,
			  DEATH_WINDOW_MS / 1000, (long long)status, sig);
		uv_timer_stop(&sc->timer);
		finish_stop(sc);
		return;
	}
	uint64_t backoff = 250u << (recent > 0 ? recent - 1 : 0);
	log_error("sandbox", "the emulator exited unexpectedly (status %lld, signal %d); "
		  "restarting it on %s in %llu ms (its jobs and users are lost)", (long long)status,
		  sig, sc->listen, (unsigned long long)backoff);
	sc->state = SC_RESTARTING;
	uv_timer_start(&sc->timer, on_timer, backoff, 0);
}

extern char **environ;

static void env_free(char **env)
{
	if (!env)
		return;
	for (char **e = env; *e; e++) {
		if (strncmp(*e, "SANDBOX_CLIENT_SECRET=", 22) == 0)
			explicit_bzero(*e, strlen(*e));
		free(*e);
	}
	free(env);
}

/* Variables the emulator never gets: the daemon's own settings and
 * secrets (AUTH0_CLIENT_SECRET, IMPORTD_API_TOKEN, ... — the emulator reads
 * none of them, and a rehearsal must not hand a real tenant's secret to
 * another process), systemd's credentials and notification channel (meant
 * for the daemon alone), and a SANDBOX_CLIENT_SECRET set from outside. */
static bool env_withheld(const char *kv)
{
	static const char *const prefixes[] = { "AUTH0_", "IMPORTD_", "SANDBOX_CLIENT_SECRET=",
						 "CREDENTIALS_DIRECTORY=", "NOTIFY_SOCKET=", "WATCHDOG_" };
	for (size_t i = 0; i < sizeof(prefixes) / sizeof(prefixes[0]); i++)
		if (strncmp(kv, prefixes[i], strlen(prefixes[i])) == 0)
			return true;
	return false;
}

/* The daemon's environment less what env_withheld() names, plus
 * SANDBOX_CLIENT_SECRET (malloc'd, NULL on failure). */
static char **child_env(const struct sandbox_child *sc)
{
	size_t n = 0, k = 0;
	while (environ[n])
		n++;
	char **env = calloc(n + 2, sizeof(*env));
	if (!env)
		return NULL;
	for (size_t i = 0; i < n; i++) {
		if (env_withheld(environ[i]))
			continue;
		if (!(env[k++] = strdup(environ[i])))
			goto fail;
	}
	if (asprintf(&env[k], "SANDBOX_CLIENT_SECRET=%s", secret_value(sc->client_secret)) < 0) {
		env[k] = NULL;
		goto fail;
	}
	return env;
fail:
	env_free(env);
	return NULL;
}

static int spawn_run(struct sandbox_child *sc)
{
	char *args[MAX_ARGS + 1];
	char *extra = NULL;
	size_t n = 0;
	args[n++] = sc->bin;
	args[n++] = "--listen";
	args[n++] = sc->listen;
	args[n++] = "--client-id";
	args[n++] = sc->client_id;
	args[n++] = "--exit-with-parent";
	if (sc->extra && (extra = strdup(sc->extra))) {
		char *save = NULL;
		for (char *a = strtok_r(extra, " \t", &save); a && n < MAX_ARGS;
		     a = strtok_r(NULL, " \t", &save))
			args[n++] = a;
	}
	args[n] = NULL;

	/* the secret goes through the environment: a command line is public */
	char **env = child_env(sc);
	struct run *run = env ? calloc(1, sizeof(*run)) : NULL;
	if (!run) {
		env_free(env);
		free(extra);
		snprintf(sc->err, sizeof(sc->err), "out of memory");
		return -ENOMEM;
	}
	run->sc = sc;
	int r = uv_pipe_init(sc->loop, &run->out, 0);
	if (r < 0) {
		free(run);
		free(extra);
		env_free(env);
		snprintf(sc->err, sizeof(sc->err), "pipe: %s", uv_strerror(r));
		return r;
	}
	run->out.data = run;
	run->proc.data = run;
	run->open = 1;
	uv_stdio_container_t stdio[3] = {
		{ .flags = UV_IGNORE },
		{ .flags = UV_CREATE_PIPE | UV_WRITABLE_PIPE, .data.stream = (uv_stream_t *)&run->out },
		{ .flags = UV_INHERIT_FD, .data.fd = 2 },
	};
	uv_process_options_t opt = {
		.exit_cb = on_child_exit, .file = sc->bin, .args = args, .env = env, .cwd = sc->dir,
		.stdio_count = 3, .stdio = stdio,
	};
	sc->run = run;
	r = uv_spawn(sc->loop, &run->proc, &opt);
	free(extra);
	env_free(env);
	if (r < 0) {
		snprintf(sc->err, sizeof(sc->err), "cannot start %s: %s", sc->bin, uv_strerror(r));
		/* a failed uv_spawn still needs its handle closed */
		run->open = 2;
		uv_close((uv_handle_t *)&run->proc, on_run_handle_closed);
		uv_close((uv_handle_t *)&run->out, on_run_handle_closed);
		return r;
	}
	run->open = 2;
	r = uv_read_start((uv_stream_t *)&run->out, on_alloc, on_read);
	if (r < 0) {
		snprintf(sc->err, sizeof(sc->err), "reading the emulator's output: %s", uv_strerror(r));
		uv_process_kill(&run->proc, SIGKILL);
		return r;
	}
	return 0;
}

/* ---- finding the binary and preparing the directory ------------------------ */

static bool executable(const char *path)
{
	struct stat st;
	return path && *path && stat(path, &st) == 0 && S_ISREG(st.st_mode) && access(path, X_OK) == 0;
}

static char *find_emulator(void)
{
	const char *envs[] = { "SANDBOX_BIN", "IMPORTD_SANDBOX_BIN" };
	for (size_t i = 0; i < 2; i++) {
		const char *v = getenv(envs[i]);
		if (executable(v))
			return strdup(v);
	}
	char self[PATH_MAX], cand[PATH_MAX + 64];
	ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
	if (n > 0) {
		self[n] = '\0';
		char *slash = strrchr(self, '/');
		if (slash) {
			*slash = '\0';
			snprintf(cand, sizeof(cand), "%s/auth0-sandbox", self);
			if (executable(cand))
				return strdup(cand);
			snprintf(cand, sizeof(cand), "%s/sandbox/auth0-sandbox", self);
			if (executable(cand))
				return strdup(cand);
		}
	}
	snprintf(cand, sizeof(cand), "%s/auth0-sandbox", IMPORTD_LIBEXECDIR);
	return executable(cand) ? strdup(cand) : NULL;
}

static int remove_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	if (ftw->level == 0)
		return 0;
	return remove(path) < 0 ? -1 : 0;
}

/* <state_dir>/sandbox, emptied and recreated with mode 0700. */
static int prepare_dir(const char *state_dir, char **ret, char *err, size_t errlen)
{
	char *dir = NULL;
	if (asprintf(&dir, "%s/sandbox", state_dir) < 0)
		return -ENOMEM;
	if (mkdir(dir, 0700) < 0 && errno != EEXIST) {
		snprintf(err, errlen, "cannot create %s: %s", dir, strerror(errno));
		free(dir);
		return -errno;
	}
	if (nftw(dir, remove_entry, 16, FTW_DEPTH | FTW_PHYS) != 0 || chmod(dir, 0700) < 0) {
		snprintf(err, errlen, "cannot empty %s: %s", dir, strerror(errno));
		free(dir);
		return -EIO;
	}
	*ret = dir;
	return 0;
}

static int random_hex(char *buf, size_t n)
{
	unsigned char raw[64];
	if (n / 2 > sizeof(raw) || getrandom(raw, n / 2, 0) != (ssize_t)(n / 2))
		return -EIO;
	for (size_t i = 0; i < n / 2; i++)
		snprintf(buf + 2 * i, 3, "%02x", raw[i]);
	buf[n] = '\0';
	return 0;
}

int sandbox_child_start(uv_loop_t *loop, const char *state_dir, struct sandbox_child **ret,
			char *err, size_t errlen)
{
	char secret[65];
	int r;
	struct sandbox_child *sc = calloc(1, sizeof(*sc));
	if (!sc)
		return -ENOMEM;
	sc->loop = loop;
	sc->state = SC_STARTING;
	snprintf(sc->listen, sizeof(sc->listen), "127.0.0.1:0");
	memcpy(sc->client_id, "sandbox-", 8);
	if ((r = random_hex(sc->client_id + 8, 16)) < 0 || (r = random_hex(secret, 64)) < 0 ||
	    (r = secret_new(secret, 64, &sc->client_secret)) < 0) {
		snprintf(err, errlen, "cannot make the emulator's credentials");
		goto fail;
	}
	memset(secret, 0, sizeof(secret));
	sc->bin = find_emulator();
	if (!sc->bin) {
		snprintf(err, errlen, "auth0-sandbox not found (looked at SANDBOX_BIN, "
			 "IMPORTD_SANDBOX_BIN, next to auth0-importd, in its sandbox/ folder and "
			 "in %s)", IMPORTD_LIBEXECDIR);
		r = -ENOENT;
		goto fail;
	}
	if ((r = prepare_dir(state_dir, &sc->dir, err, errlen)) < 0)
		goto fail;
	const char *extra = getenv("IMPORTD_SANDBOX_ARGS");
	if (extra && *extra)
		sc->extra = strdup(extra);
	uv_timer_init(loop, &sc->timer);
	sc->timer.data = sc;
	sc->timer_open = true;
	uv_unref((uv_handle_t *)&sc->timer);
	live_children++;
	sc->held = true;
	if ((r = spawn_run(sc)) < 0) {
		sc->state = SC_FAILED;
	} else {
		uv_timer_start(&sc->timer, on_timer, READY_TIMEOUT_MS, 0);
		while (sc->state == SC_STARTING)
			uv_run(loop, UV_RUN_ONCE);
	}
	if (sc->state != SC_RUNNING) {
		snprintf(err, errlen, "%s", sc->err[0] ? sc->err : "the emulator did not start");
		finish_stop(sc);
		while ((sc->run || sc->timer_open) && uv_run(loop, UV_RUN_ONCE))
			;
		sc->held = false;
		maybe_free(sc);
		return r < 0 ? r : -ECHILD;
	}
	sc->held = false;
	*ret = sc;
	return 0;
fail:
	secret_free(sc->client_secret);
	free(sc->bin);
	free(sc);
	return r;
}

void sandbox_child_stop(struct sandbox_child *sc)
{
	if (!sc)
		return;
	if (sc->state == SC_STOPPING)
		return;
	bool failed = sc->state == SC_FAILED;
	sc->state = SC_STOPPING;
	if (sc->run && !sc->run->exited) {
		uv_process_kill(&sc->run->proc, SIGTERM);
		uv_timer_start(&sc->timer, on_timer, KILL_AFTER_MS, 0);
		uv_ref((uv_handle_t *)&sc->timer);
	} else {
		(void)failed;
		finish_stop(sc);
	}
}

bool sandbox_child_running(void)
{
	return live_children > 0;
}

const char *sandbox_child_base_url(const struct sandbox_child *sc)
{
	return sc->base_url;
}

/* ---- tenant "default" -------------------------------------------------------- */

static int tenant_cmp(const void *a, const void *b)
{
	return strcmp(((const struct tenant_config *)a)->name, ((const struct tenant_config *)b)->name);
}

int sandbox_child_apply(const struct sandbox_child *sc, struct config *cfg)
{
	static const char *const envs[] = { "AUTH0_DOMAIN", "AUTH0_CLIENT_ID", "AUTH0_CLIENT_SECRET",
		"AUTH0_CLIENT_SECRET_FILE", "AUTH0_AUDIENCE" };
	struct tenant_config *t = NULL;
	char ignored[512] = "";
	for (size_t i = 0; i < cfg->n_tenants; i++)
		if (strcmp(cfg->tenants[i].name, "default") == 0)
			t = &cfg->tenants[i];
	for (size_t i = 0; i < sizeof(envs) / sizeof(envs[0]); i++) {
		const char *v = getenv(envs[i]);
		if (v && *v) {
			strncat(ignored, *ignored ? ", " : "", sizeof(ignored) - strlen(ignored) - 1);
			strncat(ignored, envs[i], sizeof(ignored) - strlen(ignored) - 1);
		}
	}
	if (t && cfg->config_path && (t->base_url || t->client_id)) {
		char part[PATH_MAX + 64];
		snprintf(part, sizeof(part), "%s[tenant.default] of %s", *ignored ? " and " : "",
			 cfg->config_path);
		strncat(ignored, part, sizeof(ignored) - strlen(ignored) - 1);
	}

	char *base = strdup(sc->base_url), *id = strdup(sc->client_id);
	struct secret *secret = NULL;
	if (!base || !id || secret_dup(sc->client_secret, &secret) < 0) {
		free(base);
		free(id);
		return -ENOMEM;
	}
	if (!t) {
		struct tenant_config *n = realloc(cfg->tenants, (cfg->n_tenants + 1) * sizeof(*n));
		if (!n) {
			free(base);
			free(id);
			secret_free(secret);
			return -ENOMEM;
		}
		cfg->tenants = n;
		t = &cfg->tenants[cfg->n_tenants++];
		memset(t, 0, sizeof(*t));
		snprintf(t->name, sizeof(t->name), "default");
		t->max_concurrent_jobs = 2;
	}
	free(t->base_url);
	free(t->client_id);
	secret_free(t->client_secret);
	free(t->audience);
	t->base_url = base;
	t->client_id = id;
	t->client_secret = secret;
	t->audience = NULL;
	qsort(cfg->tenants, cfg->n_tenants, sizeof(*cfg->tenants), tenant_cmp);
	if (*ignored)
		log_warn("sandbox", "--sandbox: tenant \"default\" is the emulator at %s; ignoring %s",
			 sc->base_url, ignored);
	else
		log_info("sandbox", "--sandbox: tenant \"default\" is the emulator at %s", sc->base_url);
	return 0;
}
