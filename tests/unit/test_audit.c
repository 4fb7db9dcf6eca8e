/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* Keepalive audit: detection arithmetic, decoding walk records, the rollup and the report. */
#include <arpa/inet.h>
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <json-c/json.h>

#include "audit.h"
#include "format.h"
#include "netns.h"

#define HZ 250

static void test_idle_detection(void **st)
{
	struct ka_settings k = {
	    .enabled = true, .idle_ms = 7200000, .intvl_ms = 75000, .probes = 9, .retries2 = 15};

	(void)st;
	/* the kernel's defaults: 2 h idle, then 9 probes 75 s apart */
	assert_int_equal(ka_idle_detect_ms(&k), 7875000);
	/* the scenario of DESIGN.md: idle 1, interval 1, 2 probes: dead after 3 s */
	k.idle_ms = 1000, k.intvl_ms = 1000, k.probes = 2;
	assert_int_equal(ka_idle_detect_ms(&k), 3000);
	/* TCP_USER_TIMEOUT replaces the probe count: first check at or past it, a probe out */
	k.idle_ms = 7000, k.intvl_ms = 3000, k.probes = 4, k.user_timeout_ms = 5000;
	assert_int_equal(ka_idle_detect_ms(&k), 10000);
	k.user_timeout_ms = 14000; /* checks at 7, 10, 13, 16 s */
	assert_int_equal(ka_idle_detect_ms(&k), 16000);
	k.user_timeout_ms = 13000;
	assert_int_equal(ka_idle_detect_ms(&k), 13000);
	k.enabled = false;
	assert_true(ka_idle_detect_ms(&k) == KA_NEVER);
}

static void test_busy_detection(void **st)
{
	struct ka_settings k = {.retries2 = 15};

	(void)st;
	assert_int_equal(ka_busy_detect_ms(&k), 924600); /* tcp(7): about 15 minutes */
	k.retries2 = 3;
	assert_int_equal(ka_busy_detect_ms(&k), 3000); /* 0.2 + 0.4 + 0.8 + 1.6 */
	k.retries2 = 9;
	assert_int_equal(ka_busy_detect_ms(&k), 204600);
	k.retries2 = 10;
	assert_int_equal(ka_busy_detect_ms(&k), 324600);
	k.user_timeout_ms = 30000;
	assert_int_equal(ka_busy_detect_ms(&k), 30000);
}

static void test_suggest(void **st)
{
	struct ka_settings k;

	(void)st;
	ka_suggest(30000, &k);
	assert_true(k.enabled);
	assert_int_equal(k.idle_ms, 15000);
	assert_int_equal(k.intvl_ms, 5000);
	assert_int_equal(k.probes, 3);
	assert_int_equal(k.user_timeout_ms, 30000);
	assert_true(ka_idle_detect_ms(&(struct ka_settings){.enabled = true,
							    .idle_ms = k.idle_ms,
							    .intvl_ms = k.intvl_ms,
							    .probes = k.probes}) <= 30000);
	ka_suggest(1000, &k); /* raised to 4 s */
	assert_int_equal(k.idle_ms, 2000);
	assert_int_equal(k.intvl_ms, 1000);
	for (uint64_t t = 4000; t < 400000; t += 7000) {
		ka_suggest(t, &k);
		assert_true(k.idle_ms + k.probes * k.intvl_ms <= t);
	}
}

static void test_fmt(void **st)
{
	char b[32];

	(void)st;
	audit_fmt_ms(b, sizeof(b), KA_NEVER);
	assert_string_equal(b, "never");
	audit_fmt_ms(b, sizeof(b), 250);
	assert_string_equal(b, "250ms");
	audit_fmt_ms(b, sizeof(b), 30000);
	assert_string_equal(b, "30s");
	audit_fmt_ms(b, sizeof(b), 924600);
	assert_string_equal(b, "15m24.6s");
	audit_fmt_ms(b, sizeof(b), 7200000);
	assert_string_equal(b, "2h");
	audit_fmt_ms(b, sizeof(b), 7875000);
	assert_string_equal(b, "2h11m15s");
	assert_int_equal(audit_fmt_ms(b, 3, 7875000), 0);
}

static struct sp_sockinfo rec(uint8_t state, uint16_t lport, uint16_t rport, uint16_t flags)
{
	struct sp_sockinfo si = {0};

	si.family = AF_INET;
	si.state = state;
	si.lport = lport;
	si.rport = rport;
	si.flags = flags;
	si.netns = 4026531999u;
	si.cookie = 1000 + lport;
	si.inode = 5000 + lport;
	inet_pton(AF_INET, "10.0.0.1", si.laddr);
	inet_pton(AF_INET, "10.0.0.2", si.raddr);
	si.ka_time_j = 7200 * HZ;
	si.ka_intvl_j = 75 * HZ;
	si.ka_probes = 9;
	si.retries2 = 15;
	si.last_recv_j = 2 * HZ;
	return si;
}

static void test_decode_direction(void **st)
{
	struct audit_walk w;
	struct audit_sock s;
	struct sp_sockinfo l = rec(SP_ST_LISTEN, 8080, 0, SP_W_LISTENER);
	struct sp_sockinfo in = rec(SP_ST_ESTABLISHED, 8080, 41000, 0);
	struct sp_sockinfo out = rec(SP_ST_ESTABLISHED, 42000, 5432, SP_W_KEEPALIVE | SP_W_KA_TIME);
	struct sp_sockinfo tw = rec(SP_ST_TIME_WAIT, 43000, 443, SP_W_TIMEWAIT);
	char buf[64];

	(void)st;
	audit_walk_reset(&w, 0);
	assert_int_equal(audit_decode(&w, &l, sizeof(l), HZ, &s), 0);
	assert_int_equal(audit_decode(&w, &in, sizeof(in), HZ, &s), 0);
	assert_int_equal(s.conn.direction, SP_DIR_INGRESS);
	assert_int_equal(s.service_port, 8080);
	assert_int_equal(s.conn.dport, 8080);
	assert_int_equal(s.conn.sport, 41000);
	format_addr(buf, sizeof(buf), &s.conn.src);
	assert_string_equal(buf, "10.0.0.2"); /* the peer connected: it is the source */
	assert_false(s.ka.enabled);
	assert_int_equal(s.last_recv_ms, 2000);
	assert_int_equal(s.inode, 5000 + 8080);

	out.ka_time_j = 7 * HZ;
	out.cgroup_id = 4242; /* whose socket: the owner's cgroup */
	assert_int_equal(audit_decode(&w, &out, sizeof(out), HZ, &s), 0);
	assert_true(s.conn.cgroup_id == 4242);
	assert_int_equal(s.conn.direction, SP_DIR_EGRESS);
	assert_int_equal(s.service_port, 5432);
	assert_true(s.ka.enabled);
	assert_int_equal(s.ka.idle_ms, 7000);
	assert_int_equal(s.ka.intvl_ms, 75000);
	assert_int_equal(s.ka.probes, 9);
	assert_int_equal(s.ka.from_socket, SP_W_KA_TIME);

	tw.tw_expires_j = 30 * HZ;
	assert_int_equal(audit_decode(&w, &tw, sizeof(tw), HZ, &s), 0);
	assert_int_equal(s.tw_left_ms, 30000);

	/* the record's own HZ wins; none at all is an error */
	out.hz = 100;
	out.ka_time_j = 700;
	assert_int_equal(audit_decode(&w, &out, sizeof(out), HZ, &s), 0);
	assert_int_equal(s.ka.idle_ms, 7000);
	out.hz = 0;
	assert_int_equal(audit_decode(&w, &out, sizeof(out), 0, &s), -ENODATA);

	/* a new namespace forgets the listeners of the last one */
	in.netns = 1;
	assert_int_equal(audit_decode(&w, &in, sizeof(in), HZ, &s), 0);
	assert_int_equal(s.conn.direction, SP_DIR_EGRESS);
}

static void test_decode_rejects(void **st)
{
	struct audit_walk w;
	struct audit_sock s;
	struct sp_sockinfo si = rec(SP_ST_ESTABLISHED, 1, 2, 0);

	(void)st;
	audit_walk_reset(&w, 0);
	assert_int_equal(audit_decode(&w, &si, sizeof(si) - 1, HZ, &s), -EINVAL);
	si.family = 99;
	assert_int_equal(audit_decode(&w, &si, sizeof(si), HZ, &s), -EINVAL);
	si.family = AF_INET;
	si.state = SP_ST_MAX;
	assert_int_equal(audit_decode(&w, &si, sizeof(si), HZ, &s), -EINVAL);
	si.state = 0;
	assert_int_equal(audit_decode(&w, &si, sizeof(si), HZ, &s), -EINVAL);
}

static struct audit_sock conn(uint16_t port, uint32_t pid, bool ka, uint32_t idle_s)
{
	struct audit_sock s = {.state = SP_ST_ESTABLISHED, .service_port = port};

	s.conn.direction = SP_DIR_INGRESS;
	s.conn.has_pid = pid != 0;
	s.conn.pid = pid;
	snprintf(s.conn.comm, sizeof(s.conn.comm), "srv%u", pid);
	s.ka.enabled = ka;
	s.ka.idle_ms = idle_s * 1000;
	s.ka.intvl_ms = 1000;
	s.ka.probes = 3;
	s.ka.retries2 = 15;
	return s;
}

static void test_rollup(void **st)
{
	struct audit a;
	struct audit_sock s;
	FILE *f;
	char *text = NULL;
	size_t len = 0;

	(void)st;
	assert_int_equal(audit_init(&a, 2), 0);
	s = conn(8080, 10, true, 7);
	audit_add(&a, &s, 30000);
	s = conn(8080, 10, true, 20);
	audit_add(&a, &s, 30000);
	s = conn(8080, 10, false, 0);
	audit_add(&a, &s, 30000);
	s = conn(22, 11, true, 7);
	s.ka.user_timeout_ms = 20000;
	audit_add(&a, &s, 30000);
	s = conn(9999, 12, true, 7); /* a third row does not fit */
	audit_add(&a, &s, 30000);
	s = conn(8080, 10, true, 7);
	s.state = SP_ST_CLOSE_WAIT; /* not established: not audited */
	audit_add(&a, &s, 30000);
	audit_sort(&a);
	assert_int_equal(a.n, 2);
	assert_int_equal(a.connections, 5);
	assert_int_equal(a.overflow, 1);
	assert_int_equal(a.rows[0].service_port, 22);
	assert_int_equal(a.rows[1].service_port, 8080);
	assert_int_equal(a.rows[1].conns, 3);
	assert_int_equal(a.rows[1].without_keepalive, 1);
	assert_true(a.rows[1].worst_ms == KA_NEVER);
	assert_int_equal(a.rows[1].best_ms, 10000);
	/* the first probe at or past the user timeout */
	assert_int_equal(a.rows[0].worst_ms, 20000);

	f = open_memstream(&text, &len);
	audit_print_text(f, &a);
	fclose(f);
	assert_non_null(strstr(text, "srv10[10]"));
	/* 2 of 3 with keepalive: the mix, not "off"; detection of those, then never */
	assert_non_null(strstr(text, " 23s/never "));
	assert_non_null(strstr(text, " 2/3 on 20s/1s/3 sysctl "));
	assert_null(strstr(text, " off "));
	/* TCP_USER_TIMEOUT shows */
	assert_non_null(strstr(text, " 7s/1s/3 uto=20s sysctl "));
	assert_non_null(strstr(text, "TCP_KEEPIDLE=15"));
	assert_non_null(strstr(text, "not shown"));
	free(text);
	/* JSON: the mixed row also carries the slowest keepalive it has */
	{
		uint64_t seq = 0;

		text = NULL;
		f = open_memstream(&text, &len);
		audit_print_json(f, &a, 0, &seq);
		fclose(f);
		assert_non_null(
		    strstr(text, "\"keepalive_on\":{\"enabled\":true,\"idle_ms\":20000"));
		assert_non_null(strstr(text, "\"keepalive_on_detection_ms\":23000"));
		assert_non_null(strstr(text, "\"user_timeout_ms\":20000"));
		free(text);
	}
	audit_free(&a);
}

static void test_json(void **st)
{
	struct audit a;
	struct audit_sock s = conn(8080, 10, true, 100);
	struct json_object *o, *v;
	uint64_t seq = 0;
	FILE *f;
	char *text = NULL, *line;
	size_t len = 0;

	(void)st;
	assert_int_equal(audit_init(&a, 4), 0);
	audit_add(&a, &s, 30000);
	f = open_memstream(&text, &len);
	audit_print_sock_json(f, &s, 30000, 1764316800000000000ULL, &seq);
	audit_print_json(f, &a, 1764316800000000000ULL, &seq);
	fclose(f);
	line = strtok(text, "\n");
	o = json_tokener_parse(line);
	assert_non_null(o);
	assert_true(json_pointer_get(o, "/event/action", &v) == 0);
	assert_string_equal(json_object_get_string(v), "keepalive-audit-connection");
	assert_true(json_pointer_get(o, "/sockpulse/audit/idle_detection_ms", &v) == 0);
	assert_int_equal(json_object_get_int64(v), 103000);
	assert_true(json_pointer_get(o, "/sockpulse/audit/suggested/idle_ms", &v) == 0);
	assert_int_equal(json_object_get_int64(v), 15000);
	assert_true(json_pointer_get(o, "/sockpulse/keepalive/source", &v) == 0);
	assert_string_equal(json_object_get_string(v), "sysctl");
	assert_true(json_pointer_get(o, "/@timestamp", &v) == 0);
	assert_string_equal(json_object_get_string(v), "2025-11-28T08:00:00.000000000Z");
	json_object_put(o);
	line = strtok(NULL, "\n");
	o = json_tokener_parse(line);
	assert_non_null(o);
	assert_true(json_pointer_get(o, "/event/sequence", &v) == 0);
	assert_int_equal(json_object_get_int64(v), 2);
	assert_true(json_pointer_get(o, "/destination/port", &v) == 0);
	assert_int_equal(json_object_get_int64(v), 8080);
	assert_true(json_pointer_get(o, "/process/name", &v) == 0);
	assert_string_equal(json_object_get_string(v), "srv10");
	assert_true(json_pointer_get(o, "/sockpulse/audit/worst_detection_ms", &v) == 0);
	assert_int_equal(json_object_get_int64(v), 103000);
	json_object_put(o);
	free(text);
	audit_free(&a);
}

static void test_port_range_parse(void **st)
{
	uint16_t lo, hi;

	(void)st;
	assert_int_equal(netns_parse_port_range("32768\t60999\n", &lo, &hi), 0);
	assert_int_equal(lo, 32768);
	assert_int_equal(hi, 60999);
	assert_int_equal(netns_parse_port_range("40000 40000", &lo, &hi), 0);
	assert_int_equal(netns_parse_port_range("2 1", &lo, &hi), -EINVAL);
	assert_int_equal(netns_parse_port_range("0 10", &lo, &hi), -EINVAL);
	assert_int_equal(netns_parse_port_range("1 65536", &lo, &hi), -EINVAL);
	assert_int_equal(netns_parse_port_range("1", &lo, &hi), -EINVAL);
	assert_int_equal(netns_parse_port_range("1 2 3", &lo, &hi), -EINVAL);
	assert_int_equal(netns_parse_port_range(NULL, &lo, &hi), -EINVAL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_idle_detection),   cmocka_unit_test(test_busy_detection),
	    cmocka_unit_test(test_suggest),	     cmocka_unit_test(test_fmt),
	    cmocka_unit_test(test_decode_direction), cmocka_unit_test(test_decode_rejects),
	    cmocka_unit_test(test_rollup),	     cmocka_unit_test(test_json),
	    cmocka_unit_test(test_port_range_parse),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
