/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* Diagnostics on stderr, one line each, prefixed "sockpulse: ". */
#ifndef SP_LOG_H
#define SP_LOG_H

#include <stdarg.h>

enum log_level {
	LOG_WARN = 0,
	LOG_INFO = 1,
	LOG_DEBUG = 2,
};

void log_set_level(enum log_level level);
enum log_level log_get_level(void);
void sp_log(enum log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void sp_vlog(enum log_level level, const char *fmt, va_list ap) __attribute__((format(printf, 2, 0)));

#define pr_warn(...) sp_log(LOG_WARN, __VA_ARGS__)
#define pr_info(...) sp_log(LOG_INFO, __VA_ARGS__)
#define pr_debug(...) sp_log(LOG_DEBUG, __VA_ARGS__)

#endif
