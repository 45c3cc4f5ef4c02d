/* metrics: families, labels, histogram buckets, exposition text. */
#include "daemon/metrics.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

static void collect(struct metrics *m, void *arg)
{
	(*(int *)arg)++;
	metric_set(metrics_gauge(m, "queue_depth", "Chunks waiting", 0, NULL), 7, NULL);
}

static void test_render(void **state)
{
	(void)state;
	struct metrics *m;
	assert_int_equal(metrics_new(&m), 0);
	static const char *const lbl[] = { "route", "status" };
	struct metric *c = metrics_counter(m, "http_requests_total", "Requests", 2, lbl);
	assert_non_null(c);
	assert_ptr_equal(metrics_counter(m, "http_requests_total", "Requests", 2, lbl), c);
	assert_null(metrics_gauge(m, "http_requests_total", "x", 2, lbl)); /* type clash */
	assert_null(metrics_counter(m, "bad name", "x", 0, NULL));
	metric_add(c, 1, (const char *[]){ "/healthz", "200" });
	metric_add(c, 2, (const char *[]){ "/healthz", "200" });
	metric_add(c, -5, (const char *[]){ "/healthz", "200" }); /* ignored */
	metric_add(c, 1, (const char *[]){ "/a\"b", "404" });
	static const double b[] = { 0.1, 1 };
	struct metric *h = metrics_histogram(m, "job_seconds", "Job time", 0, NULL, 2, b);
	metric_observe(h, 0.05, NULL);
	metric_observe(h, 0.5, NULL);
	metric_observe(h, 5, NULL);
	int calls = 0;
	assert_int_equal(metrics_add_collector(m, collect, &calls), 0);
	char *text;
	size_t len;
	assert_int_equal(metrics_render(m, &text, &len), 0);
	assert_int_equal(calls, 1);
	assert_int_equal(strlen(text), len);
	assert_non_null(strstr(text, "# HELP http_requests_total Requests\n# TYPE http_requests_total counter\n"));
	assert_non_null(strstr(text, "http_requests_total{route=\"/healthz\",status=\"200\"} 3\n"));
	assert_non_null(strstr(text, "http_requests_total{route=\"/a\\\"b\",status=\"404\"} 1\n"));
	assert_non_null(strstr(text, "job_seconds_bucket{le=\"0.1\"} 1\n"));
	assert_non_null(strstr(text, "job_seconds_bucket{le=\"1\"} 2\n"));
	assert_non_null(strstr(text, "job_seconds_bucket{le=\"+Inf\"} 3\n"));
	assert_non_null(strstr(text, "job_seconds_sum 5.55\n"));
	assert_non_null(strstr(text, "job_seconds_count 3\n"));
	assert_non_null(strstr(text, "# TYPE queue_depth gauge\nqueue_depth 7\n"));
	free(text);
	metrics_free(m);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_render),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
