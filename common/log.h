/* SPDX-License-Identifier: Apache-2.0 */
#ifndef COMMON_LOG_H
#define COMMON_LOG_H

#include <stdarg.h>

enum log_level {
	LOG_LVL_ERROR = 0,
	LOG_LVL_WARN,
	LOG_LVL_NOTICE,
	LOG_LVL_INFO,
	LOG_LVL_DEBUG,
};

/*
 * Where log lines go: "stdout", "stderr", "syslog", "disable", or a file path
 * (opened for append). Returns 0 or -errno; on failure the previous sink stays.
 */
int log_open(const char *target);
void log_close(void);
/* "error", "warn", "notice", "info", "debug"; returns 0 or -EINVAL. */
int log_set_level_name(const char *name);
void log_set_level(enum log_level lvl);
enum log_level log_get_level(void);
int log_level_parse(const char *name, enum log_level *ret);

void log_msg(enum log_level lvl, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* The same with fields after the message: kv = { "policy", "ns/name", "node", "n1", NULL }. */
void log_kv(enum log_level lvl, const char *const *kv, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
#define LOG_KV(...) ((const char *const[]){ __VA_ARGS__, NULL })

#define log_error(...) log_msg(LOG_LVL_ERROR, __VA_ARGS__)
#define log_warn(...) log_msg(LOG_LVL_WARN, __VA_ARGS__)
#define log_notice(...) log_msg(LOG_LVL_NOTICE, __VA_ARGS__)
#define log_info(...) log_msg(LOG_LVL_INFO, __VA_ARGS__)
#define log_debug(...) log_msg(LOG_LVL_DEBUG, __VA_ARGS__)

#endif
