/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Formatting: exact JSON lines for the contract's shapes, every line parsed back with json-c
 * (strict mode, whole line consumed, no duplicate keys), timestamps, addresses, escaping,
 * truncation, and the aligned text lines.
 */
#include <errno.h>
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
#include <json-c/json.h>

#include "sockpulse.h"
#include "decode.h"
#include "cgroup.h"
#include "format.h"
#include "names.h"

#define T0 1795848312123456789ULL /* 2026-11-28T06:45:12.123456789Z */

static void set_v4(struct sp_addr *a, uint8_t b0, uint8_t b1, uint8_t b2, uint8_t b3)
{
	memset(a, 0, sizeof(*a));
	a->family = AF_INET;
	a->bytes[0] = b0;
	a->bytes[1] = b1;
	a->bytes[2] = b2;
	a->bytes[3] = b3;
}

static void set_v6(struct sp_addr *a, const uint8_t bytes[16])
{
	a->family = AF_INET6;
	memcpy(a->bytes, bytes, 16);
}

/* An egress IPv4 connection from curl: 10.0.0.1:43210 -> 10.0.0.2:80. */
static struct sp_event conn_event(enum sp_action action)
{
	struct sp_event ev;

	memset(&ev, 0, sizeof(ev));
	ev.action = action;
	ev.real_ns = T0;
	ev.has_conn = true;
	set_v4(&ev.conn.src, 10, 0, 0, 1);
	set_v4(&ev.conn.dst, 10, 0, 0, 2);
	ev.conn.sport = 43210;
	ev.conn.dport = 80;
	ev.conn.has_ports = true;
	ev.conn.direction = SP_DIR_EGRESS;
	ev.conn.has_pid = true;
	ev.conn.pid = 4242;
	strcpy(ev.conn.comm, "curl");
	ev.conn.cookie = 8193;
	ev.conn.netns = 4026531840u;
	return ev;
}

/* ---- JSON validation helpers ---- */

/* Keys as written in the text: strings directly followed by ':'. */
static size_t count_text_keys(const char *s)
{
	size_t keys = 0;

	while (*s) {
		if (*s != '"') {
			s++;
			continue;
		}
		for (s++; *s && *s != '"'; s++) {
			if (*s == '\\' && s[1])
				s++;
		}
		if (*s)
			s++;
		if (*s == ':')
			keys++;
	}
	return keys;
}

static size_t count_tree_keys(struct json_object *o)
{
	size_t keys = 0, i;

	if (json_object_is_type(o, json_type_object)) {
		json_object_object_foreach(o, k, v)
		{
			(void)k;
			keys += 1 + count_tree_keys(v);
		}
	} else if (json_object_is_type(o, json_type_array)) {
		for (i = 0; i < json_object_array_length(o); i++)
			keys += count_tree_keys(json_object_array_get_idx(o, i));
	}
	return keys;
}

/* Parses one produced line strictly; fails the test unless it is exactly one JSON object. */
static struct json_object *parse_line(const char *line, size_t len)
{
	struct json_tokener *tok = json_tokener_new();
	struct json_object *o;

	assert_non_null(tok);
	assert_true(len > 0);
	assert_int_equal(line[len - 1], '\n');
	assert_int_equal(strlen(line), len);
	assert_null(memchr(line, '\n', len - 1)); /* one line */
	json_tokener_set_flags(tok, JSON_TOKENER_STRICT);
	o = json_tokener_parse_ex(tok, line, (int)(len - 1));
	if (!o)
		fail_msg("not JSON (%s): %s", json_tokener_error_desc(json_tokener_get_error(tok)),
			 line);
	assert_int_equal(json_tokener_get_parse_end(tok), len - 1);
	json_tokener_free(tok);
	assert_true(json_object_is_type(o, json_type_object));
	/* json-c keeps the last of duplicate keys: equal counts mean every key is unique */
	if (count_text_keys(line) != count_tree_keys(o))
		fail_msg("duplicate keys in %s", line);
	return o;
}

static struct json_object *at(struct json_object *root, const char *ptr)
{
	struct json_object *v = NULL;

	if (json_pointer_get(root, ptr, &v))
		return NULL;
	return v;
}

static void assert_json_str(struct json_object *root, const char *ptr, const char *want)
{
	struct json_object *v = at(root, ptr);

	if (!v || !json_object_is_type(v, json_type_string))
		fail_msg("%s: missing or not a string", ptr);
	assert_string_equal(json_object_get_string(v), want);
}

static void assert_json_u64(struct json_object *root, const char *ptr, uint64_t want)
{
	struct json_object *v = at(root, ptr);

	if (!v || !json_object_is_type(v, json_type_int))
		fail_msg("%s: missing or not an integer", ptr);
	assert_true(json_object_get_uint64(v) == want);
}

static void assert_json_absent(struct json_object *root, const char *ptr)
{
	if (at(root, ptr))
		fail_msg("%s: present, should be absent", ptr);
}

/* ---- timestamps, addresses, escaping ---- */

static void ts_is(uint64_t ns, const char *want)
{
	char buf[64];

	assert_int_equal(format_rfc3339_ns(buf, sizeof(buf), ns), strlen(want));
	assert_string_equal(buf, want);
}

static void test_rfc3339(void **state)
{
	char buf[64];

	ts_is(0, "1970-01-01T00:00:00.000000000Z");
	ts_is(1, "1970-01-01T00:00:00.000000001Z");
	ts_is(T0, "2026-11-28T06:45:12.123456789Z");
	ts_is(1709251199999999999ULL, "2024-02-29T23:59:59.999999999Z"); /* leap day */
	ts_is(951825600000000000ULL, "2000-02-29T12:00:00.000000000Z");	 /* 400-year leap */
	ts_is(1735689600000000000ULL, "2025-01-01T00:00:00.000000000Z");
	ts_is(UINT64_MAX, "2554-07-21T23:34:33.709551615Z");

	/* 30 characters + NUL */
	assert_int_equal(format_rfc3339_ns(buf, 31, T0), 30);
	assert_int_equal(format_rfc3339_ns(buf, 30, T0), 0);
	assert_int_equal(format_rfc3339_ns(buf, 0, T0), 0);
}

static void addr_is(const struct sp_addr *a, const char *want)
{
	char buf[SP_ADDR_STR_MAX];

	assert_int_equal(format_addr(buf, sizeof(buf), a), strlen(want));
	assert_string_equal(buf, want);
}

static void test_addr(void **state)
{
	static const uint8_t fd00_1[16] = { 0xfd, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1 };
	static const uint8_t doc[16] = { 0x20, 0x01, 0x0d, 0xb8, 0, 0,	  0, 0,
					 0,    0,    0xff, 0,	 0, 0x42, 0x83, 0x29 };
	static const uint8_t mapped[16] = { 0, 0, 0, 0, 0, 0, 0, 0,
					    0, 0, 0xff, 0xff, 192, 0, 2, 7 };
	static const uint8_t full[16] = { 0x20, 0x01, 0x0d, 0xb8, 0x11, 0x11, 0x22, 0x22,
					  0x33, 0x33, 0x44, 0x44, 0x55, 0x55, 0x66, 0x66 };
	struct sp_addr a;
	char buf[SP_ADDR_STR_MAX];

	set_v4(&a, 10, 0, 0, 1);
	addr_is(&a, "10.0.0.1");
	set_v4(&a, 255, 255, 255, 255);
	addr_is(&a, "255.255.255.255");
	set_v6(&a, fd00_1);
	addr_is(&a, "fd00::1");
	set_v6(&a, doc);
	addr_is(&a, "2001:db8::ff00:42:8329"); /* RFC 5952: lowercase, longest zero run */
	set_v6(&a, mapped);
	addr_is(&a, "192.0.2.7");
	set_v6(&a, full);
	addr_is(&a, "2001:db8:1111:2222:3333:4444:5555:6666");

	memset(&a, 0, sizeof(a));
	buf[0] = 'x';
	assert_int_equal(format_addr(buf, sizeof(buf), &a), 0);
	assert_string_equal(buf, "");
	a.family = AF_UNIX;
	assert_int_equal(format_addr(buf, sizeof(buf), &a), 0);

	set_v4(&a, 10, 0, 0, 1);
	assert_int_equal(format_addr(buf, 8, &a), 0);
	assert_int_equal(format_addr(buf, 9, &a), 8);
}

static void esc_is(const char *in, size_t len, const char *want)
{
	char buf[256];
	size_t n = json_escape(buf, sizeof(buf), in, len);

	assert_int_equal(n, strlen(want));
	assert_string_equal(buf, want);
}

static void test_escape(void **state)
{
	char buf[8];

	esc_is("plain", 5, "plain");
	esc_is("\"\\\n\x01", 4, "\\\"\\\\\\n\\u0001");
	esc_is("\t\r\b\f\x1f\x7f", 6, "\\t\\r\\b\\f\\u001f\\u007f");
	esc_is("a\0b", 3, "a\\u0000b");
	esc_is("caf\xc3\xa9", 5, "caf\xc3\xa9");		   /* valid UTF-8 kept */
	esc_is("\xf0\x9d\x84\x9e", 4, "\xf0\x9d\x84\x9e"); /* 4-byte sequence kept */
	esc_is("\xff", 1, "\\ufffd");
	esc_is("a\xc0\xafz", 4, "a\\ufffd\\ufffdz");		 /* overlong '/' */
	esc_is("\xed\xa0\x80", 3, "\\ufffd\\ufffd\\ufffd");	 /* surrogate */
	esc_is("\xf4\x90\x80\x80", 4, "\\ufffd\\ufffd\\ufffd\\ufffd"); /* > U+10FFFF */
	esc_is("\xe2\x82", 2, "\\ufffd\\ufffd");		 /* truncated */
	esc_is("\xe2\x82\xac", 2, "\\ufffd\\ufffd"); /* cut by len: never read past it */
	esc_is("\xe2\x82\xac", 3, "\xe2\x82\xac");
	esc_is("", 0, "");

	/* too small: 0, never a partial escape */
	assert_int_equal(json_escape(buf, 2, "\"", 1), 0);
	assert_int_equal(json_escape(buf, 3, "\"", 1), 2);
	assert_int_equal(json_escape(buf, 6, "\x01", 1), 0);
	assert_int_equal(json_escape(buf, 7, "\x01", 1), 6);
	assert_int_equal(json_escape(buf, 2, "ab", 2), 0);
	assert_int_equal(json_escape(buf, 3, "ab", 2), 2);
}

/* ---- JSON lines ---- */

static void test_json_connect_refused(void **state)
{
	static const char want[] =
		"{\"@timestamp\":\"2026-11-28T06:45:12.123456789Z\","
		"\"event\":{\"kind\":\"event\",\"action\":\"tcp-connect\",\"sequence\":42,"
		"\"outcome\":\"failure\",\"duration\":412000},"
		"\"source\":{\"ip\":\"10.0.0.1\",\"port\":43210},"
		"\"destination\":{\"ip\":\"10.0.0.2\",\"port\":80},"
		"\"network\":{\"transport\":\"tcp\",\"type\":\"ipv4\",\"direction\":\"egress\"},"
		"\"process\":{\"pid\":4242,\"name\":\"curl\"},"
		"\"error\":{\"code\":\"ECONNREFUSED\"},"
		"\"sockpulse\":{\"schema\":1,\"sock\":8193,\"netns\":4026531840,"
		"\"connect_hook\":\"tracepoint\",\"failure\":\"refused\"}}\n";
	struct format_ctx ctx = { .connect_hook = "tracepoint" };
	struct sp_event ev = conn_event(SP_ACT_CONNECT);
	char buf[SP_LINE_MAX];
	struct json_object *o;
	size_t n;

	ev.has_duration = true;
	ev.duration_ns = 412000;
	ev.connect.success = false;
	ev.connect.failure = SP_FAIL_REFUSED;
	ev.error = ECONNREFUSED;
	n = format_json(buf, sizeof(buf), &ev, 42, &ctx);
	assert_string_equal(buf, want);
	assert_int_equal(n, strlen(want));

	o = parse_line(buf, n);
	assert_json_str(o, "/event/action", "tcp-connect");
	assert_json_str(o, "/event/outcome", "failure");
	assert_json_u64(o, "/destination/port", 80);
	assert_json_str(o, "/error/code", "ECONNREFUSED");
	assert_json_u64(o, "/sockpulse/sock", 8193);
	json_object_put(o);

	/* the same connect succeeding: no failure, no error */
	ev.connect.success = true;
	ev.connect.failure = SP_FAIL_NONE;
	ev.error = 0;
	n = format_json(buf, sizeof(buf), &ev, 43, NULL);
	o = parse_line(buf, n);
	assert_json_str(o, "/event/outcome", "success");
	assert_json_u64(o, "/event/duration", 412000);
	assert_json_absent(o, "/error");
	assert_json_absent(o, "/sockpulse/failure");
	assert_json_absent(o, "/sockpulse/connect_hook");
	json_object_put(o);
}

/* The owner's cgroup, resolved through the cache: unit, container, pod and the path. */
static void test_json_cgroup(void **state)
{
	static const char k8s[] =
		"/kubepods.slice/kubepods-burstable.slice/"
		"kubepods-burstable-pod1b2c3d4e_5f6a_7b8c_9d0e_1f2a3b4c5d6e.slice/"
		"cri-containerd-a3b1f0c9d8e7f6a5b4c3d2e1f0a9b8c7d6e5f4a3b2c1d0e9f8a7b6c5d4e3f2a1.scope";
	struct cg_cache_config cc = { .capacity = 8 };
	struct cg_cache *cg = cg_cache_new(&cc);
	struct format_ctx ctx = { .cg = cg };
	struct sp_event ev = conn_event(SP_ACT_CONNECT);
	char buf[SP_LINE_MAX];
	struct json_object *o;
	size_t n;

	assert_non_null(cg);
	assert_int_equal(cg_cache_add(cg, 77, k8s), 1);
	assert_int_equal(cg_cache_add(cg, 78, "/system.slice/nginx.service"), 1);
	ev.connect.success = true;
	ev.conn.cgroup_id = 77;
	n = format_json(buf, sizeof(buf), &ev, 1, &ctx);
	o = parse_line(buf, n);
	assert_json_str(o, "/container/id",
			"a3b1f0c9d8e7f6a5b4c3d2e1f0a9b8c7d6e5f4a3b2c1d0e9f8a7b6c5d4e3f2a1");
	assert_json_str(o, "/container/runtime", "containerd");
	assert_json_str(o, "/orchestrator/type", "kubernetes");
	assert_json_str(o, "/kubernetes/pod/uid", "1b2c3d4e-5f6a-7b8c-9d0e-1f2a3b4c5d6e");
	assert_json_str(o, "/sockpulse/cgroup", k8s);
	assert_json_absent(o, "/systemd");
	json_object_put(o);

	ev.conn.cgroup_id = 78;
	n = format_json(buf, sizeof(buf), &ev, 2, &ctx);
	o = parse_line(buf, n);
	assert_json_str(o, "/systemd/unit", "nginx.service");
	assert_json_str(o, "/sockpulse/cgroup", "/system.slice/nginx.service");
	assert_json_absent(o, "/container");
	assert_json_absent(o, "/orchestrator");
	assert_json_absent(o, "/kubernetes");
	json_object_put(o);

	/* unknown to the cache (and no hierarchy to walk): nothing */
	ev.conn.cgroup_id = 79;
	n = format_json(buf, sizeof(buf), &ev, 3, &ctx);
	o = parse_line(buf, n);
	assert_json_absent(o, "/sockpulse/cgroup");
	assert_json_absent(o, "/systemd");
	json_object_put(o);
	cg_cache_free(cg);
}

/* Through the decoder: an accepted IPv6 connection handing over to TIME_WAIT. */
static void test_json_ipv6_ingress(void **state)
{
	static const uint8_t fd00_1[16] = { 0xfd, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1 };
	static const uint8_t doc_2[16] = { 0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0,
					   0,	 0,    0,    0,	   0, 0, 0, 2 };
	static const char want[] =
		"{\"@timestamp\":\"2026-11-28T06:45:12.123456789Z\","
		"\"event\":{\"kind\":\"event\",\"action\":\"tcp-state-change\",\"sequence\":7,"
		"\"duration\":2500000000},"
		"\"source\":{\"ip\":\"2001:db8::2\",\"port\":51000},"
		"\"destination\":{\"ip\":\"fd00::1\",\"port\":8080},"
		"\"network\":{\"transport\":\"tcp\",\"type\":\"ipv6\",\"direction\":\"ingress\"},"
		"\"sockpulse\":{\"schema\":1,\"sock\":77,\"old_state\":\"fin_wait2\","
		"\"new_state\":\"close\",\"time_wait\":true}}\n";
	struct sp_record r;
	struct sp_event ev;
	char buf[SP_LINE_MAX];
	struct json_object *o;
	size_t n;

	memset(&r, 0, sizeof(r));
	r.type = SP_REC_STATE;
	r.ts_ns = 1000;
	r.cookie = 77;
	r.family = AF_INET6;
	memcpy(r.laddr, fd00_1, 16);
	memcpy(r.raddr, doc_2, 16);
	r.lport = 8080;
	r.rport = 51000;
	r.old_state = 5;
	r.new_state = 7;
	r.direction = SP_DIR_INGRESS;
	r.flags = SP_F_TIME_WAIT | SP_F_DURATION;
	r.duration_ns = 2500000000ULL;
	assert_int_equal(decode_record(&r, sizeof(r), (int64_t)(T0 - 1000), &ev), DECODE_OK);

	n = format_json(buf, sizeof(buf), &ev, 7, NULL);
	assert_string_equal(buf, want);
	o = parse_line(buf, n);
	assert_json_str(o, "/source/ip", "2001:db8::2");
	assert_json_absent(o, "/process");
	json_object_put(o);

	/* the same socket without the time_wait hand-over: no time_wait key at all */
	r.flags = 0;
	assert_int_equal(decode_record(&r, sizeof(r), (int64_t)(T0 - 1000), &ev), DECODE_OK);
	n = format_json(buf, sizeof(buf), &ev, 8, NULL);
	o = parse_line(buf, n);
	assert_json_absent(o, "/sockpulse/time_wait");
	assert_json_absent(o, "/event/duration");
	json_object_put(o);
}

/* An event built elsewhere with unnormalized IPv4-mapped addresses still prints IPv4. */
static void test_json_mapped(void **state)
{
	static const uint8_t m7[16] = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 192, 0, 2, 7 };
	static const uint8_t m8[16] = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 192, 0, 2, 8 };
	static const char want[] =
		"{\"@timestamp\":\"1970-01-01T00:00:01.000000000Z\","
		"\"event\":{\"kind\":\"event\",\"action\":\"tcp-reset\",\"sequence\":1},"
		"\"source\":{\"ip\":\"192.0.2.7\",\"port\":1234},"
		"\"destination\":{\"ip\":\"192.0.2.8\",\"port\":443},"
		"\"network\":{\"transport\":\"tcp\",\"type\":\"ipv4\"},"
		"\"sockpulse\":{\"schema\":1,\"reset\":{\"direction\":\"sent\"}}}\n";
	struct sp_event ev;
	char buf[SP_LINE_MAX];
	size_t n;

	memset(&ev, 0, sizeof(ev));
	ev.action = SP_ACT_RESET;
	ev.real_ns = 1000000000ULL;
	ev.has_conn = true;
	set_v6(&ev.conn.src, m7);
	set_v6(&ev.conn.dst, m8);
	ev.conn.has_ports = true;
	ev.conn.sport = 1234;
	ev.conn.dport = 443;
	ev.reset.direction = SP_RST_SENT;
	n = format_json(buf, sizeof(buf), &ev, 1, NULL);
	assert_string_equal(buf, want);
	json_object_put(parse_line(buf, n));
}

static void test_json_escaped_comm(void **state)
{
	struct sp_event ev = conn_event(SP_ACT_ACTIVITY);
	const char comm[] = "a\"b\\c\n\x01\xff";
	char buf[SP_LINE_MAX];
	struct json_object *o;
	size_t n;

	memcpy(ev.conn.comm, comm, sizeof(comm));
	ev.activity.segments = 3;
	ev.activity.payload_bytes = 120;
	n = format_json(buf, sizeof(buf), &ev, 1, NULL);
	assert_non_null(strstr(buf, "\"process\":{\"pid\":4242,\"name\":"
				    "\"a\\\"b\\\\c\\n\\u0001\\ufffd\"}"));
	o = parse_line(buf, n);
	assert_json_str(o, "/process/name", "a\"b\\c\n\x01\xef\xbf\xbd");
	assert_json_u64(o, "/sockpulse/activity/segments", 3);
	assert_json_u64(o, "/sockpulse/activity/payload_bytes", 120);
	json_object_put(o);

	/* a comm that fills the array without a NUL is bounded, not overrun */
	memset(ev.conn.comm, 'x', sizeof(ev.conn.comm));
	n = format_json(buf, sizeof(buf), &ev, 1, NULL);
	assert_non_null(strstr(buf, "\"name\":\"xxxxxxxxxxxxxxxx\"}"));
	json_object_put(parse_line(buf, n));

	/* an empty comm is omitted, not written as "" */
	ev.conn.comm[0] = '\0';
	n = format_json(buf, sizeof(buf), &ev, 1, NULL);
	assert_non_null(strstr(buf, "\"process\":{\"pid\":4242},"));
	json_object_put(parse_line(buf, n));
}

static void test_json_listen_no_remote(void **state)
{
	struct sp_event ev = conn_event(SP_ACT_STATE_CHANGE);
	char buf[SP_LINE_MAX];
	struct json_object *o;
	size_t n;

	set_v4(&ev.conn.src, 0, 0, 0, 0);
	ev.conn.sport = 8080;
	memset(&ev.conn.dst, 0, sizeof(ev.conn.dst));
	ev.conn.dport = 0;
	ev.conn.direction = SP_DIR_UNKNOWN;
	ev.state.old_state = SP_ST_CLOSE;
	ev.state.new_state = SP_ST_LISTEN;
	n = format_json(buf, sizeof(buf), &ev, 1, NULL);
	assert_non_null(strstr(buf, "\"source\":{\"ip\":\"0.0.0.0\",\"port\":8080},"
				    "\"network\":{\"transport\":\"tcp\",\"type\":\"ipv4\"},"));
	o = parse_line(buf, n);
	assert_json_absent(o, "/destination");
	assert_json_absent(o, "/network/direction");
	assert_json_str(o, "/sockpulse/new_state", "listen");
	json_object_put(o);
}

/* Activity still pending when a connection leaves ESTABLISHED rides on that line. */
static void test_json_state_carries_activity(void **state)
{
	struct sp_event ev = conn_event(SP_ACT_STATE_CHANGE);
	char buf[SP_LINE_MAX];
	struct json_object *o;
	size_t n;

	ev.state.old_state = SP_ST_ESTABLISHED;
	ev.state.new_state = SP_ST_FIN_WAIT1;
	ev.state.segments = 3;
	ev.state.payload_bytes = 120;
	n = format_json(buf, sizeof(buf), &ev, 1, NULL);
	assert_non_null(strstr(buf, "\"new_state\":\"fin_wait1\","
				    "\"activity\":{\"segments\":3,\"payload_bytes\":120}}"));
	o = parse_line(buf, n);
	assert_json_str(o, "/sockpulse/old_state", "established");
	json_object_put(o);

	ev.state.segments = 0;
	n = format_json(buf, sizeof(buf), &ev, 1, NULL);
	assert_null(strstr(buf, "activity"));
	n = format_text(buf, sizeof(buf), &ev);
	assert_null(strstr(buf, "segs="));
	ev.state.segments = 2;
	n = format_text(buf, sizeof(buf), &ev);
	assert_non_null(strstr(buf, "established -> fin_wait1 segs=2 bytes=120"));
}

/* The number formatter, through the sequence field: every digit-count boundary. */
static void test_json_numbers(void **state)
{
	static const struct {
		uint64_t v;
		const char *s;
	} cases[] = {
		{ 0, "0" },	      { 7, "7" },	    { 9, "9" },		   { 10, "10" },
		{ 42, "42" },	      { 99, "99" },	    { 100, "100" },	   { 101, "101" },
		{ 999, "999" },	      { 1000, "1000" },	    { 65535, "65535" },	   { 1000000, "1000000" },
		{ 4026531840ULL, "4026531840" },	    { UINT64_MAX, "18446744073709551615" },
	};
	struct sp_event ev;
	char buf[SP_LINE_MAX], want[64];

	memset(&ev, 0, sizeof(ev));
	ev.action = SP_ACT_EVENTS_LOST;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		ev.lost.count = cases[i].v;
		assert_true(format_json(buf, sizeof(buf), &ev, cases[i].v, NULL) > 0);
		snprintf(want, sizeof(want), "\"sequence\":%s}", cases[i].s);
		assert_non_null(strstr(buf, want));
		snprintf(want, sizeof(want), "\"count\":%s}", cases[i].s);
		assert_non_null(strstr(buf, want));
	}
	/* 10^k - 1, 10^k and 10^k + 1 for every k: the digit count is computed, not looped */
	for (uint64_t p = 1;; p *= 10) {
		for (uint64_t v = p - 1; v <= p + 1; v++) {
			ev.lost.count = v;
			assert_true(format_json(buf, sizeof(buf), &ev, v, NULL) > 0);
			snprintf(want, sizeof(want), "\"sequence\":%llu}", (unsigned long long)v);
			assert_non_null(strstr(buf, want));
		}
		if (p > UINT64_MAX / 10)
			break;
	}
}

static void test_json_lease_hold(void **state)
{
	struct sp_event ev;
	char buf[SP_LINE_MAX];
	struct json_object *o;
	size_t n;

	memset(&ev, 0, sizeof(ev));
	ev.action = SP_ACT_LEASE_HOLD;
	ev.real_ns = 0;
	ev.hold.reason = "agent-stall";
	ev.hold.grace_ms = 5000;
	ev.hold.stall_ms = 8000;
	n = format_json(buf, sizeof(buf), &ev, 3, NULL);
	assert_string_equal(buf, "{\"@timestamp\":\"1970-01-01T00:00:00.000000000Z\","
				 "\"event\":{\"kind\":\"event\",\"action\":\"lease-hold\","
				 "\"sequence\":3,\"reason\":\"agent-stall\"},"
				 "\"sockpulse\":{\"schema\":1,\"hold\":{\"grace_ms\":5000,"
				 "\"stall_ms\":8000}}}\n");
	o = parse_line(buf, n);
	json_object_put(o);
	n = format_text(buf, sizeof(buf), &ev);
	assert_non_null(strstr(buf, "lease verdicts held 5.0s reason=agent-stall stall=8.0s"));
}

static void test_json_engine_lines(void **state)
{
	static const char spike_want[] =
		"{\"@timestamp\":\"2026-11-28T06:45:12.123456789Z\","
		"\"event\":{\"kind\":\"alert\",\"action\":\"connect-failure-spike\",\"sequence\":9,"
		"\"type\":[\"start\"]},"
		"\"destination\":{\"ip\":\"10.0.0.2\",\"port\":80},"
		"\"network\":{\"transport\":\"tcp\",\"type\":\"ipv4\"},"
		"\"sockpulse\":{\"schema\":1,\"spike\":{\"failures\":12,\"window_s\":10,"
		"\"baseline_per_s\":0.016667}}}\n";
	static const char lost_want[] =
		"{\"@timestamp\":\"2026-11-28T06:45:12.123456789Z\","
		"\"event\":{\"kind\":\"event\",\"action\":\"events-lost\",\"sequence\":10},"
		"\"sockpulse\":{\"schema\":1,\"lost\":{\"count\":5,\"kind\":\"state\"}}}\n";
	static const char lease_lost_want[] =
		"{\"@timestamp\":\"2026-11-28T06:45:12.123456789Z\","
		"\"event\":{\"kind\":\"event\",\"action\":\"lease-lost\",\"sequence\":11,"
		"\"reason\":\"keepalive-timeout\"},"
		"\"source\":{\"ip\":\"10.0.0.1\",\"port\":43210},"
		"\"destination\":{\"ip\":\"10.0.0.2\",\"port\":80},"
		"\"network\":{\"transport\":\"tcp\",\"type\":\"ipv4\",\"direction\":\"egress\"},"
		"\"process\":{\"pid\":4242,\"name\":\"curl\"},"
		"\"sockpulse\":{\"schema\":1,\"sock\":8193,\"netns\":4026531840,"
		"\"lease\":{\"kind\":\"transport\"}}}\n";
	struct sp_event ev;
	char buf[SP_LINE_MAX];
	struct json_object *o;
	size_t n;

	memset(&ev, 0, sizeof(ev));
	ev.action = SP_ACT_SPIKE;
	ev.real_ns = T0;
	ev.has_conn = true;
	set_v4(&ev.conn.dst, 10, 0, 0, 2);
	ev.conn.dport = 80;
	ev.conn.has_ports = true;
	ev.spike.start = true;
	ev.spike.failures = 12;
	ev.spike.window_s = 10;
	ev.spike.baseline_per_s = 1.0 / 60;
	n = format_json(buf, sizeof(buf), &ev, 9, NULL);
	assert_string_equal(buf, spike_want);
	json_object_put(parse_line(buf, n));

	/* host-wide end: no destination even if one was filled in */
	ev.spike.start = false;
	ev.spike.host_wide = true;
	ev.spike.baseline_per_s = 2.5;
	n = format_json(buf, sizeof(buf), &ev, 9, NULL);
	o = parse_line(buf, n);
	assert_non_null(strstr(buf, "\"type\":[\"end\"]"));
	assert_non_null(strstr(buf, "\"baseline_per_s\":2.5}"));
	assert_json_absent(o, "/destination");
	json_object_put(o);

	/* a baseline JSON cannot carry is omitted */
	ev.spike.baseline_per_s = 0.0 / 0.0;
	n = format_json(buf, sizeof(buf), &ev, 9, NULL);
	o = parse_line(buf, n);
	assert_json_absent(o, "/sockpulse/spike/baseline_per_s");
	json_object_put(o);

	memset(&ev, 0, sizeof(ev));
	ev.action = SP_ACT_EVENTS_LOST;
	ev.real_ns = T0;
	ev.lost.count = 5;
	ev.lost.kind = "state";
	n = format_json(buf, sizeof(buf), &ev, 10, NULL);
	assert_string_equal(buf, lost_want);
	json_object_put(parse_line(buf, n));

	ev = conn_event(SP_ACT_LEASE_LOST);
	ev.lease.kind = SP_LEASE_TRANSPORT;
	ev.lease.reason = "keepalive-timeout";
	n = format_json(buf, sizeof(buf), &ev, 11, NULL);
	assert_string_equal(buf, lease_lost_want);
	json_object_put(parse_line(buf, n));
}

/* Every action: valid JSON, the common fields, and the contract's required fields. */
static void test_json_every_action(void **state)
{
	struct format_ctx ctx = { .connect_hook = "tracepoint" };
	char buf[SP_LINE_MAX];
	unsigned int a;

	for (a = 0; a < SP_ACT_MAX; a++) {
		struct sp_event ev = conn_event(a);
		struct json_object *o;
		size_t n;

		ev.has_duration = true;
		ev.duration_ns = 5;
		switch (a) {
		case SP_ACT_STATE_CHANGE:
			ev.state.old_state = SP_ST_SYN_SENT;
			ev.state.new_state = SP_ST_ESTABLISHED;
			break;
		case SP_ACT_CONNECT:
			ev.connect.failure = SP_FAIL_TIMEOUT;
			ev.error = ETIMEDOUT;
			break;
		case SP_ACT_KEEPALIVE_TIMEOUT:
			ev.keepalive.probes = 2;
			ev.error = ETIMEDOUT;
			break;
		case SP_ACT_RETRANS_TIMEOUT:
			ev.error = ETIMEDOUT;
			break;
		case SP_ACT_RESET:
			ev.reset.direction = SP_RST_RECEIVED;
			ev.reset.has_old_state = true;
			ev.reset.old_state = SP_ST_ESTABLISHED;
			break;
		case SP_ACT_LEASE_SUSPECT:
		case SP_ACT_LEASE_EXPIRED:
		case SP_ACT_LEASE_RECOVERED:
		case SP_ACT_LEASE_CLOSED:
		case SP_ACT_LEASE_LOST:
			ev.lease.kind = SP_LEASE_PAYLOAD;
			ev.lease.silent_ms = 15000;
			ev.lease.ttl_ms = 30000;
			ev.lease.reason = "reset";
			break;
		case SP_ACT_SPIKE:
			ev.spike.failures = 7;
			ev.spike.window_s = 10;
			break;
		case SP_ACT_EVENTS_LOST:
			ev.lost.count = 3;
			ev.lost.kind = "activity";
			break;
		case SP_ACT_TCP_STUCK:
			ev.stuck.start = true;
			ev.stuck.state = SP_ST_CLOSE_WAIT;
			ev.stuck.age_ms = 61000;
			ev.stuck.after_ms = 60000;
			ev.stuck.proc_stuck = 4;
			ev.stuck.trend = 1;
			break;
		case SP_ACT_PORT_RISK:
			ev.ports.start = true;
			ev.ports.forecast = true;
			ev.ports.used = 12;
			ev.ports.time_wait = 2;
			ev.ports.capacity = 20;
			ev.ports.range_lo = 40000;
			ev.ports.range_hi = 40019;
			ev.ports.connect_rate = 2;
			ev.ports.growth_rate = 2;
			ev.ports.eta_ms = 4000;
			break;
		}
		n = format_json(buf, sizeof(buf), &ev, 100 + a, &ctx);
		o = parse_line(buf, n);
		assert_json_str(o, "/event/action", action_name(a));
		assert_json_str(o, "/event/kind",
				a == SP_ACT_LEASE_EXPIRED || a == SP_ACT_SPIKE ||
					a == SP_ACT_TCP_STUCK || a == SP_ACT_PORT_RISK
				    ? "alert"
				    : "event");
		assert_json_u64(o, "/event/sequence", 100 + a);
		assert_json_u64(o, "/event/duration", 5);
		assert_json_u64(o, "/sockpulse/schema", 1);
		assert_json_str(o, "/sockpulse/connect_hook", "tracepoint");
		assert_json_str(o, "/@timestamp", "2026-11-28T06:45:12.123456789Z");
		assert_json_str(o, "/network/transport", "tcp");
		assert_json_str(o, "/destination/ip", "10.0.0.2");
		switch (a) {
		case SP_ACT_STATE_CHANGE:
			assert_json_str(o, "/sockpulse/old_state", "syn_sent");
			assert_json_str(o, "/sockpulse/new_state", "established");
			break;
		case SP_ACT_CONNECT:
			assert_json_str(o, "/sockpulse/failure", "timeout");
			assert_json_str(o, "/error/code", "ETIMEDOUT");
			break;
		case SP_ACT_KEEPALIVE_TIMEOUT:
			assert_json_u64(o, "/sockpulse/keepalive/probes", 2);
			assert_json_str(o, "/error/code", "ETIMEDOUT");
			break;
		case SP_ACT_TCP_STUCK:
			assert_json_str(o, "/event/type/0", "start");
			assert_json_str(o, "/sockpulse/stuck/state", "close_wait");
			assert_json_u64(o, "/sockpulse/stuck/age_ms", 61000);
			assert_json_u64(o, "/sockpulse/stuck/after_ms", 60000);
			assert_json_u64(o, "/sockpulse/stuck/process/sockets", 4);
			assert_json_str(o, "/sockpulse/stuck/process/trend", "growing");
			break;
		case SP_ACT_PORT_RISK:
			assert_json_str(o, "/event/type/0", "start");
			assert_json_str(o, "/event/reason", "forecast");
			assert_json_u64(o, "/sockpulse/ports/used", 12);
			assert_json_u64(o, "/sockpulse/ports/time_wait", 2);
			assert_json_u64(o, "/sockpulse/ports/capacity", 20);
			assert_json_u64(o, "/sockpulse/ports/range_start", 40000);
			assert_json_u64(o, "/sockpulse/ports/range_end", 40019);
			assert_json_u64(o, "/sockpulse/ports/exhaustion_ms", 4000);
			break;
		case SP_ACT_RETRANS_TIMEOUT:
			assert_json_str(o, "/error/code", "ETIMEDOUT");
			break;
		case SP_ACT_RESET:
			assert_json_str(o, "/sockpulse/reset/direction", "received");
			assert_json_str(o, "/sockpulse/old_state", "established");
			break;
		case SP_ACT_LEASE_SUSPECT:
		case SP_ACT_LEASE_EXPIRED:
		case SP_ACT_LEASE_RECOVERED:
			assert_json_str(o, "/sockpulse/lease/kind", "payload");
			assert_json_u64(o, "/sockpulse/lease/silent_ms", 15000);
			assert_json_u64(o, "/sockpulse/lease/ttl_ms", 30000);
			assert_json_absent(o, "/event/reason");
			break;
		case SP_ACT_LEASE_CLOSED:
			assert_json_str(o, "/sockpulse/lease/kind", "payload");
			break;
		case SP_ACT_LEASE_LOST:
			assert_json_str(o, "/sockpulse/lease/kind", "payload");
			assert_json_str(o, "/event/reason", "reset");
			break;
		case SP_ACT_SPIKE:
			assert_json_str(o, "/event/type/0", "end");
			assert_json_u64(o, "/sockpulse/spike/failures", 7);
			assert_json_u64(o, "/sockpulse/spike/window_s", 10);
			assert_non_null(at(o, "/sockpulse/spike/baseline_per_s"));
			break;
		case SP_ACT_EVENTS_LOST:
			assert_json_u64(o, "/sockpulse/lost/count", 3);
			assert_json_str(o, "/sockpulse/lost/kind", "activity");
			break;
		}
		json_object_put(o);
	}

	/* an action outside the enum produces nothing */
	{
		struct sp_event ev = conn_event(SP_ACT_MAX);

		assert_int_equal(format_json(buf, sizeof(buf), &ev, 1, NULL), 0);
	}
}

static void test_json_errno_and_bounds(void **state)
{
	struct sp_event ev = conn_event(SP_ACT_CONNECT);
	char buf[SP_LINE_MAX];
	struct json_object *o;
	size_t n;

	ev.connect.failure = SP_FAIL_LOCAL;
	ev.error = 200; /* no name: its number, as a string */
	ev.conn.cookie = UINT64_MAX;
	n = format_json(buf, sizeof(buf), &ev, UINT64_MAX, NULL);
	o = parse_line(buf, n);
	assert_json_str(o, "/error/code", "200");
	assert_non_null(strstr(buf, "\"sequence\":18446744073709551615"));
	assert_non_null(strstr(buf, "\"sock\":18446744073709551615"));
	json_object_put(o);

	/* out-of-range enums in an event from elsewhere: omitted, never read out of bounds */
	ev = conn_event(SP_ACT_STATE_CHANGE);
	ev.state.old_state = 200;
	ev.state.new_state = SP_ST_MAX;
	ev.conn.direction = 9;
	n = format_json(buf, sizeof(buf), &ev, 1, NULL);
	o = parse_line(buf, n);
	assert_json_absent(o, "/sockpulse/old_state");
	assert_json_absent(o, "/sockpulse/new_state");
	assert_json_absent(o, "/network/direction");
	json_object_put(o);
}

/* Every capacity below the line's size gives 0 and writes nothing past cap. */
static void test_json_truncation(void **state)
{
	struct format_ctx ctx = { .connect_hook = "tracepoint" };
	struct sp_event ev = conn_event(SP_ACT_CONNECT);
	char full[SP_LINE_MAX], buf[SP_LINE_MAX + 1];
	size_t n, cap;

	ev.connect.failure = SP_FAIL_REFUSED;
	ev.error = ECONNREFUSED;
	n = format_json(full, sizeof(full), &ev, 1, &ctx);
	assert_true(n > 100);
	for (cap = 0; cap <= n; cap++) {
		memset(buf, '#', sizeof(buf));
		assert_int_equal(format_json(buf, cap, &ev, 1, &ctx), 0);
		assert_int_equal(buf[cap], '#');
	}
	memset(buf, '#', sizeof(buf));
	assert_int_equal(format_json(buf, n + 1, &ev, 1, &ctx), n);
	assert_string_equal(buf, full);
	assert_int_equal(buf[n + 1], '#');
}

/* ---- text lines ---- */

static int setup_utc(void **state)
{
	setenv("TZ", "UTC", 1);
	tzset();
	return 0;
}

static void text_is(const struct sp_event *ev, const char *want)
{
	char buf[SP_LINE_MAX];
	size_t n = format_text(buf, sizeof(buf), ev);

	assert_string_equal(buf, want);
	assert_int_equal(n, strlen(want));
}

static void test_text_lines(void **state)
{
	static const uint8_t doc[16] = { 0x20, 0x01, 0x0d, 0xb8, 0x11, 0x11, 0x22, 0x22,
					 0x33, 0x33, 0x44, 0x44, 0x55, 0x55, 0x66, 0x66 };
	struct sp_event ev;
	char hdr[256];
	const char *col;
	size_t n;

	n = format_text_header(hdr, sizeof(hdr));
	assert_int_equal(n, strlen(hdr));
	assert_string_equal(hdr, "TIME         PID     COMM            SOURCE                "
				 "DESTINATION           EVENT\n");

	ev = conn_event(SP_ACT_CONNECT);
	ev.connect.success = true;
	ev.has_duration = true;
	ev.duration_ns = 1234567;
	text_is(&ev, "06:45:12.123 4242    curl            10.0.0.1:43210        10.0.0.2:80"
		     "           connect  ok 1.2ms\n");

	ev.connect.success = false;
	ev.connect.failure = SP_FAIL_REFUSED;
	ev.error = ECONNREFUSED;
	ev.duration_ns = 412000;
	text_is(&ev, "06:45:12.123 4242    curl            10.0.0.1:43210        10.0.0.2:80"
		     "           connect  FAILED refused ECONNREFUSED 412.0us\n");

	/* the event column lines up with the header's */
	{
		char line[SP_LINE_MAX];

		format_text(line, sizeof(line), &ev);
		col = strstr(hdr, "EVENT");
		assert_memory_equal(line + (col - hdr), "connect", 7);
	}

	ev = conn_event(SP_ACT_STATE_CHANGE);
	ev.state.old_state = SP_ST_SYN_SENT;
	ev.state.new_state = SP_ST_ESTABLISHED;
	ev.has_duration = true;
	ev.duration_ns = 12300000;
	text_is(&ev, "06:45:12.123 4242    curl            10.0.0.1:43210        10.0.0.2:80"
		     "           state    syn_sent -> established (12.3ms)\n");

	/* long IPv6 overflows its column but keeps a separator; hostile comm is neutralized */
	ev = conn_event(SP_ACT_RESET);
	set_v6(&ev.conn.dst, doc);
	ev.conn.dport = 443;
	ev.conn.has_pid = false;
	ev.reset.direction = SP_RST_RECEIVED;
	ev.reset.has_old_state = true;
	ev.reset.old_state = SP_ST_ESTABLISHED;
	text_is(&ev, "06:45:12.123 -       -               10.0.0.1:43210        "
		     "[2001:db8:1111:2222:3333:4444:5555:6666]:443 "
		     "reset    received in established\n");

	ev = conn_event(SP_ACT_KEEPALIVE_TIMEOUT);
	strcpy(ev.conn.comm, "a\x1b[2Jb\n");
	ev.keepalive.probes = 2;
	ev.error = ETIMEDOUT;
	text_is(&ev, "06:45:12.123 4242    a?[2Jb?         10.0.0.1:43210        10.0.0.2:80"
		     "           timeout  keepalive probes=2 ETIMEDOUT\n");

	ev = conn_event(SP_ACT_ACTIVITY);
	ev.activity.segments = 3;
	ev.activity.payload_bytes = 120;
	text_is(&ev, "06:45:12.123 4242    curl            10.0.0.1:43210        10.0.0.2:80"
		     "           activity segs=3 bytes=120\n");

	ev = conn_event(SP_ACT_LEASE_EXPIRED);
	ev.lease.kind = SP_LEASE_PAYLOAD;
	ev.lease.silent_ms = 31500;
	ev.lease.ttl_ms = 30000;
	text_is(&ev, "06:45:12.123 4242    curl            10.0.0.1:43210        10.0.0.2:80"
		     "           lease    expired payload silent=31.5s ttl=30.0s\n");

	memset(&ev, 0, sizeof(ev));
	ev.action = SP_ACT_SPIKE;
	ev.real_ns = T0;
	ev.spike.start = true;
	ev.spike.host_wide = true;
	ev.spike.failures = 40;
	ev.spike.window_s = 10;
	ev.spike.baseline_per_s = 0.5;
	text_is(&ev, "06:45:12.123 -       -               -                     -"
		     "                     spike    start host-wide failures=40 window=10s "
		     "baseline=0.5/s\n");

	ev = conn_event(SP_ACT_TCP_STUCK);
	ev.stuck.start = true;
	ev.stuck.seeded = true;
	ev.stuck.state = SP_ST_CLOSE_WAIT;
	ev.stuck.age_ms = 61500;
	ev.stuck.proc_stuck = 3;
	ev.stuck.trend = 1;
	text_is(&ev, "06:45:12.123 4242    curl            10.0.0.1:43210        10.0.0.2:80"
		     "           stuck    start close_wait age>=61.5s process-stuck=3 growing\n");
	ev.stuck.start = false;
	ev.stuck.seeded = false;
	ev.stuck.trend = 0;
	text_is(&ev, "06:45:12.123 4242    curl            10.0.0.1:43210        10.0.0.2:80"
		     "           stuck    end close_wait age=61.5s process-stuck=3\n");

	ev = conn_event(SP_ACT_PORT_RISK);
	ev.conn.sport = 0;
	ev.ports.start = true;
	ev.ports.used = 17;
	ev.ports.capacity = 20;
	ev.ports.time_wait = 4;
	ev.ports.growth_rate = 2.5;
	ev.ports.eta_ms = 1200;
	text_is(&ev, "06:45:12.123 4242    curl            10.0.0.1              10.0.0.2:80"
		     "           ports    risk used=17/20 time_wait=4 growth=2.5/s exhausted-in=1.2s\n");

	memset(&ev, 0, sizeof(ev));
	ev.action = SP_ACT_EVENTS_LOST;
	ev.real_ns = 999;
	ev.lost.count = 5;
	ev.lost.kind = "state";
	text_is(&ev, "00:00:00.000 -       -               -                     -"
		     "                     lost     count=5 kind=state\n");
}

/*
 * A watch session on loopback, as a reader sees it: every EVENT starts in the header's column
 * (lease lines too), the end each line is about is marked, and a verdict decided after a later
 * line shows that line's time, not an earlier one.
 */
static void test_text_golden(void **state)
{
	static const char want[] =
	    "TIME         PID     COMM            SOURCE                DESTINATION           "
	    "EVENT\n"
	    "06:45:12.123 4242    curl            127.0.0.1:43210*      127.0.0.1:80          "
	    "connect  ok 72.4us\n"
	    "06:45:12.123 4242    curl            127.0.0.1:43210*      127.0.0.1:80          "
	    "state    syn_sent -> established\n"
	    "06:45:12.123 77      server          127.0.0.1:43210       127.0.0.1:80*         "
	    "state    syn_recv -> established\n"
	    "06:45:27.500 77      server          127.0.0.1:43210       127.0.0.1:80*         "
	    "activity segs=1 bytes=10\n"
	    "06:45:27.500 4242    curl            127.0.0.1:43210*      127.0.0.1:80          "
	    "lease    suspect transport silent=15.0s ttl=30.0s\n"
	    "06:45:27.500 4242    curl            127.0.0.1:43210*      127.0.0.1:80          "
	    "lease    recovered transport silent=15.3s ttl=30.0s\n"
	    "06:45:27.500 77      server          127.0.0.1:43210       127.0.0.1:80*         "
	    "timeout  retransmit ETIMEDOUT\n"
	    "06:45:28.000 4242    curl            127.0.0.1:43210*      127.0.0.1:80          "
	    "lease    lost transport reason=reset\n"
	    "06:45:28.000 -       -               -                     -                     "
	    "lost     count=2 kind=state\n";
	struct sp_event evs[9], *e;
	char out[4096], *p = out;
	uint64_t last = 0;
	size_t col;

	(void)state;
	for (int i = 0; i < 9; i++) {
		evs[i] = conn_event(SP_ACT_STATE_CHANGE);
		set_v4(&evs[i].conn.src, 127, 0, 0, 1);
		set_v4(&evs[i].conn.dst, 127, 0, 0, 1);
	}
	e = &evs[0];
	e->action = SP_ACT_CONNECT;
	e->connect.success = true;
	e->has_duration = true;
	e->duration_ns = 72400;
	evs[1].state.old_state = SP_ST_SYN_SENT;
	evs[1].state.new_state = SP_ST_ESTABLISHED;
	for (int i = 2; i < 7; i += i == 3 ? 3 : 1) { /* 2, 3 and 6: the accepted end */
		evs[i].conn.direction = SP_DIR_INGRESS;
		evs[i].conn.pid = 77;
		strcpy(evs[i].conn.comm, "server");
	}
	evs[2].state.old_state = SP_ST_SYN_RECV;
	evs[2].state.new_state = SP_ST_ESTABLISHED;
	e = &evs[3];
	e->action = SP_ACT_ACTIVITY;
	e->real_ns = T0 + 15377000000ULL;
	e->activity.segments = 1;
	e->activity.payload_bytes = 10;
	e = &evs[4]; /* stamped at its deadline, decided after the activity line */
	e->action = SP_ACT_LEASE_SUSPECT;
	e->real_ns = T0 + 15000000000ULL;
	e->lease.silent_ms = 15000;
	e->lease.ttl_ms = 30000;
	e = &evs[5];
	*e = evs[4];
	e->action = SP_ACT_LEASE_RECOVERED;
	e->real_ns = T0 + 15300000000ULL;
	e->lease.silent_ms = 15300;
	e = &evs[6];
	e->action = SP_ACT_RETRANS_TIMEOUT;
	e->real_ns = T0 + 15377000000ULL;
	e->error = ETIMEDOUT;
	e = &evs[7];
	e->action = SP_ACT_LEASE_LOST;
	e->real_ns = T0 + 15877000000ULL;
	e->lease.reason = "reset";
	e = &evs[8];
	memset(e, 0, sizeof(*e));
	e->action = SP_ACT_EVENTS_LOST;
	e->real_ns = T0 + 15000000000ULL;
	e->lost.count = 2;
	e->lost.kind = "state";

	p += format_text_header(p, sizeof(out));
	for (int i = 0; i < 9; i++)
		p += format_text_ordered(p, sizeof(out) - (size_t)(p - out), &evs[i], &last);
	assert_string_equal(out, want);
	/* every EVENT text starts under the header's EVENT */
	col = (size_t)(strstr(want, "EVENT") - want);
	for (const char *l = strchr(want, '\n') + 1; *l; l = strchr(l, '\n') + 1) {
		assert_true(l[col - 1] == ' ' && l[col] != ' ');
		/* and what follows the label */
		assert_true(l[col + 8] == ' ' && l[col + 9] != ' ');
	}
}

static void test_text_durations(void **state)
{
	static const struct {
		uint64_t ns;
		const char *text;
	} cases[] = {
		{ 0, "0ns" },		 { 850, "850ns" },	    { 999, "999ns" },
		{ 1000, "1.0us" },	 { 12345, "12.3us" },	    { 999999, "999.9us" },
		{ 1000000, "1.0ms" },	 { 12399999, "12.3ms" },    { 1000000000, "1.0s" },
		{ 61500000000ULL, "61.5s" }, { UINT64_MAX, "18446744073.7s" },
	};
	struct sp_event ev = conn_event(SP_ACT_CONNECT);
	char buf[SP_LINE_MAX], want[64];
	size_t i;

	ev.connect.success = true;
	ev.has_duration = true;
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		ev.duration_ns = cases[i].ns;
		format_text(buf, sizeof(buf), &ev);
		snprintf(want, sizeof(want), "connect  ok %s\n", cases[i].text);
		assert_non_null(strstr(buf, want));
	}
}

static void test_text_truncation(void **state)
{
	struct sp_event ev = conn_event(SP_ACT_CONNECT);
	char full[SP_LINE_MAX], buf[SP_LINE_MAX];
	size_t n, cap;

	n = format_text(full, sizeof(full), &ev);
	assert_true(n > 0);
	for (cap = 0; cap <= n; cap++)
		assert_int_equal(format_text(buf, cap, &ev), 0);
	assert_int_equal(format_text(buf, n + 1, &ev), n);
	assert_int_equal(format_text_header(buf, 10), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_rfc3339),
		cmocka_unit_test(test_addr),
		cmocka_unit_test(test_escape),
		cmocka_unit_test(test_json_connect_refused),
		cmocka_unit_test(test_json_cgroup),
		cmocka_unit_test(test_json_ipv6_ingress),
		cmocka_unit_test(test_json_mapped),
		cmocka_unit_test(test_json_escaped_comm),
		cmocka_unit_test(test_json_listen_no_remote),
		cmocka_unit_test(test_json_state_carries_activity),
		cmocka_unit_test(test_json_lease_hold),
		cmocka_unit_test(test_json_numbers),
		cmocka_unit_test(test_json_engine_lines),
		cmocka_unit_test(test_json_every_action),
		cmocka_unit_test(test_json_errno_and_bounds),
		cmocka_unit_test(test_json_truncation),
		cmocka_unit_test(test_text_lines),
		cmocka_unit_test(test_text_golden),
		cmocka_unit_test(test_text_durations),
		cmocka_unit_test(test_text_truncation),
	};

	return cmocka_run_group_tests(tests, setup_utc, NULL);
}
