/*
 * log — the daemon's one way to say something to the operator.
 *
 * Lines go to stderr as "LEVEL subsystem: message". Under systemd (stderr is
 * the journal, JOURNAL_STREAM set) each line starts with the sd-daemon "<N>"
 * priority prefix instead of the level word. Subsystems are short tags:
 * "main", "api", "store", "queue", "auth0", "sandbox", "users".
 *
 * Never pass a secret (client secret, access token, API token) as an
 * argument: secrets live in `struct secret` (secret.h), which has no print
 * path. Library code returns errors; callers log once.
 */
#pragma once

#include <stdarg.h>
#include <stdbool.h>

enum log_level {
	LOG_LEVEL_DEBUG = 0,
	LOG_LEVEL_INFO,
	LOG_LEVEL_WARN,
	LOG_LEVEL_ERROR,
};

enum log_format {
	LOG_FORMAT_TEXT = 0,
	LOG_FORMAT_JSON,
};

/* Process-wide settings; safe to call again at SIGHUP. */
void log_set_level(enum log_level level);
enum log_level log_get_level(void);
void log_set_format(enum log_format format);
/* "debug"|"info"|"warn"|"error" → 0 and *ret_level, or -EINVAL. */
int log_level_from_string(const char *s, enum log_level *ret_level);

void log_msg(enum log_level level, const char *subsys, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
void log_msgv(enum log_level level, const char *subsys, const char *fmt, va_list ap)
	__attribute__((format(printf, 3, 0)));

#define log_debug(subsys, ...) log_msg(LOG_LEVEL_DEBUG, subsys, __VA_ARGS__)
#define log_info(subsys, ...)  log_msg(LOG_LEVEL_INFO, subsys, __VA_ARGS__)
#define log_warn(subsys, ...)  log_msg(LOG_LEVEL_WARN, subsys, __VA_ARGS__)
#define log_error(subsys, ...) log_msg(LOG_LEVEL_ERROR, subsys, __VA_ARGS__)
