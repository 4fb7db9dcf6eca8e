// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
#include <stdio.h>
#include <string.h>

#include "log.h"

/* The one piece of process-wide state: diagnostics go to one place at one level. */
static enum log_level log_level = LOG_INFO;

void log_set_level(enum log_level level)
{
	log_level = level;
}

enum log_level log_get_level(void)
{
	return log_level;
}

size_t log_escape(char *out, size_t cap, const char *s)
{
	static const char hex[] = "0123456789abcdef";
	size_t o = 0;

	if (!cap)
		return 0;
	for (; *s && o + 5 <= cap; s++) {
		unsigned char c = (unsigned char)*s;

		if (c < 0x20 || c == 0x7f) {
			out[o++] = '\\';
			out[o++] = 'x';
			out[o++] = hex[c >> 4];
			out[o++] = hex[c & 15];
		} else {
			out[o++] = (char)c;
		}
	}
	out[o] = '\0';
	return o;
}

void sp_vlog(enum log_level level, const char *fmt, va_list ap)
{
	char line[1024], out[4 * sizeof(line)];
	int n;

	if (level > log_level)
		return;
	n = vsnprintf(line, sizeof(line), fmt, ap);
	if (n < 0)
		return;
	if ((size_t)n >= sizeof(line))
		n = sizeof(line) - 1;
	/* libbpf's messages carry their own newline; ours do not. */
	while (n > 0 && line[n - 1] == '\n')
		line[--n] = '\0';
	log_escape(out, sizeof(out), line);
	fprintf(stderr, "sockpulse: %s\n", out);
}

void sp_log(enum log_level level, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	sp_vlog(level, fmt, ap);
	va_end(ap);
}
