/*
 * server — the emulator's HTTP face on libmicrohttpd: the Auth0 routes
 * (/oauth/token, /api/v2/...), the signed export-file links (/__exports/)
 * and the admin API (/__sandbox/), which is never rate-limited or faulted.
 *
 * MHD runs its own threads (one per connection), so a slow-answer fault
 * sleeps only its own connection; every handler takes the tenant lock for
 * the whole of its work on the tenant and never sleeps under it.
 */
#pragma once

#include <stdbool.h>

struct tenant;
struct MHD_Daemon;

/* Serves on an already listening socket. */
int server_start(struct tenant *t, int listen_fd, bool ipv6, struct MHD_Daemon **ret_daemon);
/* Stops accepting, wakes sleeping slow answers, joins every thread. */
void server_stop(struct MHD_Daemon *d);
