/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Helpers shared by the libFuzzer harnesses: a byte reader over the fuzzer's input, events made
 * from bytes (every field the engine's and the decoder's callers may set, pointers only ever to
 * static strings), and the checks on what the formatters and the metrics renderer write.
 * A failed check prints why and aborts, which libFuzzer reports as a crash with the input saved.
 */
#ifndef SP_FUZZ_COMMON_H
#define SP_FUZZ_COMMON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include <json-c/json.h>

#include "event.h"
#include "names.h"

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

/* The checkers are not under test: no coverage feedback from them, and many times faster. */
#define FUZZ_CHECKER __attribute__((no_sanitize("coverage"), noinline, unused))

#define fuzz_assert(cond, ...)                                                                     \
	do {                                                                                       \
		if (!(cond)) {                                                                     \
			/* fd 2, not stderr: a harness may point stderr elsewhere */               \
			dprintf(2, "%s:%d: check failed: %s: ", __FILE__, __LINE__, #cond);        \
			dprintf(2, __VA_ARGS__);                                                   \
			dprintf(2, "\n");                                                          \
			abort();                                                                   \
		}                                                                                  \
	} while (0)

/* ---- byte reader: past the end every read gives zeros ---- */

struct fuzz_in {
	const uint8_t *p;
	size_t n;
};

static inline void fin_take(struct fuzz_in *in, void *out, size_t len)
{
	size_t k = in->n < len ? in->n : len;

	memset(out, 0, len);
	if (k)
		memcpy(out, in->p, k);
	in->p += k;
	in->n -= k;
}

static inline uint8_t fin_u8(struct fuzz_in *in)
{
	uint8_t v;

	fin_take(in, &v, sizeof(v));
	return v;
}

static inline uint16_t fin_u16(struct fuzz_in *in)
{
	uint16_t v;

	fin_take(in, &v, sizeof(v));
	return v;
}

static inline uint32_t fin_u32(struct fuzz_in *in)
{
	uint32_t v;

	fin_take(in, &v, sizeof(v));
	return v;
}

static inline uint64_t fin_u64(struct fuzz_in *in)
{
	uint64_t v;

	fin_take(in, &v, sizeof(v));
	return v;
}

/* ---- events from bytes ---- */

static const char *const fuzz_reasons[] = {
    NULL,	   "reset",	  "reset-sent", "keepalive-timeout", "retransmit-timeout",
    "agent-stall", "events-lost", "state",	"connect",	     "bogus\"\\\n",
};

static inline void fuzz_addr(struct fuzz_in *in, struct sp_addr *a)
{
	static const uint16_t families[] = {0, AF_INET, AF_INET6, AF_INET6};
	uint8_t sel = fin_u8(in);

	memset(a, 0, sizeof(*a));
	a->family = families[sel & 3];
	if (a->family == AF_INET) {
		fin_take(in, a->bytes, 4);
	} else if (a->family == AF_INET6) {
		fin_take(in, a->bytes, 16);
		if (sel & 4) { /* IPv4-mapped */
			memset(a->bytes, 0, 10);
			a->bytes[10] = a->bytes[11] = 0xff;
		}
	}
}

/*
 * One event from the input. @raw_enums: enum fields take any byte (consumers that bound-check,
 * like the metrics registry); otherwise they stay in range, as every producer keeps them.
 */
static inline void fuzz_event(struct fuzz_in *in, struct sp_event *ev, bool raw_enums)
{
	uint8_t a = fin_u8(in), flags = fin_u8(in);
	uint8_t e1, e2;

	memset(ev, 0, sizeof(*ev));
	ev->action = raw_enums ? a : a % SP_ACT_MAX;
	ev->mono_ns = fin_u64(in);
	ev->real_ns = flags & 0x80 ? fin_u64(in) : ev->mono_ns;
	ev->has_conn = flags & 1;
	if (ev->has_conn) {
		struct sp_conn *c = &ev->conn;

		fuzz_addr(in, &c->src);
		fuzz_addr(in, &c->dst);
		c->sport = fin_u16(in);
		c->dport = fin_u16(in);
		c->direction = fin_u8(in) % 3;
		c->has_ports = flags & 2;
		c->has_pid = flags & 4;
		c->pid = fin_u32(in);
		fin_take(in, c->comm, sizeof(c->comm) - 1);
		c->cookie = fin_u8(in); /* a small space, so events meet the same connection */
		c->netns = fin_u8(in) & 3;
	}
	ev->has_duration = flags & 8;
	if (ev->has_duration)
		ev->duration_ns = fin_u64(in);
	ev->error = flags & 16 ? fin_u16(in) % 4096 : 0;
	e1 = fin_u8(in);
	e2 = fin_u8(in);
	switch (ev->action) {
	case SP_ACT_STATE_CHANGE:
		ev->state.old_state = raw_enums ? e1 : e1 % SP_ST_MAX;
		ev->state.new_state = raw_enums ? e2 : e2 % SP_ST_MAX;
		ev->state.time_wait = flags & 32;
		ev->state.segments = fin_u32(in);
		ev->state.payload_bytes = fin_u64(in);
		break;
	case SP_ACT_ACTIVITY:
		ev->activity.segments = fin_u32(in);
		ev->activity.payload_bytes = fin_u64(in);
		break;
	case SP_ACT_CONNECT:
		ev->connect.success = flags & 32;
		ev->connect.failure = raw_enums ? e1 : e1 % 7;
		break;
	case SP_ACT_KEEPALIVE_TIMEOUT:
		ev->keepalive.probes = fin_u32(in);
		break;
	case SP_ACT_RESET:
		ev->reset.direction = raw_enums ? e1 : e1 % 3;
		ev->reset.has_old_state = flags & 32;
		ev->reset.old_state = raw_enums ? e2 : e2 % SP_ST_MAX;
		break;
	case SP_ACT_LEASE_SUSPECT:
	case SP_ACT_LEASE_EXPIRED:
	case SP_ACT_LEASE_RECOVERED:
	case SP_ACT_LEASE_CLOSED:
	case SP_ACT_LEASE_LOST:
		ev->lease.kind = raw_enums ? e1 : e1 % SP_LEASE_KIND_MAX;
		ev->lease.silent_ms = fin_u64(in);
		ev->lease.ttl_ms = fin_u64(in);
		ev->lease.reason = fuzz_reasons[e2 % ARRAY_SIZE(fuzz_reasons)];
		break;
	case SP_ACT_SPIKE:
		ev->spike.start = flags & 32;
		ev->spike.host_wide = flags & 64;
		ev->spike.failures = fin_u64(in);
		ev->spike.window_s = fin_u32(in);
		ev->spike.baseline_per_s = (double)fin_u32(in) / 64.0;
		ev->spike.failure = raw_enums ? e1 : e1 % 7;
		ev->spike.destinations = fin_u32(in);
		break;
	case SP_ACT_EVENTS_LOST:
		ev->lost.count = fin_u64(in);
		ev->lost.kind = fuzz_reasons[e1 % ARRAY_SIZE(fuzz_reasons)];
		break;
	case SP_ACT_LEASE_HOLD:
		ev->hold.reason = fuzz_reasons[e1 % ARRAY_SIZE(fuzz_reasons)];
		ev->hold.grace_ms = fin_u64(in);
		ev->hold.stall_ms = fin_u64(in);
		ev->hold.lost = fin_u64(in);
		break;
	default:
		break;
	}
}

/* ---- formatted lines ---- */

/*
 * A line of format_json(): n > 0, '\n'-terminated, NUL right after, no other newline or NUL,
 * one JSON object that json-c parses, whose event.action is @action.
 */
FUZZ_CHECKER static void fuzz_check_json_line(const char *buf, size_t n, const char *action)
{
	struct json_object *root, *event, *act;
	struct json_tokener *tok;

	fuzz_assert(n > 0, "format_json wrote nothing");
	fuzz_assert(buf[n - 1] == '\n' && buf[n] == '\0', "line not '\\n'-terminated");
	fuzz_assert(strlen(buf) == n, "NUL inside the line");
	fuzz_assert(memchr(buf, '\n', n - 1) == NULL, "newline inside the line: %s", buf);
	tok = json_tokener_new();
	fuzz_assert(tok, "json_tokener_new");
	root = json_tokener_parse_ex(tok, buf, (int)n - 1);
	fuzz_assert(root && json_tokener_get_error(tok) == json_tokener_success,
		    "json-c rejects the line (%s): %s",
		    json_tokener_error_desc(json_tokener_get_error(tok)), buf);
	fuzz_assert(json_tokener_get_parse_end(tok) == n - 1, "junk after the object: %s", buf);
	fuzz_assert(json_object_is_type(root, json_type_object), "not an object: %s", buf);
	fuzz_assert(json_object_object_get_ex(root, "event", &event) &&
			json_object_object_get_ex(event, "action", &act) &&
			json_object_is_type(act, json_type_string) &&
			strcmp(json_object_get_string(act), action) == 0,
		    "event.action is not %s: %s", action, buf);
	fuzz_assert(json_object_object_get_ex(root, "@timestamp", &act), "no @timestamp: %s", buf);
	json_object_put(root);
	json_tokener_free(tok);
}

/* A line of format_text(): n > 0, '\n'-terminated, NUL right after, no other newline or NUL. */
FUZZ_CHECKER static void fuzz_check_text_line(const char *buf, size_t n)
{
	fuzz_assert(n > 0, "format_text wrote nothing");
	fuzz_assert(buf[n - 1] == '\n' && buf[n] == '\0', "text line not '\\n'-terminated");
	fuzz_assert(strlen(buf) == n, "NUL inside the text line");
	fuzz_assert(memchr(buf, '\n', n - 1) == NULL, "newline inside the text line: %s", buf);
}

/* ---- Prometheus text exposition 0.0.4 ---- */

#define EXPO_MAX_FAMILIES 128
#define EXPO_MAX_SERIES	  4096

struct expo_series {
	const char *p; /* name{labels} of a sample line */
	size_t len;
};

FUZZ_CHECKER static int expo_series_cmp(const void *a, const void *b)
{
	const struct expo_series *x = a, *y = b;
	size_t n = x->len < y->len ? x->len : y->len;
	int c = memcmp(x->p, y->p, n);

	return c ? c : (x->len > y->len) - (x->len < y->len);
}

FUZZ_CHECKER static bool expo_name_char(char c, bool first)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || c == ':' ||
	       (!first && c >= '0' && c <= '9');
}

/* Length of a metric or label name at p (0: none). */
FUZZ_CHECKER static size_t expo_name(const char *p, const char *end)
{
	size_t n = 0;

	while (p + n < end && expo_name_char(p[n], n == 0))
		n++;
	return n;
}

/*
 * Called for each label value of each sample, unescaped (NUL-terminated, at most 4 KiB).
 */
typedef void (*expo_label_fn)(void *ctx, const char *metric, size_t mlen, const char *label,
			      size_t llen, const char *value);

/*
 * Checks a whole exposition: '\n'-terminated lines, each a HELP, a TYPE or a sample; a TYPE at
 * most once per family and before its samples; samples of declared families only (histogram:
 * _bucket with le, _sum, _count); label values quoted with only \\, \" and \n escapes, so no raw
 * newline or quote inside; a numeric value last; no series twice.
 */
FUZZ_CHECKER static void fuzz_check_exposition(const char *buf, size_t len, expo_label_fn fn,
					       void *ctx)
{
	static struct expo_series series[EXPO_MAX_SERIES];
	struct {
		const char *p;
		size_t len;
		bool histogram;
	} fam[EXPO_MAX_FAMILIES];
	size_t nfam = 0, nser = 0;
	const char *line = buf, *end = buf + len;
	static char value[4096];

	fuzz_assert(len > 0 && buf[len - 1] == '\n', "exposition does not end with a newline");
	fuzz_assert(strlen(buf) == len, "NUL inside the exposition");
	while (line < end) {
		const char *eol = memchr(line, '\n', (size_t)(end - line)), *p = line;
		size_t n, f;
		bool hist_part = false, has_le = false;
		char *num_end;
		char num[64];

		fuzz_assert(eol && eol > line, "empty line in the exposition");
		if (!strncmp(p, "# HELP ", 7)) {
			n = expo_name(p + 7, eol);
			fuzz_assert(n && p[7 + n] == ' ', "bad HELP line: %.*s", (int)(eol - line),
				    line);
			line = eol + 1;
			continue;
		}
		if (!strncmp(p, "# TYPE ", 7)) {
			const char *t;

			n = expo_name(p + 7, eol);
			fuzz_assert(n && p[7 + n] == ' ', "bad TYPE line: %.*s", (int)(eol - line),
				    line);
			t = p + 8 + n;
			fuzz_assert((eol - t == 7 && !strncmp(t, "counter", 7)) ||
					(eol - t == 5 && !strncmp(t, "gauge", 5)) ||
					(eol - t == 9 && !strncmp(t, "histogram", 9)),
				    "unknown type: %.*s", (int)(eol - line), line);
			for (f = 0; f < nfam; f++)
				fuzz_assert(fam[f].len != n || memcmp(fam[f].p, p + 7, n),
					    "TYPE twice: %.*s", (int)(eol - line), line);
			fuzz_assert(nfam < EXPO_MAX_FAMILIES, "too many families");
			fam[nfam].p = p + 7;
			fam[nfam].len = n;
			fam[nfam].histogram = *t == 'h';
			nfam++;
			line = eol + 1;
			continue;
		}
		fuzz_assert(*p != '#', "unknown comment line: %.*s", (int)(eol - line), line);
		/* a sample: its family is declared */
		n = expo_name(p, eol);
		fuzz_assert(n, "sample without a name: %.*s", (int)(eol - line), line);
		for (f = 0; f < nfam; f++) {
			if (fam[f].len == n && !memcmp(fam[f].p, p, n))
				break;
			if (fam[f].histogram && n > fam[f].len &&
			    !memcmp(fam[f].p, p, fam[f].len) &&
			    ((n - fam[f].len == 7 && !memcmp(p + fam[f].len, "_bucket", 7)) ||
			     (n - fam[f].len == 4 && !memcmp(p + fam[f].len, "_sum", 4)) ||
			     (n - fam[f].len == 6 && !memcmp(p + fam[f].len, "_count", 6)))) {
				hist_part = true;
				break;
			}
		}
		fuzz_assert(f < nfam, "sample before its TYPE: %.*s", (int)(eol - line), line);
		fuzz_assert(!fam[f].histogram || hist_part, "bare histogram sample");
		p += n;
		if (*p == '{') {
			p++;
			for (;;) {
				size_t ln = expo_name(p, eol), vn = 0;
				const char *lname = p;

				fuzz_assert(ln && p[ln] == '=' && p[ln + 1] == '"',
					    "bad label: %.*s", (int)(eol - line), line);
				has_le = has_le || (ln == 2 && !memcmp(p, "le", 2));
				p += ln + 2;
				while (p < eol && *p != '"') {
					if (*p == '\\') {
						fuzz_assert(
						    p[1] == '\\' || p[1] == '"' || p[1] == 'n',
						    "bad escape in: %.*s", (int)(eol - line), line);
						if (vn < sizeof(value) - 1)
							value[vn++] = p[1] == 'n' ? '\n' : p[1];
						p += 2;
					} else {
						if (vn < sizeof(value) - 1)
							value[vn++] = *p;
						p++;
					}
				}
				fuzz_assert(p < eol,
					    "unterminated label value (raw newline?): %.*s",
					    (int)(eol - line), line);
				value[vn] = '\0';
				if (fn)
					fn(ctx, line, n, lname, ln, value);
				p++;
				if (*p == ',') {
					p++;
					continue;
				}
				fuzz_assert(*p == '}', "bad label list: %.*s", (int)(eol - line),
					    line);
				p++;
				break;
			}
		}
		fuzz_assert(!hist_part || memcmp(line + n - 7, "_bucket", 7) || has_le,
			    "bucket without le: %.*s", (int)(eol - line), line);
		fuzz_assert(nser < EXPO_MAX_SERIES, "too many series");
		series[nser].p = line;
		series[nser].len = (size_t)(p - line);
		nser++;
		fuzz_assert(*p == ' ', "no value: %.*s", (int)(eol - line), line);
		p++;
		n = (size_t)(eol - p);
		fuzz_assert(n > 0 && n < sizeof(num), "bad value: %.*s", (int)(eol - line), line);
		memcpy(num, p, n);
		num[n] = '\0';
		if (strcmp(num, "+Inf") && strcmp(num, "-Inf") && strcmp(num, "NaN")) {
			fuzz_assert((num[0] >= '0' && num[0] <= '9') || num[0] == '-',
				    "bad value: %.*s", (int)(eol - line), line);
			strtod(num, &num_end);
			fuzz_assert(*num_end == '\0', "bad value: %.*s", (int)(eol - line), line);
		}
		line = eol + 1;
	}
	qsort(series, nser, sizeof(series[0]), expo_series_cmp);
	for (size_t i = 1; i < nser; i++)
		fuzz_assert(expo_series_cmp(&series[i - 1], &series[i]), "series twice: %.*s",
			    (int)series[i].len, series[i].p);
}

#endif
