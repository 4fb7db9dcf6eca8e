/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* Spike detector on synthetic streams: latency, false alarms, flapping, host-wide, bounds. */
#include <arpa/inet.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "prng.h"
#include "sockpulse.h"
#include "spike.h"

#define MAXEV 64

#include "capture.h"

static struct spike *new_spike(struct cap *cap, void (*tweak)(struct spike_config *))
{
	struct spike_config cfg;
	struct spike *s;

	spike_config_default(&cfg);
	if (tweak)
		tweak(&cfg);
	memset(cap, 0, sizeof(*cap));
	s = spike_new(&cfg, on_emit, cap);
	assert_non_null(s);
	return s;
}

/* One connect outcome to 10.1.0.<host>:<port>; the engine's order: advance, then feed. */
static void attempt(struct spike *s, unsigned int host, uint16_t port, uint8_t failure,
		    uint64_t now)
{
	struct sp_event ev = { .action = SP_ACT_CONNECT, .has_conn = true, .mono_ns = now };

	ev.conn.src.family = AF_INET;
	ev.conn.dst.family = AF_INET;
	ev.conn.dst.bytes[0] = 10;
	ev.conn.dst.bytes[1] = 1;
	ev.conn.dst.bytes[2] = (uint8_t)(host >> 8);
	ev.conn.dst.bytes[3] = (uint8_t)host;
	ev.conn.dport = port;
	ev.conn.has_ports = true;
	ev.conn.netns = 1;
	ev.connect.success = failure == SP_FAIL_NONE;
	ev.connect.failure = failure;
	spike_advance(s, now);
	spike_feed(s, &ev);
}

/* Steady successes at @rate/s from @from to @to, with ticks every 100 ms. */
static void steady(struct spike *s, unsigned int host, unsigned int rate, uint64_t from,
		   uint64_t to)
{
	uint64_t t, step = SEC / rate;

	for (t = from; t < to; t += step)
		attempt(s, host, 443, SP_FAIL_NONE, t);
}

static unsigned int count(const struct cap *c, bool start, bool host_wide)
{
	unsigned int i, n = 0;

	for (i = 0; i < c->n; i++)
		n += c->ev[i].spike.start == start && c->ev[i].spike.host_wide == host_wide;
	return n;
}

static void keep_incident(void *ctx, const struct spike_incident *inc)
{
	*(struct spike_incident *)ctx = *inc;
}

/* 10 refused connects a second on a quiet destination: flagged within 2 s, one incident. */
static void test_burst_latency(void **state)
{
	struct cap cap;
	struct spike *s = new_spike(&cap, NULL);
	uint64_t t0 = 300 * SEC + 350 * MS, t, tick;
	const struct sp_event *e;

	steady(s, 1, 5, 0, 300 * SEC);
	assert_int_equal(cap.n, 0);
	for (t = t0, tick = t0; t < t0 + 20 * SEC; t += 100 * MS) {
		attempt(s, 1, 443, SP_FAIL_REFUSED, t);
		for (; tick <= t; tick += 10 * MS)
			spike_advance(s, tick);
		if (cap.n)
			break;
	}
	assert_int_equal(cap.n, 1);
	e = &cap.ev[0];
	assert_int_equal(e->action, SP_ACT_SPIKE);
	assert_true(e->spike.start);
	assert_false(e->spike.host_wide);
	assert_true(e->mono_ns - t0 <= 2 * SEC);
	assert_true(e->spike.failures >= 5);
	assert_int_equal(e->spike.window_s, 10);
	assert_int_equal(e->spike.failure, SP_FAIL_REFUSED);
	assert_int_equal(e->conn.dport, 443);
	assert_int_equal(e->conn.dst.bytes[3], 1);
	assert_int_equal(e->conn.netns, 1);
	assert_true(e->spike.baseline_per_s < 0.02);
	assert_int_equal(spike_stats(s)->open, 1);

	/* The rest of a 20 s burst, then recovery: one end, after leave + merge. */
	for (t += 100 * MS; t < t0 + 20 * SEC; t += 100 * MS)
		attempt(s, 1, 443, SP_FAIL_REFUSED, t);
	/* 20 s in: the incident counts ~200 failures, its last 10 s window ~100 (what top shows) */
	{
		struct spike_incident inc = { 0 };

		assert_int_equal(spike_for_each_incident(s, keep_incident, &inc), 1);
		assert_true(inc.failures >= 180 && inc.failures <= 200);
		assert_true(inc.window_failures >= 90 && inc.window_failures <= 100);
	}
	steady(s, 1, 5, t0 + 20 * SEC, t0 + 200 * SEC);
	spike_advance(s, t0 + 200 * SEC);
	assert_int_equal(cap.n, 2);
	e = &cap.ev[1];
	assert_false(e->spike.start);
	assert_true(e->mono_ns >= t0 + 20 * SEC + 90 * SEC);
	assert_true(e->spike.failures >= 190 && e->spike.failures <= 200);
	assert_true(e->spike.window_s >= 100);
	assert_int_equal(spike_stats(s)->open, 0);
	spike_free(s);
}

/* One hour of 20 attempts/s with 1% random failures: no alert. */
static void test_no_false_alarm(void **state)
{
	struct cap cap;
	struct spike *s = new_spike(&cap, NULL);
	uint64_t seed = 20261128, t;

	for (t = 0; t < 3600 * SEC; t += 50 * MS) {
		uint8_t f = prng_unit(&seed) < 0.01 ? SP_FAIL_TIMEOUT : SP_FAIL_NONE;

		attempt(s, 2, 443, f, t);
	}
	assert_int_equal(cap.n, 0);
	assert_int_equal(spike_stats(s)->attempts, 72000);
	assert_true(spike_stats(s)->failures > 600 && spike_stats(s)->failures < 850);
	spike_free(s);
}

/* Flapping: 10 s of failures, 45 s of calm, five times: one incident, not five. */
static void test_flapping(void **state)
{
	struct cap cap;
	struct spike *s = new_spike(&cap, NULL);
	uint64_t t = 0;
	int round;

	steady(s, 3, 5, 0, 60 * SEC);
	t = 60 * SEC;
	for (round = 0; round < 5; round++) {
		uint64_t end = t + 10 * SEC;

		for (; t < end; t += 100 * MS)
			attempt(s, 3, 443, SP_FAIL_TIMEOUT, t);
		steady(s, 3, 5, t, t + 45 * SEC);
		t += 45 * SEC;
	}
	assert_int_equal(count(&cap, true, false), 1);
	assert_int_equal(count(&cap, false, false), 0);
	steady(s, 3, 5, t, t + 200 * SEC);
	spike_advance(s, t + 200 * SEC);
	assert_int_equal(count(&cap, true, false), 1);
	assert_int_equal(count(&cap, false, false), 1);
	assert_int_equal(spike_stats(s)->incidents, 1);
	spike_free(s);
}

/* Twenty destinations failing together: one host-wide alert instead of twenty. */
static void test_host_wide(void **state)
{
	struct cap cap;
	struct spike *s = new_spike(&cap, NULL);
	unsigned int h, i;
	uint64_t t;

	for (h = 0; h < 20; h++)
		steady(s, 100 + h, 2, h * MS, 120 * SEC);
	assert_int_equal(cap.n, 0);
	for (t = 120 * SEC; t < 140 * SEC; t += 100 * MS)
		for (h = 0; h < 20; h++)
			attempt(s, 100 + h, 443, SP_FAIL_LOCAL, t + h * 1000);
	/* host_min_dests - 1 destinations spoke before the host alert; nobody after it. */
	assert_int_equal(count(&cap, true, false), 2);
	assert_int_equal(count(&cap, true, true), 1);
	for (i = 0; i < cap.n; i++) {
		if (!cap.ev[i].spike.host_wide)
			continue;
		assert_false(cap.ev[i].has_conn);
		assert_int_equal(cap.ev[i].spike.failure, SP_FAIL_LOCAL);
		assert_int_equal(cap.ev[i].spike.destinations, 3);
		assert_true(cap.ev[i].spike.failures >= 15);
	}
	assert_true(spike_stats(s)->host_active);
	assert_int_equal(spike_stats(s)->open, 20);
	for (h = 0; h < 20; h++)
		steady(s, 100 + h, 2, 140 * SEC + h * MS, 300 * SEC);
	spike_advance(s, 300 * SEC);
	assert_int_equal(count(&cap, false, false), 2);
	assert_int_equal(count(&cap, false, true), 1);
	assert_false(cap.ev[cap.n - 1].spike.start);
	assert_true(cap.ev[cap.n - 1].spike.host_wide); /* after the last destination ended */
	assert_true(cap.ev[cap.n - 1].spike.failures >= 20 * 150);
	assert_false(spike_stats(s)->host_active);
	assert_int_equal(spike_stats(s)->host_incidents, 1);
	spike_free(s);
}

/* Two destinations spiking apart (beyond the host window) stay per-destination. */
static void test_not_host_wide(void **state)
{
	struct cap cap;
	struct spike *s = new_spike(&cap, NULL);
	uint64_t t;
	unsigned int h;

	for (h = 0; h < 3; h++)
		for (t = h * 100 * SEC; t < h * 100 * SEC + 5 * SEC; t += 100 * MS)
			attempt(s, 200 + h, 443, SP_FAIL_REFUSED, t);
	spike_advance(s, 600 * SEC);
	assert_int_equal(count(&cap, true, false), 3);
	assert_int_equal(count(&cap, true, true), 0);
	assert_int_equal(count(&cap, false, false), 3);
	spike_free(s);
}

static void tweak_small(struct spike_config *c)
{
	c->max_dests = 4;
	c->idle_s = 60;
}

static void count_incident(void *ctx, const struct spike_incident *inc)
{
	(*(unsigned int *)ctx)++;
	assert_int_equal(inc->port, 443);
}

/* Bounded: quiet destinations make room, idle ones go; a table full of incidents drops. */
static void test_bounds(void **state)
{
	struct cap cap;
	struct spike *s = new_spike(&cap, tweak_small);
	unsigned int h, n = 0;
	uint64_t t;

	for (h = 0; h < 6; h++)
		attempt(s, h, 443, SP_FAIL_NONE, h * SEC);
	assert_int_equal(spike_stats(s)->dests, 4);
	assert_int_equal(spike_stats(s)->evicted, 2);
	spike_advance(s, 100 * SEC);
	assert_int_equal(spike_stats(s)->dests, 0); /* idle */
	for (t = 100 * SEC; t < 104 * SEC; t += 100 * MS)
		for (h = 0; h < 4; h++)
			attempt(s, 10 + h * 100, 443, SP_FAIL_REFUSED, t + h * 10 * MS);
	assert_int_equal(spike_stats(s)->open, 4);
	assert_int_equal(spike_for_each_incident(s, count_incident, &n), 4);
	assert_int_equal(n, 4);
	attempt(s, 99, 443, SP_FAIL_REFUSED, 104 * SEC);
	assert_int_equal(spike_stats(s)->dropped, 1);
	/* Canceled connects count for nothing. */
	attempt(s, 10, 443, SP_FAIL_CANCELED, 104 * SEC);
	assert_int_equal(spike_stats(s)->attempts, 6 + 4 * 40);
	spike_free(s);
}

static void test_bad_config(void **state)
{
	struct spike_config cfg;
	struct cap cap;

	spike_config_default(&cfg);
	cfg.window_s = SPIKE_WINDOW_MAX + 1;
	assert_null(spike_new(&cfg, on_emit, &cap));
	spike_config_default(&cfg);
	cfg.confirm_need = 4;
	assert_null(spike_new(&cfg, on_emit, &cap));
	spike_config_default(&cfg);
	cfg.floor_per_s = 0;
	assert_null(spike_new(&cfg, on_emit, &cap));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_burst_latency),
		cmocka_unit_test(test_no_false_alarm),
		cmocka_unit_test(test_flapping),
		cmocka_unit_test(test_host_wide),
		cmocka_unit_test(test_not_host_wide),
		cmocka_unit_test(test_bounds),
		cmocka_unit_test(test_bad_config),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
