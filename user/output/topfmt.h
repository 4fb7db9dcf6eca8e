/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * The pieces `sockpulse top` draws, as plain strings: column layout and fitting (display columns,
 * not bytes: UTF-8 counts one column per code point, untrusted bytes are sanitized), endpoint
 * truncation that keeps the port, human durations, sparklines in Unicode blocks or ASCII, the
 * peer rows with their sorting and filtering, and one-line event summaries. No ncurses, no clock:
 * unit-tested in tests/unit/test_topfmt.c.
 *
 * Every function writing into buf NUL-terminates it and never writes more than cap bytes. A cell
 * of width W needs at most 4 * W + 1 bytes (TF_CELL_CAP).
 */
#ifndef SP_TOPFMT_H
#define SP_TOPFMT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "event.h"
#include "format.h"
#include "parse.h"

#define TF_CELL_CAP(w) (4 * (size_t)(w) + 1)
#define TF_PROC_MAX 32 /* "comm/pid" */
#define TF_SERVICE_MAX 64 /* a unit name, a container's short id, a command */

/* Fits src into exactly width display columns. */
enum tf_align {
	TF_LEFT = 0,
	TF_RIGHT,
};

enum tf_trunc {
	TF_TRUNC_END = 0, /* "very-long-proc…" */
	TF_TRUNC_MIDDLE,  /* "2001:db8:…:7334" */
};

/* Display columns of a string as tf_fit() counts them (invalid bytes count one each). */
size_t tf_width(const char *s);
/*
 * Writes src padded with spaces, or truncated with an ellipsis ("…", or "~" without Unicode), to
 * exactly width columns. Control characters and invalid UTF-8 become '?'. Returns bytes written.
 */
size_t tf_fit(char *buf, size_t cap, const char *src, size_t width, enum tf_align align,
	      enum tf_trunc trunc, bool unicode);
/*
 * "10.0.0.1:80", "[fd00::1]:443" fitted to width: when too long the address is cut in the
 * middle and the port is kept ("[2001:db8:…:1]:443"). port 0: no port.
 */
size_t tf_fit_endpoint(char *buf, size_t cap, const struct sp_addr *addr, uint16_t port,
		       size_t width, bool unicode);

/* "850ms", "3.2s", "42s", "4m05s", "14m", "2h05m", "3d04h", "120d". Returns bytes written. */
size_t tf_duration(char *buf, size_t cap, uint64_t ns);

/* A latency as watch writes it, one decimal, truncated: "850ns", "128.3us", "1.5ms", "2.0s". */
size_t tf_latency(char *buf, size_t cap, uint64_t ns);

/*
 * One character per value for the last width values of vals[0..n) (oldest first), scaled to the
 * largest: a zero is the lowest mark ("▁" / "_"), any non-zero value at least the second level.
 * Fewer values than width are padded on the left with spaces. ASCII levels: "_.-:=+*#".
 */
size_t tf_sparkline(char *buf, size_t cap, const uint32_t *vals, size_t n, size_t width,
		    bool unicode);

/* Lease state of a peer, in order of severity (sorting "worst first"). */
enum tf_lease {
	TF_LEASE_NONE = 0, /* no lease (no connection, or payload never armed) */
	TF_LEASE_CLOSED,   /* its connections ended normally */
	TF_LEASE_ALIVE,
	TF_LEASE_SUSPECT,
	TF_LEASE_LOST,	   /* its connections ended by reset or timeout */
	TF_LEASE_EXPIRED,
	TF_LEASE_MAX,
};

const char *tf_lease_name(unsigned int st); /* "-", "closed", "alive", ... */
/* n of of connections are in state st, a suspect or expired one, and not all of them are. */
bool tf_lease_partial(uint8_t st, uint32_t n, uint32_t of);

/* The main table: one row per peer (remote address + service port). */
enum tf_col {
	TF_COL_PEER = 0,
	TF_COL_CONNS,
	TF_COL_TRANSPORT,
	TF_COL_PAYLOAD,
	TF_COL_LAST,
	TF_COL_LEFT,
	TF_COL_FAILS,
	TF_COL_SERVICE,
	TF_COL_PROCESS,
	TF_COL_MAX,
};

struct tf_row {
	struct sp_addr addr;
	uint32_t netns;
	uint16_t port;
	uint32_t conns;
	uint8_t transport, payload; /* enum tf_lease: the worst among its connections */
	/* how many of its connections holding that kind of lease are in that worst state */
	uint32_t transport_n, transport_of, payload_n, payload_of;
	bool has_last, has_left;
	uint64_t last_ago_ns; /* since the peer was last heard from */
	int64_t left_ns;      /* until the earliest lease verdict; negative: overdue */
	uint32_t fails_min;   /* connect failures in the last 60 s */
	uint64_t attempts_min;
	char comm[SP_COMM_MAX];
	uint32_t pid; /* 0: unknown */
	/* the owner's unit, else its container's short id, else the command; "" unknown */
	char service[TF_SERVICE_MAX];
	uint32_t peers; /* a row of peers grouped by service: how many; 0 a peer's own row */
	char text[SP_ADDR_STR_MAX + 8]; /* "addr:port" for filtering, filled by tf_row_prepare */
};

const char *tf_col_name(unsigned int col);	/* "PEER", "CONNS", ... */
/*
 * Widths of the columns for a screen width, separated by one space: the shown widths and the
 * spaces between them sum to width. On narrow screens whole columns get width 0 (PROCESS first,
 * then CONNS, LEFT, FAIL/M, LAST, PAYLOAD) so PEER keeps room for a whole IPv4 endpoint.
 */
void tf_layout(size_t width, size_t widths[TF_COL_MAX]);
/* One cell of a row, fitted to width. */
size_t tf_cell(char *buf, size_t cap, const struct tf_row *r, unsigned int col, size_t width,
	       bool unicode);
/* The column header, with the sort column marked ("▼"/"▲", "v"/"^"). */
size_t tf_header(char *buf, size_t cap, const size_t widths[TF_COL_MAX], unsigned int sort_col,
		 bool reverse, bool unicode);
/* A whole row: cells joined by one space. */
size_t tf_row_line(char *buf, size_t cap, const struct tf_row *r, const size_t widths[TF_COL_MAX],
		   bool unicode);

/*
 * Adds a peer's row to the row of its service (a zeroed row the first time): counts summed, the
 * worst lease states, the most recent activity, the earliest verdict.
 */
void tf_row_group(struct tf_row *g, const struct tf_row *r);

/* Fills r->text; call once after the other fields are set. */
void tf_row_prepare(struct tf_row *r);
/*
 * Case-insensitive substring of "addr:port", the port, the process name or the service; ""
 * matches all.
 */
bool tf_row_match(const struct tf_row *r, const char *filter);
/*
 * Sorts row pointers by a column in its natural order (failures, connections and severity
 * descending, time left ascending, silence descending, names ascending); reverse flips it. Ties
 * go by address, then port, then namespace, so the order is stable between refreshes.
 */
void tf_sort(const struct tf_row **rows, size_t n, unsigned int col, bool reverse);

/*
 * One event as a pane line: "12:03:04 curl/4242 10.1.0.1:40000>10.1.0.2:80 connect refused
 * (ECONNREFUSED)". Local time of ev->real_ns. Not fitted: the caller cuts it to the screen.
 */
size_t tf_event_line(char *buf, size_t cap, const struct sp_event *ev, bool unicode);
/*
 * Whether a socket of a sock_diag dump passes -p (local or remote port in @ports, count 0: any)
 * and -4/-6 (@family, 0: any; IPv4-mapped IPv6 counts as IPv4), as the kernel filters events.
 */
bool tf_filter_match(const struct port_set *ports, uint16_t family, const struct sp_addr *local,
		     uint16_t lport, uint16_t rport);

/* Which events the recent-events pane keeps: all but tcp-activity. */
bool tf_event_interesting(const struct sp_event *ev);

#endif
