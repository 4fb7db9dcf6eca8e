// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * Formatting pieces of `sockpulse top`; see topfmt.h. Strings from outside (process names) are
 * untrusted: they are sanitized glyph by glyph, and every write is bounded by the caller's cap.
 */
#define _GNU_SOURCE
#include <ctype.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "format.h"
#include "names.h"
#include "sockpulse.h"
#include "topfmt.h"
#include "util.h"


#define ELLIPSIS_U "\xe2\x80\xa6" /* U+2026 */
#define ELLIPSIS_A "~"

/* A bounded writer: output stops (silently) where cap ends; always NUL-terminated. */
struct tw {
	char *p, *end; /* end leaves room for the NUL */
	char *start;
};

static void tw_init(struct tw *w, char *buf, size_t cap)
{
	w->start = w->p = buf;
	w->end = cap ? buf + cap - 1 : buf;
	if (cap)
		*buf = '\0';
}

static void tw_put(struct tw *w, const char *s, size_t n)
{
	if (w->p >= w->end || (size_t)(w->end - w->p) < n)
		n = w->p < w->end ? (size_t)(w->end - w->p) : 0;
	memcpy(w->p, s, n);
	w->p += n;
}

static void tw_puts(struct tw *w, const char *s)
{
	tw_put(w, s, strlen(s));
}

static void __attribute__((format(printf, 2, 3))) tw_printf(struct tw *w, const char *fmt, ...)
{
	char tmp[256];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(tmp, sizeof(tmp), fmt, ap);
	va_end(ap);
	if (n > 0)
		tw_put(w, tmp, (size_t)n < sizeof(tmp) ? (size_t)n : sizeof(tmp) - 1);
}

static size_t tw_done(struct tw *w)
{
	if (w->end >= w->start && w->p <= w->end)
		*w->p = '\0';
	return (size_t)(w->p - w->start);
}

/*
 * Length of the glyph at s: a valid, printable UTF-8 sequence (1..4 bytes), or 0 for a byte that
 * is shown as '?' (control character, stray or truncated sequence, overlong form, surrogate).
 */
static size_t glyph_len(const unsigned char *s)
{
	unsigned int c = s[0], cp;
	size_t n, i;

	if (c < 0x80)
		return (c < 0x20 || c == 0x7f) ? 0 : 1;
	if (c >= 0xc2 && c <= 0xdf)
		n = 2, cp = c & 0x1f;
	else if (c >= 0xe0 && c <= 0xef)
		n = 3, cp = c & 0x0f;
	else if (c >= 0xf0 && c <= 0xf4)
		n = 4, cp = c & 0x07;
	else
		return 0;
	for (i = 1; i < n; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return 0;
		cp = (cp << 6) | (s[i] & 0x3f);
	}
	if ((n == 3 && cp < 0x800) || (n == 4 && (cp < 0x10000 || cp > 0x10ffff)) ||
	    (cp >= 0xd800 && cp <= 0xdfff) || (cp >= 0x80 && cp < 0xa0))
		return 0;
	return n;
}

/* Steps over one glyph; *len gets its byte length in the output (0: write '?'). */
static const char *glyph_next(const char *s, size_t *len)
{
	size_t n = glyph_len((const unsigned char *)s);

	*len = n;
	return s + (n ? n : 1);
}

size_t tf_width(const char *s)
{
	size_t w = 0, n;

	while (*s) {
		s = glyph_next(s, &n);
		w++;
	}
	return w;
}

static void put_glyphs(struct tw *w, const char *s, size_t from, size_t to)
{
	size_t i = 0, n;
	const char *g;

	while (*s && i < to) {
		g = s;
		s = glyph_next(s, &n);
		if (i >= from) {
			if (n)
				tw_put(w, g, n);
			else
				tw_put(w, "?", 1);
		}
		i++;
	}
}

static void pad(struct tw *w, size_t n)
{
	while (n--)
		tw_put(w, " ", 1);
}

static void fit_into(struct tw *w, const char *src, size_t width, enum tf_align align,
		     enum tf_trunc trunc, bool unicode)
{
	size_t sw = tf_width(src), head, tail;

	if (sw <= width) {
		if (align == TF_RIGHT)
			pad(w, width - sw);
		put_glyphs(w, src, 0, sw);
		if (align == TF_LEFT)
			pad(w, width - sw);
		return;
	}
	if (!width)
		return;
	if (trunc == TF_TRUNC_MIDDLE) {
		head = width / 2;
		tail = width - 1 - head;
	} else {
		head = width - 1;
		tail = 0;
	}
	put_glyphs(w, src, 0, head);
	tw_puts(w, unicode ? ELLIPSIS_U : ELLIPSIS_A);
	put_glyphs(w, src, sw - tail, sw);
}

size_t tf_fit(char *buf, size_t cap, const char *src, size_t width, enum tf_align align,
	      enum tf_trunc trunc, bool unicode)
{
	struct tw w;

	tw_init(&w, buf, cap);
	fit_into(&w, src ? src : "", width, align, trunc, unicode);
	return tw_done(&w);
}

size_t tf_fit_endpoint(char *buf, size_t cap, const struct sp_addr *addr, uint16_t port,
		       size_t width, bool unicode)
{
	char a[SP_ADDR_STR_MAX], full[SP_ADDR_STR_MAX + 16], suffix[16] = "";
	bool v6;
	size_t fixed;
	struct tw w;

	if (!format_addr(a, sizeof(a), addr))
		snprintf(a, sizeof(a), "-");
	v6 = strchr(a, ':') != NULL; /* IPv4-mapped addresses print as IPv4: no brackets */
	if (port)
		snprintf(suffix, sizeof(suffix), "%s:%u", v6 ? "]" : "", port);
	snprintf(full, sizeof(full), "%s%s%s", v6 && port ? "[" : "", a, suffix);
	tw_init(&w, buf, cap);
	fixed = strlen(suffix) + (v6 && port ? 1 : 0);
	if (tf_width(full) <= width || width < fixed + 3) {
		fit_into(&w, full, width, TF_LEFT, TF_TRUNC_END, unicode);
		return tw_done(&w);
	}
	if (v6 && port)
		tw_put(&w, "[", 1);
	fit_into(&w, a, width - fixed, TF_LEFT, TF_TRUNC_MIDDLE, unicode);
	tw_puts(&w, suffix);
	return tw_done(&w);
}

size_t tf_duration(char *buf, size_t cap, uint64_t ns)
{
	uint64_t ms = ns / NSEC_PER_MSEC, s = ns / NSEC_PER_SEC;
	struct tw w;

	tw_init(&w, buf, cap);
	if (ms < 1000)
		tw_printf(&w, "%llums", (unsigned long long)ms);
	else if (s < 10)
		tw_printf(&w, "%llu.%llus", (unsigned long long)s,
			  (unsigned long long)(ms % 1000 / 100));
	else if (s < 60)
		tw_printf(&w, "%llus", (unsigned long long)s);
	else if (s < 600)
		tw_printf(&w, "%llum%02llus", (unsigned long long)(s / 60),
			  (unsigned long long)(s % 60));
	else if (s < 3600)
		tw_printf(&w, "%llum", (unsigned long long)(s / 60));
	else if (s < 86400)
		tw_printf(&w, "%lluh%02llum", (unsigned long long)(s / 3600),
			  (unsigned long long)(s % 3600 / 60));
	else if (s < 100 * 86400ULL)
		tw_printf(&w, "%llud%02lluh", (unsigned long long)(s / 86400),
			  (unsigned long long)(s % 86400 / 3600));
	else
		tw_printf(&w, "%llud", (unsigned long long)(s / 86400));
	return tw_done(&w);
}

size_t tf_latency(char *buf, size_t cap, uint64_t ns)
{
	return format_human_ns(buf, cap, ns); /* the precision watch prints */
}

size_t tf_sparkline(char *buf, size_t cap, const uint32_t *vals, size_t n, size_t width,
		    bool unicode)
{
	static const char *const blocks[8] = {
		"\xe2\x96\x81", "\xe2\x96\x82", "\xe2\x96\x83", "\xe2\x96\x84",
		"\xe2\x96\x85", "\xe2\x96\x86", "\xe2\x96\x87", "\xe2\x96\x88",
	};
	static const char ascii[8] = { '_', '.', '-', ':', '=', '+', '*', '#' };
	size_t first = n > width ? n - width : 0, i;
	uint32_t max = 0;
	unsigned int level;
	struct tw w;

	tw_init(&w, buf, cap);
	for (i = first; i < n; i++)
		if (vals[i] > max)
			max = vals[i];
	if (n < width)
		pad(&w, width - n);
	for (i = first; i < n; i++) {
		/* 0 -> level 0; 1..max -> levels 1..7, the largest always the full block */
		level = vals[i] ? 1 + (unsigned int)(((uint64_t)vals[i] * 7 - 1) / max) : 0;
		if (level > 7)
			level = 7;
		if (unicode)
			tw_puts(&w, blocks[level]);
		else
			tw_put(&w, &ascii[level], 1);
	}
	return tw_done(&w);
}

const char *tf_lease_name(unsigned int st)
{
	static const char *const names[TF_LEASE_MAX] = {
		[TF_LEASE_NONE] = "-",	       [TF_LEASE_CLOSED] = "closed",
		[TF_LEASE_ALIVE] = "alive",    [TF_LEASE_SUSPECT] = "suspect",
		[TF_LEASE_LOST] = "lost",      [TF_LEASE_EXPIRED] = "expired",
	};

	return st < TF_LEASE_MAX ? names[st] : "?";
}

static const struct {
	const char *name;
	size_t width; /* fixed columns; 0: flexible */
	enum tf_align align;
} cols[TF_COL_MAX] = {
	[TF_COL_PEER] = { "PEER", 0, TF_LEFT },
	[TF_COL_CONNS] = { "CONNS", 6, TF_RIGHT }, /* room for the sort mark */
	[TF_COL_TRANSPORT] = { "TRANSPORT", 11, TF_LEFT }, /* "12/40 alive" */
	[TF_COL_PAYLOAD] = { "PAYLOAD", 11, TF_LEFT },
	[TF_COL_LAST] = { "LAST", 6, TF_RIGHT },
	[TF_COL_LEFT] = { "LEFT", 6, TF_RIGHT },
	[TF_COL_FAILS] = { "FAIL/M", 7, TF_RIGHT },
	[TF_COL_SERVICE] = { "SERVICE", 0, TF_LEFT },
	[TF_COL_PROCESS] = { "PROCESS", 0, TF_LEFT },
};

#define PEER_MAX 47 /* "[ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff]:65535" */
#define PEER_MIN 16 /* "127.0.0.1:65535" whole: two peers never look alike */
#define PROC_MIN 7
#define SVC_MIN 12 /* a container's short id whole */
#define SVC_WIDE 24 /* "nginx.service", "4f1c7e2d9a8b", most unit names whole */

/* On narrow screens whole columns go, least telling first, before PEER gets too narrow. */
static const unsigned int drop_order[] = {
	TF_COL_SERVICE, TF_COL_PROCESS, TF_COL_CONNS, TF_COL_LEFT, TF_COL_FAILS, TF_COL_LAST,
	TF_COL_PAYLOAD,
};

const char *tf_col_name(unsigned int col)
{
	return col < TF_COL_MAX ? cols[col].name : "?";
}

void tf_layout(size_t width, size_t widths[TF_COL_MAX])
{
	bool shown[TF_COL_MAX];
	size_t fixed, flex, n_drop = 0, peer, mins, svc;

	for (unsigned int c = 0; c < TF_COL_MAX; c++)
		shown[c] = true;
	for (;;) {
		size_t n = 0, need;

		fixed = 0;
		for (unsigned int c = 0; c < TF_COL_MAX; c++) {
			if (!shown[c])
				continue;
			n++;
			fixed += cols[c].width;
		}
		fixed += n - 1; /* one space between columns */
		flex = width > fixed ? width - fixed : 0;
		need = PEER_MIN + (shown[TF_COL_PROCESS] ? PROC_MIN : 0) +
		       (shown[TF_COL_SERVICE] ? SVC_MIN : 0);
		if (flex >= need || n_drop == ARRAY_SIZE(drop_order))
			break;
		shown[drop_order[n_drop++]] = false;
	}
	for (unsigned int c = 0; c < TF_COL_MAX; c++)
		widths[c] = shown[c] ? cols[c].width : 0;
	if (!shown[TF_COL_PROCESS] && !shown[TF_COL_SERVICE]) {
		widths[TF_COL_PEER] = flex;
		return;
	}
	/* PEER first (whole addresses), then SERVICE up to SVC_WIDE, PROCESS what is left */
	mins = (shown[TF_COL_PROCESS] ? PROC_MIN : 0) + (shown[TF_COL_SERVICE] ? SVC_MIN : 0);
	peer = flex > mins ? flex - mins : flex;
	widths[TF_COL_PEER] = peer > PEER_MAX ? PEER_MAX : peer;
	flex -= widths[TF_COL_PEER];
	if (shown[TF_COL_SERVICE]) {
		svc = shown[TF_COL_PROCESS] && flex > PROC_MIN ? flex - PROC_MIN : flex;
		if (shown[TF_COL_PROCESS] && svc > SVC_WIDE)
			svc = SVC_WIDE + (svc - SVC_WIDE) / 2;
		widths[TF_COL_SERVICE] = svc;
		flex -= svc;
	}
	if (shown[TF_COL_PROCESS])
		widths[TF_COL_PROCESS] = flex;
}

static void process_text(char *buf, size_t cap, const struct tf_row *r)
{
	char comm[SP_COMM_MAX];

	memcpy(comm, r->comm, sizeof(comm));
	comm[SP_COMM_MAX - 1] = '\0';
	if (comm[0] && r->pid)
		snprintf(buf, cap, "%s/%u", comm, r->pid);
	else if (comm[0])
		snprintf(buf, cap, "%s", comm);
	else if (r->pid)
		snprintf(buf, cap, "%u", r->pid);
	else
		snprintf(buf, cap, "-");
}

static void signed_duration(char *buf, size_t cap, int64_t ns)
{
	if (ns < 0) {
		buf[0] = '-';
		tf_duration(buf + 1, cap - 1, (uint64_t)(-(ns + 1)) + 1);
	} else {
		tf_duration(buf, cap, (uint64_t)ns);
	}
}

bool tf_lease_partial(uint8_t st, uint32_t n, uint32_t of)
{
	return (st == TF_LEASE_SUSPECT || st == TF_LEASE_EXPIRED) && n && n < of;
}

/* "expired", or "1/3 expired" when only some of the peer's connections are in that state. */
static void lease_text(char *buf, size_t cap, uint8_t st, uint32_t n, uint32_t of)
{
	if (tf_lease_partial(st, n, of))
		snprintf(buf, cap, "%u/%u %s", n, of, tf_lease_name(st));
	else
		snprintf(buf, cap, "%s", tf_lease_name(st));
}

size_t tf_cell(char *buf, size_t cap, const struct tf_row *r, unsigned int col, size_t width,
	       bool unicode)
{
	char text[64];

	switch (col) {
	case TF_COL_PEER:
		/* a service's row names it here too: narrow screens have no SERVICE column */
		if (r->peers) {
			snprintf(text, sizeof(text), "%.40s (%u peer%s)",
				 r->service[0] ? r->service : "-", r->peers, r->peers == 1 ? "" : "s");
			break;
		}
		return tf_fit_endpoint(buf, cap, &r->addr, r->port, width, unicode);
	case TF_COL_CONNS:
		snprintf(text, sizeof(text), "%u", r->conns);
		break;
	case TF_COL_TRANSPORT:
		lease_text(text, sizeof(text), r->transport, r->transport_n, r->transport_of);
		break;
	case TF_COL_PAYLOAD:
		lease_text(text, sizeof(text), r->payload, r->payload_n, r->payload_of);
		break;
	case TF_COL_LAST:
		if (r->has_last)
			tf_duration(text, sizeof(text), r->last_ago_ns);
		else
			snprintf(text, sizeof(text), "-");
		break;
	case TF_COL_LEFT:
		if (r->has_left)
			signed_duration(text, sizeof(text), r->left_ns);
		else
			snprintf(text, sizeof(text), "-");
		break;
	case TF_COL_FAILS:
		snprintf(text, sizeof(text), "%u", r->fails_min);
		break;
	case TF_COL_SERVICE:
		snprintf(text, sizeof(text), "%s", r->service[0] ? r->service : "-");
		break;
	case TF_COL_PROCESS:
		process_text(text, sizeof(text), r);
		break;
	default:
		text[0] = '\0';
		col = TF_COL_PEER; /* left-aligned blank */
		break;
	}
	return tf_fit(buf, cap, text, width, cols[col].align, TF_TRUNC_END, unicode);
}

size_t tf_header(char *buf, size_t cap, const size_t widths[TF_COL_MAX], unsigned int sort_col,
		 bool reverse, bool unicode)
{
	char name[32], cell[TF_CELL_CAP(PEER_MAX + 64)];
	const char *mark;
	struct tw w;
	size_t width;

	tw_init(&w, buf, cap);
	for (unsigned int c = 0, shown = 0; c < TF_COL_MAX; c++) {
		if (!widths[c])
			continue; /* a column the screen has no room for */
		width = widths[c] < PEER_MAX + 64 ? widths[c] : PEER_MAX + 64;
		mark = "";
		if (c == sort_col)
			mark = unicode ? (reverse ? "\xe2\x96\xb2" : "\xe2\x96\xbc")
				       : (reverse ? "^" : "v");
		snprintf(name, sizeof(name), "%s%s", cols[c].name, mark);
		tf_fit(cell, sizeof(cell), name, width, cols[c].align, TF_TRUNC_END, unicode);
		if (shown++)
			tw_put(&w, " ", 1);
		tw_puts(&w, cell);
	}
	return tw_done(&w);
}

size_t tf_row_line(char *buf, size_t cap, const struct tf_row *r, const size_t widths[TF_COL_MAX],
		   bool unicode)
{
	char cell[TF_CELL_CAP(PEER_MAX + 64)];
	struct tw w;
	size_t width;

	tw_init(&w, buf, cap);
	for (unsigned int c = 0, shown = 0; c < TF_COL_MAX; c++) {
		if (!widths[c])
			continue;
		width = widths[c] < PEER_MAX + 64 ? widths[c] : PEER_MAX + 64;
		tf_cell(cell, sizeof(cell), r, c, width, unicode);
		if (shown++)
			tw_put(&w, " ", 1);
		tw_puts(&w, cell);
	}
	return tw_done(&w);
}

void tf_row_prepare(struct tf_row *r)
{
	char a[SP_ADDR_STR_MAX];
	bool v6;

	if (!format_addr(a, sizeof(a), &r->addr))
		snprintf(a, sizeof(a), "-");
	v6 = strchr(a, ':') != NULL;
	snprintf(r->text, sizeof(r->text), "%s%s%s:%u", v6 ? "[" : "", a, v6 ? "]" : "", r->port);
}

static bool contains_ci(const char *hay, size_t hay_len, const char *needle)
{
	size_t n = strlen(needle);

	if (!n)
		return true;
	for (size_t i = 0; i + n <= hay_len; i++) {
		size_t j = 0;

		while (j < n && tolower((unsigned char)hay[i + j]) ==
				    tolower((unsigned char)needle[j]))
			j++;
		if (j == n)
			return true;
	}
	return false;
}

bool tf_row_match(const struct tf_row *r, const char *filter)
{
	char proc[TF_PROC_MAX];

	if (!filter || !*filter)
		return true;
	if (contains_ci(r->text, strnlen(r->text, sizeof(r->text)), filter))
		return true;
	if (contains_ci(r->service, strnlen(r->service, sizeof(r->service)), filter))
		return true;
	process_text(proc, sizeof(proc), r);
	return r->comm[0] && contains_ci(proc, strlen(proc), filter);
}

/* The worse of two lease states, with how many of how many connections are in it. */
static void group_lease(uint8_t *st, uint32_t *n, uint32_t *of, uint8_t rst, uint32_t rn,
			uint32_t rof)
{
	if (rst > *st) {
		*st = rst;
		*n = rn;
	} else if (rst == *st) {
		*n += rn;
	}
	*of += rof;
}

void tf_row_group(struct tf_row *g, const struct tf_row *r)
{
	if (!g->peers) {
		memcpy(g->service, r->service, sizeof(g->service));
		memcpy(g->comm, r->comm, sizeof(g->comm));
		g->pid = r->pid;
		g->netns = r->netns;
	}
	g->peers++;
	g->conns += r->conns;
	group_lease(&g->transport, &g->transport_n, &g->transport_of, r->transport, r->transport_n,
		    r->transport_of);
	group_lease(&g->payload, &g->payload_n, &g->payload_of, r->payload, r->payload_n,
		    r->payload_of);
	if (r->has_last && (!g->has_last || r->last_ago_ns < g->last_ago_ns)) {
		g->has_last = true;
		g->last_ago_ns = r->last_ago_ns;
	}
	if (r->has_left && (!g->has_left || r->left_ns < g->left_ns)) {
		g->has_left = true;
		g->left_ns = r->left_ns;
	}
	g->fails_min += r->fails_min;
	g->attempts_min += r->attempts_min;
	/* a group of several processes names none of them */
	if (g->pid != r->pid || strncmp(g->comm, r->comm, SP_COMM_MAX)) {
		g->pid = 0;
		snprintf(g->comm, sizeof(g->comm), "*");
	}
}

struct sort_ctx {
	unsigned int col;
	bool reverse;
};

static int cmp_u64(uint64_t a, uint64_t b)
{
	return a < b ? -1 : a > b;
}

static int cmp_addr(const struct tf_row *a, const struct tf_row *b)
{
	int d = cmp_u64(a->addr.family, b->addr.family);

	if (!d)
		d = memcmp(a->addr.bytes, b->addr.bytes, sizeof(a->addr.bytes));
	if (!d)
		d = cmp_u64(a->port, b->port);
	if (!d)
		d = cmp_u64(a->netns, b->netns);
	return d;
}

/* <0: a first in the column's natural order. */
static int natural(const struct tf_row *a, const struct tf_row *b, unsigned int col)
{
	switch (col) {
	case TF_COL_PEER:
		return cmp_addr(a, b);
	case TF_COL_CONNS:
		return cmp_u64(b->conns, a->conns);
	case TF_COL_TRANSPORT:
		return cmp_u64(b->transport, a->transport);
	case TF_COL_PAYLOAD:
		return cmp_u64(b->payload, a->payload);
	case TF_COL_LAST:
		if (a->has_last != b->has_last)
			return a->has_last ? -1 : 1;
		return cmp_u64(b->last_ago_ns, a->last_ago_ns);
	case TF_COL_LEFT:
		if (a->has_left != b->has_left)
			return a->has_left ? -1 : 1;
		return a->left_ns < b->left_ns ? -1 : a->left_ns > b->left_ns;
	case TF_COL_FAILS:
		return cmp_u64(b->fails_min, a->fails_min);
	case TF_COL_SERVICE:
		if (!a->service[0] != !b->service[0])
			return a->service[0] ? -1 : 1;
		return strncmp(a->service, b->service, TF_SERVICE_MAX);
	case TF_COL_PROCESS: {
		int d;

		if (!a->comm[0] != !b->comm[0])
			return a->comm[0] ? -1 : 1;
		d = strncmp(a->comm, b->comm, SP_COMM_MAX);
		return d ? d : cmp_u64(a->pid, b->pid);
	}
	default:
		return 0;
	}
}

static int cmp_rows(const void *pa, const void *pb, void *pctx)
{
	const struct tf_row *a = *(const struct tf_row *const *)pa;
	const struct tf_row *b = *(const struct tf_row *const *)pb;
	const struct sort_ctx *ctx = pctx;
	int d = natural(a, b, ctx->col);

	if (d)
		return ctx->reverse ? -d : d;
	return cmp_addr(a, b);
}

void tf_sort(const struct tf_row **rows, size_t n, unsigned int col, bool reverse)
{
	struct sort_ctx ctx = { .col = col < TF_COL_MAX ? col : TF_COL_PEER, .reverse = reverse };

	if (n > 1)
		qsort_r(rows, n, sizeof(*rows), cmp_rows, &ctx);
}

bool tf_filter_match(const struct port_set *ports, uint16_t family, const struct sp_addr *local,
		     uint16_t lport, uint16_t rport)
{
	static const uint8_t mapped[12] = { [10] = 0xff, [11] = 0xff };
	uint16_t f = local->family;

	if (f == AF_INET6 && !memcmp(local->bytes, mapped, sizeof(mapped)))
		f = AF_INET;
	if (family && f != family)
		return false;
	return !ports->count || port_set_has(ports, lport) || port_set_has(ports, rport);
}

bool tf_event_interesting(const struct sp_event *ev)
{
	return ev->action != SP_ACT_ACTIVITY && (unsigned int)ev->action < SP_ACT_MAX;
}

static void put_endpoint(struct tw *w, const struct sp_addr *a, uint16_t port)
{
	char buf[TF_CELL_CAP(64)];

	tf_fit_endpoint(buf, sizeof(buf), a, port, 64, false);
	/* fitted to 64 columns: strip the padding */
	for (size_t n = strlen(buf); n && buf[n - 1] == ' '; n--)
		buf[n - 1] = '\0';
	tw_puts(w, buf);
}

static const char *state_or(unsigned int st)
{
	const char *n = tcp_state_name(st);

	return n ? n : "?";
}

static void describe(struct tw *w, const struct sp_event *ev, const char *arrow)
{
	char d[32];
	const char *s;

	switch (ev->action) {
	case SP_ACT_STATE_CHANGE:
		tw_printf(w, "%s%s%s%s", state_or(ev->state.old_state), arrow,
			  state_or(ev->state.new_state), ev->state.time_wait ? " (time_wait)" : "");
		break;
	case SP_ACT_CONNECT:
		if (ev->has_duration)
			tf_latency(d, sizeof(d), ev->duration_ns); /* as precise as watch */
		if (ev->connect.success) {
			tw_printf(w, "connect ok%s%s", ev->has_duration ? " in " : "",
				  ev->has_duration ? d : "");
			break;
		}
		s = failure_name(ev->connect.failure);
		tw_printf(w, "connect failed: %s", s ? s : "?");
		if (ev->error && errno_name(ev->error))
			tw_printf(w, " (%s)", errno_name(ev->error));
		break;
	case SP_ACT_KEEPALIVE_TIMEOUT:
		tw_printf(w, "keepalive timeout after %u probes", ev->keepalive.probes);
		break;
	case SP_ACT_RETRANS_TIMEOUT:
		tw_puts(w, "retransmit timeout");
		break;
	case SP_ACT_RESET:
		s = reset_dir_name(ev->reset.direction);
		tw_printf(w, "reset %s", s ? s : "?");
		if (ev->reset.has_old_state)
			tw_printf(w, " in %s", state_or(ev->reset.old_state));
		break;
	case SP_ACT_LEASE_SUSPECT:
	case SP_ACT_LEASE_EXPIRED:
	case SP_ACT_LEASE_RECOVERED: {
		char t[32];

		s = lease_kind_name(ev->lease.kind);
		tf_duration(d, sizeof(d), ev->lease.silent_ms * NSEC_PER_MSEC);
		tf_duration(t, sizeof(t), ev->lease.ttl_ms * NSEC_PER_MSEC);
		tw_printf(w, "lease %s %s, silent %s of %s", s ? s : "?",
			  ev->action == SP_ACT_LEASE_SUSPECT   ? "suspect"
			  : ev->action == SP_ACT_LEASE_EXPIRED ? "EXPIRED"
							       : "recovered",
			  d, t);
		break;
	}
	case SP_ACT_LEASE_CLOSED:
		s = lease_kind_name(ev->lease.kind);
		tw_printf(w, "lease %s closed", s ? s : "?");
		break;
	case SP_ACT_LEASE_LOST:
		s = lease_kind_name(ev->lease.kind);
		tw_printf(w, "lease %s lost: %s", s ? s : "?",
			  ev->lease.reason ? ev->lease.reason : "?");
		break;
	case SP_ACT_SPIKE:
		tw_printf(w, "SPIKE %s%s: %llu failures in %us, baseline %.2f/s",
			  ev->spike.start ? "start" : "end", ev->spike.host_wide ? " host-wide" : "",
			  (unsigned long long)ev->spike.failures, ev->spike.window_s,
			  ev->spike.baseline_per_s);
		break;
	case SP_ACT_EVENTS_LOST:
		tw_printf(w, "LOST %llu %s events", (unsigned long long)ev->lost.count,
			  ev->lost.kind ? ev->lost.kind : "?");
		break;
	case SP_ACT_TCP_STUCK:
		tf_duration(d, sizeof(d), ev->stuck.age_ms * NSEC_PER_MSEC);
		if (ev->stuck.start)
			tw_printf(w, "STUCK in %s %s%s, process holds %u",
				  state_or(ev->stuck.state), ev->stuck.seeded ? ">= " : "", d,
				  ev->stuck.proc_stuck);
		else
			tw_printf(w, "left %s after %s", state_or(ev->stuck.state), d);
		break;
	case SP_ACT_PORT_RISK:
		tw_printf(w, "PORTS %s: %u of %u used (%u time_wait)",
			  ev->ports.start ? "running out" : "ok again", ev->ports.used,
			  ev->ports.capacity, ev->ports.time_wait);
		if (ev->ports.start && ev->ports.eta_ms != UINT64_MAX) {
			tf_duration(d, sizeof(d), ev->ports.eta_ms * NSEC_PER_MSEC);
			tw_printf(w, ", gone in %s", d);
		}
		break;
	case SP_ACT_LEASE_HOLD:
		tw_printf(w, "lease verdicts held %llus: %s",
			  (unsigned long long)(ev->hold.grace_ms / 1000),
			  ev->hold.reason ? ev->hold.reason : "?");
		break;
	default:
		s = action_name(ev->action);
		tw_puts(w, s ? s : "?");
		break;
	}
}

size_t tf_event_line(char *buf, size_t cap, const struct sp_event *ev, bool unicode)
{
	const char *arrow = unicode ? "\xe2\x86\x92" : "->";
	const struct sp_conn *c = &ev->conn;
	time_t secs = (time_t)(ev->real_ns / NSEC_PER_SEC);
	char comm[SP_COMM_MAX * 4], proc[TF_PROC_MAX];
	struct tm tm;
	struct tw w;

	tw_init(&w, buf, cap);
	if (localtime_r(&secs, &tm))
		tw_printf(&w, "%02d:%02d:%02d ", tm.tm_hour, tm.tm_min, tm.tm_sec);
	if (ev->has_conn && (c->has_pid || c->comm[0])) {
		memcpy(proc, c->comm, SP_COMM_MAX);
		proc[SP_COMM_MAX - 1] = '\0';
		tf_fit(comm, sizeof(comm), proc, tf_width(proc), TF_LEFT, TF_TRUNC_END, unicode);
		if (c->has_pid)
			tw_printf(&w, "%s/%u ", comm[0] ? comm : "?", c->pid);
		else
			tw_printf(&w, "%s ", comm);
	}
	if (ev->has_conn) {
		if (c->src.family && !(ev->action == SP_ACT_SPIKE)) {
			put_endpoint(&w, &c->src, c->has_ports ? c->sport : 0);
			tw_puts(&w, arrow);
		}
		if (c->dst.family)
			put_endpoint(&w, &c->dst, c->has_ports || ev->action == SP_ACT_SPIKE
							  ? c->dport : 0);
		tw_put(&w, " ", 1);
	}
	describe(&w, ev, arrow);
	return tw_done(&w);
}
