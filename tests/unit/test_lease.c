/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Lease table: every transition, the closing rule, coalescing, phi, hold, eviction, the peer and
 * owner rollups.
 */
#include <arpa/inet.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "lease.h"
#include "sockpulse.h"

#define T0 (1000 * SEC)
#define MAXEV 256

#include "capture.h"

struct fx {
	struct lease_config cfg;
	struct lease_table *t;
	struct cap cap;
};

static struct fx *fx_new(void (*tweak)(struct lease_config *))
{
	struct fx *f = calloc(1, sizeof(*f));

	lease_config_default(&f->cfg);
	f->cfg.ttl_ns = 10 * SEC;
	f->cfg.phi_threshold = 0; /* phi tested on its own below */
	f->cfg.max_leases = 1024;
	if (tweak)
		tweak(&f->cfg);
	f->t = lease_new(&f->cfg, on_emit, &f->cap, T0);
	assert_non_null(f->t);
	return f;
}

static void fx_free(struct fx *f)
{
	lease_free(f->t);
	free(f);
}

static struct sp_conn conn(uint64_t cookie, uint8_t dir, uint16_t eph)
{
	struct sp_conn c = { 0 };
	struct sp_addr me = { .family = AF_INET }, peer = { .family = AF_INET };

	inet_pton(AF_INET, "10.0.0.1", me.bytes);
	inet_pton(AF_INET, "10.0.0.2", peer.bytes);
	c.direction = dir;
	if (dir == SP_DIR_INGRESS) { /* the peer connected to our port 8080 */
		c.src = peer;
		c.sport = eph;
		c.dst = me;
		c.dport = 8080;
	} else {
		c.src = me;
		c.sport = eph;
		c.dst = peer;
		c.dport = 80;
	}
	c.has_ports = true;
	c.has_pid = true;
	c.pid = 42;
	strcpy(c.comm, "curl");
	c.cookie = cookie;
	c.netns = 4026531840u;
	return c;
}

/* Advance to @now first, as the engine does, then feed. */
static void feed(struct fx *f, struct sp_event *ev, uint64_t now)
{
	ev->mono_ns = now;
	lease_advance(f->t, now);
	lease_feed(f->t, ev);
}

/* @netns 0: the namespace conn() gives */
static void established_in(struct fx *f, uint64_t cookie, uint8_t dir, uint32_t netns,
			   uint64_t now)
{
	struct sp_event ev = { .action = SP_ACT_STATE_CHANGE, .has_conn = true };

	ev.conn = conn(cookie, dir, (uint16_t)(40000 + cookie));
	if (netns)
		ev.conn.netns = netns;
	ev.state.old_state = dir == SP_DIR_INGRESS ? SP_ST_SYN_RECV : SP_ST_SYN_SENT;
	ev.state.new_state = SP_ST_ESTABLISHED;
	feed(f, &ev, now);
}

static void established(struct fx *f, uint64_t cookie, uint8_t dir, uint64_t now)
{
	established_in(f, cookie, dir, 0, now);
}

static void transition(struct fx *f, uint64_t cookie, uint8_t from, uint8_t to, uint64_t now)
{
	struct sp_event ev = { .action = SP_ACT_STATE_CHANGE, .has_conn = true };

	ev.conn = conn(cookie, SP_DIR_EGRESS, (uint16_t)(40000 + cookie));
	ev.state.old_state = from;
	ev.state.new_state = to;
	feed(f, &ev, now);
}

static void activity(struct fx *f, uint64_t cookie, uint64_t bytes, uint64_t now)
{
	struct sp_event ev = { .action = SP_ACT_ACTIVITY, .has_conn = true };

	ev.conn = conn(cookie, SP_DIR_EGRESS, (uint16_t)(40000 + cookie));
	ev.activity.segments = 1;
	ev.activity.payload_bytes = bytes;
	feed(f, &ev, now);
}

static void death(struct fx *f, uint64_t cookie, enum sp_action a, uint8_t rst_dir, uint64_t now)
{
	struct sp_event ev = { .action = a, .has_conn = true };

	ev.conn = conn(cookie, SP_DIR_EGRESS, (uint16_t)(40000 + cookie));
	ev.reset.direction = rst_dir;
	feed(f, &ev, now);
}

static const struct sp_event *only(struct fx *f, enum sp_action a, unsigned int kind)
{
	assert_int_equal(f->cap.n, 1);
	assert_int_equal(f->cap.ev[0].action, a);
	assert_int_equal(f->cap.ev[0].lease.kind, kind);
	f->cap.n = 0;
	return &f->cap.ev[0];
}

/*
 * A recovery is told a moment after the renewal (a close right behind it makes it moot), stamped
 * at the renewal: nothing at once, then one line at @at.
 */
static const struct sp_event *recovered(struct fx *f, unsigned int kind, uint64_t at)
{
	const struct sp_event *e;

	assert_int_equal(f->cap.n, 0);
	lease_advance(f->t, at + 10 * MS);
	e = only(f, SP_ACT_LEASE_RECOVERED, kind);
	assert_int_equal(e->mono_ns, at);
	return e;
}

static unsigned int kstate(struct fx *f, uint64_t cookie, unsigned int kind)
{
	struct lease_info li;

	assert_true(lease_get(f->t, cookie, &li));
	return li.state[kind];
}

/* ESTABLISHED arms transport only; silence: SUSPECT at coalesce + TTL/2, EXPIRED at + TTL. */
static void test_transport_lifecycle(void **state)
{
	struct fx *f = fx_new(NULL);
	const struct sp_event *e;
	struct lease_info li;

	established(f, 1, SP_DIR_EGRESS, T0);
	assert_true(lease_get(f->t, 1, &li));
	assert_false(li.payload_armed);
	assert_int_equal(li.state[SP_LEASE_TRANSPORT], LEASE_ALIVE);
	assert_int_equal(lease_stats(f->t)->live, 1);

	lease_advance(f->t, T0 + 6 * SEC - 1); /* 1 s coalescing + 5 s: not yet */
	assert_int_equal(f->cap.n, 0);
	lease_advance(f->t, T0 + 7 * SEC);
	e = only(f, SP_ACT_LEASE_SUSPECT, SP_LEASE_TRANSPORT);
	assert_true(e->mono_ns >= T0 + 6 * SEC && e->mono_ns <= T0 + 7 * SEC);
	assert_true(e->lease.silent_ms >= 5000);
	assert_int_equal(e->lease.ttl_ms, 10000);
	assert_int_equal(e->real_ns, 0);

	lease_advance(f->t, T0 + 11 * SEC - 1);
	assert_int_equal(f->cap.n, 0);
	lease_advance(f->t, T0 + 60 * SEC);
	e = only(f, SP_ACT_LEASE_EXPIRED, SP_LEASE_TRANSPORT);
	assert_true(e->mono_ns >= T0 + 11 * SEC);
	assert_true(e->lease.silent_ms >= 10000 && e->lease.silent_ms < 12000);
	assert_int_equal(lease_stats(f->t)->expirations[SP_LEASE_TRANSPORT], 1);

	/* Holding the state: nothing more, however long. */
	lease_advance(f->t, T0 + 3600 * SEC);
	assert_int_equal(f->cap.n, 0);

	activity(f, 1, 0, T0 + 3601 * SEC);
	e = recovered(f, SP_LEASE_TRANSPORT, T0 + 3601 * SEC);
	/* the silence it ended: since the last report plus one coalescing interval */
	assert_int_equal(e->lease.silent_ms, 3600 * 1000);
	assert_int_equal(kstate(f, 1, SP_LEASE_TRANSPORT), LEASE_ALIVE);
	/* Re-armed after recovery: suspect again after another silence. */
	lease_advance(f->t, T0 + 3620 * SEC);
	assert_int_equal(f->cap.n, 2);
	assert_int_equal(f->cap.ev[0].action, SP_ACT_LEASE_SUSPECT);
	assert_int_equal(f->cap.ev[1].action, SP_ACT_LEASE_EXPIRED);
	f->cap.n = 0;
	/* Recovery from SUSPECT (not only from EXPIRED). */
	activity(f, 1, 0, T0 + 3621 * SEC);
	recovered(f, SP_LEASE_TRANSPORT, T0 + 3621 * SEC);
	lease_advance(f->t, T0 + 3628 * SEC);
	only(f, SP_ACT_LEASE_SUSPECT, SP_LEASE_TRANSPORT);
	activity(f, 1, 0, T0 + 3629 * SEC);
	e = recovered(f, SP_LEASE_TRANSPORT, T0 + 3629 * SEC);
	assert_int_equal(e->lease.silent_ms, 7000);
	assert_int_equal(lease_stats(f->t)->recoveries[SP_LEASE_TRANSPORT], 3);
	fx_free(f);
}

/* Renewals keep a lease alive; expiry counts from the last report plus one coalescing interval. */
static void test_renewal_never_early(void **state)
{
	struct fx *f = fx_new(NULL);
	uint64_t t;

	established(f, 1, SP_DIR_EGRESS, T0);
	for (t = T0 + 3 * SEC; t < T0 + 100 * SEC; t += 3 * SEC)
		activity(f, 1, 0, t);
	assert_int_equal(f->cap.n, 0);
	t -= 3 * SEC; /* last report */
	lease_advance(f->t, t + 1 * SEC + 10 * SEC - 1);
	assert_int_equal(f->cap.n, 1); /* suspect only */
	assert_int_equal(f->cap.ev[0].action, SP_ACT_LEASE_SUSPECT);
	assert_true(f->cap.ev[0].mono_ns >= t + 6 * SEC);
	lease_advance(f->t, t + 20 * SEC);
	assert_int_equal(f->cap.n, 2);
	assert_true(f->cap.ev[1].mono_ns >= t + 11 * SEC);
	/* An out-of-order, older report does not move the lease back in time. */
	activity(f, 1, 0, t - 1 * SEC);
	assert_int_equal(f->cap.n, 2);
	assert_int_equal(kstate(f, 1, SP_LEASE_TRANSPORT), LEASE_EXPIRED);
	fx_free(f);
}

/* Payload is armed by the first data; a peer that only ACKs keeps transport, loses payload. */
static void test_payload_zombie(void **state)
{
	struct fx *f = fx_new(NULL);
	struct lease_info li;
	uint64_t t;

	established(f, 1, SP_DIR_EGRESS, T0);
	activity(f, 1, 0, T0 + 2 * SEC);
	assert_true(lease_get(f->t, 1, &li));
	assert_false(li.payload_armed);
	activity(f, 1, 100, T0 + 4 * SEC);
	assert_true(lease_get(f->t, 1, &li));
	assert_true(li.payload_armed);
	assert_int_equal(lease_stats(f->t)->count[SP_LEASE_PAYLOAD][LEASE_ALIVE], 1);
	/* Keepalive ACKs only from now on. */
	for (t = T0 + 6 * SEC; t <= T0 + 30 * SEC; t += 2 * SEC)
		activity(f, 1, 0, t);
	assert_int_equal(f->cap.n, 2);
	assert_int_equal(f->cap.ev[0].action, SP_ACT_LEASE_SUSPECT);
	assert_int_equal(f->cap.ev[0].lease.kind, SP_LEASE_PAYLOAD);
	assert_true(f->cap.ev[0].mono_ns >= T0 + 10 * SEC);
	assert_int_equal(f->cap.ev[1].action, SP_ACT_LEASE_EXPIRED);
	assert_int_equal(f->cap.ev[1].lease.kind, SP_LEASE_PAYLOAD);
	assert_true(f->cap.ev[1].mono_ns >= T0 + 15 * SEC);
	assert_int_equal(kstate(f, 1, SP_LEASE_TRANSPORT), LEASE_ALIVE);
	f->cap.n = 0;
	/* Data again: payload recovers, transport stays quiet. */
	activity(f, 1, 10, T0 + 31 * SEC);
	recovered(f, SP_LEASE_PAYLOAD, T0 + 31 * SEC);
	fx_free(f);
}

/*
 * The peer's FIN arrives as activity just before the close: a silent lease is not "recovered"
 * at the moment its connection ends, only closed. A recovery that no close follows is told.
 */
static void test_no_recovery_at_close(void **state)
{
	struct fx *f = fx_new(NULL);

	established(f, 1, SP_DIR_EGRESS, T0);
	lease_advance(f->t, T0 + 20 * SEC);
	assert_int_equal(f->cap.n, 2); /* suspect, expired */
	f->cap.n = 0;
	activity(f, 1, 0, T0 + 25 * SEC);			/* the FIN */
	transition(f, 1, SP_ST_ESTABLISHED, SP_ST_CLOSE_WAIT, T0 + 25 * SEC + 7000);
	lease_advance(f->t, T0 + 30 * SEC);
	only(f, SP_ACT_LEASE_CLOSED, SP_LEASE_TRANSPORT);
	assert_int_equal(lease_stats(f->t)->live, 0);
	fx_free(f);
}

/* Orderly shutdown ends every armed kind as CLOSED, at once. */
static void test_closed(void **state)
{
	struct fx *f = fx_new(NULL);

	established(f, 1, SP_DIR_EGRESS, T0);
	activity(f, 1, 5, T0 + SEC);
	transition(f, 1, SP_ST_ESTABLISHED, SP_ST_FIN_WAIT1, T0 + 2 * SEC);
	assert_int_equal(f->cap.n, 2);
	assert_int_equal(f->cap.ev[0].action, SP_ACT_LEASE_CLOSED);
	assert_int_equal(f->cap.ev[0].lease.kind, SP_LEASE_TRANSPORT);
	assert_int_equal(f->cap.ev[1].action, SP_ACT_LEASE_CLOSED);
	assert_int_equal(f->cap.ev[1].lease.kind, SP_LEASE_PAYLOAD);
	assert_int_equal(f->cap.ev[0].mono_ns, T0 + 2 * SEC);
	assert_false(lease_get(f->t, 1, &(struct lease_info){ 0 }));
	f->cap.n = 0;
	/* The rest of the close and late activity: nothing, no new lease. */
	transition(f, 1, SP_ST_FIN_WAIT1, SP_ST_FIN_WAIT2, T0 + 3 * SEC);
	transition(f, 1, SP_ST_FIN_WAIT2, SP_ST_CLOSE, T0 + 4 * SEC);
	activity(f, 1, 5, T0 + 4 * SEC);
	assert_int_equal(f->cap.n, 0);
	assert_int_equal(lease_stats(f->t)->late_activity, 1);
	assert_int_equal(lease_stats(f->t)->live, 0);

	/* Passive close. */
	established(f, 2, SP_DIR_INGRESS, T0 + 5 * SEC);
	transition(f, 2, SP_ST_ESTABLISHED, SP_ST_CLOSE_WAIT, T0 + 6 * SEC);
	only(f, SP_ACT_LEASE_CLOSED, SP_LEASE_TRANSPORT);
	lease_advance(f->t, T0 + 100 * SEC);
	assert_int_equal(f->cap.n, 0);
	assert_int_equal(lease_stats(f->t)->closed, 2);
	fx_free(f);
}

/* A reset before the close: LOST at once, the close that follows says nothing. */
static void test_lost_reset_first(void **state)
{
	struct fx *f = fx_new(NULL);
	const struct sp_event *e;

	established(f, 1, SP_DIR_EGRESS, T0);
	death(f, 1, SP_ACT_RESET, SP_RST_RECEIVED, T0 + SEC);
	e = only(f, SP_ACT_LEASE_LOST, SP_LEASE_TRANSPORT);
	assert_string_equal(e->lease.reason, "reset");
	transition(f, 1, SP_ST_ESTABLISHED, SP_ST_CLOSE, T0 + SEC);
	lease_advance(f->t, T0 + 10 * SEC);
	assert_int_equal(f->cap.n, 0);

	/* A reset we send ends the lease at the close, as reset-sent when nothing names a
	 * cause... */
	established(f, 2, SP_DIR_EGRESS, T0 + 20 * SEC);
	death(f, 2, SP_ACT_RESET, SP_RST_SENT, T0 + 21 * SEC);
	assert_int_equal(f->cap.n, 0);
	transition(f, 2, SP_ST_ESTABLISHED, SP_ST_CLOSE, T0 + 21 * SEC);
	lease_advance(f->t, T0 + 23 * SEC);
	e = only(f, SP_ACT_LEASE_LOST, SP_LEASE_TRANSPORT);
	assert_string_equal(e->lease.reason, "reset-sent");

	/* ...and as keepalive-timeout when the kernel's keepalive gave up (it sends the reset
	 * first, then reports the timeout). */
	established(f, 4, SP_DIR_EGRESS, T0 + 25 * SEC);
	death(f, 4, SP_ACT_RESET, SP_RST_SENT, T0 + 26 * SEC);
	death(f, 4, SP_ACT_KEEPALIVE_TIMEOUT, 0, T0 + 26 * SEC);
	e = only(f, SP_ACT_LEASE_LOST, SP_LEASE_TRANSPORT);
	assert_string_equal(e->lease.reason, "keepalive-timeout");
	transition(f, 4, SP_ST_ESTABLISHED, SP_ST_CLOSE, T0 + 26 * SEC);
	lease_advance(f->t, T0 + 28 * SEC);
	assert_int_equal(f->cap.n, 0);

	established(f, 3, SP_DIR_EGRESS, T0 + 30 * SEC);
	death(f, 3, SP_ACT_RETRANS_TIMEOUT, 0, T0 + 31 * SEC);
	e = only(f, SP_ACT_LEASE_LOST, SP_LEASE_TRANSPORT);
	assert_string_equal(e->lease.reason, "retransmit-timeout");
	assert_int_equal(lease_stats(f->t)->lost, 4);
	fx_free(f);
}

/* Keepalive timeout: the kernel reports it after ESTABLISHED -> CLOSE. Still LOST, once. */
static void test_lost_after_close(void **state)
{
	struct fx *f = fx_new(NULL);
	const struct sp_event *e;

	established(f, 1, SP_DIR_EGRESS, T0);
	activity(f, 1, 1, T0 + SEC); /* payload armed too */
	transition(f, 1, SP_ST_ESTABLISHED, SP_ST_CLOSE, T0 + 2 * SEC);
	assert_int_equal(f->cap.n, 0);
	death(f, 1, SP_ACT_KEEPALIVE_TIMEOUT, 0, T0 + 2 * SEC + 1000);
	assert_int_equal(f->cap.n, 2);
	e = &f->cap.ev[0];
	assert_int_equal(e->action, SP_ACT_LEASE_LOST);
	assert_string_equal(e->lease.reason, "keepalive-timeout");
	assert_int_equal(f->cap.ev[1].lease.kind, SP_LEASE_PAYLOAD);
	f->cap.n = 0;
	lease_advance(f->t, T0 + 100 * SEC);
	assert_int_equal(f->cap.n, 0);
	/* While closing, activity does not renew and no verdict is given. */
	established(f, 2, SP_DIR_EGRESS, T0 + 100 * SEC);
	transition(f, 2, SP_ST_ESTABLISHED, SP_ST_CLOSE, T0 + 101 * SEC);
	activity(f, 2, 1, T0 + 101 * SEC);
	assert_int_equal(f->cap.n, 0);
	fx_free(f);
}

/* A bare ESTABLISHED -> CLOSE with no cause within the grace: CLOSED after the grace. */
static void test_bare_close(void **state)
{
	struct fx *f = fx_new(NULL);
	const struct sp_event *e;

	established(f, 1, SP_DIR_EGRESS, T0);
	transition(f, 1, SP_ST_ESTABLISHED, SP_ST_CLOSE, T0 + SEC);
	lease_advance(f->t, T0 + 2 * SEC - 1);
	assert_int_equal(f->cap.n, 0);
	lease_advance(f->t, T0 + 3 * SEC);
	e = only(f, SP_ACT_LEASE_CLOSED, SP_LEASE_TRANSPORT);
	assert_true(e->mono_ns >= T0 + 2 * SEC);
	/* The cause arriving after the grace changes nothing. */
	death(f, 1, SP_ACT_KEEPALIVE_TIMEOUT, 0, T0 + 4 * SEC);
	assert_int_equal(f->cap.n, 0);
	assert_int_equal(lease_stats(f->t)->closed, 1);
	assert_int_equal(lease_stats(f->t)->lost, 0);
	fx_free(f);
}

/* Connections older than the agent get a lease on their first activity. */
static void test_preexisting(void **state)
{
	struct fx *f = fx_new(NULL);
	struct lease_info li;

	activity(f, 7, 0, T0);
	assert_true(lease_get(f->t, 7, &li));
	assert_false(li.payload_armed);
	activity(f, 8, 100, T0);
	assert_true(lease_get(f->t, 8, &li));
	assert_true(li.payload_armed);
	assert_int_equal(lease_stats(f->t)->created, 2);
	/* No cookie, no lease. */
	activity(f, 0, 100, T0);
	assert_int_equal(lease_stats(f->t)->created, 2);
	assert_int_equal(f->cap.n, 0);
	fx_free(f);
}

/* Seeded from the socket table: alive from the seed, expires a TTL later without news. */
static void test_seed(void **state)
{
	struct fx *f = fx_new(NULL);
	struct sp_conn c = conn(9, SP_DIR_EGRESS, 40009);
	struct lease_info li;

	assert_true(lease_seed(f->t, &c, T0));
	assert_true(lease_get(f->t, 9, &li));
	assert_false(li.payload_armed);
	assert_int_equal(li.state[SP_LEASE_TRANSPORT], LEASE_ALIVE);
	/* Seeding twice is a no-op; no cookie, no lease. */
	assert_false(lease_seed(f->t, &c, T0 + SEC));
	c.cookie = 0;
	assert_false(lease_seed(f->t, &c, T0));
	assert_int_equal(lease_stats(f->t)->created, 1);
	/* Activity renews it like any other lease; silence expires it, never early. */
	activity(f, 9, 10, T0 + 2 * SEC);
	assert_int_equal(f->cap.n, 0);
	lease_advance(f->t, T0 + 2 * SEC + 10 * SEC); /* TTL 10 s, plus one coalescing interval */
	assert_int_equal(lease_stats(f->t)->expirations[SP_LEASE_TRANSPORT], 0);
	lease_advance(f->t, T0 + 2 * SEC + 12 * SEC);
	assert_int_equal(lease_stats(f->t)->expirations[SP_LEASE_TRANSPORT], 1);
	fx_free(f);
}

static size_t count_reason(struct fx *f, uint64_t cookie, const char *reason)
{
	size_t n = 0;

	for (size_t i = 0; i < f->cap.n; i++)
		if (f->cap.ev[i].action == SP_ACT_LEASE_LOST && f->cap.ev[i].conn.cookie == cookie &&
		    f->cap.ev[i].lease.reason && !strcmp(f->cap.ev[i].lease.reason, reason))
			n++;
	return n;
}

/*
 * Socket-table reconciliation: a lease of a walked namespace, heard from before the walk began,
 * not found by it and not already ending, is a candidate; a candidate missing from the next walk
 * too ends LOST "unobserved", one line per armed kind; one whose end arrives in between ends as
 * that end says; one found again is not a candidate any more. A freed slot's mark does not pass
 * to the lease that reuses it; a namespace not walked keeps its candidates.
 */
static void test_resync(void **state)
{
	struct fx *f = fx_new(NULL);
	const uint32_t ns = 4026531840u, both[2] = { 4026531840u, 999 };

	for (uint64_t c = 1; c <= 5; c++)
		established(f, c, SP_DIR_EGRESS, T0);
	activity(f, 5, 100, T0 + SEC); /* payload armed: two lines when it ends */
	established_in(f, 6, SP_DIR_EGRESS, 999, T0); /* a namespace the first walks skip */
	transition(f, 4, SP_ST_ESTABLISHED, SP_ST_CLOSE, T0 + 2 * SEC + SEC / 2); /* closing */
	established(f, 7, SP_DIR_EGRESS, T0 + 3 * SEC); /* made after the first walk began */
	f->cap.n = 0;

	/* walk 1 (began at T0 + 2 s): finds 1 and 2; candidates 3 and 5 */
	lease_resync_seen(f->t, 1);
	lease_resync_seen(f->t, 2);
	lease_resync_seen(f->t, 12345); /* a socket without a lease */
	assert_int_equal(lease_resync_end(f->t, &ns, 1, T0 + 2 * SEC, T0 + 3 * SEC), 0);
	assert_int_equal(f->cap.n, 0);

	transition(f, 3, SP_ST_ESTABLISHED, SP_ST_FIN_WAIT1, T0 + 3 * SEC + SEC / 2);
	only(f, SP_ACT_LEASE_CLOSED, SP_LEASE_TRANSPORT); /* late, not lost: closed as it said */
	lease_advance(f->t, T0 + 5 * SEC);
	only(f, SP_ACT_LEASE_CLOSED, SP_LEASE_TRANSPORT); /* 4: its grace ran out */

	/* walk 2 (T0 + 5 s) finds 1 and 7: candidate 5 is missing again and ends; 2 becomes a
	 * candidate */
	lease_resync_seen(f->t, 1);
	lease_resync_seen(f->t, 7);
	assert_int_equal(lease_resync_end(f->t, &ns, 1, T0 + 5 * SEC, T0 + 6 * SEC), 1);
	assert_int_equal(f->cap.n, 2);
	assert_int_equal(count_reason(f, 5, "unobserved"), 2);
	assert_int_equal(lease_stats(f->t)->unobserved, 1);
	assert_int_equal(lease_stats(f->t)->lost, 1);
	f->cap.n = 0;
	for (uint64_t c = 1; c <= 7; c++) {
		struct lease_info li;

		assert_int_equal(lease_get(f->t, c, &li), c == 1 || c == 2 || c == 6 || c == 7);
	}

	/* walk 3 finds 2 again: no longer a candidate. 7 is missed (a candidate now), then closes
	 * and its slot goes to 8, which walk 4 does not find: a candidate, not ended */
	lease_resync_seen(f->t, 1);
	lease_resync_seen(f->t, 2);
	assert_int_equal(lease_resync_end(f->t, &ns, 1, T0 + 8 * SEC, T0 + 9 * SEC), 0);
	transition(f, 7, SP_ST_ESTABLISHED, SP_ST_FIN_WAIT1, T0 + 10 * SEC);
	established(f, 8, SP_DIR_EGRESS, T0 + 10 * SEC);
	f->cap.n = 0;
	lease_resync_seen(f->t, 1);
	lease_resync_seen(f->t, 2);
	assert_int_equal(lease_resync_end(f->t, &ns, 1, T0 + 12 * SEC, T0 + 13 * SEC), 0);
	assert_int_equal(f->cap.n, 0);

	/* walk 5 covers both namespaces and finds nothing: 8 ends (missing twice); 1, 2 and 6
	 * become candidates; walk 6 (only the first namespace) ends 1 and 2, not 6 */
	assert_int_equal(lease_resync_end(f->t, both, 2, T0 + 14 * SEC, T0 + 15 * SEC), 1);
	assert_int_equal(count_reason(f, 8, "unobserved"), 1);
	assert_int_equal(lease_resync_end(f->t, &ns, 1, T0 + 16 * SEC, T0 + 17 * SEC), 2);
	assert_int_equal(count_reason(f, 1, "unobserved") + count_reason(f, 2, "unobserved"), 2);
	{
		struct lease_info li;

		assert_true(lease_get(f->t, 6, &li));
	}
	assert_int_equal(lease_resync_end(f->t, both, 2, T0 + 18 * SEC, T0 + 19 * SEC), 1);
	assert_int_equal(count_reason(f, 6, "unobserved"), 1);
	assert_int_equal(lease_stats(f->t)->unobserved, 5);
	assert_int_equal(lease_stats(f->t)->live, 0);
	fx_free(f);
}

static void tweak_ports(struct lease_config *c)
{
	c->port_ttl[0] = (struct lease_port_ttl){ .port = 80, .ttl_ns = 2 * SEC };
	c->port_ttl[1] = (struct lease_port_ttl){ .port = 8080, .ttl_ns = 4 * SEC };
	c->n_port_ttl = 2;
}

/* Per-port TTL: the remote service port for egress, the local one for ingress. */
static void test_port_ttl(void **state)
{
	struct fx *f = fx_new(tweak_ports);
	struct lease_info li;

	established(f, 1, SP_DIR_EGRESS, T0);  /* to port 80 */
	established(f, 2, SP_DIR_INGRESS, T0); /* on our port 8080 */
	assert_true(lease_get(f->t, 1, &li));
	assert_int_equal(li.ttl_ns, 2 * SEC);
	assert_true(lease_get(f->t, 2, &li));
	assert_int_equal(li.ttl_ns, 4 * SEC);
	lease_advance(f->t, T0 + 3 * SEC - 1);
	assert_int_equal(lease_stats(f->t)->expirations[SP_LEASE_TRANSPORT], 0);
	lease_advance(f->t, T0 + 4 * SEC);
	assert_int_equal(lease_stats(f->t)->expirations[SP_LEASE_TRANSPORT], 1);
	assert_int_equal(kstate(f, 1, SP_LEASE_TRANSPORT), LEASE_EXPIRED);
	assert_int_equal(kstate(f, 2, SP_LEASE_TRANSPORT), LEASE_SUSPECT);
	lease_advance(f->t, T0 + 6 * SEC);
	assert_int_equal(kstate(f, 2, SP_LEASE_TRANSPORT), LEASE_EXPIRED);
	fx_free(f);
}

static void tweak_phi(struct lease_config *c)
{
	c->ttl_ns = 60 * SEC;
	c->phi_threshold = 8;
	c->phi_min_samples = 8;
	c->phi_min_sd_ns = 1 * SEC;
}

/* A peer heard every second: phi suspects after ~mean + 5.61 sd, long before TTL/2. */
static void test_phi_suspicion(void **state)
{
	struct fx *f = fx_new(tweak_phi);
	const struct sp_event *e;
	struct lease_info li;
	uint64_t t = T0;
	int i;

	established(f, 1, SP_DIR_EGRESS, t);
	for (i = 0; i < 20; i++) {
		t += SEC;
		activity(f, 1, 0, t);
	}
	assert_true(lease_get(f->t, 1, &li));
	assert_int_equal(li.samples[SP_LEASE_TRANSPORT], 20);
	/* mean 1 s, sd floored at 1 s: phi 8 at 1 + 5.612 = 6.612 s of reported silence. */
	lease_advance(f->t, t + 6600 * MS);
	assert_int_equal(f->cap.n, 0);
	lease_advance(f->t, t + 9 * SEC);
	e = only(f, SP_ACT_LEASE_SUSPECT, SP_LEASE_TRANSPORT);
	assert_true(e->mono_ns >= t + 6612 * MS && e->mono_ns <= t + 8 * SEC);
	/* Expiry still waits for the TTL. */
	lease_advance(f->t, t + 61 * SEC - 1);
	assert_int_equal(f->cap.n, 0);
	lease_advance(f->t, t + 70 * SEC);
	only(f, SP_ACT_LEASE_EXPIRED, SP_LEASE_TRANSPORT);
	/* The interval that spanned the silence is not a sample. */
	activity(f, 1, 0, t + 71 * SEC);
	recovered(f, SP_LEASE_TRANSPORT, t + 71 * SEC);
	assert_true(lease_get(f->t, 1, &li));
	assert_int_equal(li.samples[SP_LEASE_TRANSPORT], 20);
	assert_true(li.mean_s[SP_LEASE_TRANSPORT] < 1.01f);
	/* Sub-interval arrivals are merged, not sampled. */
	activity(f, 1, 0, t + 71 * SEC + 300 * MS);
	assert_true(lease_get(f->t, 1, &li));
	assert_int_equal(li.samples[SP_LEASE_TRANSPORT], 20);
	fx_free(f);
}

/*
 * After a ring loss, a lease in a namespace no walk covers is not convicted: when its verdict is
 * due (after the hold) and it was not heard from since the loss, it ends LOST "unobserved" with
 * no SUSPECT or EXPIRED line. One heard from after the loss, and one in a walked namespace, get
 * their verdicts as before.
 */
static void test_blind_after_loss(void **state)
{
	struct fx *f = fx_new(NULL);
	const uint32_t walked = 4026531840u;

	established_in(f, 1, SP_DIR_EGRESS, 999, T0); /* unwalked, silent */
	established_in(f, 2, SP_DIR_EGRESS, 999, T0); /* unwalked, heard after the loss */
	established(f, 3, SP_DIR_EGRESS, T0);	       /* walked, silent */
	f->cap.n = 0;
	lease_hold(f->t, T0 + 3 * SEC);
	lease_blind(f->t, &walked, 1, T0 + 2 * SEC);
	activity(f, 2, 0, T0 + 4 * SEC);
	lease_advance(f->t, T0 + 40 * SEC);
	assert_int_equal(count_reason(f, 1, SP_LEASE_REASON_UNOBSERVED), 1);
	assert_int_equal(count_reason(f, 2, SP_LEASE_REASON_UNOBSERVED), 0);
	assert_int_equal(count_reason(f, 3, SP_LEASE_REASON_UNOBSERVED), 0);
	for (size_t i = 0; i < f->cap.n; i++)
		if (f->cap.ev[i].conn.cookie == 1)
			assert_int_equal(f->cap.ev[i].action, SP_ACT_LEASE_LOST);
	assert_int_equal(lease_stats(f->t)->expirations[SP_LEASE_TRANSPORT], 2); /* 2 and 3 */
	assert_int_equal(lease_stats(f->t)->unobserved, 1);
	assert_false(lease_get(f->t, 1, &(struct lease_info){ 0 }));
	fx_free(f);
}

/* Stall guard: verdicts wait for the hold; one line per state, straight to EXPIRED if due. */
static void test_hold(void **state)
{
	struct fx *f = fx_new(NULL);
	const struct sp_event *e;

	established(f, 1, SP_DIR_EGRESS, T0);
	established(f, 2, SP_DIR_EGRESS, T0);
	lease_hold(f->t, T0 + 30 * SEC);
	lease_advance(f->t, T0 + 29 * SEC);
	assert_int_equal(f->cap.n, 0);
	/* Lease 2 was heard during the hold (its records were late, not absent). */
	activity(f, 2, 0, T0 + 29 * SEC);
	lease_advance(f->t, T0 + 31 * SEC);
	e = only(f, SP_ACT_LEASE_EXPIRED, SP_LEASE_TRANSPORT);
	assert_int_equal(e->conn.cookie, 1);
	assert_true(e->mono_ns >= T0 + 30 * SEC && e->mono_ns <= T0 + 30 * SEC + 19 * SEC / 7);
	assert_int_equal(kstate(f, 2, SP_LEASE_TRANSPORT), LEASE_ALIVE);
	lease_advance(f->t, T0 + 36 * SEC);
	only(f, SP_ACT_LEASE_SUSPECT, SP_LEASE_TRANSPORT); /* lease 2, after the hold */
	/* A closing lease is not held. */
	established(f, 3, SP_DIR_EGRESS, T0 + 40 * SEC);
	lease_hold(f->t, T0 + 100 * SEC);
	transition(f, 3, SP_ST_ESTABLISHED, SP_ST_CLOSE, T0 + 41 * SEC);
	lease_advance(f->t, T0 + 43 * SEC);
	only(f, SP_ACT_LEASE_CLOSED, SP_LEASE_TRANSPORT);
	fx_free(f);
}

static void tweak_small(struct lease_config *c)
{
	c->max_leases = 4;
}

/* Bounded: beyond max_leases the most silent (or an expired) lease is evicted, counted. */
static void test_eviction(void **state)
{
	struct fx *f = fx_new(tweak_small);
	uint64_t c;

	for (c = 1; c <= 4; c++)
		established(f, c, SP_DIR_EGRESS, T0 + c * SEC);
	activity(f, 1, 0, T0 + 5 * SEC); /* 2 is now the most silent */
	established(f, 5, SP_DIR_EGRESS, T0 + 6 * SEC);
	assert_int_equal(lease_stats(f->t)->evicted, 1);
	assert_int_equal(lease_stats(f->t)->live, 4);
	assert_false(lease_get(f->t, 2, &(struct lease_info){ 0 }));
	assert_true(lease_get(f->t, 1, &(struct lease_info){ 0 }));
	assert_true(lease_get(f->t, 5, &(struct lease_info){ 0 }));
	/* An expired lease goes first. */
	lease_advance(f->t, T0 + 18 * SEC);
	activity(f, 1, 0, T0 + 18 * SEC);
	activity(f, 3, 0, T0 + 18 * SEC);
	activity(f, 5, 0, T0 + 18 * SEC);
	established(f, 6, SP_DIR_EGRESS, T0 + 19 * SEC);
	assert_false(lease_get(f->t, 4, &(struct lease_info){ 0 }));
	assert_int_equal(lease_stats(f->t)->evicted, 2);
	assert_int_equal(f->cap.n, 4 * 2 + 3); /* suspect+expired, 3 recoveries; none for evictions */
	fx_free(f);
}

/* Emitted lines carry the connection's facts exactly as they came in. */
static void test_conn_facts(void **state)
{
	struct fx *f = fx_new(NULL);
	struct sp_conn want;
	unsigned int dir;

	for (dir = SP_DIR_EGRESS; dir <= SP_DIR_INGRESS; dir++) {
		established(f, 10 + dir, (uint8_t)dir, T0);
		death(f, 10 + dir, SP_ACT_RESET, SP_RST_RECEIVED, T0 + SEC);
		want = conn(10 + dir, (uint8_t)dir, (uint16_t)(40010 + dir));
		assert_int_equal(f->cap.n, 1);
		assert_true(f->cap.ev[0].has_conn);
		assert_memory_equal(&f->cap.ev[0].conn, &want, sizeof(want));
		f->cap.n = 0;
	}
	fx_free(f);
}

static void sum_conns(void *ctx, const struct lease_peer_info *p)
{
	*(uint32_t *)ctx += p->conns;
}

/* Peers: remote address + service port; counts follow every transition. */
static void test_peer_rollup(void **state)
{
	struct fx *f = fx_new(NULL);
	struct lease_peer_info p;
	struct sp_addr peer = { .family = AF_INET };
	uint32_t conns_seen;

	inet_pton(AF_INET, "10.0.0.2", peer.bytes);
	established(f, 1, SP_DIR_EGRESS, T0);
	established(f, 2, SP_DIR_EGRESS, T0 + 4 * SEC);
	established(f, 3, SP_DIR_EGRESS, T0 + 4 * SEC);
	established(f, 4, SP_DIR_INGRESS, T0 + 4 * SEC); /* same host, other service */
	assert_true(lease_peer_get(f->t, &peer, 4026531840u, 80, &p));
	assert_int_equal(p.conns, 3);
	assert_int_equal(p.count[SP_LEASE_TRANSPORT][LEASE_ALIVE], 3);
	assert_true(lease_peer_get(f->t, &peer, 4026531840u, 8080, &p));
	assert_int_equal(p.conns, 1);
	assert_false(lease_peer_get(f->t, &peer, 1, 80, &p)); /* other namespace */
	assert_int_equal(lease_stats(f->t)->peers, 2);

	lease_advance(f->t, T0 + 7 * SEC); /* cookie 1 suspect */
	assert_true(lease_peer_get(f->t, &peer, 4026531840u, 80, &p));
	assert_int_equal(p.count[SP_LEASE_TRANSPORT][LEASE_SUSPECT], 1);
	assert_int_equal(p.count[SP_LEASE_TRANSPORT][LEASE_ALIVE], 2);
	assert_true(p.last_seen_ns >= T0 + 4 * SEC);
	transition(f, 2, SP_ST_ESTABLISHED, SP_ST_FIN_WAIT1, T0 + 8 * SEC);
	death(f, 3, SP_ACT_RESET, SP_RST_RECEIVED, T0 + 8 * SEC);
	assert_true(lease_peer_get(f->t, &peer, 4026531840u, 80, &p));
	assert_int_equal(p.conns, 1);
	assert_int_equal(p.closed, 1);
	assert_int_equal(p.lost, 1);
	conns_seen = 0;
	assert_int_equal(lease_for_each_peer(f->t, sum_conns, &conns_seen), 2);
	assert_int_equal(conns_seen, 2);
	death(f, 1, SP_ACT_RESET, SP_RST_RECEIVED, T0 + 9 * SEC);
	assert_false(lease_peer_get(f->t, &peer, 4026531840u, 80, &p)); /* last one gone */
	assert_int_equal(lease_stats(f->t)->peers, 1);
	assert_int_equal(lease_stats(f->t)->count[SP_LEASE_TRANSPORT][LEASE_ALIVE] +
				 lease_stats(f->t)->count[SP_LEASE_TRANSPORT][LEASE_SUSPECT],
			 1);
	fx_free(f);
}

/* What lease_for_each_owner reported: the owners by (cgroup, pid), and the sums. */
struct owners_seen {
	struct lease_owner_info o[16];
	size_t n;
	uint32_t sum[SP_LEASE_KIND_MAX][LEASE_STATE_MAX];
};

static void add_owner(void *ctx, const struct lease_owner_info *o)
{
	struct owners_seen *w = ctx;

	if (w->n < 16)
		w->o[w->n++] = *o;
	for (int k = 0; k < SP_LEASE_KIND_MAX; k++)
		for (int s = 0; s < LEASE_STATE_MAX; s++)
			w->sum[k][s] += o->count[k][s];
}

static const struct lease_owner_info *owners(struct fx *f, struct owners_seen *w, uint64_t cg,
					     uint32_t pid)
{
	const struct lease_owner_info *found = NULL;
	size_t n;

	memset(w, 0, sizeof(*w));
	n = lease_for_each_owner(f->t, add_owner, w);
	assert_int_equal(n, w->n);
	assert_memory_equal(w->sum, lease_stats(f->t)->count, sizeof(w->sum));
	for (size_t i = 0; i < w->n; i++)
		if (w->o[i].cgroup_id == cg && w->o[i].pid == pid)
			found = &w->o[i];
	return found;
}

/* Owners: counts follow every transition; a cgroup alone is kept until a process is known. */
static void test_owner_rollup(void **state)
{
	struct fx *f = fx_new(NULL);
	struct owners_seen w;
	const struct lease_owner_info *o;
	struct sp_event ev = { .action = SP_ACT_STATE_CHANGE, .has_conn = true };
	struct sp_conn seed = conn(3, SP_DIR_EGRESS, 40003);

	established(f, 1, SP_DIR_EGRESS, T0); /* curl, pid 42 */
	ev.conn = conn(2, SP_DIR_EGRESS, 40002);
	ev.conn.has_pid = false;
	ev.conn.comm[0] = '\0';
	ev.conn.pid = 0;
	ev.conn.cgroup_id = 7; /* the cgroup, no process */
	ev.state.old_state = SP_ST_SYN_SENT;
	ev.state.new_state = SP_ST_ESTABLISHED;
	feed(f, &ev, T0);
	seed.has_pid = false;
	assert_true(lease_seed(f->t, &seed, T0)); /* nothing known */

	o = owners(f, &w, 0, 42);
	assert_non_null(o);
	assert_true(o->has_pid);
	assert_string_equal(o->comm, "curl");
	assert_int_equal(o->count[SP_LEASE_TRANSPORT][LEASE_ALIVE], 1);
	o = owners(f, &w, 7, 0);
	assert_non_null(o);
	assert_false(o->has_pid);
	assert_string_equal(o->comm, "");
	assert_int_equal(o->count[SP_LEASE_TRANSPORT][LEASE_ALIVE], 1);
	assert_int_equal(w.n, 3); /* and the unowned one */
	assert_int_equal(w.sum[SP_LEASE_TRANSPORT][LEASE_ALIVE], 3);

	/* the cgroup-only lease's lines carry no owner, as before */
	death(f, 9, SP_ACT_RESET, SP_RST_RECEIVED, T0); /* unknown cookie: nothing */
	lease_advance(f->t, T0 + 7 * SEC);	       /* all suspect */
	assert_int_equal(f->cap.n, 3);
	for (unsigned int i = 0; i < f->cap.n; i++)
		if (f->cap.ev[i].conn.cookie == 2)
			assert_false(f->cap.ev[i].conn.has_pid || f->cap.ev[i].conn.cgroup_id);
	f->cap.n = 0;
	o = owners(f, &w, 7, 0);
	assert_int_equal(o->count[SP_LEASE_TRANSPORT][LEASE_SUSPECT], 1);

	/* a process becomes known (with data: the payload lease is armed): the counts move */
	activity(f, 2, 10, T0 + 8 * SEC);
	activity(f, 3, 0, T0 + 8 * SEC);
	lease_advance(f->t, T0 + 8 * SEC + 10 * MS);
	o = owners(f, &w, 0, 42);
	assert_int_equal(o->count[SP_LEASE_TRANSPORT][LEASE_ALIVE], 2);
	assert_int_equal(o->count[SP_LEASE_TRANSPORT][LEASE_SUSPECT], 1);
	assert_int_equal(o->count[SP_LEASE_PAYLOAD][LEASE_ALIVE], 1);
	assert_null(owners(f, &w, 7, 0));
	assert_int_equal(w.n, 1);

	transition(f, 1, SP_ST_ESTABLISHED, SP_ST_FIN_WAIT1, T0 + 9 * SEC);
	death(f, 2, SP_ACT_RESET, SP_RST_RECEIVED, T0 + 9 * SEC);
	death(f, 3, SP_ACT_KEEPALIVE_TIMEOUT, 0, T0 + 9 * SEC);
	assert_null(owners(f, &w, 0, 42));
	assert_int_equal(w.n, 0);
	fx_free(f);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_transport_lifecycle),
		cmocka_unit_test(test_renewal_never_early),
		cmocka_unit_test(test_payload_zombie),
		cmocka_unit_test(test_no_recovery_at_close),
		cmocka_unit_test(test_closed),
		cmocka_unit_test(test_lost_reset_first),
		cmocka_unit_test(test_lost_after_close),
		cmocka_unit_test(test_bare_close),
		cmocka_unit_test(test_preexisting),
		cmocka_unit_test(test_seed),
		cmocka_unit_test(test_resync),
		cmocka_unit_test(test_blind_after_loss),
		cmocka_unit_test(test_port_ttl),
		cmocka_unit_test(test_phi_suspicion),
		cmocka_unit_test(test_hold),
		cmocka_unit_test(test_eviction),
		cmocka_unit_test(test_conn_facts),
		cmocka_unit_test(test_peer_rollup),
		cmocka_unit_test(test_owner_rollup),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
