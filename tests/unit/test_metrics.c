/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Metrics: counters from events, lease gauges from a lease table fed the same events, spike
 * gauges from the engine's lines, bounded destination labels, the exposition text (HELP/TYPE,
 * escaping, cumulative buckets) and the --metrics address parser.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "lease.h"
#include "metrics.h"
#include "prng.h"
#include "util.h"

#define SEC NSEC_PER_SEC
#define T0 (1000 * SEC)

static struct metrics m;

static int setup(void **state)
{
	return metrics_init(&m, "1.2.3", "1.1", "tracepoint");
}

static int teardown(void **state)
{
	metrics_free(&m);
	return 0;
}

static char *render(void)
{
	char *buf = NULL;
	long n = metrics_render(&m, &buf);

	assert_true(n > 0);
	assert_int_equal(strlen(buf), (size_t)n);
	return buf;
}

/* The value of the sample line starting with @series (name and labels exactly), or -1. */
static long long value_of(const char *text, const char *series)
{
	size_t n = strlen(series);
	const char *p = text;

	while ((p = strstr(p, series))) {
		if ((p == text || p[-1] == '\n') && p[n] == ' ')
			return strtoll(p + n + 1, NULL, 10);
		p += n;
	}
	return -1;
}

static struct sp_event conn_ev(enum sp_action a, uint64_t cookie)
{
	struct sp_event ev;

	memset(&ev, 0, sizeof(ev));
	ev.action = a;
	ev.has_conn = true;
	ev.conn.cookie = cookie;
	ev.conn.netns = 4026531840u;
	ev.conn.dst.family = AF_INET;
	ev.conn.dst.bytes[0] = 10;
	ev.conn.dst.bytes[3] = 2;
	ev.conn.dport = 80;
	return ev;
}

static void state_change(uint64_t cookie, uint8_t from, uint8_t to)
{
	struct sp_event ev = conn_ev(SP_ACT_STATE_CHANGE, cookie);

	ev.state.old_state = from;
	ev.state.new_state = to;
	metrics_on_event(&m, &ev);
}


static void test_counters(void **state)
{
	struct sp_event ev;
	char *t;

	state_change(1, SP_ST_CLOSE, SP_ST_SYN_SENT);
	state_change(1, SP_ST_SYN_SENT, SP_ST_ESTABLISHED);
	state_change(2, SP_ST_SYN_SENT, SP_ST_ESTABLISHED);
	state_change(99, 200, 1); /* out of range: ignored, no crash */
	ev = conn_ev(SP_ACT_CONNECT, 1);
	ev.connect.success = true;
	ev.has_duration = true;
	ev.duration_ns = 50000; /* 50 us */
	metrics_on_event(&m, &ev);
	ev.connect.success = false;
	ev.connect.failure = SP_FAIL_TIMEOUT;
	ev.duration_ns = 3100000000ULL; /* two SYN retransmissions */
	metrics_on_event(&m, &ev);
	ev.connect.failure = 77; /* out of range */
	ev.has_duration = false;
	metrics_on_event(&m, &ev);
	ev = conn_ev(SP_ACT_RESET, 0);
	ev.reset.direction = SP_RST_SENT;
	metrics_on_event(&m, &ev);
	ev = conn_ev(SP_ACT_KEEPALIVE_TIMEOUT, 1);
	metrics_on_event(&m, &ev);
	ev = conn_ev(SP_ACT_EVENTS_LOST, 0);
	ev.has_conn = false;
	ev.lost.count = 5;
	ev.lost.kind = "state";
	metrics_on_event(&m, &ev);
	ev.lost.kind = "bogus";
	metrics_on_event(&m, &ev);
	ev = conn_ev(SP_ACT_LEASE_HOLD, 0);
	metrics_on_event(&m, &ev);
	ev.action = SP_ACT_MAX; /* out of range: ignored */
	metrics_on_event(&m, &ev);

	t = render();
	assert_int_equal(
	    value_of(t,
		     "sockpulse_tcp_state_transitions_total{from=\"syn_sent\",to=\"established\"}"),
	    2);
	assert_int_equal(
	    value_of(t, "sockpulse_tcp_state_transitions_total{from=\"close\",to=\"syn_sent\"}"),
	    1);
	assert_int_equal(value_of(t, "sockpulse_tcp_connects_total{outcome=\"success\"}"), 1);
	assert_int_equal(value_of(t, "sockpulse_tcp_connects_total{outcome=\"failure\"}"), 2);
	assert_int_equal(value_of(t, "sockpulse_tcp_connect_failures_total{reason=\"timeout\"}"),
			 1);
	assert_int_equal(value_of(t, "sockpulse_tcp_connect_failures_total{reason=\"refused\"}"),
			 0);
	/* cumulative buckets: the 3.1 s failure is above 2.9 and within 3.5 */
	assert_int_equal(
	    value_of(
		t, "sockpulse_tcp_connect_duration_seconds_bucket{outcome=\"failure\",le=\"2.9\"}"),
	    0);
	assert_int_equal(
	    value_of(
		t, "sockpulse_tcp_connect_duration_seconds_bucket{outcome=\"failure\",le=\"3.5\"}"),
	    1);
	assert_int_equal(
	    value_of(
		t,
		"sockpulse_tcp_connect_duration_seconds_bucket{outcome=\"failure\",le=\"+Inf\"}"),
	    1);
	assert_int_equal(
	    value_of(
		t,
		"sockpulse_tcp_connect_duration_seconds_bucket{outcome=\"success\",le=\"0.001\"}"),
	    1);
	assert_int_equal(
	    value_of(t, "sockpulse_tcp_connect_duration_seconds_count{outcome=\"success\"}"), 1);
	assert_non_null(strstr(
	    t, "sockpulse_tcp_connect_duration_seconds_sum{outcome=\"failure\"} 3.100000000\n"));
	assert_int_equal(value_of(t, "sockpulse_tcp_resets_total{direction=\"sent\"}"), 1);
	assert_int_equal(value_of(t, "sockpulse_tcp_keepalive_timeouts_total"), 1);
	assert_int_equal(value_of(t, "sockpulse_events_lost_total{kind=\"state\"}"), 5);
	assert_int_equal(value_of(t, "sockpulse_events_lost_total{kind=\"other\"}"), 5);
	assert_int_equal(value_of(t, "sockpulse_events_total{kind=\"state\"}"), 4);
	assert_int_equal(value_of(t, "sockpulse_events_total{kind=\"connect\"}"), 3);
	assert_int_equal(value_of(t, "sockpulse_events_total{kind=\"events-lost\"}"), 2);
	assert_int_equal(value_of(t, "sockpulse_events_total{kind=\"lease\"}"), 1);
	assert_int_equal(value_of(t, "sockpulse_events_total{kind=\"other\"}"), -1);
	assert_non_null(strstr(t, "sockpulse_build_info{version=\"1.2.3\",libbpf_version=\"1.1\","
				  "connect_hook=\"tracepoint\"} 1\n"));
	assert_non_null(strstr(t, "# TYPE sockpulse_tcp_connect_duration_seconds histogram\n"));
	/* no sock_diag snapshot yet: no connection gauges rather than zeros that lie */
	assert_null(strstr(t, "sockpulse_tcp_connections{"));
	free(t);
}

#define V(series) value_of(t, series)

/* A lease table as the engine runs it: its lines go to the metrics, as the agent wires them. */
static struct lease_table *lt;

static void lease_line(void *ctx, const struct sp_event *ev)
{
	metrics_on_event(&m, ev);
}

static void new_lease_table(uint32_t max_leases)
{
	struct lease_config cfg;

	lease_config_default(&cfg);
	cfg.ttl_ns = 10 * SEC;
	cfg.phi_threshold = 0;
	cfg.max_leases = max_leases;
	lt = lease_new(&cfg, lease_line, NULL, T0);
	assert_non_null(lt);
}

/* An event to both, as the agent's runtime hands it to the engine and to the sinks. */
static void feed(struct sp_event *ev, uint64_t at)
{
	ev->mono_ns = at;
	lease_advance(lt, at);
	metrics_on_event(&m, ev);
	lease_feed(lt, ev);
}

static void feed_state(uint64_t cookie, uint8_t from, uint8_t to, uint64_t at)
{
	struct sp_event ev = conn_ev(SP_ACT_STATE_CHANGE, cookie);

	ev.state.old_state = from;
	ev.state.new_state = to;
	feed(&ev, at);
}

static void feed_activity(uint64_t cookie, uint32_t bytes, uint64_t at)
{
	struct sp_event ev = conn_ev(SP_ACT_ACTIVITY, cookie);

	ev.activity.segments = 1;
	ev.activity.payload_bytes = bytes;
	feed(&ev, at);
}

static char *render_leases(uint64_t at)
{
	lease_advance(lt, at);
	metrics_set_leases(&m, lt);
	return render();
}

static void test_lease_gauges(void **state)
{
	struct sp_conn seed = conn_ev(SP_ACT_STATE_CHANGE, 12).conn;
	struct sp_event rst = conn_ev(SP_ACT_RESET, 12);
	char *t;

	new_lease_table(100);
	feed_state(10, SP_ST_SYN_SENT, SP_ST_ESTABLISHED, T0);
	feed_state(11, SP_ST_SYN_RECV, SP_ST_ESTABLISHED, T0);
	assert_true(lease_seed(lt, &seed, T0));
	assert_false(lease_seed(lt, &seed, T0)); /* twice: still one */
	t = render_leases(T0);
	assert_int_equal(V("sockpulse_leases{kind=\"transport\",state=\"alive\"}"), 3);
	assert_int_equal(V("sockpulse_leases{kind=\"payload\",state=\"alive\"}"), 0);
	free(t);
	/* inbound data arms the payload lease; segments without data do not; activity of a
	 * connection the table did not know (older than the agent) gives it a lease */
	feed_activity(10, 0, T0);
	feed_activity(12, 0, T0);
	feed_activity(12, 100, T0);
	feed_activity(99, 100, T0);
	t = render_leases(T0);
	assert_int_equal(V("sockpulse_leases{kind=\"transport\",state=\"alive\"}"), 4);
	assert_int_equal(V("sockpulse_leases{kind=\"payload\",state=\"alive\"}"), 2);
	free(t);
	/* silent past TTL/2 (+ the coalescing interval): suspect; 11 is heard again: recovered */
	t = render_leases(T0 + 7 * SEC);
	assert_int_equal(V("sockpulse_leases{kind=\"transport\",state=\"suspect\"}"), 4);
	assert_int_equal(V("sockpulse_leases{kind=\"payload\",state=\"suspect\"}"), 2);
	free(t);
	feed_activity(11, 0, T0 + 7 * SEC);
	/* silent past the TTL: expired */
	t = render_leases(T0 + 12 * SEC);
	assert_int_equal(value_of(t, "sockpulse_leases{kind=\"transport\",state=\"alive\"}"), 1);
	assert_int_equal(value_of(t, "sockpulse_leases{kind=\"transport\",state=\"suspect\"}"), 0);
	assert_int_equal(value_of(t, "sockpulse_leases{kind=\"transport\",state=\"expired\"}"), 3);
	assert_int_equal(value_of(t, "sockpulse_leases{kind=\"payload\",state=\"expired\"}"), 2);
	assert_int_equal(value_of(t, "sockpulse_lease_expirations_total{kind=\"transport\"}"), 3);
	assert_int_equal(value_of(t, "sockpulse_lease_expirations_total{kind=\"payload\"}"), 2);
	free(t);

	/* endings: an orderly close at once, an abort after its grace, a reset at once */
	feed_state(10, SP_ST_ESTABLISHED, SP_ST_FIN_WAIT1, T0 + 13 * SEC);
	feed_state(11, SP_ST_ESTABLISHED, SP_ST_CLOSE, T0 + 13 * SEC);
	feed(&rst, T0 + 13 * SEC);
	/* and one that two socket-table walks no longer found: unobserved */
	for (int walk = 0; walk < 2; walk++) {
		uint32_t netns = 4026531840u;

		lease_advance(lt, T0 + (13 + walk) * SEC);
		assert_int_equal(lease_resync_end(lt, &netns, 1, T0 + (13 + walk) * SEC,
						  T0 + (13 + walk) * SEC), walk);
	}
	t = render_leases(T0 + 15 * SEC);
	assert_int_equal(V("sockpulse_lease_unobserved_total"), 1);
	for (int k = 0; k < 2; k++)
		for (int s = 0; s < 3; s++) {
			char series[128];
			static const char *const kinds[] = {"transport", "payload"};
			static const char *const states[] = {"alive", "suspect", "expired"};

			snprintf(series, sizeof(series),
				 "sockpulse_leases{kind=\"%s\",state=\"%s\"}", kinds[k], states[s]);
			assert_int_equal(value_of(t, series), 0);
		}
	assert_int_equal(V("sockpulse_lease_table_overflows_total"), 0);
	free(t);
	lease_free(lt);
}

/* A full lease table evicts: each eviction is a connection the gauges no longer count. */
static void test_lease_overflows(void **state)
{
	char *t;

	new_lease_table(2);
	for (uint64_t c = 1; c <= 5; c++)
		feed_state(c, SP_ST_SYN_SENT, SP_ST_ESTABLISHED, T0 + c);
	t = render_leases(T0 + 10);
	assert_int_equal(V("sockpulse_leases{kind=\"transport\",state=\"alive\"}"), 2);
	assert_int_equal(V("sockpulse_lease_table_overflows_total"), 3);
	free(t);
	lease_free(lt);
}

static void spike(const char *ip, uint16_t port, bool start, uint64_t t)
{
	struct sp_event ev;

	memset(&ev, 0, sizeof(ev));
	ev.action = SP_ACT_SPIKE;
	ev.mono_ns = t;
	ev.spike.start = start;
	if (ip) {
		ev.has_conn = true;
		ev.conn.dst.family = strchr(ip, ':') ? AF_INET6 : AF_INET;
		assert_int_equal(inet_pton(ev.conn.dst.family, ip, ev.conn.dst.bytes), 1);
		ev.conn.dport = port;
	} else {
		ev.spike.host_wide = true;
	}
	metrics_on_event(&m, &ev);
}

static void test_spikes(void **state)
{
	char *t, ip[32];

	spike("10.0.0.2", 80, true, 1);
	spike("fd00::2", 443, true, 2);
	spike(NULL, 0, true, 3);
	spike("fd00::2", 443, false, 4);
	t = render();
	assert_int_equal(
	    value_of(t, "sockpulse_connect_failure_spike_active{destination=\"10.0.0.2:80\"}"), 1);
	assert_int_equal(
	    value_of(t, "sockpulse_connect_failure_spike_active{destination=\"[fd00::2]:443\"}"),
	    0);
	assert_int_equal(
	    value_of(t, "sockpulse_connect_failure_spike_active{destination=\"host\"}"), 1);
	assert_int_equal(
	    value_of(t, "sockpulse_connect_failure_spike_active{destination=\"other\"}"), 0);
	assert_int_equal(value_of(t, "sockpulse_connect_failure_spikes_total"), 3);
	free(t);

	/* many destinations: at most METRICS_TOP_N labels plus "other", active ones first */
	for (int i = 0; i < 40; i++) {
		snprintf(ip, sizeof(ip), "10.9.0.%d", i + 1);
		spike(ip, 8080, true, 10 + i);
	}
	t = render();
	{
		int labels = 0;
		const char *p = t;

		while ((p = strstr(p, "sockpulse_connect_failure_spike_active{"))) {
			labels++;
			p++;
		}
		assert_int_equal(labels, METRICS_TOP_N + 1);
	}
	assert_int_equal(
	    value_of(t, "sockpulse_connect_failure_spike_active{destination=\"other\"}"), 1);
	assert_int_equal(
	    value_of(t, "sockpulse_connect_failure_spike_active{destination=\"[fd00::2]:443\"}"),
	    -1);
	free(t);
	for (int i = 0; i < 40; i++) {
		snprintf(ip, sizeof(ip), "10.9.0.%d", i + 1);
		spike(ip, 8080, false, 100 + i);
	}
	spike("10.0.0.2", 80, false, 200);
	spike(NULL, 0, false, 201);
	t = render();
	assert_int_equal(
	    value_of(t, "sockpulse_connect_failure_spike_active{destination=\"other\"}"), 0);
	assert_null(strstr(t, "_spike_active{destination=\"10.9.0.1:8080\"} 1"));
	assert_int_equal(value_of(t, "sockpulse_connect_failure_spikes_total"), 43);
	free(t);

	/* more destinations than the table holds, all active at once: counted, never lost */
	for (int i = 0; i < METRICS_SPIKES_MAX + 5; i++) {
		snprintf(ip, sizeof(ip), "10.8.%d.%d", i / 250, i % 250 + 1);
		spike(ip, 1, true, 1000 + i);
	}
	assert_int_equal(m.spikes_untracked_active, 5);
	t = render();
	assert_int_equal(
	    value_of(t, "sockpulse_connect_failure_spike_active{destination=\"other\"}"), 1);
	free(t);
}

static void test_diag_gauges_and_escaping(void **state)
{
	uint64_t states[SP_ST_MAX] = {0};
	struct metrics_dest top[2];
	char *t;

	states[SP_ST_ESTABLISHED] = 7;
	states[SP_ST_TIME_WAIT] = 30;
	snprintf(top[0].label, sizeof(top[0].label), "10.0.0.2:80");
	top[0].value = 20;
	snprintf(top[1].label, sizeof(top[1].label), "a\"b\\c\nd");
	top[1].value = 4;
	metrics_set_diag(&m, states, 30, top, 2, 6);
	snprintf(m.version, sizeof(m.version), "x\"y");
	t = render();
	assert_int_equal(value_of(t, "sockpulse_tcp_connections{state=\"established\"}"), 7);
	assert_int_equal(value_of(t, "sockpulse_tcp_connections{state=\"listen\"}"), 0);
	assert_int_equal(value_of(t, "sockpulse_tcp_time_wait_sockets"), 30);
	assert_int_equal(
	    value_of(t,
		     "sockpulse_tcp_time_wait_sockets_by_destination{destination=\"10.0.0.2:80\"}"),
	    20);
	assert_int_equal(
	    value_of(
		t,
		"sockpulse_tcp_time_wait_sockets_by_destination{destination=\"a\\\"b\\\\c\\nd\"}"),
	    4);
	assert_int_equal(
	    value_of(t, "sockpulse_tcp_time_wait_sockets_by_destination{destination=\"other\"}"),
	    6);
	assert_non_null(strstr(t, "version=\"x\\\"y\""));
	/* every line is a comment or a sample; the text ends with a newline */
	assert_int_equal(t[strlen(t) - 1], '\n');
	free(t);
}

/* Stuck sockets by process name, port usage, the keepalive histogram per service port. */
static void test_insights(void **state)
{
	struct stuck_proc procs[3] = {
	    {.pid = 1, .comm = "leaky", .stuck = {3, 0}},
	    {.pid = 2, .comm = "leaky", .stuck = {1, 1}}, /* same name: one series */
	    {.pid = 0, .comm = "", .stuck = {0, 2}},	  /* unknown owner: "other" */
	};
	struct portfc_tuple t = {
	    .used = 15, .time_wait = 5, .capacity = 20, .eta_ms = 2500, .alert = true, .dport = 80};
	struct sp_event ev = conn_ev(SP_ACT_TCP_STUCK, 5);
	char *text;

	(void)state;
	ev.stuck.start = true;
	ev.stuck.state = SP_ST_FIN_WAIT2;
	metrics_on_event(&m, &ev);
	ev = conn_ev(SP_ACT_PORT_RISK, 0);
	ev.ports.start = true;
	metrics_on_event(&m, &ev);
	metrics_set_stuck(&m, procs, 3);
	t.src.family = t.dst.family = AF_INET;
	t.src.bytes[0] = 10, t.src.bytes[3] = 1;
	t.dst.bytes[0] = 10, t.dst.bytes[3] = 2;
	metrics_set_ports(&m, &t, 1);
	assert_int_equal(metrics_ka_begin(&m), 0);
	metrics_ka_add(&m, 8080, 19000);
	metrics_ka_add(&m, 8080, 9000);
	metrics_ka_add(&m, 8080, UINT64_MAX);
	metrics_ka_add(&m, 22, 7875000);
	metrics_ka_end(&m);
	text = render();
	assert_int_equal(value_of(text, "sockpulse_tcp_stuck_alerts_total{state=\"fin_wait2\"}"),
			 1);
	assert_int_equal(value_of(text, "sockpulse_tcp_stuck_alerts_total{state=\"close_wait\"}"),
			 0);
	assert_int_equal(
	    value_of(text, "sockpulse_tcp_stuck_sockets{state=\"close_wait\",process=\"leaky\"}"),
	    4);
	assert_int_equal(
	    value_of(text, "sockpulse_tcp_stuck_sockets{state=\"fin_wait2\",process=\"leaky\"}"),
	    1);
	assert_int_equal(
	    value_of(text, "sockpulse_tcp_stuck_sockets{state=\"fin_wait2\",process=\"other\"}"),
	    2);
	assert_int_equal(value_of(text, "sockpulse_port_exhaustion_alerts_total"), 1);
	assert_int_equal(
	    value_of(
		text,
		"sockpulse_ephemeral_ports_used{source=\"10.0.0.1\",destination=\"10.0.0.2:80\"}"),
	    15);
	assert_int_equal(value_of(text, "sockpulse_ephemeral_ports_capacity{source=\"10.0.0.1\","
					"destination=\"10.0.0.2:80\"}"),
			 20);
	assert_int_equal(value_of(text, "sockpulse_port_exhaustion_risk_active{source=\"10.0.0.1\","
					"destination=\"10.0.0.2:80\"}"),
			 1);
	assert_non_null(strstr(text, "sockpulse_port_exhaustion_seconds{source=\"10.0.0.1\","
				     "destination=\"10.0.0.2:80\"} 2.500\n"));
	assert_int_equal(
	    value_of(text,
		     "sockpulse_tcp_keepalive_detection_seconds_bucket{port=\"8080\",le=\"10\"}"),
	    1);
	assert_int_equal(
	    value_of(text,
		     "sockpulse_tcp_keepalive_detection_seconds_bucket{port=\"8080\",le=\"30\"}"),
	    2);
	assert_int_equal(
	    value_of(text,
		     "sockpulse_tcp_keepalive_detection_seconds_bucket{port=\"8080\",le=\"+Inf\"}"),
	    2);
	assert_int_equal(
	    value_of(text, "sockpulse_tcp_keepalive_detection_seconds_count{port=\"8080\"}"), 2);
	assert_int_equal(
	    value_of(text, "sockpulse_tcp_connections_without_keepalive{port=\"8080\"}"), 1);
	assert_non_null(
	    strstr(text, "sockpulse_tcp_keepalive_worst_detection_seconds{port=\"8080\"} +Inf\n"));
	assert_non_null(strstr(
	    text, "sockpulse_tcp_keepalive_worst_detection_seconds{port=\"22\"} 7875.000\n"));
	assert_int_equal(
	    value_of(text,
		     "sockpulse_tcp_keepalive_detection_seconds_bucket{port=\"22\",le=\"7200\"}"),
	    0);
	assert_int_equal(
	    value_of(text,
		     "sockpulse_tcp_keepalive_detection_seconds_bucket{port=\"22\",le=\"10800\"}"),
	    1);
	assert_int_equal(
	    value_of(text, "sockpulse_tcp_keepalive_detection_seconds_count{port=\"other\"}"), 0);
	free(text);
}

/* More service ports than labels: the rest are summed under "other". */
static void test_ka_other(void **state)
{
	char *text;

	(void)state;
	assert_int_equal(metrics_ka_begin(&m), 0);
	for (uint16_t p = 1; p <= METRICS_TOP_N + 5; p++)
		for (uint16_t k = 0; k < p; k++)
			metrics_ka_add(&m, p, 5000);
	metrics_ka_end(&m);
	text = render();
	/* the 10 busiest ports (6..15) have labels; ports 1..5 (15 connections) are "other" */
	assert_int_equal(
	    value_of(text, "sockpulse_tcp_keepalive_detection_seconds_count{port=\"15\"}"), 15);
	assert_int_equal(
	    value_of(text, "sockpulse_tcp_keepalive_detection_seconds_count{port=\"5\"}"), -1);
	assert_int_equal(
	    value_of(text, "sockpulse_tcp_keepalive_detection_seconds_count{port=\"other\"}"), 15);
	free(text);
}

static void listen_ok(const char *s, int family, const char *ip, uint16_t port)
{
	struct sockaddr_storage ss;
	socklen_t len;
	char buf[64];
	bool off;

	if (metrics_parse_listen(s, &ss, &len, &off))
		fail_msg("'%s' rejected", s);
	assert_false(off);
	assert_int_equal(ss.ss_family, family);
	if (family == AF_INET) {
		struct sockaddr_in *in = (struct sockaddr_in *)&ss;

		assert_int_equal(len, sizeof(*in));
		inet_ntop(AF_INET, &in->sin_addr, buf, sizeof(buf));
		assert_int_equal(ntohs(in->sin_port), port);
	} else {
		struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)&ss;

		assert_int_equal(len, sizeof(*in6));
		inet_ntop(AF_INET6, &in6->sin6_addr, buf, sizeof(buf));
		assert_int_equal(ntohs(in6->sin6_port), port);
	}
	assert_string_equal(buf, ip);
}

static void test_parse_listen(void **state)
{
	static const char *const bad[] = {
	    "",
	    "127.0.0.1",
	    "127.0.0.1:",
	    ":9477",
	    "127.0.0.1:65536",
	    "127.0.0.1:-1",
	    "localhost:80",
	    "[::1]",
	    "[::1]80",
	    "[]:80",
	    "::1:80",
	    "1.2.3.4:80:1",
	    "[::1]:x",
	    "9477x",
	    "on",
	    "OFF",
	};
	struct sockaddr_storage ss;
	socklen_t len;
	bool off;

	listen_ok("127.0.0.1:9477", AF_INET, "127.0.0.1", 9477);
	listen_ok("0.0.0.0:0", AF_INET, "0.0.0.0", 0);
	listen_ok("9100", AF_INET, "127.0.0.1", 9100);
	listen_ok("[::1]:9477", AF_INET6, "::1", 9477);
	listen_ok("[::]:80", AF_INET6, "::", 80);
	assert_int_equal(metrics_parse_listen("off", &ss, &len, &off), 0);
	assert_true(off);
	for (size_t i = 0; i < ARRAY_SIZE(bad); i++)
		if (metrics_parse_listen(bad[i], &ss, &len, &off) != -EINVAL)
			fail_msg("'%s' accepted", bad[i]);
}

static void test_dest_label(void **state)
{
	struct sp_addr a = {0};
	char buf[METRICS_DEST_LABEL_MAX];

	assert_true(metrics_dest_label(buf, sizeof(buf), &a, 0) > 0);
	assert_string_equal(buf, "host");
	a.family = AF_INET6;
	memset(a.bytes, 0xff, 16);
	assert_true(metrics_dest_label(buf, sizeof(buf), &a, 65535) > 0);
	assert_string_equal(buf, "[ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff]:65535");
	/* IPv4-mapped IPv6 prints as IPv4 */
	memset(a.bytes, 0, 16);
	a.bytes[10] = a.bytes[11] = 0xff;
	a.bytes[12] = 192;
	a.bytes[15] = 1;
	assert_true(metrics_dest_label(buf, sizeof(buf), &a, 443) > 0);
	assert_string_equal(buf, "192.0.0.1:443");
	assert_int_equal(metrics_dest_label(buf, 5, &a, 443), 0);
}


/* A fake resolver: cgroup id N is service "svcN"; 0 falls back to the command. */
static size_t fake_service(void *ctx, uint64_t cgroup_id, const char *comm, const char **name)
{
	static char buf[4][16];
	static int k;

	if (!cgroup_id) {
		*name = comm;
		return strlen(comm);
	}
	k = (k + 1) % 4;
	snprintf(buf[k], sizeof(buf[k]), "svc%u", (unsigned int)(cgroup_id % 1000));
	*name = buf[k];
	return strlen(buf[k]);
}

static void svc_connects(uint64_t cgroup_id, int n, bool ok)
{
	for (int i = 0; i < n; i++) {
		struct sp_event ev = conn_ev(SP_ACT_CONNECT, 1000 + i);

		ev.conn.cgroup_id = cgroup_id;
		ev.conn.has_pid = true;
		strcpy(ev.conn.comm, "curl");
		ev.connect.success = ok;
		ev.connect.failure = ok ? SP_FAIL_NONE : SP_FAIL_REFUSED;
		metrics_on_event(&m, &ev);
	}
}

/* Per-service families: the top N by activity by name, the rest summed under "other". */
static void test_services(void **state)
{
	struct sp_event ev;
	char *t;

	m.service_of = fake_service;
	m.services_top = 2;
	svc_connects(4, 1, false); /* svc3 and svc4: folded */
	svc_connects(3, 1, true);
	svc_connects(1, 5, false); /* svc1: 5 failures, the last to 10.0.0.2:80 */
	svc_connects(2, 3, true);  /* svc2: 3 successes */
	svc_connects(0, 2, true); /* no cgroup: the command */
	/* a lease of svc2's (its cgroup known, its process not), expired */
	new_lease_table(100);
	ev = conn_ev(SP_ACT_STATE_CHANGE, 77);
	ev.conn.cgroup_id = 2;
	ev.state.old_state = SP_ST_SYN_SENT;
	ev.state.new_state = SP_ST_ESTABLISHED;
	feed(&ev, T0);
	lease_advance(lt, T0 + 12 * SEC);
	/* a spike to the destination svc1's connects failed to */
	ev = conn_ev(SP_ACT_SPIKE, 0);
	ev.spike.start = true;
	metrics_on_event(&m, &ev);

	t = render_leases(T0 + 12 * SEC);
	/* svc1 (5) and svc2 (3 + a lease) lead; curl (2), svc3 and svc4 are folded */
	assert_int_equal(value_of(t, "sockpulse_service_tcp_connects_total{service=\"svc1\",outcome=\"failure\"}"), 5);
	assert_int_equal(value_of(t, "sockpulse_service_tcp_connect_failures_total{service=\"svc1\",reason=\"refused\"}"), 5);
	assert_int_equal(value_of(t, "sockpulse_service_tcp_connects_total{service=\"svc2\",outcome=\"success\"}"), 3);
	assert_int_equal(value_of(t, "sockpulse_service_tcp_connects_total{service=\"other\",outcome=\"success\"}"), 3);
	assert_int_equal(value_of(t, "sockpulse_service_tcp_connects_total{service=\"other\",outcome=\"failure\"}"), 1);
	assert_int_equal(value_of(t, "sockpulse_service_tcp_connects_total{service=\"svc3\",outcome=\"success\"}"), -1);
	assert_int_equal(value_of(t, "sockpulse_service_tcp_connects_total{service=\"curl\",outcome=\"success\"}"), -1);
	assert_int_equal(value_of(t, "sockpulse_services_folded"), 3);
	assert_int_equal(value_of(t, "sockpulse_service_leases{service=\"svc2\",kind=\"transport\",state=\"expired\"}"), 1);
	assert_int_equal(value_of(t, "sockpulse_service_leases{service=\"svc2\",kind=\"transport\",state=\"alive\"}"), 0);
	assert_int_equal(value_of(t, "sockpulse_service_connect_failure_spike_active{service=\"svc1\",destination=\"10.0.0.2:80\"}"), 1);
	/* the host-wide families are untouched by the label */
	assert_int_equal(value_of(t, "sockpulse_tcp_connects_total{outcome=\"success\"}"), 6);
	free(t);

	/* the lease ends: its service's gauge goes back to 0 */
	feed_state(77, SP_ST_ESTABLISHED, SP_ST_FIN_WAIT1, T0 + 13 * SEC);
	ev = conn_ev(SP_ACT_SPIKE, 0);
	metrics_on_event(&m, &ev);
	t = render_leases(T0 + 13 * SEC);
	assert_int_equal(value_of(t, "sockpulse_service_leases{service=\"svc2\",kind=\"transport\",state=\"expired\"}"), 0);
	assert_int_equal(value_of(t, "sockpulse_service_connect_failure_spike_active{service=\"svc1\",destination=\"10.0.0.2:80\"}"), 0);
	free(t);

	/* N = 0: everything under "other" */
	m.services_top = 0;
	t = render();
	assert_int_equal(value_of(t, "sockpulse_service_tcp_connects_total{service=\"other\",outcome=\"failure\"}"), 6);
	assert_int_equal(value_of(t, "sockpulse_services_folded"), 5);
	free(t);	lease_free(lt);
}

/* Stuck sockets counted by the service of the process that holds them. */
static void test_services_stuck(void **state)
{
	struct stuck_proc procs[2] = {
		{ .cgroup_id = 9, .pid = 1, .comm = "nginx", .stuck = { 3, 1 } },
		{ .cgroup_id = 0, .pid = 2, .comm = "java", .stuck = { 2, 0 } },
	};
	char *t;

	m.service_of = fake_service;
	metrics_set_stuck(&m, procs, 2);
	t = render();
	assert_int_equal(value_of(t, "sockpulse_service_tcp_stuck_sockets{service=\"svc9\",state=\"close_wait\"}"), 3);
	assert_int_equal(value_of(t, "sockpulse_service_tcp_stuck_sockets{service=\"svc9\",state=\"fin_wait2\"}"), 1);
	assert_int_equal(value_of(t, "sockpulse_service_tcp_stuck_sockets{service=\"java\",state=\"close_wait\"}"), 2);
	free(t);
	/* the next snapshot replaces the last: svc9, with nothing left, is not shown */
	metrics_set_stuck(&m, procs + 1, 1);
	t = render();
	assert_int_equal(value_of(t, "sockpulse_service_tcp_stuck_sockets{service=\"svc9\",state=\"close_wait\"}"), -1);
	assert_int_equal(value_of(t, "sockpulse_service_tcp_stuck_sockets{service=\"java\",state=\"close_wait\"}"), 2);
	free(t);
}

/* The service table: interning, its bound, the top N. */
static void test_svctab(void **state)
{
	struct svc_tab tab;
	uint16_t top[SVC_TOP_MAX];
	uint32_t folded;
	char name[32];

	assert_int_equal(svc_init(&tab), 0);
	assert_int_equal(svc_intern(&tab, "a.service", 9), svc_intern(&tab, "a.service", 9));
	assert_int_not_equal(svc_intern(&tab, "a.service", 9), SVC_OTHER);
	assert_int_equal(svc_intern(&tab, "", 0), SVC_OTHER);
	assert_int_equal(svc_intern(&tab, "other", 5), SVC_OTHER);
	for (int i = 0; i < SVC_MAX + 10; i++) {
		snprintf(name, sizeof(name), "s%d", i);
		tab.s[svc_intern(&tab, name, strlen(name))].activity += (uint64_t)i + 1;
	}
	assert_true(tab.full >= 10);
	assert_int_equal(tab.n, SVC_MAX);
	assert_int_equal(svc_top(&tab, 3, top, &folded), 3);
	/* the last names that got a slot are the most active ones */
	assert_true(tab.s[top[0]].activity >= tab.s[top[1]].activity);
	assert_true(tab.s[top[1]].activity >= tab.s[top[2]].activity);
	assert_int_equal(folded, SVC_MAX - 2 - 3); /* a.service has none: not counted */
	svc_free(&tab);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_counters, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_lease_gauges, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_lease_overflows, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_spikes, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_diag_gauges_and_escaping, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_insights, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_ka_other, setup, teardown),
	    cmocka_unit_test(test_parse_listen),
	    cmocka_unit_test_setup_teardown(test_services, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_services_stuck, setup, teardown),
	    cmocka_unit_test(test_svctab),
	    cmocka_unit_test(test_dest_label),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
