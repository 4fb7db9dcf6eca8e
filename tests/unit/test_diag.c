/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * sock_diag messages: a well-formed reply parses field by field, every malformed one (short,
 * wrong type, family, state, length beyond the buffer) is refused; the dump request is what the
 * kernel expects; the tally counts states, tells accepted from initiated connections by the
 * listeners, and ranks TIME_WAIT destinations with the rest under "other".
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <linux/inet_diag.h>
#include <linux/netlink.h>
#include <linux/sock_diag.h>
#include <cmocka.h>

#include "diag.h"

struct msg {
	struct nlmsghdr nlh;
	struct inet_diag_msg d;
	char attrs[32];
};

static void make_msg(struct msg *m, int family, int state, const char *src, uint16_t sport,
		     const char *dst, uint16_t dport, uint64_t cookie)
{
	memset(m, 0, sizeof(*m));
	m->nlh.nlmsg_len = NLMSG_LENGTH(sizeof(m->d));
	m->nlh.nlmsg_type = SOCK_DIAG_BY_FAMILY;
	m->d.idiag_family = family;
	m->d.idiag_state = state;
	m->d.id.idiag_sport = htons(sport);
	m->d.id.idiag_dport = htons(dport);
	assert_int_equal(inet_pton(family, src, m->d.id.idiag_src), 1);
	assert_int_equal(inet_pton(family, dst, m->d.id.idiag_dst), 1);
	m->d.id.idiag_cookie[0] = (uint32_t)cookie;
	m->d.id.idiag_cookie[1] = (uint32_t)(cookie >> 32);
	m->d.idiag_uid = 1000;
	m->d.idiag_inode = 4242;
	m->d.idiag_rqueue = 3;
	m->d.idiag_wqueue = 4;
}

static void test_parse_good(void **state)
{
	struct msg m;
	struct diag_sock s;
	uint8_t want[16] = {0};

	make_msg(&m, AF_INET, SP_ST_ESTABLISHED, "10.0.0.1", 40000, "10.0.0.2", 80, 0x100000002ULL);
	assert_int_equal(diag_parse(&m, sizeof(m), &s), 0);
	assert_int_equal(s.state, SP_ST_ESTABLISHED);
	assert_int_equal(s.local.family, AF_INET);
	want[0] = 10;
	want[3] = 1;
	assert_memory_equal(s.local.bytes, want, 16);
	want[3] = 2;
	assert_memory_equal(s.remote.bytes, want, 16);
	assert_int_equal(s.lport, 40000);
	assert_int_equal(s.rport, 80);
	assert_true(s.cookie == 0x100000002ULL);
	assert_int_equal(s.uid, 1000);
	assert_int_equal(s.inode, 4242);
	assert_int_equal(s.rqueue, 3);
	assert_int_equal(s.wqueue, 4);

	make_msg(&m, AF_INET6, SP_ST_TIME_WAIT, "fd00::1", 1, "fd00::2", 2, 7);
	m.nlh.nlmsg_len += 8; /* attributes after the message are fine */
	assert_int_equal(diag_parse(&m, sizeof(m), &s), 0);
	assert_int_equal(s.local.family, AF_INET6);
	assert_int_equal(s.local.bytes[15], 1);
	assert_int_equal(s.remote.bytes[15], 2);
	assert_int_equal(s.state, SP_ST_TIME_WAIT);

	/* no cookie (INET_DIAG_NOCOOKIE) reads as 0 */
	m.d.id.idiag_cookie[0] = m.d.id.idiag_cookie[1] = INET_DIAG_NOCOOKIE;
	assert_int_equal(diag_parse(&m, sizeof(m), &s), 0);
	assert_true(s.cookie == 0);
}

static void test_parse_bad(void **state)
{
	struct msg m;
	struct diag_sock s;

	make_msg(&m, AF_INET, 1, "1.1.1.1", 1, "2.2.2.2", 2, 1);
	assert_int_equal(diag_parse(&m, NLMSG_HDRLEN - 1, &s), -EINVAL);
	assert_int_equal(diag_parse(&m, m.nlh.nlmsg_len - 1, &s), -EINVAL); /* beyond buffer */
	m.nlh.nlmsg_len = NLMSG_LENGTH(sizeof(m.d)) - 1;		    /* truncated body */
	assert_int_equal(diag_parse(&m, sizeof(m), &s), -EINVAL);
	m.nlh.nlmsg_len = 3; /* shorter than a header */
	assert_int_equal(diag_parse(&m, sizeof(m), &s), -EINVAL);
	make_msg(&m, AF_INET, 1, "1.1.1.1", 1, "2.2.2.2", 2, 1);
	m.nlh.nlmsg_type = NLMSG_ERROR;
	assert_int_equal(diag_parse(&m, sizeof(m), &s), -EINVAL);
	make_msg(&m, AF_INET, 1, "1.1.1.1", 1, "2.2.2.2", 2, 1);
	m.d.idiag_family = AF_UNIX;
	assert_int_equal(diag_parse(&m, sizeof(m), &s), -EINVAL);
	make_msg(&m, AF_INET, 1, "1.1.1.1", 1, "2.2.2.2", 2, 1);
	m.d.idiag_state = 0;
	assert_int_equal(diag_parse(&m, sizeof(m), &s), -ERANGE);
	m.d.idiag_state = 13; /* TCP_BOUND_INACTIVE: not requested, refused */
	assert_int_equal(diag_parse(&m, sizeof(m), &s), -ERANGE);
	m.d.idiag_state = 255;
	assert_int_equal(diag_parse(&m, sizeof(m), &s), -ERANGE);
}

static void test_request(void **state)
{
	char buf[256];
	const struct nlmsghdr *nlh = (const void *)buf;
	const struct inet_diag_req_v2 *req = NLMSG_DATA(buf);
	size_t n = diag_build_request(buf, sizeof(buf), AF_INET6, 77);

	assert_int_equal(n, NLMSG_LENGTH(sizeof(*req)));
	assert_int_equal(nlh->nlmsg_len, n);
	assert_int_equal(nlh->nlmsg_type, SOCK_DIAG_BY_FAMILY);
	assert_int_equal(nlh->nlmsg_flags, NLM_F_REQUEST | NLM_F_DUMP);
	assert_int_equal(nlh->nlmsg_seq, 77);
	assert_int_equal(req->sdiag_family, AF_INET6);
	assert_int_equal(req->sdiag_protocol, IPPROTO_TCP);
	/* every state from ESTABLISHED (1) to NEW_SYN_RECV (12), not BOUND_INACTIVE (13) */
	assert_int_equal(req->idiag_states, 0x1ffe);
	assert_int_equal(diag_build_request(buf, 8, AF_INET, 1), 0);
}

static void add(struct diag_tally *t, int family, int state, const char *src, uint16_t sport,
		const char *dst, uint16_t dport)
{
	struct msg m;
	struct diag_sock s;

	make_msg(&m, family, state, src, sport, dst, dport, 1);
	assert_int_equal(diag_parse(&m, sizeof(m), &s), 0);
	diag_tally_add(t, &s);
}

static void test_tally(void **state)
{
	struct diag_tally t;
	struct metrics_dest top[3];
	struct diag_sock s;
	struct sp_conn c;
	struct msg m;
	uint64_t other;
	unsigned int n;

	assert_int_equal(diag_tally_init(&t), 0);
	diag_tally_reset(&t);
	add(&t, AF_INET, SP_ST_LISTEN, "0.0.0.0", 80, "0.0.0.0", 0);
	/* server side: accepted connections, TIME_WAIT counted for our own 10.0.0.1:80 */
	for (int i = 0; i < 5; i++)
		add(&t, AF_INET, SP_ST_TIME_WAIT, "10.0.0.1", 80, "10.0.0.9", 50000 + i);
	/* client side: TIME_WAIT counted for the remote service */
	for (int i = 0; i < 3; i++)
		add(&t, AF_INET, SP_ST_TIME_WAIT, "10.0.0.1", 40000 + i, "10.0.0.2", 443);
	add(&t, AF_INET6, SP_ST_TIME_WAIT, "fd00::1", 40100, "fd00::2", 8443);
	add(&t, AF_INET6, SP_ST_TIME_WAIT, "fd00::1", 40101, "fd00::3", 8443);
	add(&t, AF_INET, SP_ST_ESTABLISHED, "10.0.0.1", 80, "10.0.0.9", 51000);
	assert_int_equal(t.states[SP_ST_TIME_WAIT], 10);
	assert_int_equal(t.states[SP_ST_LISTEN], 1);
	assert_int_equal(t.states[SP_ST_ESTABLISHED], 1);
	assert_int_equal(t.sockets, 12);

	n = diag_tally_top(&t, top, 3, &other);
	assert_int_equal(n, 3);
	assert_string_equal(top[0].label, "10.0.0.1:80");
	assert_int_equal(top[0].value, 5);
	assert_string_equal(top[1].label, "10.0.0.2:443");
	assert_int_equal(top[1].value, 3);
	assert_int_equal(top[2].value, 1);
	assert_int_equal(other, 1);

	/* direction and connection facts of an established socket */
	make_msg(&m, AF_INET, SP_ST_ESTABLISHED, "10.0.0.1", 80, "10.0.0.9", 51000, 9);
	assert_int_equal(diag_parse(&m, sizeof(m), &s), 0);
	s.netns = 123;
	diag_to_conn(&t, &s, &c);
	assert_int_equal(c.direction, SP_DIR_INGRESS);
	assert_int_equal(c.sport, 51000); /* source: the side that opened it */
	assert_int_equal(c.dport, 80);
	assert_int_equal(c.src.bytes[3], 9);
	assert_true(c.cookie == 9);
	assert_int_equal(c.netns, 123);
	make_msg(&m, AF_INET, SP_ST_ESTABLISHED, "10.0.0.1", 40000, "10.0.0.2", 443, 9);
	assert_int_equal(diag_parse(&m, sizeof(m), &s), 0);
	diag_to_conn(&t, &s, &c);
	assert_int_equal(c.direction, SP_DIR_EGRESS);
	assert_int_equal(c.dport, 443);

	/* listeners are per namespace */
	diag_tally_next_netns(&t, 0, 0);
	assert_int_equal(diag_direction(&t, &s), SP_DIR_EGRESS);
	make_msg(&m, AF_INET, SP_ST_ESTABLISHED, "10.0.0.1", 80, "10.0.0.9", 51000, 9);
	assert_int_equal(diag_parse(&m, sizeof(m), &s), 0);
	assert_int_equal(diag_direction(&t, &s), SP_DIR_EGRESS);

	/* no listener (it closed), but only the peer's port is ephemeral: we were connected to */
	diag_tally_next_netns(&t, 32768, 60999);
	assert_int_equal(diag_direction(&t, &s), SP_DIR_INGRESS);
	make_msg(&m, AF_INET, SP_ST_TIME_WAIT, "10.0.0.1", 40000, "10.0.0.2", 443, 9);
	assert_int_equal(diag_parse(&m, sizeof(m), &s), 0);
	assert_int_equal(diag_direction(&t, &s), SP_DIR_EGRESS);
	make_msg(&m, AF_INET, SP_ST_TIME_WAIT, "10.0.0.1", 40000, "10.0.0.2", 41000, 9);
	assert_int_equal(diag_parse(&m, sizeof(m), &s), 0);
	assert_int_equal(diag_direction(&t, &s), SP_DIR_EGRESS);

	/* a new cycle starts from zero */
	diag_tally_reset(&t);
	assert_int_equal(t.sockets, 0);
	assert_int_equal(diag_tally_top(&t, top, 3, &other), 0);
	assert_int_equal(other, 0);
	diag_tally_free(&t);
}

/*
 * fuzz_metrics found one TIME_WAIT destination labelled twice, so one series twice in /metrics
 * (Prometheus drops such a scrape): an IPv4 socket and a dual-stack IPv6 socket with the
 * IPv4-mapped address of the same service. The mapped address is IPv4, as in events.
 */
static void test_tally_v4mapped(void **state)
{
	struct metrics_dest top[METRICS_TOP_N];
	struct diag_tally t;
	struct diag_sock s;
	struct msg m;
	uint64_t other;

	make_msg(&m, AF_INET6, SP_ST_ESTABLISHED, "::ffff:10.0.0.2", 40000, "::ffff:10.0.0.3", 443,
		 7);
	assert_int_equal(diag_parse(&m, sizeof(m), &s), 0);
	assert_int_equal(s.local.family, AF_INET);
	assert_int_equal(s.remote.family, AF_INET);
	assert_int_equal(s.remote.bytes[0], 10);
	assert_int_equal(s.remote.bytes[3], 3);
	assert_int_equal(s.remote.bytes[4], 0);

	assert_int_equal(diag_tally_init(&t), 0);
	add(&t, AF_INET, SP_ST_TIME_WAIT, "10.0.0.1", 40000, "10.0.0.2", 443);
	add(&t, AF_INET6, SP_ST_TIME_WAIT, "::ffff:10.0.0.1", 40001, "::ffff:10.0.0.2", 443);
	add(&t, AF_INET6, SP_ST_TIME_WAIT, "fd00::1", 40002, "fd00::2", 443);
	assert_int_equal(diag_tally_top(&t, top, METRICS_TOP_N, &other), 2);
	assert_string_equal(top[0].label, "10.0.0.2:443");
	assert_int_equal(top[0].value, 2);
	assert_string_equal(top[1].label, "[fd00::2]:443");
	assert_int_equal(other, 0);
	diag_tally_free(&t);
}

/* More distinct destinations than counted apart: the excess goes to "other", sums stay exact. */
static void test_tally_overflow(void **state)
{
	struct diag_tally t;
	struct metrics_dest top[METRICS_TOP_N];
	char ip[32];
	uint64_t other, sum = 0;
	unsigned int n, total = DIAG_DEST_MAX + 100;

	assert_int_equal(diag_tally_init(&t), 0);
	for (unsigned int i = 0; i < total; i++) {
		snprintf(ip, sizeof(ip), "10.%u.%u.%u", i >> 16, (i >> 8) & 255, i & 255);
		add(&t, AF_INET, SP_ST_TIME_WAIT, "192.168.0.1", 40000, ip, 80);
	}
	add(&t, AF_INET, SP_ST_TIME_WAIT, "192.168.0.1", 40001, "10.0.0.5", 80);
	assert_int_equal(t.dest_overflow, 100);
	n = diag_tally_top(&t, top, METRICS_TOP_N, &other);
	assert_int_equal(n, METRICS_TOP_N);
	assert_string_equal(top[0].label, "10.0.0.5:80");
	assert_int_equal(top[0].value, 2);
	for (unsigned int i = 0; i < n; i++)
		sum += top[i].value;
	assert_int_equal(sum + other, total + 1);
	diag_tally_free(&t);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_parse_good),	   cmocka_unit_test(test_parse_bad),
	    cmocka_unit_test(test_request),	   cmocka_unit_test(test_tally),
	    cmocka_unit_test(test_tally_v4mapped), cmocka_unit_test(test_tally_overflow),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
