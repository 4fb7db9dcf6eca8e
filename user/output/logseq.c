// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* event.sequence, log-gap and log-start lines; see logseq.h. */
#define _GNU_SOURCE
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <json-c/json.h>

#include "format.h"
#include "logseq.h"

void logseq_init(struct logseq *ls, uint64_t last, const uint8_t rnd[16])
{
	uint8_t b[16];

	memset(ls, 0, sizeof(*ls));
	ls->seq = last;
	memcpy(b, rnd, sizeof(b));
	b[6] = (b[6] & 0x0f) | 0x40; /* RFC 4122 version 4 */
	b[8] = (b[8] & 0x3f) | 0x80; /* variant 1 */
	snprintf(ls->ephemeral_id, sizeof(ls->ephemeral_id),
		 "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x", b[0], b[1],
		 b[2], b[3], b[4], b[5], b[6], b[7], b[8], b[9], b[10], b[11], b[12], b[13], b[14],
		 b[15]);
}

void logseq_take(struct logseq *ls)
{
	ls->seq++;
}

void logseq_drop(struct logseq *ls, int err)
{
	ls->seq++;
	if (!ls->gap_count) {
		ls->gap_first = ls->seq;
		ls->gap_errno = 0;
	}
	if (err)
		ls->gap_errno = err;
	ls->gap_count++;
	ls->dropped++;
}

void logseq_gap_done(struct logseq *ls)
{
	ls->gap_first = 0;
	ls->gap_count = 0;
	ls->gap_errno = 0;
}

/* "@timestamp" and "event" up to the sequence; returns the length or 0 if it did not fit. */
static int head(char *buf, size_t cap, uint64_t real_ns, const char *action, uint64_t seq)
{
	char ts[64];

	format_rfc3339_ns(ts, sizeof(ts), real_ns);
	return snprintf(buf, cap,
			"{\"@timestamp\":\"%s\",\"event\":{\"kind\":\"event\",\"action\":\"%s\","
			"\"sequence\":%" PRIu64,
			ts, action, seq);
}

static size_t finish(int n, size_t cap)
{
	return n > 0 && (size_t)n < cap ? (size_t)n : 0;
}

size_t logseq_format_gap(const struct logseq *ls, char *buf, size_t cap, uint64_t real_ns)
{
	const char *why = ls->gap_errno ? strerror(ls->gap_errno) : NULL;
	char esc[256];
	int n, m;

	n = head(buf, cap, real_ns, "log-gap", logseq_peek(ls));
	if (n < 0 || (size_t)n >= cap)
		return 0;
	m = snprintf(buf + n, cap - n, ",\"reason\":\"queue-full\"}");
	if (m < 0 || (size_t)(n += m) >= cap)
		return 0;
	if (why) {
		json_escape(esc, sizeof(esc), why, strlen(why));
		m = snprintf(buf + n, cap - n, ",\"error\":{\"message\":\"%s\"}", esc);
		if (m < 0 || (size_t)(n += m) >= cap)
			return 0;
	}
	m = snprintf(buf + n, cap - n,
		     ",\"sockpulse\":{\"schema\":1,\"gap\":{\"dropped\":%" PRIu64
		     ",\"first_sequence\":%" PRIu64 ",\"last_sequence\":%" PRIu64 "}}}\n",
		     ls->gap_count, ls->gap_first, ls->gap_first + ls->gap_count - 1);
	return m < 0 ? 0 : finish(n + m, cap);
}

size_t logseq_format_start(const struct logseq *ls, char *buf, size_t cap, uint64_t real_ns,
			   const char *version, uint64_t previous)
{
	char prev[64] = "";
	int n, m;

	n = head(buf, cap, real_ns, "log-start", logseq_peek(ls));
	if (n < 0 || (size_t)n >= cap)
		return 0;
	if (previous)
		snprintf(prev, sizeof(prev), ",\"log\":{\"previous_sequence\":%" PRIu64 "}",
			 previous);
	m = snprintf(buf + n, cap - n,
		     "},\"agent\":{\"ephemeral_id\":\"%s\",\"version\":\"%s\"},"
		     "\"sockpulse\":{\"schema\":1%s}}\n",
		     ls->ephemeral_id, version, prev);
	return m < 0 ? 0 : finish(n + m, cap);
}

/* event.sequence of one line, or 0. */
static uint64_t line_sequence(const char *p, size_t n)
{
	struct json_tokener *tok = json_tokener_new();
	struct json_object *root, *ev, *seq;
	uint64_t v = 0;

	if (!tok)
		return 0;
	root = json_tokener_parse_ex(tok, p, (int)n);
	if (root && json_object_object_get_ex(root, "event", &ev) &&
	    json_object_object_get_ex(ev, "sequence", &seq) &&
	    json_object_is_type(seq, json_type_int))
		v = json_object_get_uint64(seq);
	json_object_put(root);
	json_tokener_free(tok);
	return v;
}

int logseq_last_in_fd(int fd, uint64_t *seq)
{
	char *buf, *end, *start;
	struct stat st;
	off_t from;
	ssize_t n;
	uint64_t v = 0;

	if (fstat(fd, &st) || st.st_size <= 0)
		return -ENOENT;
	from = st.st_size > LOGSEQ_TAIL_BYTES ? st.st_size - LOGSEQ_TAIL_BYTES : 0;
	buf = malloc(LOGSEQ_TAIL_BYTES);
	if (!buf)
		return -ENOMEM;
	n = pread(fd, buf, (size_t)(st.st_size - from), from);
	end = n > 0 ? buf + n : buf;
	/* from the end: the last whole line that carries a sequence */
	while (end > buf && !v) {
		if (end[-1] == '\n')
			end--;
		start = memrchr(buf, '\n', (size_t)(end - buf));
		start = start ? start + 1 : buf;
		if (start == buf && from > 0)
			break; /* a line longer than the tail: not whole */
		v = line_sequence(start, (size_t)(end - start));
		end = start;
	}
	free(buf);
	if (!v)
		return -ENOENT;
	*seq = v;
	return 0;
}
