/* Composition root: argv → config → log → store → auth0 → api → loop.
 *
 * The one place that wires the layers and decides the exit status:
 *   0  clean stop (SIGTERM/SIGINT), --help, --version
 *   1  runtime failure: cannot bind, state dir locked, store unreadable or
 *      from a newer version
 *   2  bad command line or config, unreadable secret file, non-loopback
 *      listen without a token
 */
#include "api/h_imports.h"
#include "api/h_migrate.h"
#include "api/server.h"
#include "daemon/config.h"
#include "daemon/log.h"
#include "daemon/metrics.h"
#include "daemon/notify.h"
#include "daemon/sandbox_child.h"
#include "queue/intake.h"
#include "queue/migrate.h"
#include "queue/notifier.h"
#include "queue/pipeline.h"
#include "queue/undo.h"
#include "queue/store.h"

#include "build_config.h"

#if defined(__has_include)
#if __has_include("daemon/check.h")
#include "daemon/check.h"
#define HAVE_CHECK 1
#endif
#endif

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

enum { EXIT_OK = 0, EXIT_RUNTIME = 1, EXIT_USAGE = 2 };

/* Everything the process owns, for the signal callbacks. */
struct app {
	uv_loop_t *loop;
	int argc;
	char **argv;
	struct config *cfg;
	struct metrics *metrics;
	struct store *store;
	struct api_server *api;
	struct intake *intake;
	struct h_imports *imports;
	struct pipeline *pipeline;
	struct migrate *migrate;
	struct undo *undo;
	struct h_migrate *h_migrate;
	struct notifier *notifier;     /* notify_url deliveries */
	struct sandbox_child *sandbox; /* --sandbox: the emulator as tenant "default" */
	uv_signal_t sig_term, sig_int, sig_hup;
	uv_timer_t shutdown_timer;
	bool stopping;
};

static void apply_logging(const struct config *cfg)
{
	log_set_level(cfg->log_level);
	log_set_format(cfg->log_format);
}

static void on_shutdown_timeout(uv_timer_t *t)
{
	struct app *app = t->data;
	log_warn("main", "shutdown_timeout reached: abandoning what is still running");
	uv_stop(app->loop);
}

static void app_stop(struct app *app, const char *why)
{
	if (app->stopping)
		return;
	app->stopping = true;
	log_info("main", "stopping (%s)", why);
	notify_stopping();
	notify_watchdog_stop();
	api_server_stop(app->api);
	app->api = NULL;
	/* Validations still running stop at their next progress report and
	 * are resumed at the next start. */
	intake_stop(app->intake);
	/* exports, migrations and undos cancel their Auth0 calls first: the
	 * pipeline owns the clients */
	migrate_stop(app->migrate);
	undo_stop(app->undo);
	pipeline_stop(app->pipeline);
	notifier_stop(app->notifier);
	sandbox_child_stop(app->sandbox);
	app->sandbox = NULL;
	/* Modules with in-flight work (Auth0 calls) stop here; they get
	 * shutdown_timeout to finish, then the loop is stopped regardless. */
	uv_close((uv_handle_t *)&app->sig_term, NULL);
	uv_close((uv_handle_t *)&app->sig_int, NULL);
	uv_close((uv_handle_t *)&app->sig_hup, NULL);
	uv_timer_init(app->loop, &app->shutdown_timer);
	app->shutdown_timer.data = app;
	uv_timer_start(&app->shutdown_timer, on_shutdown_timeout, app->cfg->shutdown_timeout * 1000, 0);
	uv_unref((uv_handle_t *)&app->shutdown_timer);
}

static void app_reload(struct app *app)
{
	struct config *n;
	char err[1024];
	int r = config_load(app->argc, app->argv, environ, app->cfg, &n, err, sizeof(err));
	if (r != 0) {
		log_error("main", "reload failed, keeping the old config: %s", err);
		return;
	}
	if (app->sandbox && sandbox_child_apply(app->sandbox, n) < 0) {
		log_error("main", "reload failed, keeping the old config: out of memory");
		config_unref(n);
		return;
	}
	char what[64];
	if (config_restart_needed(app->cfg, n, what, sizeof(what)) > 0) {
		log_warn("main", "%s changed in the config: needs a restart to take effect, ignoring", what);
		/* The process keeps what it runs with. */
		char *tmp = n->listen;
		n->listen = app->cfg->listen;
		app->cfg->listen = tmp;
		tmp = n->state_dir;
		n->state_dir = app->cfg->state_dir;
		app->cfg->state_dir = tmp;
	}
	apply_logging(n);
	if (app->api)
		api_server_set_config(app->api, n);
	config_unref(app->cfg);
	app->cfg = n;
	pipeline_set_config(app->pipeline, n);
	notifier_set_config(app->notifier, n);
	intake_set_limits(app->intake, &(struct intake_limits){
		.max_users = n->max_users_per_import, .chunk_bytes = n->chunk_bytes,
		.spool_retention = n->spool_retention });
	log_info("main", "configuration reloaded (%zu tenant%s)", n->n_tenants, n->n_tenants == 1 ? "" : "s");
}

static void on_signal(uv_signal_t *h, int signum)
{
	struct app *app = h->data;
	if (signum == SIGHUP)
		app_reload(app);
	else
		app_stop(app, signum == SIGTERM ? "SIGTERM" : "SIGINT");
}

/* A validation's outcome is committed: a queued import is submitted now. */
static void kick_pipeline(void *arg)
{
	pipeline_kick(arg);
}

static uint64_t wall_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static void close_walk(uv_handle_t *h, void *arg)
{
	(void)arg;
	if (!uv_is_closing(h))
		uv_close(h, NULL);
}

int main(int argc, char **argv)
{
	struct app app = { .argc = argc, .argv = argv };
	char err[1024];
	int r, code = EXIT_RUNTIME;

	/* --- `auth0-importd check ...`: offline validation, no config/state. */
	if (argc > 1 && strcmp(argv[1], "check") == 0) {
#ifdef HAVE_CHECK
		return check_main(argc - 1, argv + 1);
#else
		fprintf(stderr, "auth0-importd: 'check' is not available in this build\n");
		return EXIT_USAGE;
#endif
	}

	r = config_load(argc, argv, environ, NULL, &app.cfg, err, sizeof(err));
	if (r == CONFIG_EXIT_HELP) {
		fputs(config_usage(), stdout);
		return EXIT_OK;
	}
	if (r == CONFIG_EXIT_VERSION) {
		printf("auth0-importd %s\n", IMPORTD_VERSION);
		return EXIT_OK;
	}
	if (r < 0) {
		fprintf(stderr, "auth0-importd: %s\n", err);
		return EXIT_USAGE;
	}
	apply_logging(app.cfg);
	signal(SIGPIPE, SIG_IGN);

	app.loop = uv_default_loop();
	if ((r = metrics_new(&app.metrics)) < 0) {
		log_error("main", "out of memory");
		goto out;
	}

	notify_status("opening the store");
	r = store_open(app.loop, app.cfg->state_dir, &app.store, err, sizeof(err));
	if (r < 0) {
		log_error("store", "%s", err);
		goto out;
	}
	log_info("store", "opened %s/%s (schema version %d)", app.cfg->state_dir, STORE_DB_NAME,
		 store_version(app.store));

	/* --- `--sandbox`: the bundled emulator becomes tenant "default" (once
	 * the state dir is locked, before anything recovers or talks to Auth0). */
	if (app.cfg->sandbox) {
		notify_status("starting the sandbox emulator");
		r = sandbox_child_start(app.loop, app.cfg->state_dir, &app.sandbox, err, sizeof(err));
		if (r < 0) {
			log_error("sandbox", "%s", err);
			goto out;
		}
		if (sandbox_child_apply(app.sandbox, app.cfg) < 0) {
			log_error("main", "out of memory");
			goto out;
		}
	}

	/* --- Modules that recover state or talk to Auth0 start here. */
	struct intake_limits limits = {
		.max_users = app.cfg->max_users_per_import,
		.chunk_bytes = app.cfg->chunk_bytes,
		.spool_retention = app.cfg->spool_retention,
	};
	if ((r = intake_new(app.loop, app.store, app.cfg->state_dir, &limits, &app.intake)) < 0 ||
	    (r = h_imports_new(app.store, app.intake, &app.imports)) < 0) {
		log_error("main", "out of memory");
		goto out;
	}
	notify_status("recovering imports");
	if ((r = intake_recover(app.intake)) < 0) {
		log_error("queue", "recovery failed: %s", strerror(-r));
		goto out;
	}
	if ((r = pipeline_new(app.loop, app.store, app.cfg, &app.pipeline)) < 0 ||
	    (r = pipeline_set_metrics(app.pipeline, app.metrics)) < 0 ||
	    (r = pipeline_start(app.pipeline)) < 0) {
		log_error("queue", "cannot start the Auth0 pipeline: %s", strerror(-r));
		goto out;
	}
	intake_on_outcome(app.intake, kick_pipeline, app.pipeline);
	if ((r = migrate_new(app.loop, app.store, app.pipeline, app.intake, &app.migrate)) < 0 ||
	    (r = undo_new(app.loop, app.store, app.pipeline, &app.undo)) < 0 ||
	    (r = h_migrate_new(app.store, app.migrate, app.undo, &app.h_migrate)) < 0) {
		log_error("main", "out of memory");
		goto out;
	}
	if ((r = migrate_start(app.migrate)) < 0 || (r = undo_resume(app.undo)) < 0) {
		log_error("queue", "cannot resume exports, migrations and undos: %s", strerror(-r));
		goto out;
	}
	if ((r = notifier_new(app.loop, app.store, app.cfg, &app.notifier)) < 0 ||
	    (r = notifier_start(app.notifier)) < 0) {
		log_error("queue", "cannot start the notify_url deliveries: %s", strerror(-r));
		goto out;
	}
	if ((r = intake_sweep_start(app.intake)) < 0)
		log_warn("queue", "spool retention sweep not started: %s, ignoring", uv_strerror(r));

	struct api_server_options opts = {
		.loop = app.loop,
		.listen = app.cfg->listen,
		.config = app.cfg,
		.metrics = app.metrics,
		.store = app.store,
		.started_at_ms = wall_ms(),
	};
	r = api_server_start(&opts, &app.api, err, sizeof(err));
	if (r < 0) {
		log_error("api", "%s", err);
		goto out;
	}
	/* --- Modules add their routes here. */
	if ((r = api_server_add_status(app.api, pipeline_status_json, app.pipeline)) < 0) {
		log_error("api", "cannot add the pipeline status: %s", strerror(-r));
		goto out;
	}
	if ((r = h_imports_register(app.api, app.imports)) < 0 ||
	    (r = h_imports_add_metrics(app.metrics, app.imports)) < 0) {
		log_error("api", "cannot add the imports routes: %s", strerror(-r));
		goto out;
	}
	if ((r = h_migrate_register(app.api, app.h_migrate)) < 0) {
		log_error("api", "cannot add the exports and migrations routes: %s", strerror(-r));
		goto out;
	}
	const char *addr = api_server_address(app.api);
	if (strncmp(addr, "unix:", 5) == 0)
		log_info("api", "listening on %s", addr);
	else
		log_info("api", "listening on http://%s", addr);

	uv_signal_init(app.loop, &app.sig_term);
	uv_signal_init(app.loop, &app.sig_int);
	uv_signal_init(app.loop, &app.sig_hup);
	app.sig_term.data = app.sig_int.data = app.sig_hup.data = &app;
	uv_signal_start(&app.sig_term, on_signal, SIGTERM);
	uv_signal_start(&app.sig_int, on_signal, SIGINT);
	uv_signal_start(&app.sig_hup, on_signal, SIGHUP);

	if ((r = notify_ready("serving")) < 0)
		log_warn("main", "sd_notify READY failed: %s, ignoring", strerror(-r));
	if ((r = notify_watchdog_start(app.loop)) < 0)
		log_warn("main", "watchdog timer failed: %s, ignoring", uv_strerror(r));

	uv_run(app.loop, UV_RUN_DEFAULT);
	code = EXIT_OK;
out:
	if (app.api)
		api_server_stop(app.api);
	migrate_stop(app.migrate);
	undo_stop(app.undo);
	/* After a signal, app_stop began the pipeline's drain and the loop ran
	 * it out; after a start failure (cannot bind, say) the first call here
	 * begins it. Either way the second abandons what still runs, so every
	 * handle is closed with its owner's callback before the walk below. */
	pipeline_stop(app.pipeline);
	pipeline_stop(app.pipeline);
	notifier_stop(app.notifier);
	/* the emulator exits (SIGKILL at worst) before its handles are closed */
	sandbox_child_stop(app.sandbox);
	while (app.loop && sandbox_child_running() && uv_run(app.loop, UV_RUN_ONCE))
		;
	if (app.store)
		store_close(app.store);
	if (app.loop) {
		uv_walk(app.loop, close_walk, NULL);
		uv_run(app.loop, UV_RUN_DEFAULT);
		if (uv_loop_close(app.loop) != 0)
			log_warn("main", "event loop closed with handles still open");
	}
	h_migrate_free(app.h_migrate);
	migrate_free(app.migrate);
	undo_free(app.undo);
	pipeline_free(app.pipeline);
	notifier_free(app.notifier);
	h_imports_free(app.imports);
	intake_free(app.intake);
	metrics_free(app.metrics);
	config_unref(app.cfg);
	if (code == EXIT_OK)
		log_info("main", "stopped");
	return code;
}
