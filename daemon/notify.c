#include "daemon/notify.h"

#include "build_config.h"

#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#if HAVE_LIBSYSTEMD
#include <systemd/sd-daemon.h>
#endif

static uv_timer_t watchdog_timer;
static bool watchdog_on;

#if !HAVE_LIBSYSTEMD
/* The sd_notify protocol: one datagram to $NOTIFY_SOCKET ("@x" = abstract). */
static int own_notify(const char *state)
{
	const char *path = getenv("NOTIFY_SOCKET");
	if (!path || !*path)
		return 0;
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	size_t len = strlen(path);
	if (len >= sizeof(sa.sun_path) || (path[0] != '/' && path[0] != '@'))
		return -EINVAL;
	memcpy(sa.sun_path, path, len);
	if (path[0] == '@')
		sa.sun_path[0] = '\0';
	int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	ssize_t n = sendto(fd, state, strlen(state), MSG_NOSIGNAL, (struct sockaddr *)&sa,
			   (socklen_t)(offsetof(struct sockaddr_un, sun_path) + len));
	int r = n < 0 ? -errno : 0;
	close(fd);
	return r;
}
#endif

int notify_send(const char *state)
{
	if (!getenv("NOTIFY_SOCKET"))
		return 0;
#if HAVE_LIBSYSTEMD
	int r = sd_notify(0, state);
	return r < 0 ? r : 0;
#else
	return own_notify(state);
#endif
}

static int send_with_status(const char *prefix, const char *status)
{
	char buf[512];
	if (status)
		snprintf(buf, sizeof(buf), "%s%sSTATUS=%s", prefix, *prefix ? "\n" : "", status);
	else
		snprintf(buf, sizeof(buf), "%s", prefix);
	return notify_send(buf);
}

int notify_ready(const char *status) { return send_with_status("READY=1", status); }
int notify_status(const char *status) { return send_with_status("", status); }
int notify_stopping(void) { return notify_send("STOPPING=1"); }

static void on_watchdog(uv_timer_t *t)
{
	(void)t;
	notify_send("WATCHDOG=1");
}

int notify_watchdog_start(uv_loop_t *loop)
{
	const char *usec = getenv("WATCHDOG_USEC");
	const char *pid = getenv("WATCHDOG_PID");
	if (!usec || !getenv("NOTIFY_SOCKET") || watchdog_on)
		return 0;
	if (pid && strtol(pid, NULL, 10) != (long)getpid())
		return 0;
	unsigned long long us = strtoull(usec, NULL, 10);
	if (us == 0)
		return 0;
	uint64_t ms = us / 2000;
	if (ms == 0)
		ms = 1;
	int r = uv_timer_init(loop, &watchdog_timer);
	if (r < 0)
		return r;
	uv_timer_start(&watchdog_timer, on_watchdog, ms, ms);
	uv_unref((uv_handle_t *)&watchdog_timer);
	watchdog_on = true;
	return 0;
}

void notify_watchdog_stop(void)
{
	if (!watchdog_on)
		return;
	watchdog_on = false;
	uv_close((uv_handle_t *)&watchdog_timer, NULL);
}
