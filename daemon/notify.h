/*
 * notify — telling the service manager the truth (sd_notify protocol).
 *
 * Active only when NOTIFY_SOCKET is set; every call is then a datagram to
 * that socket (abstract "@name" or a path), otherwise a no-op returning 0.
 * Uses libsystemd's sd_notify when built with it, else a small own sender.
 *
 *   READY=1     only once the store is open and the listener is live
 *   STATUS=...  one line for `systemctl status` (recovering, serving)
 *   STOPPING=1  at the start of a clean stop
 *   WATCHDOG=1  from a uv timer every WATCHDOG_USEC/2 (notify_watchdog_start)
 */
#pragma once

#include <stdint.h>
#include <uv.h>

/* Sends "READY=1\nSTATUS=..."-style text. 0, or -errno (caller logs once
 * and carries on: a lost notification must not stop the daemon). */
int notify_send(const char *state);
int notify_ready(const char *status);
int notify_status(const char *status);
int notify_stopping(void);

/* Starts a timer pinging WATCHDOG=1 at half of $WATCHDOG_USEC when the
 * watchdog is enabled for this pid. The timer handle is unref'd (it never
 * keeps the loop alive). 0 (also when no watchdog is wanted) or -errno. */
int notify_watchdog_start(uv_loop_t *loop);
void notify_watchdog_stop(void);
