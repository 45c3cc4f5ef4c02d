/*
 * sandbox_child — `auth0-importd --sandbox`: the bundled Auth0 emulator
 * (auth0-sandbox) run as a supervised child and used as tenant "default".
 *
 * Terms:
 *   emulator   the auth0-sandbox binary, found through SANDBOX_BIN,
 *              IMPORTD_SANDBOX_BIN, next to the daemon's own executable, in
 *              <dir of the executable>/sandbox/ (a build tree), or in
 *              IMPORTD_LIBEXECDIR — the first executable file wins.
 *   ready line the one JSON line the emulator prints on stdout when it
 *              answers: base_url, client_id, client_secret, connections.
 *
 * Lifetime: sandbox_child_start() empties and recreates <state-dir>/sandbox/
 * (mode 0700, the emulator's working directory), spawns the emulator on a
 * free loopback port with credentials chosen here, and runs the loop until
 * its ready line arrives (at most 15 s) — call it before the loop runs for
 * real, after the state directory is locked. If the emulator later dies it
 * is restarted on the same port with the same credentials, so the tenant's
 * base URL never changes (its jobs and users are gone: Auth0 answers "Job
 * not found." for them); after 5 deaths within a minute it gives up and
 * says so. sandbox_child_stop() sends SIGTERM (SIGKILL 5 s later) and the
 * object is freed once the child has exited and every handle is closed;
 * sandbox_child_stop() on a NULL child is a no-op.
 *
 * The emulator gets --exit-with-parent, so it never outlives the daemon.
 * Extra emulator options (e.g. "--rate 20 --ms-per-user 0.1" for tests)
 * come from IMPORTD_SANDBOX_ARGS, split on spaces.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <uv.h>

struct config;
struct sandbox_child;

/* 0 and *ret once the emulator is ready; -errno with err set otherwise
 * (the caller logs it and exits 1). */
int sandbox_child_start(uv_loop_t *loop, const char *state_dir, struct sandbox_child **ret,
			char *err, size_t errlen);

/* Makes cfg's tenant "default" the emulator (adding the tenant when there is
 * none), whatever AUTH0_* or the config file said, and logs a warning
 * naming what was ignored. Call on a freshly loaded config, at start and at
 * every reload, before anyone else sees it. 0 or -ENOMEM. */
int sandbox_child_apply(const struct sandbox_child *sc, struct config *cfg);

/* The emulator's base URL ("http://127.0.0.1:PORT"). */
const char *sandbox_child_base_url(const struct sandbox_child *sc);

/* Stops and frees (asynchronously, as described above). */
void sandbox_child_stop(struct sandbox_child *sc);

/* true while a child object still exists (stopping included): run the loop
 * until false before closing every handle. */
bool sandbox_child_running(void);
