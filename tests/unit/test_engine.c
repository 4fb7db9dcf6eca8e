/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* Engine: --lease-ttl parsing, fan-out to leases and spikes, the stall guard. */
#include <arpa/inet.h>
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "engine.h"
#include "sockpulse.h"

#define MS 1000000ull
#define SEC 1000000000ull
#define T0 (5000 * SEC)
#define MAXEV 512

struct cap {
	struct sp_event ev[MAXEV];
	unsigned int n;
	struct engine_hold holds[8];
	unsigned int nholds;
};

static void on_emit(void *ctx, const struct sp_event *ev)
{
	struct cap *c = ctx;

	assert_true(c->n < MAXEV);
	c->ev[c->n++] = *ev;
}

static void on_hold(void *ctx, const struct engine_hold *h)
{
	struct cap *c = ctx;

	assert_true(c->nholds < 8);
	c->holds[c->nholds++] = *h;
}

static void test_parse_lease_ttl(void **state)
{
	struct engine_config cfg;
	char arg[32];
	unsigned int i;

	engine_config_default(&cfg);
	assert_int_equal(cfg.lease.ttl_ns, 30 * SEC);
	assert_int_equal(engine_parse_lease_ttl(&cfg, "2s"), 0);
	assert_int_equal(cfg.lease.ttl_ns, 2 * SEC);
	assert_int_equal(engine_parse_lease_ttl(&cfg, "500ms"), 0);
	assert_int_equal(cfg.lease.ttl_ns, 500 * MS);
	assert_int_equal(engine_parse_lease_ttl(&cfg, "80=1m"), 0);
	assert_int_equal(engine_parse_lease_ttl(&cfg, "443=10"), 0);
	assert_int_equal(cfg.lease.n_port_ttl, 2);
	assert_int_equal(cfg.lease.port_ttl[0].port, 80);
	assert_int_equal(cfg.lease.port_ttl[0].ttl_ns, 60 * SEC);
	assert_int_equal(cfg.lease.port_ttl[1].ttl_ns, 10 * SEC);
	assert_int_equal(engine_parse_lease_ttl(&cfg, "80=5s"), 0); /* replaces */
	assert_int_equal(cfg.lease.n_port_ttl, 2);
	assert_int_equal(cfg.lease.port_ttl[0].ttl_ns, 5 * SEC);
	assert_int_equal(cfg.lease.ttl_ns, 500 * MS); /* untouched by overrides */

	assert_int_equal(engine_parse_lease_ttl(&cfg, ""), -EINVAL);
	assert_int_equal(engine_parse_lease_ttl(&cfg, "0"), -EINVAL);
	assert_int_equal(engine_parse_lease_ttl(&cfg, "0s"), -EINVAL);
	assert_int_equal(engine_parse_lease_ttl(&cfg, "abc"), -EINVAL);
	assert_int_equal(engine_parse_lease_ttl(&cfg, "-1s"), -EINVAL);
	assert_int_equal(engine_parse_lease_ttl(&cfg, "=1s"), -EINVAL);
	assert_int_equal(engine_parse_lease_ttl(&cfg, "80="), -EINVAL);
	assert_int_equal(engine_parse_lease_ttl(&cfg, "80=0"), -EINVAL);
	assert_int_equal(engine_parse_lease_ttl(&cfg, "0=1s"), -EINVAL);
	assert_int_equal(engine_parse_lease_ttl(&cfg, "65536=1s"), -EINVAL);
	assert_int_equal(engine_parse_lease_ttl(&cfg, "123456789=1s"), -EINVAL);
	assert_int_equal(engine_parse_lease_ttl(&cfg, "-80=1s"), -EINVAL);
	assert_int_equal(engine_parse_lease_ttl(&cfg, "80=1s=2s"), -EINVAL);
	assert_int_equal(engine_parse_lease_ttl(&cfg, "99999999999999999999s"), -ERANGE);
	assert_int_equal(engine_parse_lease_ttl(&cfg, NULL), -EINVAL);
	assert_int_equal(cfg.lease.n_port_ttl, 2);
	assert_int_equal(cfg.lease.ttl_ns, 500 * MS);

	for (i = 2; i < LEASE_MAX_PORT_TTL; i++) {
		snprintf(arg, sizeof(arg), "%u=3s", 1000 + i);
		assert_int_equal(engine_parse_lease_ttl(&cfg, arg), 0);
	}
	assert_int_equal(engine_parse_lease_ttl(&cfg, "9999=3s"), -ENOSPC);
	assert_int_equal(engine_parse_lease_ttl(&cfg, "80=4s"), 0); /* replacing still works */
}

static struct sp_event conn_event(enum sp_action a, uint64_t cookie, uint64_t now)
{
	struct sp_event ev = { .action = a, .mono_ns = now, .real_ns = now + 77, .has_conn = true };

	ev.conn.src.family = AF_INET;
	ev.conn.dst.family = AF_INET;
	inet_pton(AF_INET, "192.0.2.1", ev.conn.src.bytes);
	inet_pton(AF_INET, "192.0.2.9", ev.conn.dst.bytes);
	ev.conn.sport = 50000;
	ev.conn.dport = 5432;
	ev.conn.has_ports = true;
	ev.conn.direction = SP_DIR_EGRESS;
	ev.conn.cookie = cookie;
	ev.conn.netns = 7;
	return ev;
}

static struct engine *new_engine(struct cap *cap, struct engine_config *cfg)
{
	struct engine *e;

	memset(cap, 0, sizeof(*cap));
	e = engine_new(cfg, on_emit, cap);
	assert_non_null(e);
	engine_set_hold_fn(e, on_hold, cap);
	return e;
}

/* Leases and spikes through one engine; verdicts carry the engine's time and real_ns 0. */
static void test_fan_out(void **state)
{
	struct engine_config cfg;
	struct cap cap;
	struct engine *e;
	struct sp_event ev;
	uint64_t t;

	engine_config_default(&cfg);
	assert_int_equal(engine_parse_lease_ttl(&cfg, "5432=4s"), 0);
	e = new_engine(&cap, &cfg);

	ev = conn_event(SP_ACT_STATE_CHANGE, 1, T0);
	ev.state.old_state = SP_ST_SYN_SENT;
	ev.state.new_state = SP_ST_ESTABLISHED;
	engine_feed(e, &ev);
	for (t = T0; t <= T0 + 10 * SEC; t += 100 * MS)
		engine_tick(e, t);
	assert_int_equal(cap.n, 2);
	assert_int_equal(cap.ev[0].action, SP_ACT_LEASE_SUSPECT);
	assert_int_equal(cap.ev[1].action, SP_ACT_LEASE_EXPIRED);
	assert_true(cap.ev[1].mono_ns >= T0 + 5 * SEC && cap.ev[1].mono_ns <= T0 + 6 * SEC);
	assert_int_equal(cap.ev[1].real_ns, 0);
	assert_int_equal(cap.ev[1].conn.cookie, 1);
	assert_int_equal(cap.ev[1].conn.dport, 5432);
	assert_int_equal(cap.ev[1].lease.ttl_ms, 4000);
	assert_int_equal(engine_lease_stats(e)->expirations[SP_LEASE_TRANSPORT], 1);

	/* A refused burst: connect events go to the spike detector. */
	cap.n = 0;
	for (; t <= T0 + 15 * SEC; t += 100 * MS) {
		ev = conn_event(SP_ACT_CONNECT, 0, t);
		ev.connect.failure = SP_FAIL_REFUSED;
		engine_feed(e, &ev);
	}
	assert_int_equal(cap.n, 1);
	assert_int_equal(cap.ev[0].action, SP_ACT_SPIKE);
	assert_true(cap.ev[0].spike.start);
	assert_int_equal(cap.ev[0].real_ns, 0);
	assert_int_equal(engine_spike_stats(e)->open, 1);
	assert_int_equal(engine_stats(e)->emitted, 3);
	assert_int_equal(engine_stats(e)->fed, 1 + 50);
	engine_free(e);
}

/* The agent's loop stalls: one hold line, verdicts wait, renewals in the backlog count. */
static void test_stall_guard(void **state)
{
	struct engine_config cfg;
	struct cap cap;
	struct engine *e;
	struct sp_event ev;
	uint64_t t;

	engine_config_default(&cfg);
	cfg.lease.ttl_ns = 8 * SEC;
	e = new_engine(&cap, &cfg);
	for (uint64_t c = 1; c <= 2; c++) {
		ev = conn_event(SP_ACT_STATE_CHANGE, c, T0);
		ev.state.new_state = SP_ST_ESTABLISHED;
		engine_feed(e, &ev);
	}
	for (t = T0; t <= T0 + 2 * SEC; t += 100 * MS)
		engine_tick(e, t);
	assert_int_equal(cap.n, 0);
	/* 8 s without a tick: the first tick after it holds before it judges. */
	t = T0 + 10 * SEC;
	engine_tick(e, t);
	assert_int_equal(cap.nholds, 1);
	assert_string_equal(cap.holds[0].reason, "agent-stall");
	assert_int_equal(cap.holds[0].mono_ns, t);
	assert_int_equal(cap.holds[0].until_ns, t + 5 * SEC);
	assert_int_equal(cap.holds[0].stall_ns, 8 * SEC);
	assert_int_equal(cap.n, 0);
	/* The backlog: cookie 2 was heard during the stall. */
	ev = conn_event(SP_ACT_ACTIVITY, 2, T0 + 9 * SEC);
	ev.activity.segments = 1;
	engine_feed(e, &ev);
	for (t += 100 * MS; t <= T0 + 16 * SEC; t += 100 * MS)
		engine_tick(e, t);
	assert_int_equal(cap.nholds, 1);
	assert_int_equal(cap.n, 2); /* cookie 1: expired (one line), cookie 2: suspect */
	assert_int_equal(cap.ev[0].action, SP_ACT_LEASE_EXPIRED);
	assert_int_equal(cap.ev[0].conn.cookie, 1);
	assert_true(cap.ev[0].mono_ns >= T0 + 15 * SEC);
	assert_int_equal(cap.ev[1].action, SP_ACT_LEASE_SUSPECT);
	assert_int_equal(cap.ev[1].conn.cookie, 2);
	assert_int_equal(engine_stats(e)->holds, 1);
	engine_free(e);
}

/* Lost records hold too; a second loss during the hold extends it silently. */
static void test_events_lost(void **state)
{
	struct engine_config cfg;
	struct cap cap;
	struct engine *e;
	struct sp_event ev = { .action = SP_ACT_EVENTS_LOST };

	engine_config_default(&cfg);
	e = new_engine(&cap, &cfg);
	ev.mono_ns = T0;
	ev.lost.count = 0; /* nothing lost: nothing to say */
	engine_feed(e, &ev);
	assert_int_equal(cap.nholds, 0);
	ev.lost.count = 12;
	ev.lost.kind = "activity";
	engine_feed(e, &ev);
	assert_int_equal(cap.nholds, 1);
	assert_string_equal(cap.holds[0].reason, "events-lost");
	assert_int_equal(cap.holds[0].lost, 12);
	ev.mono_ns = T0 + 3 * SEC;
	engine_feed(e, &ev);
	assert_int_equal(cap.nholds, 1);
	assert_int_equal(engine_stats(e)->hold_until_ns, T0 + 8 * SEC);
	ev.mono_ns = T0 + 9 * SEC; /* after the hold: a new one */
	engine_feed(e, &ev);
	assert_int_equal(cap.nholds, 2);
	assert_int_equal(cap.n, 0);
	engine_free(e);
}

/* engine_feed_batch is engine_feed on each event, in order. */
static void test_batch_same(void **state)
{
	struct engine_config cfg;
	struct cap one, many;
	struct engine *a, *b;
	struct sp_event evs[64];
	unsigned int i;

	engine_config_default(&cfg);
	cfg.lease.ttl_ns = 2 * SEC;
	for (i = 0; i < 64; i++) {
		evs[i] = conn_event(i % 3 ? SP_ACT_ACTIVITY : SP_ACT_STATE_CHANGE, 1 + i % 8,
				    T0 + i * 500 * MS);
		evs[i].activity.segments = 1;
		if (evs[i].action == SP_ACT_STATE_CHANGE)
			evs[i].state.new_state = i < 40 ? SP_ST_ESTABLISHED : SP_ST_CLOSE_WAIT;
	}
	a = new_engine(&one, &cfg);
	b = new_engine(&many, &cfg);
	for (i = 0; i < 64; i++)
		engine_feed(a, &evs[i]);
	engine_feed_batch(b, evs, 20);
	engine_feed_batch(b, evs + 20, 44);
	assert_true(one.n > 0);
	assert_int_equal(one.n, many.n);
	assert_memory_equal(one.ev, many.ev, one.n * sizeof(one.ev[0]));
	engine_free(a);
	engine_free(b);
}

static void test_bad_config(void **state)
{
	struct engine_config cfg;
	struct cap cap;

	engine_config_default(&cfg);
	cfg.lease.max_leases = 0;
	assert_null(engine_new(&cfg, on_emit, &cap));
	engine_config_default(&cfg);
	cfg.spike.window_s = 0;
	assert_null(engine_new(&cfg, on_emit, &cap));
	engine_config_default(&cfg);
	assert_null(engine_new(&cfg, NULL, &cap));
	engine_free(NULL);
}

/* State changes reach the stuck table and the port forecast too; their lines come out. */
static void test_health_fan_out(void **state)
{
	struct engine_config cfg;
	struct engine *e;
	struct cap cap = {0};
	struct sp_event ev = {.action = SP_ACT_STATE_CHANGE, .has_conn = true};
	unsigned int stuck = 0, risk = 0;

	(void)state;
	engine_config_default(&cfg);
	cfg.stuck.after_ns = 2 * SEC;
	cfg.ports.default_lo = 40000; /* 10 ports */
	cfg.ports.default_hi = 40009;
	cfg.stall_ns = 0;
	e = engine_new(&cfg, on_emit, &cap);
	assert_non_null(e);
	ev.conn.src.family = ev.conn.dst.family = AF_INET;
	ev.conn.dst.bytes[3] = 9;
	ev.conn.dport = 80;
	ev.conn.direction = SP_DIR_EGRESS;
	for (uint64_t i = 0; i < 9; i++) {
		ev.conn.cookie = 100 + i;
		ev.mono_ns = T0 + i * 100 * MS;
		ev.state.old_state = SP_ST_CLOSE;
		ev.state.new_state = SP_ST_SYN_SENT;
		engine_feed(e, &ev);
	}
	ev.conn.cookie = 100;
	ev.mono_ns = T0 + SEC;
	ev.state.old_state = SP_ST_ESTABLISHED;
	ev.state.new_state = SP_ST_CLOSE_WAIT;
	engine_feed(e, &ev);
	for (uint64_t t = T0 + SEC; t <= T0 + 4 * SEC; t += 100 * MS)
		engine_tick(e, t);
	for (unsigned int i = 0; i < cap.n; i++) {
		stuck += cap.ev[i].action == SP_ACT_TCP_STUCK;
		risk += cap.ev[i].action == SP_ACT_PORT_RISK;
	}
	assert_int_equal(stuck, 1);
	assert_int_equal(risk, 1);
	assert_int_equal(stuck_stats(engine_stuck(e))->alerts[0], 1);
	assert_int_equal(portfc_stats(engine_ports(e))->alerts, 1);
	/* watched already: no second seed; a new socket is taken */
	assert_false(engine_seed_stuck(e, &ev.conn, SP_ST_CLOSE_WAIT, T0, T0 + 5 * SEC));
	ev.conn.cookie = 999;
	assert_true(engine_seed_stuck(e, &ev.conn, SP_ST_FIN_WAIT2, T0, T0 + 5 * SEC));
	engine_free(e);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse_lease_ttl),
		cmocka_unit_test(test_fan_out),
		cmocka_unit_test(test_stall_guard),
		cmocka_unit_test(test_events_lost),
		cmocka_unit_test(test_batch_same),
		cmocka_unit_test(test_bad_config),
		cmocka_unit_test(test_health_fan_out),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
