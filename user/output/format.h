/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Formatting of events: JSON lines per docs/EVENTS.md and aligned text lines. Each
 * formatter writes one complete '\n'-terminated line into buf and returns its length, or 0 when
 * cap is too small (nothing partial is ever reported as written). No allocation. Output is also
 * NUL-terminated (not counted in the length), so cap must leave one byte for the NUL.
 */
#ifndef SP_FORMAT_H
#define SP_FORMAT_H

#include <stddef.h>
#include <stdint.h>

#include "event.h"

#define SP_LINE_MAX 2048 /* enough for any event line */
#define SP_ADDR_STR_MAX 46 /* INET6_ADDRSTRLEN */

/* Agent-wide facts carried on some lines (build info, connect hook variant). */
struct cg_cache;

struct format_ctx {
	const char *connect_hook; /* "tracepoint", ...; NULL to omit */
	/* cgroup ids to attribution (cgroup.h); NULL: lines carry none */
	struct cg_cache *cg;
};

size_t format_json(char *buf, size_t cap, const struct sp_event *ev, uint64_t seq,
		   const struct format_ctx *ctx);
size_t format_text(char *buf, size_t cap, const struct sp_event *ev);
size_t format_text_header(char *buf, size_t cap);
/*
 * format_text() for a stream read top to bottom: a line never shows a time earlier than the
 * line before it (*last_ns, 0 at the start). An engine verdict is stamped at its deadline but
 * decided at the next tick, after lines stamped later may have been written: it shows their time.
 */
size_t format_text_ordered(char *buf, size_t cap, const struct sp_event *ev, uint64_t *last_ns);

/* "2026-11-28T06:45:12.123456789Z" */
size_t format_rfc3339_ns(char *buf, size_t cap, uint64_t real_ns);
/* IPv4 dotted, IPv6 RFC 5952, IPv4-mapped IPv6 as IPv4; "" for family 0. */
size_t format_addr(char *buf, size_t cap, const struct sp_addr *addr);
/* "850ns", "12.3us", "1.5ms", "2.0s": one decimal, truncated (watch's durations); cut to fit. */
size_t format_human_ns(char *buf, size_t cap, uint64_t ns);
/* JSON string body escaping (no quotes added): ", \, control chars, invalid UTF-8 as \ufffd. */
size_t json_escape(char *buf, size_t cap, const char *s, size_t len);

#endif
