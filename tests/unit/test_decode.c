/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* Ring record decoding: every reject class, and the exact mapping of a valid record. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <sys/socket.h>
#include <cmocka.h>

#include "sockpulse.h"
#include "decode.h"
#include "format.h"
#include "replay.h"

static const uint8_t v4_local[4] = { 10, 0, 0, 1 };
static const uint8_t v4_remote[4] = { 10, 0, 0, 2 };

static struct sp_record base_v4(void)
{
	struct sp_record r;

	memset(&r, 0, sizeof(r));
	r.type = SP_REC_STATE;
	r.ts_ns = 5000;
	r.cookie = 0x1122334455667788ULL;
	r.family = AF_INET;
	memcpy(r.laddr, v4_local, 4);
	memcpy(r.raddr, v4_remote, 4);
	r.lport = 43210;
	r.rport = 80;
	r.old_state = 2; /* syn_sent */
	r.new_state = 1; /* established */
	r.direction = SP_DIR_EGRESS;
	r.netns = 4026531840u;
	return r;
}

static enum decode_result dec(const struct sp_record *r, struct sp_event *ev)
{
	return decode_record(r, sizeof(*r), 1000, ev);
}

static void test_rejects_size_and_type(void **state)
{
	struct sp_record r = base_v4();
	unsigned char big[sizeof(r) + 8];
	struct sp_event ev;
	__u32 t;

	assert_int_equal(decode_record(&r, 0, 0, &ev), DECODE_SHORT);
	assert_int_equal(decode_record(&r, 3, 0, &ev), DECODE_SHORT);
	assert_int_equal(decode_record(&r, 4, 0, &ev), DECODE_SHORT);
	assert_int_equal(decode_record(&r, sizeof(r) - 1, 0, &ev), DECODE_SHORT);

	memset(big, 0, sizeof(big));
	memcpy(big, &r, sizeof(r));
	assert_int_equal(decode_record(big, sizeof(big), 0, &ev), DECODE_SIZE);
	assert_int_equal(decode_record(big, sizeof(r) + 1, 0, &ev), DECODE_SIZE);

	r.type = SP_REC_NONE;
	assert_int_equal(dec(&r, &ev), DECODE_TYPE);
	r.type = SP_REC_TYPE_MAX;
	assert_int_equal(dec(&r, &ev), DECODE_TYPE);
	r.type = 0xffffffffu;
	assert_int_equal(dec(&r, &ev), DECODE_TYPE);
	/* a bare type word of an unknown kind is a type error, not a short record */
	t = 99;
	assert_int_equal(decode_record(&t, sizeof(t), 0, &ev), DECODE_TYPE);

	assert_string_equal(decode_result_name(DECODE_SHORT), "short");
	assert_string_equal(decode_result_name(DECODE_FIELD), "field");
	assert_null(decode_result_name(DECODE_RESULT_MAX));
}

static void test_rejects_fields(void **state)
{
	struct sp_record r;
	struct sp_event ev;

	r = base_v4();
	assert_int_equal(dec(&r, &ev), DECODE_OK);

	r = base_v4();
	r.family = 0;
	assert_int_equal(dec(&r, &ev), DECODE_FIELD);
	r.family = AF_UNIX;
	assert_int_equal(dec(&r, &ev), DECODE_FIELD);
	r.family = 0xffff;
	assert_int_equal(dec(&r, &ev), DECODE_FIELD);

	r = base_v4();
	r.new_state = SP_TCP_STATE_MAX;
	assert_int_equal(dec(&r, &ev), DECODE_FIELD);
	r = base_v4();
	r.old_state = 255;
	assert_int_equal(dec(&r, &ev), DECODE_FIELD);
	r = base_v4();
	r.new_state = 0; /* a state record needs both states */
	assert_int_equal(dec(&r, &ev), DECODE_FIELD);
	r = base_v4();
	r.old_state = 0;
	assert_int_equal(dec(&r, &ev), DECODE_FIELD);

	r = base_v4();
	r.direction = SP_DIR_MAX;
	assert_int_equal(dec(&r, &ev), DECODE_FIELD);

	r = base_v4();
	r.type = SP_REC_CONNECT;
	r.failure = SP_FAIL_MAX;
	assert_int_equal(dec(&r, &ev), DECODE_FIELD);

	r = base_v4();
	r.type = SP_REC_RESET;
	r.reset_dir = SP_RST_NONE;
	assert_int_equal(dec(&r, &ev), DECODE_FIELD);
	r.reset_dir = SP_RST_MAX;
	assert_int_equal(dec(&r, &ev), DECODE_FIELD);
	r.reset_dir = SP_RST_SENT;
	assert_int_equal(dec(&r, &ev), DECODE_OK);
	r.flags = SP_F_OLD_STATE;
	r.old_state = 0;
	assert_int_equal(dec(&r, &ev), DECODE_FIELD);
}

static void test_state_egress_v4(void **state)
{
	struct sp_record r = base_v4();
	struct sp_event ev;

	r.flags = SP_F_DURATION | SP_F_OWNER;
	r.duration_ns = 12300000;
	r.pid = 4242;
	memcpy(r.comm, "curl", 5);
	assert_int_equal(decode_record(&r, sizeof(r), 1000000, &ev), DECODE_OK);

	assert_int_equal(ev.action, SP_ACT_STATE_CHANGE);
	assert_int_equal(ev.mono_ns, 5000);
	assert_int_equal(ev.real_ns, 1005000);
	assert_true(ev.has_conn);
	assert_true(ev.has_duration);
	assert_int_equal(ev.duration_ns, 12300000);
	assert_int_equal(ev.state.old_state, 2);
	assert_int_equal(ev.state.new_state, 1);
	assert_false(ev.state.time_wait);
	assert_int_equal(ev.state.segments, 0);
	assert_int_equal(ev.error, 0);

	assert_int_equal(ev.conn.direction, SP_DIR_EGRESS);
	assert_int_equal(ev.conn.src.family, AF_INET);
	assert_memory_equal(ev.conn.src.bytes, v4_local, 4);
	assert_int_equal(ev.conn.sport, 43210);
	assert_int_equal(ev.conn.dst.family, AF_INET);
	assert_memory_equal(ev.conn.dst.bytes, v4_remote, 4);
	assert_int_equal(ev.conn.dport, 80);
	assert_true(ev.conn.has_pid);
	assert_int_equal(ev.conn.pid, 4242);
	assert_string_equal(ev.conn.comm, "curl");
	assert_true(ev.conn.cookie == 0x1122334455667788ULL);
	assert_int_equal(ev.conn.netns, 4026531840u);
}

static void test_ingress_swaps(void **state)
{
	struct sp_record r = base_v4();
	struct sp_event ev;

	r.direction = SP_DIR_INGRESS;
	r.lport = 8080;
	r.rport = 51000;
	assert_int_equal(dec(&r, &ev), DECODE_OK);
	/* we accepted it: the remote peer opened it and is the source */
	assert_memory_equal(ev.conn.src.bytes, v4_remote, 4);
	assert_int_equal(ev.conn.sport, 51000);
	assert_memory_equal(ev.conn.dst.bytes, v4_local, 4);
	assert_int_equal(ev.conn.dport, 8080);
	assert_int_equal(ev.conn.direction, SP_DIR_INGRESS);
	assert_false(ev.conn.has_pid); /* no SP_F_OWNER */
	assert_string_equal(ev.conn.comm, "");

	r.direction = SP_DIR_UNKNOWN;
	assert_int_equal(dec(&r, &ev), DECODE_OK);
	assert_memory_equal(ev.conn.src.bytes, v4_local, 4);
	assert_int_equal(ev.conn.sport, 8080);
}

static void test_listen_has_no_remote(void **state)
{
	struct sp_record r = base_v4();
	struct sp_event ev;

	r.old_state = 7;  /* close */
	r.new_state = 10; /* listen */
	r.direction = SP_DIR_UNKNOWN;
	memset(r.laddr, 0, sizeof(r.laddr)); /* 0.0.0.0:8080 */
	memset(r.raddr, 0, sizeof(r.raddr));
	r.lport = 8080;
	r.rport = 0;
	assert_int_equal(dec(&r, &ev), DECODE_OK);
	assert_int_equal(ev.conn.src.family, AF_INET); /* wildcard, but a real port */
	assert_int_equal(ev.conn.sport, 8080);
	assert_int_equal(ev.conn.dst.family, 0);
}

static void test_ipv6_and_mapped(void **state)
{
	static const uint8_t l6[16] = { 0xfd, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1 };
	static const uint8_t r_mapped[16] = { 0, 0, 0, 0, 0, 0, 0, 0,
					      0, 0, 0xff, 0xff, 192, 0, 2, 7 };
	struct sp_record r = base_v4();
	struct sp_event ev;

	r.family = AF_INET6;
	memcpy(r.laddr, l6, 16);
	memcpy(r.raddr, r_mapped, 16);
	assert_int_equal(dec(&r, &ev), DECODE_OK);
	assert_int_equal(ev.conn.src.family, AF_INET6);
	assert_memory_equal(ev.conn.src.bytes, l6, 16);
	assert_int_equal(ev.conn.dst.family, AF_INET);
	assert_memory_equal(ev.conn.dst.bytes, r_mapped + 12, 4);
	assert_int_equal(ev.conn.dst.bytes[4], 0);

	/* :: with port 0 is absent */
	memset(r.raddr, 0, 16);
	r.rport = 0;
	assert_int_equal(dec(&r, &ev), DECODE_OK);
	assert_int_equal(ev.conn.dst.family, 0);
}

static void test_kinds(void **state)
{
	struct sp_record r = base_v4();
	struct sp_event ev;

	r.type = SP_REC_CONNECT;
	r.old_state = r.new_state = 0;
	r.failure = SP_FAIL_REFUSED;
	r.error = ECONNREFUSED;
	assert_int_equal(dec(&r, &ev), DECODE_OK);
	assert_int_equal(ev.action, SP_ACT_CONNECT);
	assert_false(ev.connect.success);
	assert_int_equal(ev.connect.failure, SP_FAIL_REFUSED);
	assert_int_equal(ev.error, ECONNREFUSED);
	assert_false(ev.has_duration);

	r.failure = SP_FAIL_NONE;
	r.error = 0;
	assert_int_equal(dec(&r, &ev), DECODE_OK);
	assert_true(ev.connect.success);

	r.error = -ECONNRESET; /* kernel-style negative: normalized */
	assert_int_equal(dec(&r, &ev), DECODE_OK);
	assert_int_equal(ev.error, ECONNRESET);
	r.error = (__s32)0x80000000;
	assert_int_equal(dec(&r, &ev), DECODE_FIELD);
	r.error = 0;

	r.type = SP_REC_KEEPALIVE_TIMEOUT;
	r.probes = 2;
	assert_int_equal(dec(&r, &ev), DECODE_OK);
	assert_int_equal(ev.action, SP_ACT_KEEPALIVE_TIMEOUT);
	assert_int_equal(ev.keepalive.probes, 2);
	assert_int_equal(ev.error, ETIMEDOUT); /* implied by the kind */

	r.type = SP_REC_RETRANS_TIMEOUT;
	assert_int_equal(dec(&r, &ev), DECODE_OK);
	assert_int_equal(ev.action, SP_ACT_RETRANS_TIMEOUT);
	assert_int_equal(ev.error, ETIMEDOUT);

	r.type = SP_REC_RESET;
	r.reset_dir = SP_RST_RECEIVED;
	r.old_state = 1;
	assert_int_equal(dec(&r, &ev), DECODE_OK);
	assert_int_equal(ev.action, SP_ACT_RESET);
	assert_int_equal(ev.reset.direction, SP_RST_RECEIVED);
	assert_false(ev.reset.has_old_state); /* no SP_F_OLD_STATE */
	r.flags = SP_F_OLD_STATE;
	assert_int_equal(dec(&r, &ev), DECODE_OK);
	assert_true(ev.reset.has_old_state);
	assert_int_equal(ev.reset.old_state, 1);

	r = base_v4();
	r.type = SP_REC_ACTIVITY;
	r.segments = 3;
	r.payload_bytes = 120;
	assert_int_equal(dec(&r, &ev), DECODE_OK);
	assert_int_equal(ev.action, SP_ACT_ACTIVITY);
	assert_int_equal(ev.activity.segments, 3);
	assert_int_equal(ev.activity.payload_bytes, 120);

	r = base_v4();
	r.old_state = 5; /* fin_wait2 */
	r.new_state = 7; /* close */
	r.flags = SP_F_TIME_WAIT;
	assert_int_equal(dec(&r, &ev), DECODE_OK);
	assert_true(ev.state.time_wait);

	r = base_v4();
	r.old_state = 1; /* established */
	r.new_state = 8; /* close_wait */
	r.segments = 2;
	r.payload_bytes = 77;
	assert_int_equal(dec(&r, &ev), DECODE_OK);
	assert_int_equal(ev.state.segments, 2);
	assert_int_equal(ev.state.payload_bytes, 77);
}

static void test_comm_and_alignment(void **state)
{
	struct sp_record r = base_v4();
	unsigned char raw[sizeof(r) + 1];
	struct sp_event ev;

	r.flags = SP_F_OWNER;
	memset(r.comm, 'A', sizeof(r.comm)); /* not NUL-terminated */
	r.comm[0] = '"';
	r.comm[1] = '\x01';
	/* decode from an odd address: the decoder must not assume alignment */
	memcpy(raw + 1, &r, sizeof(r));
	assert_int_equal(decode_record(raw + 1, sizeof(r), 0, &ev), DECODE_OK);
	assert_int_equal(strlen(ev.conn.comm), SP_COMM_MAX - 1);
	assert_int_equal(ev.conn.comm[0], '"');
	assert_int_equal(ev.conn.comm[1], '\x01');
	assert_int_equal(ev.conn.comm[14], 'A');
}

static void test_real_clock_offset(void **state)
{
	struct sp_record r = base_v4();
	struct sp_event ev;

	r.ts_ns = 1000;
	assert_int_equal(decode_record(&r, sizeof(r), -5000, &ev), DECODE_OK);
	assert_int_equal(ev.real_ns, 0); /* clamped, not wrapped */
	assert_int_equal(decode_record(&r, sizeof(r), -1000, &ev), DECODE_OK);
	assert_int_equal(ev.real_ns, 0);
	assert_int_equal(decode_record(&r, sizeof(r), -999, &ev), DECODE_OK);
	assert_int_equal(ev.real_ns, 1);
	r.ts_ns = 3000000000ULL;
	assert_int_equal(decode_record(&r, sizeof(r), 1700000000000000000LL, &ev), DECODE_OK);
	assert_true(ev.real_ns == 1700000003000000000ULL);
}

/*
 * fuzz_decode found a record with error 117440512 accepted and written as error.code
 * "117440512", which replay reads back as no error: errnos stop at the kernel's MAX_ERRNO.
 */
static void test_errno_range(void **state)
{
	static const __s32 bad[] = { 4096, -4096, 117440512, 0x7fffffff, (__s32)0x80000000 };
	struct sp_record r = base_v4();
	struct sp_event ev, back;
	char line[SP_LINE_MAX];
	size_t n;

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		r.error = bad[i];
		assert_int_equal(dec(&r, &ev), DECODE_FIELD);
	}
	r.error = -4095;
	assert_int_equal(dec(&r, &ev), DECODE_OK);
	assert_int_equal(ev.error, 4095);
	r.error = 4095;
	assert_int_equal(dec(&r, &ev), DECODE_OK);
	n = format_json(line, sizeof(line), &ev, 1, NULL);
	assert_true(n > 0);
	assert_int_equal(replay_parse_line(line, n - 1, &back), 0);
	assert_int_equal(back.error, 4095);
}

/*
 * fuzz_decode found records with a cookie, a duration or a byte count of 2^64 - 1 accepted and
 * written as that number, which replay refuses (json-c reads every larger number as it too).
 * One below reads back exactly.
 */
static void test_u64_range(void **state)
{
	struct sp_record r = base_v4();
	struct sp_event ev, back;
	char line[SP_LINE_MAX];
	size_t n;

	r.cookie = UINT64_MAX;
	assert_int_equal(dec(&r, &ev), DECODE_FIELD);
	r = base_v4();
	r.payload_bytes = UINT64_MAX;
	assert_int_equal(dec(&r, &ev), DECODE_FIELD);
	r.type = SP_REC_ACTIVITY;
	r.old_state = r.new_state = 0;
	assert_int_equal(dec(&r, &ev), DECODE_FIELD);
	r = base_v4();
	r.duration_ns = UINT64_MAX;
	assert_int_equal(dec(&r, &ev), DECODE_OK); /* no duration flag: the field is not read */
	r.flags |= SP_F_DURATION;
	assert_int_equal(dec(&r, &ev), DECODE_FIELD);

	r.cookie = UINT64_MAX - 1;
	r.duration_ns = UINT64_MAX - 1;
	r.payload_bytes = UINT64_MAX - 1;
	r.segments = 1;
	assert_int_equal(dec(&r, &ev), DECODE_OK);
	n = format_json(line, sizeof(line), &ev, 1, NULL);
	assert_true(n > 0);
	assert_int_equal(replay_parse_line(line, n - 1, &back), 0);
	assert_true(back.conn.cookie == UINT64_MAX - 1);
	assert_true(back.has_duration && back.duration_ns == UINT64_MAX - 1);
	assert_true(back.state.payload_bytes == UINT64_MAX - 1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_rejects_size_and_type),
		cmocka_unit_test(test_rejects_fields),
		cmocka_unit_test(test_state_egress_v4),
		cmocka_unit_test(test_ingress_swaps),
		cmocka_unit_test(test_listen_has_no_remote),
		cmocka_unit_test(test_ipv6_and_mapped),
		cmocka_unit_test(test_kinds),
		cmocka_unit_test(test_errno_range),
		cmocka_unit_test(test_u64_range),
		cmocka_unit_test(test_comm_and_alignment),
		cmocka_unit_test(test_real_clock_offset),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
