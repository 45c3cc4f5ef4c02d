/* GET /metrics: the registry's text exposition, with process and store
 * figures refreshed first. */
#include "api/handlers.h"
#include "daemon/metrics.h"
#include "queue/store.h"

#include "build_config.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static void process_figures(struct metrics *m, struct api_server *s)
{
	long page = sysconf(_SC_PAGESIZE), ticks = sysconf(_SC_CLK_TCK);
	FILE *f = fopen("/proc/self/statm", "re");
	unsigned long size = 0, rss = 0;
	if (f) {
		if (fscanf(f, "%lu %lu", &size, &rss) != 2)
			size = rss = 0;
		fclose(f);
	}
	metric_set(metrics_gauge(m, "process_resident_memory_bytes", "Resident memory size in bytes", 0, NULL),
		   (double)rss * (double)page, NULL);
	metric_set(metrics_gauge(m, "process_virtual_memory_bytes", "Virtual memory size in bytes", 0, NULL),
		   (double)size * (double)page, NULL);
	f = fopen("/proc/self/stat", "re");
	if (f) {
		char buf[1024];
		size_t n = fread(buf, 1, sizeof(buf) - 1, f);
		buf[n] = '\0';
		fclose(f);
		char *p = strrchr(buf, ')');
		unsigned long ut = 0, st = 0;
		/* after ") ": state(3) ... utime is field 14, stime 15 */
		if (p && sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu", &ut, &st) == 2)
			metric_set(metrics_counter(m, "process_cpu_seconds_total",
						   "User and system CPU time spent in seconds", 0, NULL),
				   (double)(ut + st) / (double)ticks, NULL);
	}
	DIR *d = opendir("/proc/self/fd");
	if (d) {
		long fds = -1; /* the DIR's own fd */
		while (readdir(d))
			fds++;
		closedir(d);
		metric_set(metrics_gauge(m, "process_open_fds", "Number of open file descriptors", 0, NULL),
			   (double)(fds - 2), NULL); /* "." and ".." */
	}
	metric_set(metrics_gauge(m, "process_start_time_seconds",
				 "Start time of the process since unix epoch in seconds", 0, NULL),
		   (double)api_server_started_at_ms(s) / 1000.0, NULL);
	metric_set(metrics_gauge(m, "importd_build_info", "Version of the daemon (value is always 1)", 1,
				 (const char *[]){ "version" }),
		   1, (const char *[]){ IMPORTD_VERSION });
	struct store *st = api_server_store(s);
	if (st) {
		struct store_stats ss;
		store_stats(st, &ss);
		metric_set(metrics_counter(m, "importd_store_commits_total", "Store transactions committed", 0, NULL),
			   (double)ss.commits, NULL);
		metric_set(metrics_counter(m, "importd_store_rollbacks_total", "Store transactions rolled back", 0, NULL),
			   (double)ss.rollbacks, NULL);
		metric_set(metrics_gauge(m, "importd_store_writes_queued", "Store writes waiting for the writer", 0, NULL),
			   (double)ss.queued, NULL);
		metric_set(metrics_gauge(m, "importd_store_commit_seconds_max",
					 "Longest store transaction (work and durable commit) since start", 0, NULL),
			   ss.commit_seconds_max, NULL);
	}
}

static int h_metrics(struct api_request *req, void *ud)
{
	struct metrics *m = api_request_metrics(req);
	char *text;
	size_t len;
	if (!m)
		return api_respond_text(req, 200, "text/plain; version=0.0.4; charset=utf-8", "", 0);
	process_figures(m, ud);
	int r = metrics_render(m, &text, &len);
	if (r < 0)
		return r;
	return api_respond_buffer(req, 200, "text/plain; version=0.0.4; charset=utf-8", text, len);
}

const struct api_route h_metrics_routes[] = {
	{ "GET", "/metrics", h_metrics, NULL, 0 },
};
const size_t h_metrics_n_routes = sizeof(h_metrics_routes) / sizeof(h_metrics_routes[0]);
