/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * The formatting pieces of `sockpulse top`: fitting and truncation in display columns (UTF-8,
 * untrusted bytes), endpoints with IPv6 cut in the middle and the port kept, long process names,
 * human durations, sparklines in Unicode and ASCII, the column layout, sorting and filtering of
 * peer rows, event lines.
 */
#include <arpa/inet.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <cmocka.h>

#include "sockpulse.h"
#include "topfmt.h"

#define SEC 1000000000ULL
#define MS 1000000ULL

static struct sp_addr addr_of(const char *s)
{
	struct sp_addr a;

	memset(&a, 0, sizeof(a));
	if (inet_pton(AF_INET, s, a.bytes) == 1)
		a.family = AF_INET;
	else if (inet_pton(AF_INET6, s, a.bytes) == 1)
		a.family = AF_INET6;
	return a;
}

static const char *dur(uint64_t ns)
{
	static char buf[32];

	tf_duration(buf, sizeof(buf), ns);
	return buf;
}

static void test_width_utf8(void **state)
{
	(void)state;
	assert_int_equal(tf_width(""), 0);
	assert_int_equal(tf_width("abc"), 3);
	assert_int_equal(tf_width("\xe2\x96\x81\xe2\x96\x88"), 2); /* two blocks */
	assert_int_equal(tf_width("caf\xc3\xa9"), 4);
	assert_int_equal(tf_width("a\xff" "b"), 3); /* an invalid byte is one '?' */
}

static void test_fit_pad_and_truncate(void **state)
{
	char buf[64];

	(void)state;
	assert_int_equal(tf_fit(buf, sizeof(buf), "abc", 6, TF_LEFT, TF_TRUNC_END, true), 6);
	assert_string_equal(buf, "abc   ");
	tf_fit(buf, sizeof(buf), "42", 5, TF_RIGHT, TF_TRUNC_END, true);
	assert_string_equal(buf, "   42");
	tf_fit(buf, sizeof(buf), "abcdef", 6, TF_LEFT, TF_TRUNC_END, true);
	assert_string_equal(buf, "abcdef");
	tf_fit(buf, sizeof(buf), "abcdefgh", 6, TF_LEFT, TF_TRUNC_END, true);
	assert_string_equal(buf, "abcde\xe2\x80\xa6");
	assert_int_equal(tf_width(buf), 6);
	tf_fit(buf, sizeof(buf), "abcdefgh", 6, TF_LEFT, TF_TRUNC_END, false);
	assert_string_equal(buf, "abcde~");
	tf_fit(buf, sizeof(buf), "abcdefgh", 5, TF_LEFT, TF_TRUNC_MIDDLE, false);
	assert_string_equal(buf, "ab~gh");
	tf_fit(buf, sizeof(buf), "abcdefgh", 0, TF_LEFT, TF_TRUNC_END, true);
	assert_string_equal(buf, "");
	tf_fit(buf, sizeof(buf), NULL, 2, TF_LEFT, TF_TRUNC_END, true);
	assert_string_equal(buf, "  ");
}

static void test_fit_sanitizes(void **state)
{
	char buf[64];

	(void)state;
	/* control characters, a stray continuation byte, an overlong '/' */
	tf_fit(buf, sizeof(buf), "a\tb\x1b[2J\x80\xc0\xaf", 10, TF_LEFT, TF_TRUNC_END, true);
	assert_string_equal(buf, "a?b?[2J???");
	/* valid UTF-8 passes through and counts one column per code point */
	tf_fit(buf, sizeof(buf), "n\xc3\xa9t", 4, TF_LEFT, TF_TRUNC_END, true);
	assert_string_equal(buf, "n\xc3\xa9t ");
	/* a sequence cut by the end of the string is not read past the NUL */
	tf_fit(buf, sizeof(buf), "x\xe2\x96", 3, TF_LEFT, TF_TRUNC_END, true);
	assert_string_equal(buf, "x??");
}

static void test_fit_bounded(void **state)
{
	char buf[8];

	(void)state;
	memset(buf, 'Z', sizeof(buf));
	tf_fit(buf, 5, "abcdefghijkl", 10, TF_LEFT, TF_TRUNC_END, true);
	assert_int_equal(strlen(buf), 4);
	assert_int_equal(buf[5], 'Z');
	tf_fit(buf, 1, "abc", 3, TF_LEFT, TF_TRUNC_END, true);
	assert_string_equal(buf, "");
}

static void test_endpoint_v4(void **state)
{
	struct sp_addr a = addr_of("255.255.255.255");
	char buf[TF_CELL_CAP(40)];

	(void)state;
	tf_fit_endpoint(buf, sizeof(buf), &a, 65535, 21, true);
	assert_string_equal(buf, "255.255.255.255:65535");
	tf_fit_endpoint(buf, sizeof(buf), &a, 80, 21, true);
	assert_string_equal(buf, "255.255.255.255:80   ");
	a = addr_of("10.1.0.2");
	tf_fit_endpoint(buf, sizeof(buf), &a, 0, 10, true);
	assert_string_equal(buf, "10.1.0.2  ");
}

static void test_endpoint_v6(void **state)
{
	struct sp_addr a = addr_of("2001:db8:85a3:1234:5678:8a2e:370:7334");
	char buf[TF_CELL_CAP(60)];

	(void)state;
	tf_fit_endpoint(buf, sizeof(buf), &a, 443, 47, true);
	assert_string_equal(buf, "[2001:db8:85a3:1234:5678:8a2e:370:7334]:443    ");
	/* too long: the address is cut in the middle, brackets and port kept */
	tf_fit_endpoint(buf, sizeof(buf), &a, 443, 21, true);
	assert_int_equal(tf_width(buf), 21);
	assert_string_equal(buf, "[2001:db\xe2\x80\xa6"
				 "70:7334]:443");
	tf_fit_endpoint(buf, sizeof(buf), &a, 443, 21, false);
	assert_string_equal(buf, "[2001:db~70:7334]:443");
	assert_int_equal(tf_width(buf), 21);
	/* short IPv6 fits */
	a = addr_of("fd00:1::2");
	tf_fit_endpoint(buf, sizeof(buf), &a, 8080, 16, true);
	assert_string_equal(buf, "[fd00:1::2]:8080");
	/* IPv4-mapped prints as IPv4, without brackets */
	a = addr_of("::ffff:10.0.0.7");
	tf_fit_endpoint(buf, sizeof(buf), &a, 22, 12, true);
	assert_string_equal(buf, "10.0.0.7:22 ");
	/* narrower than the port itself: plain truncation, still exactly the width */
	a = addr_of("fd00:1::2");
	tf_fit_endpoint(buf, sizeof(buf), &a, 8080, 6, false);
	assert_string_equal(buf, "[fd00~");
}

static void test_durations(void **state)
{
	(void)state;
	assert_string_equal(dur(0), "0ms");
	assert_string_equal(dur(850 * MS), "850ms");
	assert_string_equal(dur(3200 * MS), "3.2s");
	assert_string_equal(dur(3299 * MS), "3.2s"); /* truncated, never rounded up */
	assert_string_equal(dur(9999 * MS), "9.9s");
	assert_string_equal(dur(10 * SEC), "10s");
	assert_string_equal(dur(42 * SEC + 900 * MS), "42s");
	assert_string_equal(dur(245 * SEC), "4m05s");
	assert_string_equal(dur(14 * 60 * SEC + 59 * SEC), "14m");
	assert_string_equal(dur((2 * 3600 + 5 * 60 + 7) * SEC), "2h05m");
	assert_string_equal(dur((3 * 86400 + 4 * 3600) * SEC), "3d04h");
	assert_string_equal(dur(120 * 86400 * SEC), "120d");
	assert_string_equal(dur(UINT64_MAX), "213503d");
}

static void test_sparkline_unicode(void **state)
{
	const uint32_t v[] = { 0, 1, 2, 3, 4, 5, 6, 7 };
	const uint32_t zeros[4] = { 0 };
	const uint32_t big[] = { 1, 1000 };
	char buf[128];

	(void)state;
	tf_sparkline(buf, sizeof(buf), v, 8, 8, true);
	assert_string_equal(buf, "\xe2\x96\x81\xe2\x96\x82\xe2\x96\x83\xe2\x96\x84"
				 "\xe2\x96\x85\xe2\x96\x86\xe2\x96\x87\xe2\x96\x88");
	assert_int_equal(tf_width(buf), 8);
	tf_sparkline(buf, sizeof(buf), zeros, 4, 4, true);
	assert_string_equal(buf, "\xe2\x96\x81\xe2\x96\x81\xe2\x96\x81\xe2\x96\x81");
	/* a single failure beside a large count is still visible */
	tf_sparkline(buf, sizeof(buf), big, 2, 2, true);
	assert_string_equal(buf, "\xe2\x96\x82\xe2\x96\x88");
	/* fewer values than columns: padded on the left */
	tf_sparkline(buf, sizeof(buf), big, 2, 4, true);
	assert_string_equal(buf, "  \xe2\x96\x82\xe2\x96\x88");
	/* more values than columns: the newest ones */
	tf_sparkline(buf, sizeof(buf), v, 8, 3, true);
	assert_string_equal(buf, "\xe2\x96\x86\xe2\x96\x87\xe2\x96\x88"); /* scaled to what is shown */
}

static void test_sparkline_ascii(void **state)
{
	const uint32_t v[] = { 0, 1, 2, 3, 4, 5, 6, 7 };
	const uint32_t sixty[60] = { [59] = 3, [30] = 1 };
	char buf[128];

	(void)state;
	tf_sparkline(buf, sizeof(buf), v, 8, 8, false);
	assert_string_equal(buf, "_.-:=+*#");
	tf_sparkline(buf, sizeof(buf), sixty, 60, 60, false);
	assert_int_equal(strlen(buf), 60);
	assert_int_equal(buf[59], '#');
	assert_int_equal(buf[30], ':'); /* 1 of 3 */
	assert_int_equal(buf[0], '_');
	/* bounded by cap */
	tf_sparkline(buf, 5, sixty, 60, 60, true);
	assert_true(strlen(buf) <= 4);
}

static struct tf_row row(const char *ip, uint16_t port, uint32_t conns, uint32_t fails,
			 const char *comm, uint32_t pid)
{
	struct tf_row r;

	memset(&r, 0, sizeof(r));
	r.addr = addr_of(ip);
	r.port = port;
	r.conns = conns;
	r.fails_min = fails;
	snprintf(r.comm, sizeof(r.comm), "%s", comm);
	r.pid = pid;
	tf_row_prepare(&r);
	return r;
}

static size_t layout_sum(const size_t w[TF_COL_MAX])
{
	size_t sum = 0, shown = 0;

	for (int c = 0; c < TF_COL_MAX; c++) {
		sum += w[c];
		shown += w[c] != 0;
	}
	return sum + shown - 1;
}

static void test_layout(void **state)
{
	size_t w[TF_COL_MAX];

	(void)state;
	for (size_t width = 80; width <= 300; width += 20) {
		tf_layout(width, w);
		assert_int_equal(layout_sum(w), width);
		/* a whole IPv4 address and port; at 80 columns all but the longest */
		assert_true(w[TF_COL_PEER] >= (width > 80 ? 21 : 19));
		assert_true(w[TF_COL_PEER] <= 47);
		assert_true(w[TF_COL_PROCESS] >= 7);
		assert_true(w[TF_COL_FAILS] && w[TF_COL_CONNS] && w[TF_COL_LEFT]);
	}
	tf_layout(120, w);
	/* a container's short id whole before the longest IPv6 endpoints */
	assert_int_equal(w[TF_COL_SERVICE], 12);
	assert_true(w[TF_COL_PEER] >= 45);
	tf_layout(140, w);
	assert_int_equal(w[TF_COL_PEER], 47); /* any IPv6 address whole */
	assert_true(w[TF_COL_SERVICE] >= 12 && w[TF_COL_PROCESS] >= 7);
	tf_layout(200, w);
	assert_true(w[TF_COL_SERVICE] >= 24); /* most unit names whole */
	tf_layout(80, w);
	assert_int_equal(w[TF_COL_SERVICE], 0); /* the first to go */
	tf_layout(10, w); /* absurdly narrow: no underflow */
	assert_true(w[TF_COL_PEER] <= 10 && w[TF_COL_PROCESS] <= 10);
}

/* Narrow screens drop whole columns, never PEER, and never below a whole IPv4 endpoint. */
static void test_layout_narrow(void **state)
{
	struct tf_row a = row("127.0.0.1", 6411, 1, 0, "sp_conn", 42);
	struct tf_row b = row("127.0.0.1", 6412, 1, 0, "sp_conn", 42);
	size_t w[TF_COL_MAX];
	char la[512], lb[512];

	(void)state;
	for (size_t width = 40; width < 80; width++) {
		tf_layout(width, w);
		assert_int_equal(layout_sum(w), width);
		assert_true(w[TF_COL_PEER] >= 15);
		assert_true(w[TF_COL_TRANSPORT] > 0);
		tf_row_line(la, sizeof(la), &a, w, false);
		tf_row_line(lb, sizeof(lb), &b, w, false);
		assert_int_equal(tf_width(la), width);
		assert_non_null(strstr(la, "127.0.0.1:6411")); /* two peers stay apart */
		assert_non_null(strstr(lb, "127.0.0.1:6412"));
	}
	tf_layout(60, w);
	assert_int_equal(w[TF_COL_PROCESS], 0); /* the first to go */
	assert_true(w[TF_COL_PAYLOAD] > 0 && w[TF_COL_LAST] > 0 && w[TF_COL_FAILS] > 0);
	tf_layout(50, w);
	assert_true(w[TF_COL_PEER] >= 16);
	assert_true(w[TF_COL_PAYLOAD] > 0);
	tf_header(la, sizeof(la), w, TF_COL_TRANSPORT, false, false);
	assert_int_equal(tf_width(la), 50);
	assert_true(strncmp(la, "PEER ", 5) == 0);
	assert_null(strstr(la, "PROCESS"));
}

/* A peer with one of three connections expired says so. */
static void test_partial_lease(void **state)
{
	struct tf_row r = row("10.1.0.2", 80, 3, 0, "api", 7);
	char buf[64];

	(void)state;
	r.transport = TF_LEASE_EXPIRED;
	r.transport_n = 1;
	r.transport_of = 3;
	r.payload = TF_LEASE_EXPIRED;
	r.payload_n = 2;
	r.payload_of = 2;
	tf_cell(buf, sizeof(buf), &r, TF_COL_TRANSPORT, 11, false);
	assert_string_equal(buf, "1/3 expired");
	assert_true(tf_lease_partial(r.transport, r.transport_n, r.transport_of));
	tf_cell(buf, sizeof(buf), &r, TF_COL_PAYLOAD, 11, false);
	assert_string_equal(buf, "expired    "); /* all of them: no count */
	assert_false(tf_lease_partial(r.payload, r.payload_n, r.payload_of));
	r.transport = TF_LEASE_ALIVE; /* alive is never "partial" */
	r.transport_n = 2;
	assert_false(tf_lease_partial(r.transport, r.transport_n, r.transport_of));
	tf_cell(buf, sizeof(buf), &r, TF_COL_TRANSPORT, 11, false);
	assert_string_equal(buf, "alive      ");
}

/* The conns: header counts what -p, -4 and -6 let through, as the table does. */
static void test_filter_match(void **state)
{
	struct sp_addr v4 = addr_of("10.1.0.1"), v6 = addr_of("fd00::1"), mapped = { 0 };
	struct port_set none = { 0 }, p80 = { 0 };

	(void)state;
	mapped.family = AF_INET6;
	mapped.bytes[10] = mapped.bytes[11] = 0xff;
	mapped.bytes[12] = 10;
	assert_int_equal(parse_port_list("80", &p80), 0);
	assert_true(tf_filter_match(&none, 0, &v4, 40000, 5432));
	assert_true(tf_filter_match(&p80, 0, &v4, 40000, 80));	/* remote port */
	assert_true(tf_filter_match(&p80, 0, &v4, 80, 40000));	/* local port */
	assert_false(tf_filter_match(&p80, 0, &v4, 40000, 5432));
	assert_true(tf_filter_match(&none, AF_INET, &v4, 1, 2));
	assert_false(tf_filter_match(&none, AF_INET, &v6, 1, 2));
	assert_true(tf_filter_match(&none, AF_INET6, &v6, 1, 2));
	assert_true(tf_filter_match(&none, AF_INET, &mapped, 1, 2)); /* v4-mapped is IPv4 */
	assert_false(tf_filter_match(&none, AF_INET6, &mapped, 1, 2));
}

static void test_latency(void **state)
{
	char buf[32];

	(void)state;
	tf_latency(buf, sizeof(buf), 850);
	assert_string_equal(buf, "850ns");
	tf_latency(buf, sizeof(buf), 128399);
	assert_string_equal(buf, "128.3us");
	tf_latency(buf, sizeof(buf), 1599999);
	assert_string_equal(buf, "1.5ms");
	tf_latency(buf, sizeof(buf), 2000000000ULL);
	assert_string_equal(buf, "2.0s");
	tf_latency(buf, 4, 128399); /* bounded */
	assert_int_equal(strlen(buf), 3);
}

static void test_cells_and_line(void **state)
{
	struct tf_row r = row("10.1.0.2", 80, 3, 12, "a-very-long-process", 4242);
	size_t w[TF_COL_MAX];
	char buf[512];

	(void)state;
	r.transport = TF_LEASE_ALIVE;
	r.payload = TF_LEASE_SUSPECT;
	r.has_last = true;
	r.last_ago_ns = 1500 * MS;
	r.has_left = true;
	r.left_ns = -3 * (int64_t)SEC;
	tf_layout(80, w);
	tf_cell(buf, sizeof(buf), &r, TF_COL_CONNS, w[TF_COL_CONNS], true);
	assert_string_equal(buf, "     3");
	tf_cell(buf, sizeof(buf), &r, TF_COL_LEFT, w[TF_COL_LEFT], true);
	assert_string_equal(buf, " -3.0s");
	tf_cell(buf, sizeof(buf), &r, TF_COL_LAST, w[TF_COL_LAST], true);
	assert_string_equal(buf, "  1.5s");
	/* a long process name: ellipsis, exactly the column */
	tf_cell(buf, sizeof(buf), &r, TF_COL_PROCESS, 12, true);
	assert_string_equal(buf, "a-very-long\xe2\x80\xa6");
	tf_cell(buf, sizeof(buf), &r, TF_COL_PROCESS, 12, false);
	assert_string_equal(buf, "a-very-long~");
	memset(r.comm, 'x', sizeof(r.comm)); /* not NUL-terminated: never read past */
	tf_cell(buf, sizeof(buf), &r, TF_COL_PROCESS, 30, false);
	assert_string_equal(buf, "xxxxxxxxxxxxxxx/4242          ");
	snprintf(r.comm, sizeof(r.comm), "curl");
	tf_row_line(buf, sizeof(buf), &r, w, true);
	assert_int_equal(tf_width(buf), 80);
	assert_string_equal(buf, "10.1.0.2:80              3 alive       suspect       1.5s  "
				 "-3.0s      12 curl/4\xe2\x80\xa6");
	tf_header(buf, sizeof(buf), w, TF_COL_FAILS, false, false);
	assert_int_equal(tf_width(buf), 80);
	assert_non_null(strstr(buf, "FAIL/Mv"));
	tf_header(buf, sizeof(buf), w, TF_COL_PEER, true, true);
	assert_non_null(strstr(buf, "PEER\xe2\x96\xb2"));
	assert_int_equal(tf_width(buf), 80);
}

static void test_sort(void **state)
{
	struct tf_row a = row("10.1.0.2", 80, 2, 0, "curl", 10);
	struct tf_row b = row("10.1.0.2", 81, 0, 30, "nc", 11);
	struct tf_row c = row("10.0.0.9", 443, 5, 3, "", 0);
	struct tf_row d = row("fd00::1", 80, 1, 3, "app", 12);
	const struct tf_row *rows[] = { &a, &b, &c, &d };

	(void)state;
	a.transport = TF_LEASE_EXPIRED;
	c.transport = TF_LEASE_ALIVE;
	tf_sort(rows, 4, TF_COL_PEER, false);
	assert_ptr_equal(rows[0], &c);
	assert_ptr_equal(rows[1], &a);
	assert_ptr_equal(rows[2], &b);
	assert_ptr_equal(rows[3], &d); /* IPv6 after IPv4 */
	tf_sort(rows, 4, TF_COL_PEER, true);
	assert_ptr_equal(rows[0], &d);
	assert_ptr_equal(rows[3], &c);
	tf_sort(rows, 4, TF_COL_FAILS, false);
	assert_ptr_equal(rows[0], &b);
	assert_ptr_equal(rows[1], &c); /* tie with d: by address */
	assert_ptr_equal(rows[2], &d);
	assert_ptr_equal(rows[3], &a);
	tf_sort(rows, 4, TF_COL_CONNS, false);
	assert_ptr_equal(rows[0], &c);
	tf_sort(rows, 4, TF_COL_TRANSPORT, false);
	assert_ptr_equal(rows[0], &a); /* worst first */
	assert_ptr_equal(rows[1], &c);
	tf_sort(rows, 4, TF_COL_PROCESS, false);
	assert_ptr_equal(rows[0], &d); /* "app" */
	assert_ptr_equal(rows[3], &c); /* unknown last */
	/* out-of-range column: by address, no crash */
	tf_sort(rows, 4, 99, false);
	assert_ptr_equal(rows[0], &c);
}

static void test_sort_left_and_last(void **state)
{
	struct tf_row a = row("10.0.0.1", 1, 1, 0, "x", 1);
	struct tf_row b = row("10.0.0.2", 1, 1, 0, "x", 1);
	struct tf_row c = row("10.0.0.3", 1, 1, 0, "x", 1);
	const struct tf_row *rows[] = { &a, &b, &c };

	(void)state;
	a.has_left = true;
	a.left_ns = 5 * SEC;
	b.has_left = true;
	b.left_ns = -1 * (int64_t)SEC;
	tf_sort(rows, 3, TF_COL_LEFT, false);
	assert_ptr_equal(rows[0], &b); /* overdue first */
	assert_ptr_equal(rows[1], &a);
	assert_ptr_equal(rows[2], &c); /* no lease last */
	a.has_last = c.has_last = true;
	a.last_ago_ns = 1 * SEC;
	c.last_ago_ns = 20 * SEC;
	tf_sort(rows, 3, TF_COL_LAST, false);
	assert_ptr_equal(rows[0], &c); /* most silent first */
	assert_ptr_equal(rows[1], &a);
	assert_ptr_equal(rows[2], &b);
}

static void test_filter(void **state)
{
	struct tf_row a = row("10.1.0.2", 8080, 1, 0, "Nginx", 77);
	struct tf_row b = row("fd00:1::2", 443, 1, 0, "", 0);

	(void)state;
	assert_true(tf_row_match(&a, ""));
	assert_true(tf_row_match(&a, NULL));
	assert_true(tf_row_match(&a, "10.1.0"));
	assert_true(tf_row_match(&a, ":8080"));
	assert_true(tf_row_match(&a, "nginx"));
	assert_true(tf_row_match(&a, "NGINX/77"));
	assert_false(tf_row_match(&a, "curl"));
	assert_true(tf_row_match(&b, "FD00:1"));
	assert_true(tf_row_match(&b, "]:443"));
	assert_false(tf_row_match(&b, "10.1"));
	assert_false(tf_row_match(&b, "-")); /* the "-" shown for no process does not match */
}

static void test_event_lines(void **state)
{
	struct sp_event ev;
	char buf[256];

	(void)state;
	memset(&ev, 0, sizeof(ev));
	ev.action = SP_ACT_CONNECT;
	ev.real_ns = 1795848312123456789ULL; /* 06:45:12 UTC */
	ev.has_conn = true;
	ev.conn.src = addr_of("10.1.0.1");
	ev.conn.dst = addr_of("10.1.0.2");
	ev.conn.sport = 40000;
	ev.conn.dport = 81;
	ev.conn.has_ports = true;
	ev.conn.has_pid = true;
	ev.conn.pid = 4242;
	snprintf(ev.conn.comm, sizeof(ev.conn.comm), "sp_conn");
	ev.connect.failure = SP_FAIL_REFUSED;
	ev.error = 111;
	tf_event_line(buf, sizeof(buf), &ev, false);
	assert_string_equal(buf, "06:45:12 sp_conn/4242 10.1.0.1:40000->10.1.0.2:81 connect failed: "
				 "refused (ECONNREFUSED)");
	assert_true(tf_event_interesting(&ev));

	ev.connect.success = true; /* the latency as precise as watch's */
	ev.has_duration = true;
	ev.duration_ns = 128399;
	tf_event_line(buf, sizeof(buf), &ev, false);
	assert_non_null(strstr(buf, "connect ok in 128.3us"));
	ev.has_duration = false;
	ev.connect.success = false;

	ev.action = SP_ACT_STATE_CHANGE;
	ev.state.old_state = SP_ST_SYN_SENT;
	ev.state.new_state = SP_ST_ESTABLISHED;
	tf_event_line(buf, sizeof(buf), &ev, true);
	assert_non_null(strstr(buf, "syn_sent\xe2\x86\x92" "established"));
	ev.state.new_state = 200; /* out of range: no crash */
	tf_event_line(buf, sizeof(buf), &ev, false);
	assert_non_null(strstr(buf, "syn_sent->?"));

	ev.action = SP_ACT_ACTIVITY;
	assert_false(tf_event_interesting(&ev));

	memset(&ev, 0, sizeof(ev));
	ev.action = SP_ACT_SPIKE;
	ev.real_ns = 1795848312123456789ULL;
	ev.has_conn = true;
	ev.conn.dst = addr_of("fd00::2");
	ev.conn.dport = 443;
	ev.conn.has_ports = true;
	ev.spike.start = true;
	ev.spike.failures = 12;
	ev.spike.window_s = 10;
	ev.spike.baseline_per_s = 0.02;
	tf_event_line(buf, sizeof(buf), &ev, false);
	assert_string_equal(buf, "06:45:12 [fd00::2]:443 SPIKE start: 12 failures in 10s, "
				 "baseline 0.02/s");

	memset(&ev, 0, sizeof(ev));
	ev.action = SP_ACT_EVENTS_LOST;
	ev.lost.count = 5;
	ev.lost.kind = "state";
	tf_event_line(buf, sizeof(buf), &ev, false);
	assert_string_equal(buf, "00:00:00 LOST 5 state events");
	/* small buffers are bounded */
	tf_event_line(buf, 8, &ev, false);
	assert_int_equal(strlen(buf), 7);
}

/* The SERVICE column: shown, sorted, matched; peers grouped by service. */
static void test_service(void **state)
{
	struct tf_row a = row("10.1.0.2", 5432, 3, 0, "api", 7);
	struct tf_row b = row("10.1.0.3", 5432, 1, 4, "api", 8);
	struct tf_row c = row("10.1.0.9", 80, 0, 9, "worker", 9);
	const struct tf_row *rows[3] = { &c, &a, &b };
	struct tf_row g;
	char buf[256];

	(void)state;
	snprintf(a.service, sizeof(a.service), "api.service");
	snprintf(b.service, sizeof(b.service), "api.service");
	snprintf(c.service, sizeof(c.service), "a3b1f0c9d8e7");
	tf_cell(buf, sizeof(buf), &a, TF_COL_SERVICE, 14, false);
	assert_string_equal(buf, "api.service   ");
	assert_true(tf_row_match(&c, "a3b1f0"));
	assert_true(tf_row_match(&a, "API.SERV"));
	assert_false(tf_row_match(&a, "a3b1f0"));
	tf_sort(rows, 3, TF_COL_SERVICE, false);
	assert_ptr_equal(rows[0], &c); /* "a3b1..." < "api..." */
	assert_string_equal(rows[1]->service, "api.service");

	a.transport = TF_LEASE_EXPIRED;
	a.transport_n = 1;
	a.transport_of = 3;
	a.has_last = true;
	a.last_ago_ns = 2 * SEC;
	b.transport = TF_LEASE_ALIVE;
	b.transport_n = b.transport_of = 1;
	b.has_last = true;
	b.last_ago_ns = SEC;
	memset(&g, 0, sizeof(g));
	tf_row_group(&g, &a);
	tf_row_group(&g, &b);
	assert_int_equal(g.peers, 2);
	assert_int_equal(g.conns, 4);
	assert_int_equal(g.fails_min, 4);
	assert_int_equal(g.transport, TF_LEASE_EXPIRED); /* the worst */
	assert_int_equal(g.transport_n, 1);
	assert_int_equal(g.transport_of, 4);
	assert_true(g.last_ago_ns == SEC); /* the most recent */
	assert_string_equal(g.comm, "*"); /* two processes */
	tf_cell(buf, sizeof(buf), &g, TF_COL_PEER, 24, false);
	assert_string_equal(buf, "api.service (2 peers)   ");
	tf_cell(buf, sizeof(buf), &g, TF_COL_TRANSPORT, 11, false);
	assert_string_equal(buf, "1/4 expired");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_service),
		cmocka_unit_test(test_width_utf8),
		cmocka_unit_test(test_fit_pad_and_truncate),
		cmocka_unit_test(test_fit_sanitizes),
		cmocka_unit_test(test_fit_bounded),
		cmocka_unit_test(test_endpoint_v4),
		cmocka_unit_test(test_endpoint_v6),
		cmocka_unit_test(test_durations),
		cmocka_unit_test(test_sparkline_unicode),
		cmocka_unit_test(test_sparkline_ascii),
		cmocka_unit_test(test_layout),
		cmocka_unit_test(test_layout_narrow),
		cmocka_unit_test(test_partial_lease),
		cmocka_unit_test(test_latency),
		cmocka_unit_test(test_filter_match),
		cmocka_unit_test(test_cells_and_line),
		cmocka_unit_test(test_sort),
		cmocka_unit_test(test_sort_left_and_last),
		cmocka_unit_test(test_filter),
		cmocka_unit_test(test_event_lines),
	};

	setenv("TZ", "UTC", 1);
	tzset();
	return cmocka_run_group_tests(tests, NULL, NULL);
}
