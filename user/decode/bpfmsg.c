// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* libbpf's warnings about a failed load; see bpfmsg.h. */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "bpfmsg.h"
#include "util.h"

#define LOG_BEGIN "-- BEGIN PROG LOAD LOG --"
#define LOG_END "-- END PROG LOAD LOG --"
#define PREFIX "libbpf: "

/* Lines the verifier writes after its verdict: statistics, not reasons. */
static bool is_statistics(const char *line, size_t n)
{
	static const char *const stats[] = { "processed ", "verification time ", "stack depth ",
					     "max_states_per_insn ", "func#" };

	for (size_t i = 0; i < ARRAY_SIZE(stats); i++) {
		size_t k = strlen(stats[i]);

		if (n >= k && strncmp(line, stats[i], k) == 0)
			return true;
	}
	return false;
}

static void copy_line(char *out, size_t cap, const char *s, size_t n)
{
	while (n && (*s == ' ' || *s == '\t')) {
		s++;
		n--;
	}
	while (n && (s[n - 1] == ' ' || s[n - 1] == '\t' || s[n - 1] == '\r'))
		n--;
	snprintf(out, cap, "%.*s", (int)(n < cap ? n : cap - 1), s);
}

int bpfmsg_verdict(const char *log, size_t len, char *out, size_t cap)
{
	size_t end = len;

	while (end > 0) {
		size_t start = end, n;

		while (start > 0 && log[start - 1] != '\n')
			start--;
		n = end - start;
		while (n && (log[start + n - 1] == ' ' || log[start + n - 1] == '\t' ||
			     log[start + n - 1] == '\r'))
			n--;
		if (n && !is_statistics(log + start, n)) {
			copy_line(out, cap, log + start, n);
			return 0;
		}
		end = start ? start - 1 : 0;
	}
	if (cap)
		out[0] = '\0';
	return -ENOENT;
}

/* "prog 'NAME': ..." -> NAME */
static void note_prog(struct bpfmsg *m, const char *msg)
{
	const char *p = strstr(msg, "prog '"), *q;

	if (m->prog[0] || !p)
		return;
	p += strlen("prog '");
	q = strchr(p, '\'');
	if (q)
		snprintf(m->prog, sizeof(m->prog), "%.*s", (int)(q - p), p);
}

void bpfmsg_reset(struct bpfmsg *m)
{
	memset(m, 0, sizeof(*m));
}

void bpfmsg_note(struct bpfmsg *m, const char *msg)
{
	const char *body = msg, *log, *end;

	if (strncmp(body, PREFIX, strlen(PREFIX)) == 0)
		body += strlen(PREFIX);
	copy_line(m->warn, sizeof(m->warn), body, strcspn(body, "\n"));
	log = strstr(body, LOG_BEGIN);
	if (log) {
		const char *named = strstr(body, "prog '");

		/* the program the log is about wins over one named earlier */
		if (named && named < log) {
			m->prog[0] = '\0';
			note_prog(m, body);
		}
		log += strlen(LOG_BEGIN);
		end = strstr(log, LOG_END);
		if (!end)
			end = log + strlen(log);
		if (!m->verdict[0])
			bpfmsg_verdict(log, (size_t)(end - log), m->verdict, sizeof(m->verdict));
		return;
	}
	if (strstr(body, "load failed") || strstr(body, "failed to load"))
		note_prog(m, body);
}
