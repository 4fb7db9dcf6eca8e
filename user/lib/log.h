/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Diagnostics on stderr, one line each, prefixed "sockpulse: ". Control bytes (a binary config
 * file's, a path's, a peer's) are written as \xHH: one line stays one line, and nothing reaches
 * the terminal raw.
 */
#ifndef SP_LOG_H
#define SP_LOG_H

#include <stdarg.h>
#include <stddef.h>

enum log_level {
	LOG_WARN = 0,
	LOG_INFO = 1,
	LOG_DEBUG = 2,
};

void log_set_level(enum log_level level);
/* @s with bytes below 0x20 and 0x7f as \xHH, cut to fit @cap; returns the length written. */
size_t log_escape(char *out, size_t cap, const char *s);
enum log_level log_get_level(void);
void sp_log(enum log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void sp_vlog(enum log_level level, const char *fmt, va_list ap) __attribute__((format(printf, 2, 0)));

#define pr_warn(...) sp_log(LOG_WARN, __VA_ARGS__)
#define pr_info(...) sp_log(LOG_INFO, __VA_ARGS__)
#define pr_debug(...) sp_log(LOG_DEBUG, __VA_ARGS__)

#endif
