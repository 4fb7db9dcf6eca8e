/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* Stuck half-closed sockets: thresholds, end lines, seeding, the per-process rollup, bounds. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <sys/socket.h>

#include <cmocka.h>

#include "sockpulse.h"
#include "stuck.h"

#define MAXEV 64

#include "capture.h"

static struct stuck *new_stuck(struct cap *cap, uint64_t after, uint32_t max_sockets,
			       uint32_t max_procs)
{
	struct stuck_config cfg;
	struct stuck *s;

	stuck_config_default(&cfg);
	cfg.after_ns = after;
	cfg.max_sockets = max_sockets;
	cfg.max_procs = max_procs;
	memset(cap, 0, sizeof(*cap));
	s = stuck_new(&cfg, on_emit, cap, 0);
	assert_non_null(s);
	return s;
}

static struct sp_conn conn(uint64_t cookie, uint32_t pid, const char *comm)
{
	struct sp_conn c = {.cookie = cookie, .has_pid = pid != 0, .pid = pid};

	c.src.family = c.dst.family = AF_INET;
	c.src.bytes[0] = 10;
	c.dst.bytes[0] = 10;
	c.dst.bytes[3] = 2;
	c.sport = 40000;
	c.dport = 8080;
	c.has_ports = true;
	c.direction = SP_DIR_INGRESS;
	strncpy(c.comm, comm, sizeof(c.comm) - 1);
	return c;
}

static void state(struct stuck *s, const struct sp_conn *c, uint8_t from, uint8_t to, uint64_t now)
{
	struct sp_event ev = {.action = SP_ACT_STATE_CHANGE, .mono_ns = now, .has_conn = true};

	ev.conn = *c;
	ev.state.old_state = from;
	ev.state.new_state = to;
	stuck_advance(s, now);
	stuck_feed(s, &ev);
}

/* Ticks every 100 ms up to @to. */
static void run(struct stuck *s, uint64_t from, uint64_t to)
{
	for (uint64_t t = from; t <= to; t += 100 * MS)
		stuck_advance(s, t);
}

static void test_close_wait_alert_and_end(void **st)
{
	struct cap cap;
	struct stuck *s = new_stuck(&cap, 60 * SEC, 16, 4);
	struct sp_conn c = conn(7, 100, "leaky");

	(void)st;
	state(s, &c, SP_ST_ESTABLISHED, SP_ST_CLOSE_WAIT, 10 * SEC);
	run(s, 10 * SEC, 69 * SEC + 900 * MS);
	assert_int_equal(cap.n, 0); /* never early */
	run(s, 70 * SEC, 80 * SEC);
	assert_int_equal(cap.n, 1); /* once */
	assert_int_equal(cap.ev[0].action, SP_ACT_TCP_STUCK);
	assert_true(cap.ev[0].stuck.start);
	assert_int_equal(cap.ev[0].stuck.state, SP_ST_CLOSE_WAIT);
	assert_true(cap.ev[0].stuck.age_ms >= 60000 && cap.ev[0].stuck.age_ms <= 68000);
	assert_int_equal(cap.ev[0].stuck.after_ms, 60000);
	assert_int_equal(cap.ev[0].stuck.proc_stuck, 1);
	assert_int_equal(cap.ev[0].stuck.trend, 1);
	assert_false(cap.ev[0].stuck.seeded);
	assert_int_equal(cap.ev[0].conn.pid, 100);
	assert_string_equal(cap.ev[0].conn.comm, "leaky");
	assert_int_equal(stuck_stats(s)->stuck[0], 1);

	/* the application finally closes: the end line says how long it sat */
	state(s, &c, SP_ST_CLOSE_WAIT, SP_ST_LAST_ACK, 100 * SEC);
	assert_int_equal(cap.n, 2);
	assert_false(cap.ev[1].stuck.start);
	assert_true(cap.ev[1].has_duration);
	assert_int_equal(cap.ev[1].duration_ns, 90 * SEC);
	assert_int_equal(stuck_stats(s)->stuck[0], 0);
	assert_int_equal(stuck_stats(s)->watched, 0);
	assert_int_equal(stuck_stats(s)->resolved, 1);
	stuck_free(s);
}

/*
 * Records lost while a socket sat in CLOSE_WAIT in a namespace no walk covers: at its threshold
 * it is dropped without an alert (its end may have been lost). One that moves again after the
 * loss, and one in a walked namespace, are alerted as before.
 */
static void test_blind_after_loss(void **st)
{
	struct cap cap;
	struct stuck *s = new_stuck(&cap, 60 * SEC, 16, 4);
	struct sp_conn a = conn(1, 100, "a"), b = conn(2, 100, "b"), w = conn(3, 100, "w");
	const uint32_t walked = 7;

	(void)st;
	a.netns = b.netns = 99;
	w.netns = walked;
	state(s, &a, SP_ST_ESTABLISHED, SP_ST_CLOSE_WAIT, 1 * SEC);
	state(s, &b, SP_ST_FIN_WAIT1, SP_ST_FIN_WAIT2, 1 * SEC);
	state(s, &w, SP_ST_ESTABLISHED, SP_ST_CLOSE_WAIT, 1 * SEC);
	stuck_blind(s, &walked, 1, 5 * SEC);
	state(s, &b, SP_ST_FIN_WAIT2, SP_ST_CLOSE, 6 * SEC); /* b ends; then b again, anew */
	state(s, &b, SP_ST_FIN_WAIT1, SP_ST_FIN_WAIT2, 7 * SEC);
	run(s, 7 * SEC, 80 * SEC);
	assert_int_equal(cap.n, 2);
	assert_int_equal(cap.ev[0].conn.cookie, 3);
	assert_int_equal(cap.ev[1].conn.cookie, 2);
	assert_int_equal(stuck_stats(s)->unobserved, 1);
	assert_false(stuck_watching(s, 1));
	stuck_free(s);
}

/* Leaving before the threshold says nothing at all. */
static void test_short_stay_is_quiet(void **st)
{
	struct cap cap;
	struct stuck *s = new_stuck(&cap, 2 * SEC, 16, 4);
	struct sp_conn c = conn(8, 100, "ok");

	(void)st;
	state(s, &c, SP_ST_FIN_WAIT1, SP_ST_FIN_WAIT2, 1 * SEC);
	run(s, 1 * SEC, 2 * SEC);
	state(s, &c, SP_ST_FIN_WAIT2, SP_ST_CLOSE, 2900 * MS);
	run(s, 3 * SEC, 20 * SEC);
	assert_int_equal(cap.n, 0);
	assert_int_equal(stuck_stats(s)->watched, 0);
	stuck_free(s);
}

static void test_fin_wait2(void **st)
{
	struct cap cap;
	struct stuck *s = new_stuck(&cap, 2 * SEC, 16, 4);
	struct sp_conn c = conn(9, 0, "");

	(void)st;
	c.direction = SP_DIR_EGRESS;
	state(s, &c, SP_ST_FIN_WAIT1, SP_ST_FIN_WAIT2, 1 * SEC);
	run(s, 1 * SEC, 4 * SEC);
	assert_int_equal(cap.n, 1);
	assert_int_equal(cap.ev[0].stuck.state, SP_ST_FIN_WAIT2);
	assert_int_equal(stuck_stats(s)->alerts[1], 1);
	assert_false(cap.ev[0].conn.has_pid);
	stuck_free(s);
}

/* Found in the table at start: its age counts from the lower bound given. */
static void test_seed(void **st)
{
	struct cap cap;
	struct stuck *s = new_stuck(&cap, 60 * SEC, 16, 4);
	struct sp_conn c = conn(10, 42, "old");

	(void)st;
	assert_true(stuck_seed(s, &c, SP_ST_CLOSE_WAIT, 50 * SEC, 200 * SEC));
	assert_false(stuck_seed(s, &c, SP_ST_CLOSE_WAIT, 50 * SEC, 200 * SEC)); /* twice */
	assert_false(stuck_seed(s, &c, SP_ST_ESTABLISHED, 50 * SEC, 200 * SEC));
	c.cookie = 0;
	assert_false(stuck_seed(s, &c, SP_ST_CLOSE_WAIT, 50 * SEC, 200 * SEC));
	run(s, 200 * SEC, 201 * SEC);
	assert_int_equal(cap.n, 1);
	assert_true(cap.ev[0].stuck.seeded);
	assert_true(cap.ev[0].stuck.age_ms >= 150000);
	assert_int_equal(stuck_stats(s)->seeded, 1);
	stuck_free(s);
}

/* A process leaking more and more: its count grows, and the rollup says so. */
static void test_rollup_trend(void **st)
{
	struct cap cap;
	struct stuck *s = new_stuck(&cap, 1 * SEC, 64, 4);
	struct stuck_proc top[4];
	size_t n;

	(void)st;
	for (uint64_t i = 0; i < 5; i++) {
		struct sp_conn c = conn(100 + i, 77, "leaky");

		state(s, &c, SP_ST_ESTABLISHED, SP_ST_CLOSE_WAIT, (10 + 2 * i) * SEC);
		run(s, (10 + 2 * i) * SEC, (11 + 2 * i) * SEC + 500 * MS);
	}
	{
		struct sp_conn c = conn(200, 88, "tidy");

		state(s, &c, SP_ST_ESTABLISHED, SP_ST_CLOSE_WAIT, 30 * SEC);
		run(s, 30 * SEC, 32 * SEC);
	}
	assert_int_equal(cap.n, 6);
	assert_int_equal(cap.ev[4].stuck.proc_stuck, 5);
	assert_int_equal(cap.ev[4].stuck.trend, 1);
	n = stuck_top_procs(s, top, 4);
	assert_int_equal(n, 2);
	assert_int_equal(top[0].pid, 77);
	assert_int_equal(top[0].stuck[0], 5);
	assert_int_equal(top[0].peak, 5);
	assert_int_equal(top[1].pid, 88);
	/* nothing changes for a while: steady */
	run(s, 32 * SEC, 40 * SEC);
	n = stuck_top_procs(s, top, 4);
	assert_int_equal(top[0].trend, 0);
	/* only the largest fits */
	assert_int_equal(stuck_top_procs(s, top, 1), 1);
	assert_int_equal(top[0].pid, 77);
	stuck_free(s);
}

/* Full tables count what they could not take. */
static void test_bounds(void **st)
{
	struct cap cap;
	struct stuck *s = new_stuck(&cap, 1 * SEC, 2, 1);

	(void)st;
	for (uint64_t i = 0; i < 3; i++) {
		struct sp_conn c = conn(300 + i, 10 + (uint32_t)i, "p");

		state(s, &c, SP_ST_ESTABLISHED, SP_ST_CLOSE_WAIT, 5 * SEC);
	}
	assert_int_equal(stuck_stats(s)->watched, 2);
	assert_int_equal(stuck_stats(s)->untracked, 1);
	run(s, 5 * SEC, 7 * SEC);
	assert_int_equal(cap.n, 2);
	assert_int_equal(stuck_stats(s)->procs_untracked, 1);
	assert_true(stuck_bytes(s) > 0);
	stuck_free(s);
}

static void test_off_and_bad_config(void **st)
{
	struct stuck_config cfg;
	struct cap cap;
	struct stuck *s;
	struct sp_conn c = conn(1, 1, "x");

	(void)st;
	stuck_config_default(&cfg);
	cfg.max_sockets = 0;
	assert_null(stuck_new(&cfg, on_emit, &cap, 0));
	s = new_stuck(&cap, 0, 4, 4);
	state(s, &c, SP_ST_ESTABLISHED, SP_ST_CLOSE_WAIT, 1 * SEC);
	run(s, 1 * SEC, 1000 * SEC);
	assert_int_equal(cap.n, 0);
	assert_false(stuck_seed(s, &c, SP_ST_CLOSE_WAIT, 0, 1 * SEC));
	stuck_free(s);
	assert_int_equal(stuck_state_index(SP_ST_CLOSE_WAIT), 0);
	assert_int_equal(stuck_state_index(SP_ST_FIN_WAIT2), 1);
	assert_int_equal(stuck_state_index(SP_ST_FIN_WAIT1), -1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_close_wait_alert_and_end),
	    cmocka_unit_test(test_short_stay_is_quiet),
	    cmocka_unit_test(test_blind_after_loss),
	    cmocka_unit_test(test_fin_wait2),
	    cmocka_unit_test(test_seed),
	    cmocka_unit_test(test_rollup_trend),
	    cmocka_unit_test(test_bounds),
	    cmocka_unit_test(test_off_and_bad_config),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
