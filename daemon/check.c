/* `auth0-importd check`: see check.h. */
#include "daemon/check.h"
#include "daemon/users/users.h"

#include <errno.h>
#include <json-c/json.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CHECK_MAX_ERRORS_DEFAULT 1000u
#define CHECK_MAX_ERRORS_LIMIT   100000u

struct check {
	bool json;
	const char *path;
	uint32_t max_errors;
	struct users_options opts;
	/* json */
	struct json_object *errors;
	struct json_object *warnings;
	/* counts of users shown */
	uint64_t shown_invalid, shown_warned;
	bool truncated;
};

static void usage(FILE *f)
{
	fprintf(f,
	        "usage: auth0-importd check FILE|- [--format text|json] [--on-invalid reject|skip]\n"
	        "                           [--unsupported-hash reject|strip] [--strip-auth0-prefix true|false]\n"
	        "                           [--max-errors N]\n");
}

static struct json_object *problem_json(uint32_t index, const struct users_problem *p)
{
	struct json_object *o = json_object_new_object();
	json_object_object_add(o, "index", json_object_new_int64(index));
	if (p->line) /* CSV files */
		json_object_object_add(o, "line", json_object_new_int64(p->line));
	json_object_object_add(o, "path", json_object_new_string(p->path));
	json_object_object_add(o, "code", json_object_new_string(p->code));
	json_object_object_add(o, "message", json_object_new_string(p->message));
	if (p->hint)
		json_object_object_add(o, "hint", json_object_new_string(p->hint));
	return o;
}

static int on_problems(void *ctx, uint32_t index, uint32_t line, const char *email,
                       const char *user_id, const struct users_problem *problems,
                       size_t n, bool warnings_only)
{
	struct check *c = ctx;
	bool show_errors, show_warnings;

	if (!warnings_only) {
		show_errors = c->shown_invalid < c->max_errors;
		if (show_errors)
			c->shown_invalid++;
		else
			c->truncated = true;
	} else
		show_errors = false;
	/* Warnings of the first max_errors users that have some. */
	bool has_warnings = false;
	for (size_t i = 0; i < n; i++)
		has_warnings |= problems[i].warning;
	show_warnings = false;
	if (has_warnings) {
		show_warnings = c->shown_warned < c->max_errors;
		if (show_warnings)
			c->shown_warned++;
		else
			c->truncated = true;
	}
	for (size_t i = 0; i < n; i++) {
		const struct users_problem *p = &problems[i];
		if (p->warning ? !show_warnings : !show_errors)
			continue;
		if (c->json) {
			json_object_array_add(p->warning ? c->warnings : c->errors, problem_json(index, p));
			continue;
		}
		printf("%s: user %u (line %u%s%s): %s %s %s: %s", c->path, index, line,
		       email ? ", " : "", email ? email : "", p->warning ? "warning" : "error",
		       p->path[0] ? p->path : "/", p->code, p->message);
		if (p->hint)
			printf(" (hint: %s)", p->hint);
		putchar('\n');
	}
	(void)user_id;
	return 0;
}

static bool parse_enum(const char *v, const char *a, const char *b, int *ret)
{
	if (strcmp(v, a) == 0)
		*ret = 0;
	else if (strcmp(v, b) == 0)
		*ret = 1;
	else
		return false;
	return true;
}

/* 0 ok, 2 bad command line (message printed). */
static int parse_args(struct check *c, int argc, char **argv)
{
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		const char *val = NULL;
		char name[64];

		if (strncmp(a, "--", 2) != 0 || strcmp(a, "--") == 0) {
			if (strcmp(a, "--") == 0 && i + 1 < argc)
				a = argv[++i];
			if (c->path) {
				fprintf(stderr, "check: more than one file given (%s)\n", a);
				return 2;
			}
			c->path = a;
			continue;
		}
		if (strcmp(a, "--help") == 0) {
			usage(stdout);
			return -1;
		}
		const char *eq = strchr(a, '=');
		if (eq) {
			snprintf(name, sizeof(name), "%.*s", (int)(eq - a), a);
			val = eq + 1;
		} else {
			snprintf(name, sizeof(name), "%s", a);
			if (i + 1 >= argc) {
				fprintf(stderr, "check: %s needs a value\n", name);
				return 2;
			}
			val = argv[++i];
		}
		int e = 0;
		if (strcmp(name, "--format") == 0) {
			if (!parse_enum(val, "text", "json", &e))
				goto bad;
			c->json = e == 1;
		} else if (strcmp(name, "--on-invalid") == 0) {
			if (!parse_enum(val, "reject", "skip", &e))
				goto bad;
			c->opts.on_invalid = e ? USERS_ON_INVALID_SKIP : USERS_ON_INVALID_REJECT;
		} else if (strcmp(name, "--unsupported-hash") == 0) {
			if (!parse_enum(val, "reject", "strip", &e))
				goto bad;
			c->opts.unsupported_hash = e ? USERS_UNSUPPORTED_HASH_STRIP : USERS_UNSUPPORTED_HASH_REJECT;
		} else if (strcmp(name, "--strip-auth0-prefix") == 0) {
			if (!parse_enum(val, "false", "true", &e))
				goto bad;
			c->opts.strip_auth0_prefix = e ? USERS_AUTH0_PREFIX_STRIP : USERS_AUTH0_PREFIX_KEEP;
		} else if (strcmp(name, "--max-errors") == 0) {
			char *end;
			errno = 0;
			unsigned long n = strtoul(val, &end, 10);
			if (errno || !*val || *end || val[0] == '-' || n < 1 || n > CHECK_MAX_ERRORS_LIMIT)
				goto bad;
			c->max_errors = (uint32_t)n;
		} else {
			fprintf(stderr, "check: unknown option %s\n", name);
			usage(stderr);
			return 2;
		}
		continue;
bad:
		fprintf(stderr, "check: invalid value for %s: %s\n", name, val);
		return 2;
	}
	if (!c->path) {
		usage(stderr);
		return 2;
	}
	return 0;
}

static void print_failure_json(const struct users_failure *f)
{
	struct json_object *o = json_object_new_object();
	char type[64];
	const char *title = "Malformed users file";
	if (f->kind == USERS_FAILURE_NOT_AN_ARRAY)
		title = "Not a users file";
	else if (f->kind == USERS_FAILURE_EMPTY)
		title = "Empty users file";
	snprintf(type, sizeof(type), "/problems/%s", f->slug ? f->slug : "malformed-file");
	json_object_object_add(o, "type", json_object_new_string(type));
	json_object_object_add(o, "title", json_object_new_string(title));
	json_object_object_add(o, "status", json_object_new_int(400));
	json_object_object_add(o, "detail", json_object_new_string(f->message));
	json_object_object_add(o, "offset", json_object_new_int64((int64_t)f->offset));
	if (f->line) {
		json_object_object_add(o, "line", json_object_new_int64(f->line));
		json_object_object_add(o, "column", json_object_new_int64(f->column));
	}
	puts(json_object_to_json_string_ext(o, JSON_C_TO_STRING_PRETTY | JSON_C_TO_STRING_NOSLASHESCAPE));
	json_object_put(o);
}

int check_main(int argc, char **argv)
{
	struct check c = { .max_errors = CHECK_MAX_ERRORS_DEFAULT };
	struct users_summary sum;
	struct users_failure fail;
	struct users_sink sink = { .on_problems = on_problems };
	int rc;

	users_options_init(&c.opts);
	rc = parse_args(&c, argc, argv);
	if (rc == -1)
		return 0;
	if (rc)
		return rc;
	c.opts.max_errors = c.max_errors;
	if (c.json) {
		c.errors = json_object_new_array();
		c.warnings = json_object_new_array();
	}
	rc = users_process(c.path, &c.opts, NULL, &sink, &c, &sum, &fail);
	if (rc < 0) {
		int exit_code = 1;
		if (fail.kind == USERS_FAILURE_IO) {
			fprintf(stderr, "check: %s\n", fail.message);
			exit_code = 2;
		} else if (c.json)
			print_failure_json(&fail);
		else if (fail.line)
			printf("%s: %s at line %u, column %u (byte %llu): %s\n", c.path,
			       fail.slug, fail.line, fail.column, (unsigned long long)fail.offset,
			       fail.message);
		else
			printf("%s: %s at byte %llu: %s\n", c.path, fail.slug,
			       (unsigned long long)fail.offset, fail.message);
		json_object_put(c.errors);
		json_object_put(c.warnings);
		return exit_code;
	}
	if (c.json) {
		struct json_object *o = json_object_new_object();
		struct json_object *u = json_object_new_object();
		if (sum.users_invalid > c.max_errors)
			c.truncated = true;
		json_object_object_add(o, "errors", c.errors);
		json_object_object_add(o, "errors_total", json_object_new_int64((int64_t)sum.users_invalid));
		json_object_object_add(o, "truncated", json_object_new_boolean(c.truncated));
		json_object_object_add(o, "warnings", c.warnings);
		json_object_object_add(o, "warnings_total", json_object_new_int64((int64_t)sum.warnings_total));
		json_object_object_add(u, "total", json_object_new_int64((int64_t)sum.users_total));
		json_object_object_add(u, "valid", json_object_new_int64((int64_t)sum.users_valid));
		json_object_object_add(u, "invalid", json_object_new_int64((int64_t)sum.users_invalid));
		json_object_object_add(u, "warned", json_object_new_int64((int64_t)sum.users_warned));
		json_object_object_add(o, "users", u);
		json_object_object_add(o, "format", json_object_new_string(users_format_name(sum.format)));
		json_object_object_add(o, "gzip", json_object_new_boolean(sum.gzip));
		puts(json_object_to_json_string_ext(o, JSON_C_TO_STRING_PRETTY | JSON_C_TO_STRING_NOSLASHESCAPE));
		json_object_put(o);
	} else {
		if (sum.users_invalid > c.shown_invalid)
			printf("%s: %llu more invalid users not shown (--max-errors)\n", c.path,
			       (unsigned long long)(sum.users_invalid - c.shown_invalid));
		printf("%s: %llu users (%s%s): %llu valid (%llu with warnings), %llu invalid\n", c.path,
		       (unsigned long long)sum.users_total, users_format_name(sum.format),
		       sum.gzip ? ", gzip" : "", (unsigned long long)sum.users_valid,
		       (unsigned long long)sum.users_warned, (unsigned long long)sum.users_invalid);
	}
	fflush(stdout);
	return sum.users_invalid ? 1 : 0;
}
