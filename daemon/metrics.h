/*
 * metrics — a small registry of Prometheus counters, gauges and histograms
 * with labels, rendered in the text exposition format (version 0.0.4) that
 * `promtool check metrics` accepts.
 *
 * Terms:
 *   family   a metric name with its help, type and label names
 *            ("http_requests_total", counter, {"route","method","status"}).
 *   series   one combination of label values in a family; created on first
 *            use, never removed (label values must come from a bounded set:
 *            route patterns, status codes, tenant names — never user input).
 *
 * All calls run on the loop thread (no locking). Names follow Prometheus:
 * [a-zA-Z_:][a-zA-Z0-9_:]*, counters end in _total, units in the name
 * (_seconds, _bytes). Up to 4 labels per family.
 *
 * Usage:
 *     static const char *const lbl[] = { "route", "status" };
 *     struct metric *m = metrics_counter(reg, "http_requests_total",
 *                                        "HTTP requests answered", 2, lbl);
 *     metric_add(m, 1, (const char *[]){ "/healthz", "200" });
 *     ...
 *     char *text; size_t len;
 *     metrics_render(reg, &text, &len);  // free(text)
 *
 * Collectors let a module publish values it keeps itself (queue depth, the
 * store's commit stats) right before each rendering.
 */
#pragma once

#include <stddef.h>

struct metrics;
struct metric;

int metrics_new(struct metrics **ret);
void metrics_free(struct metrics *m);

/* Family constructors; return the existing family when name is already
 * registered with the same type; NULL on error (bad name, type clash,
 * ENOMEM). label_names are copied. */
struct metric *metrics_counter(struct metrics *m, const char *name, const char *help,
			       size_t n_labels, const char *const *label_names);
struct metric *metrics_gauge(struct metrics *m, const char *name, const char *help,
			     size_t n_labels, const char *const *label_names);
/* buckets: upper bounds, strictly increasing, +Inf implied; copied. */
struct metric *metrics_histogram(struct metrics *m, const char *name, const char *help,
				 size_t n_labels, const char *const *label_names,
				 size_t n_buckets, const double *buckets);

/* label_values has the family's n_labels entries (NULL when 0). Counters
 * only grow (negative v is ignored); gauges are set or added to. */
void metric_add(struct metric *f, double v, const char *const *label_values);
void metric_set(struct metric *f, double v, const char *const *label_values);
void metric_observe(struct metric *f, double v, const char *const *label_values);

/* Called at the start of every metrics_render(). */
int metrics_add_collector(struct metrics *m, void (*fn)(struct metrics *m, void *arg), void *arg);

/* The text exposition; *ret malloc'd, NUL-terminated. 0 or -ENOMEM. */
int metrics_render(struct metrics *m, char **ret, size_t *ret_len);
