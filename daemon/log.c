#include "daemon/log.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static enum log_level log_level_current = LOG_LEVEL_INFO;
static enum log_format log_format_current = LOG_FORMAT_TEXT;
static pthread_mutex_t log_lock = PTHREAD_MUTEX_INITIALIZER;

static const char *const level_names[] = { "debug", "info", "warn", "error" };
/* sd-daemon(3) priorities: debug 7, info 6, warning 4, err 3. */
static const int level_prio[] = { 7, 6, 4, 3 };

void log_set_level(enum log_level level) { log_level_current = level; }
enum log_level log_get_level(void) { return log_level_current; }
void log_set_format(enum log_format format) { log_format_current = format; }

int log_level_from_string(const char *s, enum log_level *ret_level)
{
	for (size_t i = 0; i < sizeof(level_names) / sizeof(level_names[0]); i++) {
		if (strcmp(s, level_names[i]) == 0) {
			*ret_level = (enum log_level)i;
			return 0;
		}
	}
	if (strcmp(s, "warning") == 0) {
		*ret_level = LOG_LEVEL_WARN;
		return 0;
	}
	return -EINVAL;
}

static void json_escape(FILE *f, const char *s)
{
	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;
		if (c == '"' || c == '\\')
			fprintf(f, "\\%c", c);
		else if (c == '\n')
			fputs("\\n", f);
		else if (c < 0x20)
			fprintf(f, "\\u%04x", c);
		else
			fputc(c, f);
	}
}

void log_msgv(enum log_level level, const char *subsys, const char *fmt, va_list ap)
{
	if (level < log_level_current)
		return;
	char msg[2048];
	vsnprintf(msg, sizeof(msg), fmt, ap);

	pthread_mutex_lock(&log_lock);
	if (log_format_current == LOG_FORMAT_JSON) {
		struct timespec ts;
		struct tm tm;
		char when[40];
		clock_gettime(CLOCK_REALTIME, &ts);
		gmtime_r(&ts.tv_sec, &tm);
		strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%S", &tm);
		fprintf(stderr, "{\"time\":\"%s.%03ldZ\",\"level\":\"%s\",\"subsystem\":\"",
			when, ts.tv_nsec / 1000000, level_names[level]);
		json_escape(stderr, subsys);
		fputs("\",\"message\":\"", stderr);
		json_escape(stderr, msg);
		fputs("\"}\n", stderr);
	} else if (getenv("JOURNAL_STREAM")) {
		fprintf(stderr, "<%d>%s: %s\n", level_prio[level], subsys, msg);
	} else {
		fprintf(stderr, "%-5s %s: %s\n", level_names[level], subsys, msg);
	}
	fflush(stderr);
	pthread_mutex_unlock(&log_lock);
}

void log_msg(enum log_level level, const char *subsys, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	log_msgv(level, subsys, fmt, ap);
	va_end(ap);
}
