/* router: matching, params, 404/405 and Allow, bad tables. */
#include "api/router.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <string.h>

static int h1(struct api_request *r, void *u) { (void)r; (void)u; return 1; }
static int h2(struct api_request *r, void *u) { (void)r; (void)u; return 2; }
static int h3(struct api_request *r, void *u) { (void)r; (void)u; return 3; }
static int h4(struct api_request *r, void *u) { (void)r; (void)u; return 4; }

static const struct api_route routes[] = {
	{ "GET", "/healthz", h1, NULL, API_ROUTE_PUBLIC },
	{ "GET", "/v1/imports/{id}", h2, NULL, 0 },
	{ "DELETE", "/v1/imports/{id}", h3, NULL, 0 },
	{ "GET", "/v1/imports/{id}/errors", h4, NULL, 0 },
};
static const struct api_route more[] = {
	{ "GET", "/v1/imports/stats", h1, NULL, 0 },
	{ "POST", "/v1/imports", h4, NULL, 0 },
};

static void test_match(void **state)
{
	(void)state;
	struct router *r;
	int ud1, ud2;
	assert_int_equal(router_new(&r), 0);
	assert_int_equal(router_add(r, routes, 4, &ud1), 0);
	assert_int_equal(router_add(r, more, 2, &ud2), 0);

	const struct api_route *rt;
	void *ud;
	struct router_params p;
	char buf[64], allow[64];
	assert_int_equal(router_match(r, "GET", "/healthz", &rt, &ud, &p, NULL, 0), ROUTER_MATCH);
	assert_ptr_equal(rt, &routes[0]);
	assert_ptr_equal(ud, &ud1);
	assert_int_equal(p.n, 0);

	assert_int_equal(router_match(r, "GET", "/v1/imports/imp_0123", &rt, &ud, &p, NULL, 0), ROUTER_MATCH);
	assert_ptr_equal(rt, &routes[1]);
	assert_string_equal(router_param(&p, "id", buf, sizeof(buf)), "imp_0123");
	assert_null(router_param(&p, "other", buf, sizeof(buf)));
	assert_null(router_param(&p, "id", buf, 4)); /* too long for buf */

	/* literal beats placeholder whatever the order */
	assert_int_equal(router_match(r, "GET", "/v1/imports/stats", &rt, &ud, &p, NULL, 0), ROUTER_MATCH);
	assert_ptr_equal(rt, &more[0]);
	assert_ptr_equal(ud, &ud2);

	assert_int_equal(router_match(r, "DELETE", "/v1/imports/x", &rt, &ud, &p, NULL, 0), ROUTER_MATCH);
	assert_ptr_equal(rt, &routes[2]);
	assert_int_equal(router_match(r, "GET", "/v1/imports/x/errors", &rt, &ud, &p, NULL, 0), ROUTER_MATCH);
	assert_ptr_equal(rt, &routes[3]);
	assert_int_equal(router_match(r, "HEAD", "/healthz", &rt, &ud, &p, NULL, 0), ROUTER_MATCH);

	/* 405 with Allow */
	assert_int_equal(router_match(r, "POST", "/v1/imports/x", &rt, &ud, &p, allow, sizeof(allow)),
			 ROUTER_METHOD_NOT_ALLOWED);
	assert_string_equal(allow, "DELETE, GET, HEAD");
	assert_int_equal(router_match(r, "PUT", "/healthz", &rt, &ud, &p, allow, sizeof(allow)),
			 ROUTER_METHOD_NOT_ALLOWED);
	assert_string_equal(allow, "GET, HEAD");
	assert_int_equal(router_match(r, "GET", "/v1/imports", &rt, &ud, &p, allow, sizeof(allow)),
			 ROUTER_METHOD_NOT_ALLOWED);
	assert_string_equal(allow, "POST");

	/* 404 */
	static const char *const nf[] = { "/", "/nope", "/healthz/", "/v1/imports/", "//healthz",
					  "/v1/imports/x/y", "/v1//imports", "healthz", "" };
	for (size_t i = 0; i < sizeof(nf) / sizeof(nf[0]); i++)
		assert_int_equal(router_match(r, "GET", nf[i], &rt, &ud, &p, NULL, 0), ROUTER_NOT_FOUND);
	router_free(r);
}

static void test_bad_tables(void **state)
{
	(void)state;
	struct router *r;
	assert_int_equal(router_new(&r), 0);
	static const struct api_route bad1[] = { { "GET", "nope", h1, NULL, 0 } };
	static const struct api_route bad2[] = { { "GET", "/a/{id", h1, NULL, 0 } };
	static const struct api_route bad3[] = { { "GET", "/a/x{id}", h1, NULL, 0 } };
	static const struct api_route bad4[] = { { "GET", "/a//b", h1, NULL, 0 } };
	static const struct api_route bad5[] = { { "GET", "/{a}/{b}/{c}/{d}/{e}", h1, NULL, 0 } };
	static const struct api_route ok[] = { { "GET", "/a", h1, NULL, 0 } };
	assert_int_equal(router_add(r, bad1, 1, NULL), -EINVAL);
	router_free(r);
	assert_int_equal(router_new(&r), 0);
	assert_int_equal(router_add(r, bad2, 1, NULL), -EINVAL);
	router_free(r);
	assert_int_equal(router_new(&r), 0);
	assert_int_equal(router_add(r, bad3, 1, NULL), -EINVAL);
	router_free(r);
	assert_int_equal(router_new(&r), 0);
	assert_int_equal(router_add(r, bad4, 1, NULL), -EINVAL);
	router_free(r);
	assert_int_equal(router_new(&r), 0);
	assert_int_equal(router_add(r, bad5, 1, NULL), -EINVAL);
	router_free(r);
	assert_int_equal(router_new(&r), 0);
	assert_int_equal(router_add(r, ok, 1, NULL), 0);
	assert_int_equal(router_add(r, ok, 1, NULL), -EEXIST);
	router_free(r);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_match),
		cmocka_unit_test(test_bad_tables),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
