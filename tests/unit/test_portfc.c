/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* Ephemeral-port forecast: counting, TIME_WAIT expiry, the forecast, alerts, resync, bounds. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <sys/socket.h>

#include <cmocka.h>

#include "portfc.h"
#include "sockpulse.h"

#define MAXEV 64

#include "capture.h"

#define NS 4026531840u

struct fx {
	struct cap cap;
	struct portfc *p;
	uint64_t now;
	uint64_t next_cookie;
};

static int range_20(void *ctx, uint32_t netns, struct portfc_ns *out)
{
	const uint8_t *reuse = ctx;

	if (netns != NS)
		return -ENOENT;
	out->lo = 40000;
	out->hi = 40019;
	out->tw_reuse = reuse ? *reuse : 0;
	return 0;
}

static void fx_init_reuse(struct fx *f, void (*tweak)(struct portfc_config *), uint8_t *reuse)
{
	struct portfc_config cfg;

	memset(f, 0, sizeof(*f));
	portfc_config_default(&cfg);
	if (tweak)
		tweak(&cfg);
	f->p = portfc_new(&cfg, on_emit, &f->cap);
	assert_non_null(f->p);
	portfc_set_range_fn(f->p, range_20, reuse);
	f->now = 1000 * SEC;
	portfc_advance(f->p, f->now);
}

static void fx_init(struct fx *f, void (*tweak)(struct portfc_config *))
{
	fx_init_reuse(f, tweak, NULL);
}

static void move(struct fx *f, uint8_t from, uint8_t to, bool tw, uint8_t host)
{
	struct sp_event ev = {.action = SP_ACT_STATE_CHANGE, .mono_ns = f->now, .has_conn = true};

	ev.conn.src.family = ev.conn.dst.family = AF_INET;
	ev.conn.src.bytes[0] = 10;
	ev.conn.src.bytes[3] = 1;
	ev.conn.dst.bytes[0] = 10;
	ev.conn.dst.bytes[3] = host;
	ev.conn.dport = 80;
	ev.conn.has_ports = true;
	ev.conn.direction = SP_DIR_EGRESS;
	ev.conn.netns = NS;
	ev.conn.cookie = ++f->next_cookie;
	ev.state.old_state = from;
	ev.state.new_state = to;
	ev.state.time_wait = tw;
	portfc_feed(f->p, &ev);
}

static void connect_one(struct fx *f, uint8_t host)
{
	move(f, SP_ST_CLOSE, SP_ST_SYN_SENT, false, host);
}

static void tick_to(struct fx *f, uint64_t t)
{
	for (; f->now < t; f->now += 100 * MS)
		portfc_advance(f->p, f->now);
	portfc_advance(f->p, f->now);
}

static void test_eta(void **st)
{
	(void)st;
	assert_int_equal(portfc_eta_ms(10, 2.0), 5000);
	assert_int_equal(portfc_eta_ms(0, 2.0), 0);
	assert_true(portfc_eta_ms(10, 0) == UINT64_MAX);
	assert_true(portfc_eta_ms(10, -1) == UINT64_MAX);
}

/* A connect loop filling 20 ports at 2/s: forecast before the range is full. */
static void test_forecast_before_exhaustion(void **st)
{
	struct fx f;
	struct portfc_tuple top[2];
	uint64_t t0;

	(void)st;
	fx_init(&f, NULL);
	t0 = f.now;
	for (int i = 0; i < 20 && !f.cap.n; i++) {
		connect_one(&f, 2);
		tick_to(&f, t0 + (uint64_t)(i + 1) * 500 * MS);
	}
	assert_int_equal(f.cap.n, 1);
	assert_int_equal(f.cap.ev[0].action, SP_ACT_PORT_RISK);
	assert_true(f.cap.ev[0].ports.start);
	assert_true(f.cap.ev[0].ports.forecast);
	assert_true(f.cap.ev[0].ports.used < 16); /* ahead of the 80% usage line */
	assert_int_equal(f.cap.ev[0].ports.capacity, 20);
	assert_int_equal(f.cap.ev[0].ports.range_lo, 40000);
	assert_int_equal(f.cap.ev[0].ports.range_hi, 40019);
	assert_true(f.cap.ev[0].ports.eta_ms <= 60000);
	assert_true(f.cap.ev[0].ports.growth_rate > 1.0);
	assert_true(f.cap.ev[0].ports.connect_rate > 1.0);
	assert_int_equal(f.cap.ev[0].conn.dport, 80);
	assert_int_equal(f.cap.ev[0].conn.netns, NS);
	assert_int_equal(portfc_top(f.p, top, 2), 1);
	assert_true(top[0].alert);
	assert_int_equal(portfc_stats(f.p)->active, 1);
	portfc_free(f.p);
}

/* Usage alone: 16 of 20 open at once with no growth forecast. */
static void test_usage_threshold_and_end(void **st)
{
	struct fx f;

	(void)st;
	fx_init(&f, NULL);
	for (int i = 0; i < 16; i++)
		connect_one(&f, 3);
	tick_to(&f, f.now + 1 * SEC);
	assert_int_equal(f.cap.n, 1);
	assert_false(f.cap.ev[0].ports.forecast);
	assert_int_equal(f.cap.ev[0].ports.used, 16);
	/* they close without TIME_WAIT: usage drops, the alert ends after the quiet time */
	for (int i = 0; i < 16; i++)
		move(&f, SP_ST_ESTABLISHED, SP_ST_CLOSE, false, 3);
	tick_to(&f, f.now + 5 * SEC);
	assert_int_equal(f.cap.n, 1);
	tick_to(&f, f.now + 10 * SEC);
	assert_int_equal(f.cap.n, 2);
	assert_false(f.cap.ev[1].ports.start);
	assert_int_equal(f.cap.ev[1].ports.used, 0);
	assert_int_equal(portfc_stats(f.p)->active, 0);
	portfc_free(f.p);
}

/* TIME_WAIT holds a port for 60 s, then gives it back. */
static void test_time_wait_expiry(void **st)
{
	struct fx f;
	struct portfc_tuple top[1];

	(void)st;
	fx_init(&f, NULL);
	for (int i = 0; i < 5; i++) {
		connect_one(&f, 4);
		move(&f, SP_ST_FIN_WAIT2, SP_ST_CLOSE, true, 4);
	}
	tick_to(&f, f.now + 2 * SEC);
	assert_int_equal(portfc_top(f.p, top, 1), 1);
	assert_int_equal(top[0].used, 5);
	assert_int_equal(top[0].time_wait, 5);
	tick_to(&f, f.now + 57 * SEC);
	assert_int_equal(portfc_top(f.p, top, 1), 1);
	assert_int_equal(top[0].time_wait, 5);
	tick_to(&f, f.now + 3 * SEC);
	assert_int_equal(portfc_top(f.p, top, 1), 0); /* gone */
	assert_int_equal(f.cap.n, 0);
	portfc_free(f.p);
}

/*
 * tcp_tw_reuse: a TIME_WAIT port is taken over a second after its last segment (1: always;
 * 2: towards loopback). A loopback storm leaving TIME_WAIT behind is no risk there.
 */
static void test_tw_reuse(void **st)
{
	uint8_t reuse[] = { 1, 2, 2 }, dst[] = { 4, 4, 0 };
	bool short_hold[] = { true, false, true };

	(void)st;
	for (int r = 0; r < 3; r++) {
		struct fx f;
		struct portfc_tuple top[1];
		uint64_t end;

		fx_init_reuse(&f, NULL, &reuse[r]);
		if (!dst[r]) {
			/* 127.0.0.1 -> 127.0.0.1 */
			struct sp_event ev = { .action = SP_ACT_STATE_CHANGE, .has_conn = true };

			ev.conn.src.family = ev.conn.dst.family = AF_INET;
			ev.conn.src.bytes[0] = ev.conn.dst.bytes[0] = 127;
			ev.conn.src.bytes[3] = ev.conn.dst.bytes[3] = 1;
			ev.conn.dport = 80;
			ev.conn.direction = SP_DIR_EGRESS;
			ev.conn.netns = NS;
			end = f.now + 20 * SEC;
			while (f.now < end) {
				for (int i = 0; i < 2; i++) {
					ev.mono_ns = f.now;
					ev.state.old_state = SP_ST_CLOSE;
					ev.state.new_state = SP_ST_SYN_SENT;
					ev.state.time_wait = false;
					portfc_feed(f.p, &ev);
					ev.state.old_state = SP_ST_FIN_WAIT2;
					ev.state.new_state = SP_ST_CLOSE;
					ev.state.time_wait = true;
					portfc_feed(f.p, &ev);
				}
				tick_to(&f, f.now + 500 * MS);
			}
			/* 4 TIME_WAIT a second on a 20-port range: without reuse, gone in 5 s */
			assert_int_equal(f.cap.n, 0);
			assert_int_equal(portfc_top(f.p, top, 1), 1);
			assert_true(top[0].time_wait <= 12);
			portfc_free(f.p);
			continue;
		}
		for (int i = 0; i < 5; i++) {
			connect_one(&f, dst[r]);
			move(&f, SP_ST_FIN_WAIT2, SP_ST_CLOSE, true, dst[r]);
		}
		tick_to(&f, f.now + 3 * SEC);
		assert_int_equal(portfc_top(f.p, top, 1), short_hold[r] ? 0 : 1);
		portfc_free(f.p);
	}
}

/* Steady churn that recycles its ports (no TIME_WAIT): a high connect rate, no alert. */
static void test_recycling_churn_is_quiet(void **st)
{
	struct fx f;
	uint64_t end;

	(void)st;
	fx_init(&f, NULL);
	end = f.now + 30 * SEC;
	while (f.now < end) {
		connect_one(&f, 5);
		move(&f, SP_ST_LAST_ACK, SP_ST_CLOSE, false, 5);
		tick_to(&f, f.now + 100 * MS);
	}
	assert_int_equal(f.cap.n, 0);
	portfc_free(f.p);
}

/* A socket-table walk replaces the counts; an unknown namespace uses the default range. */
static void test_resync_and_default_range(void **st)
{
	struct fx f;
	struct sp_addr src = {.family = AF_INET}, dst = {.family = AF_INET};
	struct portfc_tuple top[2];

	(void)st;
	fx_init(&f, NULL);
	src.bytes[0] = 10;
	dst.bytes[0] = 10;
	dst.bytes[3] = 9;
	for (int i = 0; i < 3; i++)
		connect_one(&f, 9);
	portfc_resync_begin(f.p, NS, f.now);
	portfc_resync_add(f.p, NS, &src, &dst, 80, false, 0);
	portfc_resync_add(f.p, NS, &src, &dst, 80, true, 30000);
	portfc_resync_add(f.p, 7, &src, &dst, 443, false, 0);
	tick_to(&f, f.now + 1 * SEC);
	assert_int_equal(portfc_top(f.p, top, 2), 2);
	/* the 3 connects counted from events became the walk's 2: one open, one TIME_WAIT */
	for (int i = 0; i < 2; i++) {
		if (top[i].netns == NS) {
			assert_int_equal(top[i].used, 2);
			assert_int_equal(top[i].time_wait, 1);
			assert_int_equal(top[i].capacity, 20);
		} else {
			assert_int_equal(top[i].capacity, 60999 - 32768 + 1);
		}
	}
	/* the walked TIME_WAIT socket goes when the kernel's does: 30 s later */
	tick_to(&f, f.now + 31 * SEC);
	assert_int_equal(portfc_top(f.p, top, 2), 2);
	for (int i = 0; i < 2; i++)
		if (top[i].netns == NS)
			assert_int_equal(top[i].time_wait, 0);
	portfc_free(f.p);
}

static void small_table(struct portfc_config *cfg)
{
	cfg->max_tuples = 2;
}

static void test_bounds(void **st)
{
	struct fx f;

	(void)st;
	fx_init(&f, small_table);
	connect_one(&f, 1);
	connect_one(&f, 1);
	connect_one(&f, 2);
	connect_one(&f, 3); /* evicts the least used */
	assert_int_equal(portfc_stats(f.p)->tuples, 2);
	assert_int_equal(portfc_stats(f.p)->evicted, 1);
	assert_true(portfc_bytes(f.p) > 0);
	portfc_free(f.p);
}

/* Only outgoing connections count; ingress and bad input are ignored. */
static void test_ignores(void **st)
{
	struct fx f;
	struct sp_event ev = {.action = SP_ACT_STATE_CHANGE, .has_conn = true};
	struct portfc_config cfg;

	(void)st;
	fx_init(&f, NULL);
	ev.mono_ns = f.now;
	ev.conn.src.family = ev.conn.dst.family = AF_INET;
	ev.conn.dport = 80;
	ev.conn.direction = SP_DIR_INGRESS;
	ev.state.old_state = SP_ST_CLOSE;
	ev.state.new_state = SP_ST_SYN_SENT;
	portfc_feed(f.p, &ev);
	ev.conn.direction = SP_DIR_EGRESS;
	ev.conn.dport = 0;
	portfc_feed(f.p, &ev);
	ev.conn.dport = 80;
	ev.conn.src.family = 0;
	portfc_feed(f.p, &ev);
	assert_int_equal(portfc_stats(f.p)->tuples, 0);
	portfc_free(f.p);
	portfc_config_default(&cfg);
	cfg.max_tuples = 0;
	assert_null(portfc_new(&cfg, on_emit, NULL));
	portfc_config_default(&cfg);
	cfg.default_lo = 2;
	cfg.default_hi = 1;
	assert_null(portfc_new(&cfg, on_emit, NULL));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_eta),
	    cmocka_unit_test(test_forecast_before_exhaustion),
	    cmocka_unit_test(test_usage_threshold_and_end),
	    cmocka_unit_test(test_time_wait_expiry),
	    cmocka_unit_test(test_recycling_churn_is_quiet),
	    cmocka_unit_test(test_tw_reuse),
	    cmocka_unit_test(test_resync_and_default_range),
	    cmocka_unit_test(test_bounds),
	    cmocka_unit_test(test_ignores),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
