/* config: flags, environment, file, precedence, suffixes, errors. */
#include "daemon/config.h"
#include "daemon/secret.h"
#include "daemon/users/users.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static char dir[64];
static char err[1024];

static int setup(void **state)
{
	(void)state;
	snprintf(dir, sizeof(dir), "/tmp/importd-test-config-XXXXXX");
	assert_non_null(mkdtemp(dir));
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	char cmd[128];
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	assert_int_equal(system(cmd), 0);
	return 0;
}

static const char *write_file(const char *name, const char *text)
{
	static char path[256];
	snprintf(path, sizeof(path), "%s/%s", dir, name);
	FILE *f = fopen(path, "w");
	assert_non_null(f);
	fputs(text, f);
	fclose(f);
	return path;
}

/* Loads with argv (NULL-terminated list after argv[0]) and env. */
static int load(struct config **ret, char **argv, char **env)
{
	int argc = 0;
	while (argv[argc])
		argc++;
	return config_load(argc, argv, env, NULL, ret, err, sizeof(err));
}

static void test_defaults(void **state)
{
	(void)state;
	struct config *c;
	char *argv[] = { "importd", NULL };
	char *env[] = { "HOME=/home/u", NULL };
	assert_int_equal(load(&c, argv, env), 0);
	assert_string_equal(c->listen, "127.0.0.1:8484");
	assert_int_equal(c->max_upload_bytes, 2ull << 30);
	assert_int_equal(c->max_users_per_import, 10000000);
	assert_int_equal(c->chunk_bytes, 0);
	assert_int_equal(c->spool_retention, 7 * 86400);
	assert_int_equal(c->idempotency_ttl, 86400);
	assert_int_equal(c->shutdown_timeout, 5);
	assert_int_equal(c->n_notify_allowed_hosts, 0);
	assert_null(c->api_token);
	assert_int_equal(c->log_level, LOG_LEVEL_INFO);
	assert_int_equal(c->log_format, LOG_FORMAT_TEXT);
	assert_int_equal(c->n_tenants, 0);
	if (geteuid() != 0)
		assert_string_equal(c->state_dir, "/home/u/.local/state/auth0-importd");
	config_unref(c);
}

static void test_state_dir_precedence(void **state)
{
	(void)state;
	struct config *c;
	char *argv[] = { "importd", NULL };
	char *env1[] = { "HOME=/h", "STATE_DIRECTORY=/sd:/other", NULL };
	assert_int_equal(load(&c, argv, env1), 0);
	assert_string_equal(c->state_dir, "/sd");
	config_unref(c);
	char *env2[] = { "HOME=/h", "STATE_DIRECTORY=/sd", "IMPORTD_STATE_DIR=/env", NULL };
	assert_int_equal(load(&c, argv, env2), 0);
	assert_string_equal(c->state_dir, "/env");
	config_unref(c);
	char *argv2[] = { "importd", "--state-dir=/flag", NULL };
	assert_int_equal(load(&c, argv2, env2), 0);
	assert_string_equal(c->state_dir, "/flag");
	config_unref(c);
}

static void test_precedence(void **state)
{
	(void)state;
	struct config *c;
	const char *path = write_file("p.conf", "[daemon]\nlisten = 127.0.0.1:1001\nmax_upload_bytes = 1M\n");
	char *argv_file[] = { "importd", "--config", (char *)path, NULL };
	char *argv_flag[] = { "importd", "--config", (char *)path, "--listen", "127.0.0.1:1003", NULL };
	char *noenv[] = { "HOME=/h", NULL };
	char *env[] = { "HOME=/h", "IMPORTD_LISTEN=127.0.0.1:1002", "IMPORTD_MAX_UPLOAD_BYTES=3K", NULL };

	assert_int_equal(load(&c, argv_file, noenv), 0);
	assert_string_equal(c->listen, "127.0.0.1:1001");
	assert_int_equal(c->max_upload_bytes, 1 << 20);
	config_unref(c);

	assert_int_equal(load(&c, argv_file, env), 0);
	assert_string_equal(c->listen, "127.0.0.1:1002");
	assert_int_equal(c->max_upload_bytes, 3 * 1024);
	config_unref(c);

	assert_int_equal(load(&c, argv_flag, env), 0);
	assert_string_equal(c->listen, "127.0.0.1:1003");
	config_unref(c);

	char *argv_eq[] = { "importd", "--max-upload-bytes=2K", "--log-level=debug", NULL };
	assert_int_equal(load(&c, argv_eq, env), 0);
	assert_int_equal(c->max_upload_bytes, 2048);
	assert_int_equal(c->log_level, LOG_LEVEL_DEBUG);
	config_unref(c);
}

static void test_suffixes(void **state)
{
	(void)state;
	uint64_t v;
	assert_int_equal(config_parse_size("10", &v), 0);
	assert_int_equal(v, 10);
	assert_int_equal(config_parse_size("512K", &v), 0);
	assert_int_equal(v, 512 * 1024);
	assert_int_equal(config_parse_size("3M", &v), 0);
	assert_int_equal(v, 3 << 20);
	assert_int_equal(config_parse_size("2G", &v), 0);
	assert_int_equal(v, 2ull << 30);
	assert_int_equal(config_parse_size("1.5G", &v), -EINVAL);
	assert_int_equal(config_parse_size("5X", &v), -EINVAL);
	assert_int_equal(config_parse_size("", &v), -EINVAL);
	assert_int_equal(config_parse_size("-1", &v), -EINVAL);
	assert_int_equal(config_parse_size("99999999999999999999", &v), -ERANGE);
	assert_int_equal(config_parse_size("17179869184G", &v), -ERANGE);
	assert_int_equal(config_parse_duration("7d", &v), 0);
	assert_int_equal(v, 7 * 86400);
	assert_int_equal(config_parse_duration("24h", &v), 0);
	assert_int_equal(v, 86400);
	assert_int_equal(config_parse_duration("5m", &v), 0);
	assert_int_equal(v, 300);
	assert_int_equal(config_parse_duration("90s", &v), 0);
	assert_int_equal(v, 90);
	assert_int_equal(config_parse_duration("90", &v), 0);
	assert_int_equal(v, 90);
	assert_int_equal(config_parse_duration("1w", &v), -EINVAL);
	assert_int_equal(config_parse_duration("5ms", &v), -EINVAL);
}

static void expect_error(char **argv, char **env, const char *const *needles)
{
	struct config *c = NULL;
	int r = load(&c, argv, env);
	assert_true(r < 0);
	assert_null(c);
	for (; *needles; needles++) {
		if (!strstr(err, *needles))
			fail_msg("error '%s' lacks '%s'", err, *needles);
	}
}

static void test_file_errors(void **state)
{
	(void)state;
	char *env[] = { "HOME=/h", NULL };
	const char *p = write_file("e1.conf", "# comment\n[daemon]\nlistn = 127.0.0.1:1\n");
	char *argv[] = { "importd", "--config", (char *)p, NULL };
	expect_error(argv, env, (const char *[]){ p, ":3:", "'listn'", "did you mean 'listen'", NULL });

	p = write_file("e2.conf", "[demon]\nlisten = 127.0.0.1:1\n");
	argv[2] = (char *)p;
	expect_error(argv, env, (const char *[]){ p, ":1:", "[demon]", "did you mean [daemon]", NULL });

	p = write_file("e3.conf", "[tenant.a]\ndomain = a.auth0.com\nclient_secert = x\n");
	argv[2] = (char *)p;
	expect_error(argv, env, (const char *[]){ ":3:", "client_secert", "did you mean 'client_secret'", NULL });

	p = write_file("e4.conf", "[daemon]\nmax_upload_bytes = lots\n");
	argv[2] = (char *)p;
	expect_error(argv, env, (const char *[]){ ":2:", "max_upload_bytes", "lots", NULL });

	p = write_file("e5.conf", "[daemon]\njust a line\n");
	argv[2] = (char *)p;
	expect_error(argv, env, (const char *[]){ ":2:", "syntax", NULL });

	p = write_file("e6.conf", "[tenant.Bad]\ndomain = a.auth0.com\n");
	argv[2] = (char *)p;
	expect_error(argv, env, (const char *[]){ ":1:", "[tenant.Bad]", NULL });

	p = write_file("e7.conf", "[tenant.x]\ndomain = a.auth0.com\nmax_concurrent_jobs = 0\n");
	argv[2] = (char *)p;
	expect_error(argv, env, (const char *[]){ ":3:", "max_concurrent_jobs", "between 1 and 100", NULL });

	p = write_file("e8.conf", "[daemon]\nchunk_bytes = 600K\n");
	argv[2] = (char *)p;
	expect_error(argv, env, (const char *[]){ ":2:", "chunk_bytes", NULL });

	p = write_file("e9.conf", "[daemon]\napi_token = a\napi_token_file = b\n");
	argv[2] = (char *)p;
	expect_error(argv, env, (const char *[]){ ":3:", "keep one", NULL });

	char missing[128];
	snprintf(missing, sizeof(missing), "%s/none.conf", dir);
	argv[2] = missing;
	expect_error(argv, env, (const char *[]){ "none.conf", NULL });
}

/* chunk_bytes: 0 (the largest) or within the splitter's bounds; a value
 * the splitter would refuse fails at load, not at every import. */
static void test_chunk_bytes_bounds(void **state)
{
	(void)state;
	struct config *c;
	char *argv[] = { "importd", NULL };
	char val[64], *env[] = { "HOME=/h", val, NULL };
	const size_t max = USERS_REQUEST_MAX - USERS_MULTIPART_OVERHEAD;
	const size_t ok[] = { 0, USERS_CHUNK_BUDGET_MIN, 100000, max };
	const size_t bad[] = { 1, USERS_CHUNK_BUDGET_MIN - 1, max + 1, 511500, USERS_REQUEST_MAX,
			       USERS_REQUEST_MAX + 1 };

	assert_int_equal(max, 511124);
	for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
		snprintf(val, sizeof(val), "IMPORTD_CHUNK_BYTES=%zu", ok[i]);
		assert_int_equal(load(&c, argv, env), 0);
		assert_int_equal(c->chunk_bytes, ok[i]);
		config_unref(c);
	}
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		snprintf(val, sizeof(val), "IMPORTD_CHUNK_BYTES=%zu", bad[i]);
		expect_error(argv, env, (const char *[]){ "chunk_bytes", "511124", NULL });
	}
	const char *p = write_file("cb.conf", "[daemon]\nchunk_bytes = 511125\n");
	char *argv_file[] = { "importd", "--config", (char *)p, NULL };
	char *noenv[] = { "HOME=/h", NULL };
	expect_error(argv_file, noenv, (const char *[]){ ":2:", "chunk_bytes", "511124", NULL });
}

static void test_flag_errors(void **state)
{
	(void)state;
	char *env[] = { "HOME=/h", NULL };
	expect_error((char *[]){ "importd", "--lisen", "x", NULL }, env,
		     (const char *[]){ "'--lisen'", "did you mean '--listen'", NULL });
	expect_error((char *[]){ "importd", "--listen", NULL }, env, (const char *[]){ "--listen", "needs a value", NULL });
	expect_error((char *[]){ "importd", "stray", NULL }, env, (const char *[]){ "stray", NULL });
	expect_error((char *[]){ "importd", "--log-level", "loud", NULL }, env, (const char *[]){ "loud", NULL });
	expect_error((char *[]){ "importd", "--max-upload-bytes=1Q", NULL }, env, (const char *[]){ "--max-upload-bytes", NULL });
	expect_error((char *[]){ "importd", "--listen", "localhost:80:1", NULL }, env, (const char *[]){ "listen", NULL });
	char *badenv[] = { "HOME=/h", "IMPORTD_LOG_FORMAT=xml", NULL };
	expect_error((char *[]){ "importd", NULL }, badenv, (const char *[]){ "IMPORTD_LOG_FORMAT", "xml", NULL });

	struct config *c;
	assert_int_equal(load(&c, (char *[]){ "importd", "--help", NULL }, env), CONFIG_EXIT_HELP);
	assert_int_equal(load(&c, (char *[]){ "importd", "--version", NULL }, env), CONFIG_EXIT_VERSION);
	assert_int_equal(load(&c, (char *[]){ "importd", "--sandbox", NULL }, env), 0);
	assert_true(c->sandbox);
	config_unref(c);
}

static void test_listen_token(void **state)
{
	(void)state;
	struct config *c;
	char *env[] = { "HOME=/h", NULL };
	expect_error((char *[]){ "importd", "--listen", "0.0.0.0:8484", NULL }, env,
		     (const char *[]){ "0.0.0.0:8484", "token", NULL });
	char *tenv[] = { "HOME=/h", "IMPORTD_API_TOKEN=s3cret", NULL };
	assert_int_equal(load(&c, (char *[]){ "importd", "--listen", "0.0.0.0:8484", NULL }, tenv), 0);
	assert_true(secret_equal(c->api_token, "s3cret", 6));
	config_unref(c);
	assert_int_equal(load(&c, (char *[]){ "importd", "--listen", "[::1]:0", NULL }, env), 0);
	config_unref(c);
	assert_int_equal(load(&c, (char *[]){ "importd", "--listen", "unix:/run/x.sock", NULL }, env), 0);
	config_unref(c);
	assert_true(config_listen_is_local("127.0.0.2:1"));
	assert_false(config_listen_is_local("10.0.0.1:1"));
	assert_false(config_listen_is_local("[::]:1"));

	const char *tok = write_file("token", "filetoken\n");
	char tf[300];
	snprintf(tf, sizeof(tf), "IMPORTD_API_TOKEN_FILE=%s", tok);
	char *fenv[] = { "HOME=/h", tf, NULL };
	assert_int_equal(load(&c, (char *[]){ "importd", NULL }, fenv), 0);
	assert_true(secret_equal(c->api_token, "filetoken", 9));
	config_unref(c);
	char *benv[] = { "HOME=/h", "IMPORTD_API_TOKEN_FILE=/nonexistent/token", NULL };
	expect_error((char *[]){ "importd", NULL }, benv,
		     (const char *[]){ "IMPORTD_API_TOKEN_FILE", "/nonexistent/token", NULL });
}

static void test_tenants(void **state)
{
	(void)state;
	struct config *c;
	write_file("src.secret", "source-secret\n");
	const char *p = write_file("t.conf",
				   "[daemon]\nnotify_allowed_hosts = Hooks.example.com, ci.local\n"
				   "[tenant.source]\ndomain = Old.EU.auth0.com\nclient_id = abc\n"
				   "client_secret_file = src.secret\n"
				   "[tenant.default]\ndomain = http://127.0.0.1:9000/\nclient_id = def\n"
				   "client_secret = inline\nmax_concurrent_jobs = 3\nmax_requests_per_second = 2.5\n");
	char *argv[] = { "importd", "--config", (char *)p, NULL };
	char *env[] = { "HOME=/h", NULL };
	assert_int_equal(load(&c, argv, env), 0);
	assert_int_equal(c->n_tenants, 2);
	const struct tenant_config *s = config_tenant(c, "source");
	assert_non_null(s);
	assert_string_equal(s->base_url, "https://old.eu.auth0.com");
	assert_string_equal(s->client_id, "abc");
	assert_true(secret_equal(s->client_secret, "source-secret", 13));
	assert_int_equal(s->max_concurrent_jobs, 2);
	const struct tenant_config *d = config_tenant(c, "default");
	assert_string_equal(d->base_url, "http://127.0.0.1:9000");
	assert_int_equal(d->max_concurrent_jobs, 3);
	assert_true(d->max_rps > 2.4 && d->max_rps < 2.6);
	assert_null(d->audience);
	assert_int_equal(c->n_notify_allowed_hosts, 2);
	assert_string_equal(c->notify_allowed_hosts[0], "hooks.example.com");
	assert_string_equal(c->notify_allowed_hosts[1], "ci.local");
	config_unref(c);

	/* The environment overrides tenant default, field by field. */
	char *env2[] = { "HOME=/h", "AUTH0_DOMAIN=new.us.auth0.com", "AUTH0_CLIENT_SECRET=envsecret",
			 "AUTH0_AUDIENCE=https://api.example/", "AUTH0_MAX_CONCURRENT_JOBS=1", NULL };
	assert_int_equal(load(&c, argv, env2), 0);
	d = config_tenant(c, "default");
	assert_string_equal(d->base_url, "https://new.us.auth0.com");
	assert_string_equal(d->client_id, "def");
	assert_true(secret_equal(d->client_secret, "envsecret", 9));
	assert_string_equal(d->audience, "https://api.example/");
	assert_int_equal(d->max_concurrent_jobs, 1);
	config_unref(c);

	/* Environment alone makes tenant default. */
	char *env3[] = { "HOME=/h", "AUTH0_DOMAIN=x.auth0.com", "AUTH0_CLIENT_ID=id", NULL };
	assert_int_equal(load(&c, (char *[]){ "importd", NULL }, env3), 0);
	assert_int_equal(c->n_tenants, 1);
	assert_string_equal(c->tenants[0].name, "default");
	assert_null(c->tenants[0].client_secret);
	config_unref(c);

	/* An unreadable secret file is an error naming file and key. */
	p = write_file("t2.conf", "[tenant.a]\ndomain = a.auth0.com\nclient_secret_file = missing.secret\n");
	argv[2] = (char *)p;
	expect_error(argv, env, (const char *[]){ ":3:", "client_secret_file", "missing.secret", NULL });
	/* http:// to a non-loopback host is refused. */
	char *env4[] = { "HOME=/h", "AUTH0_DOMAIN=http://evil.example.com", NULL };
	expect_error((char *[]){ "importd", NULL }, env4, (const char *[]){ "AUTH0_DOMAIN", "loopback", NULL });
}

static void test_base_url(void **state)
{
	(void)state;
	static const struct {
		const char *in, *out;
	} ok[] = {
		{ "example.eu.auth0.com", "https://example.eu.auth0.com" },
		{ "https://Example.auth0.com/", "https://example.auth0.com" },
		{ "http://127.0.0.1:9000", "http://127.0.0.1:9000" },
		{ "http://localhost:9000//", "http://localhost:9000" },
		{ "http://[::1]:9000", "http://[::1]:9000" },
		{ "https://login.example.com:8443", "https://login.example.com:8443" },
	};
	for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
		char *out = NULL;
		assert_int_equal(config_normalize_base_url(ok[i].in, &out), 0);
		assert_string_equal(out, ok[i].out);
		free(out);
	}
	static const char *const bad[] = { "http://example.com", "ftp://x", "", "a b.com", "x.com/path",
					   "https://x.com?q=1", "https://user@x.com", "http://10.0.0.1:80" };
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		char *out = NULL;
		assert_true(config_normalize_base_url(bad[i], &out) < 0);
		assert_null(out);
	}
}

static void test_restart_needed(void **state)
{
	(void)state;
	struct config *a, *b;
	char *env[] = { "HOME=/h", NULL };
	assert_int_equal(load(&a, (char *[]){ "importd", "--listen", "127.0.0.1:1", NULL }, env), 0);
	assert_int_equal(load(&b, (char *[]){ "importd", "--listen", "127.0.0.1:2", "--state-dir", "/x", NULL }, env), 0);
	char buf[64];
	assert_int_equal(config_restart_needed(a, b, buf, sizeof(buf)), 2);
	assert_string_equal(buf, "listen, state_dir");
	assert_int_equal(config_restart_needed(a, a, buf, sizeof(buf)), 0);
	config_ref(a);
	config_unref(a);
	config_unref(a);
	config_unref(b);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_defaults, setup, teardown),
		cmocka_unit_test_setup_teardown(test_state_dir_precedence, setup, teardown),
		cmocka_unit_test_setup_teardown(test_precedence, setup, teardown),
		cmocka_unit_test(test_suffixes),
		cmocka_unit_test_setup_teardown(test_file_errors, setup, teardown),
		cmocka_unit_test_setup_teardown(test_chunk_bytes_bounds, setup, teardown),
		cmocka_unit_test_setup_teardown(test_flag_errors, setup, teardown),
		cmocka_unit_test_setup_teardown(test_listen_token, setup, teardown),
		cmocka_unit_test_setup_teardown(test_tenants, setup, teardown),
		cmocka_unit_test(test_base_url),
		cmocka_unit_test(test_restart_needed),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
