/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Owners and ends for lines the ring records leave incomplete: sockets and listeners older than
 * the agent (from the walk), children of such listeners, a task's own word over an inference,
 * the swap of source and destination, forgetting at CLOSE, a full table, and growth.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <sys/socket.h>
#include <cmocka.h>

#include "sockpulse.h"
#include "socktab.h"

#define NETNS 4026531840u
#define SVC 9110
#define EPH 41000

static void addr4(struct sp_addr *a, uint8_t last)
{
	memset(a, 0, sizeof(*a));
	a->family = AF_INET;
	a->bytes[0] = 127;
	a->bytes[3] = last;
}

/* A ring event as decode makes it: local end first unless the record said ingress. */
static struct sp_event state_ev(uint64_t cookie, uint8_t dir, uint16_t lport, uint16_t rport,
				uint8_t from, uint8_t to)
{
	struct sp_event ev;

	memset(&ev, 0, sizeof(ev));
	ev.action = SP_ACT_STATE_CHANGE;
	ev.has_conn = true;
	ev.conn.cookie = cookie;
	ev.conn.netns = NETNS;
	ev.conn.direction = dir;
	ev.conn.has_ports = true;
	addr4(&ev.conn.src, 1);
	addr4(&ev.conn.dst, 2);
	if (dir == SP_DIR_INGRESS) {
		ev.conn.sport = rport;
		ev.conn.dport = lport;
	} else {
		ev.conn.sport = lport;
		ev.conn.dport = rport;
	}
	ev.state.old_state = from;
	ev.state.new_state = to;
	return ev;
}

static void owned(struct sp_conn *c, uint32_t pid, const char *comm, uint8_t source)
{
	c->has_pid = true;
	c->pid = pid;
	c->owner_source = source;
	strncpy(c->comm, comm, sizeof(c->comm) - 1);
}

/* What the walk hands over: oriented by audit_decode, owner from /proc. */
static struct sp_conn walked(uint64_t cookie, uint8_t dir, uint16_t lport, uint16_t rport,
			     uint32_t pid, const char *comm)
{
	struct sp_event ev = state_ev(cookie, dir, lport, rport, 0, 0);

	if (pid)
		owned(&ev.conn, pid, comm, SP_OWNER_TABLE);
	return ev.conn;
}

static void test_child_of_old_listener(void **state)
{
	struct socktab *t = socktab_new(64, 8);
	struct sp_conn l = walked(1, SP_DIR_UNKNOWN, SVC, 0, 100, "server");
	struct sp_event ev;

	(void)state;
	assert_non_null(t);
	socktab_walked(t, &l, true);
	/* the child's SYN_RECV: the BPF side knew no owner, but knew the direction */
	ev = state_ev(7, SP_DIR_INGRESS, SVC, EPH, SP_ST_LISTEN, SP_ST_SYN_RECV);
	assert_false(socktab_enrich(t, &ev));
	assert_true(ev.conn.has_pid);
	assert_int_equal(ev.conn.pid, 100);
	assert_string_equal(ev.conn.comm, "server");
	assert_int_equal(ev.conn.owner_source, SP_OWNER_LISTENER);
	assert_int_equal(ev.conn.dport, SVC);

	/* accept() named the worker: from then on the task's word, also on lines without it */
	ev = state_ev(7, SP_DIR_INGRESS, SVC, EPH, SP_ST_ESTABLISHED, SP_ST_CLOSE_WAIT);
	owned(&ev.conn, 101, "worker", SP_OWNER_TASK);
	socktab_enrich(t, &ev);
	ev = state_ev(7, SP_DIR_INGRESS, SVC, EPH, SP_ST_CLOSE_WAIT, SP_ST_LAST_ACK);
	owned(&ev.conn, 100, "server", SP_OWNER_LISTENER);
	socktab_enrich(t, &ev);
	assert_int_equal(ev.conn.pid, 101);
	assert_int_equal(ev.conn.owner_source, SP_OWNER_TASK);
	socktab_free(t);
}

static void test_old_connection_both_ends(void **state)
{
	struct socktab *t = socktab_new(8192, 8);
	struct sp_conn srv = walked(20, SP_DIR_INGRESS, SVC, EPH, 100, "server");
	struct sp_conn cli = walked(21, SP_DIR_EGRESS, EPH, SVC, 200, "client");
	struct sp_event ev;

	(void)state;
	socktab_walked(t, &srv, false);
	socktab_walked(t, &cli, false);

	/* the server end, from a record without direction: local end first, so it flips */
	ev = state_ev(20, SP_DIR_UNKNOWN, SVC, EPH, SP_ST_ESTABLISHED, SP_ST_CLOSE_WAIT);
	assert_false(socktab_enrich(t, &ev));
	assert_int_equal(ev.conn.direction, SP_DIR_INGRESS);
	assert_int_equal(ev.conn.sport, EPH);
	assert_int_equal(ev.conn.dport, SVC);
	assert_int_equal(ev.conn.src.bytes[3], 2);
	assert_int_equal(ev.conn.dst.bytes[3], 1);
	assert_int_equal(ev.conn.pid, 100);
	assert_int_equal(ev.conn.owner_source, SP_OWNER_TABLE);

	/* the client end keeps its orientation and gains its direction and owner */
	ev = state_ev(21, SP_DIR_UNKNOWN, EPH, SVC, SP_ST_ESTABLISHED, SP_ST_FIN_WAIT1);
	socktab_enrich(t, &ev);
	assert_int_equal(ev.conn.direction, SP_DIR_EGRESS);
	assert_int_equal(ev.conn.dport, SVC);
	assert_int_equal(ev.conn.pid, 200);

	/* a task's word beats the walk's, and stays */
	ev = state_ev(21, SP_DIR_UNKNOWN, EPH, SVC, SP_ST_FIN_WAIT1, SP_ST_FIN_WAIT2);
	owned(&ev.conn, 201, "client-thread", SP_OWNER_TASK);
	socktab_enrich(t, &ev);
	cli.pid = 999;
	socktab_walked(t, &cli, false);
	ev = state_ev(21, SP_DIR_UNKNOWN, EPH, SVC, SP_ST_FIN_WAIT2, SP_ST_FIN_WAIT2);
	socktab_enrich(t, &ev);
	assert_int_equal(ev.conn.pid, 201);
	assert_int_equal(ev.conn.owner_source, SP_OWNER_TASK);

	/* records after CLOSE (the reset of an abortive close) still know the socket... */
	ev = state_ev(21, SP_DIR_UNKNOWN, EPH, SVC, SP_ST_FIN_WAIT2, SP_ST_CLOSE);
	socktab_enrich(t, &ev);
	ev = state_ev(21, SP_DIR_UNKNOWN, EPH, SVC, SP_ST_CLOSE, SP_ST_CLOSE);
	ev.action = SP_ACT_RESET;
	socktab_enrich(t, &ev);
	assert_int_equal(ev.conn.pid, 201);
	/* ...through SOCKTAB_CLOSED_DELAY - 1 later closes... */
	for (uint64_t c = 1000; c < 1000 + SOCKTAB_CLOSED_DELAY - 1; c++) {
		ev = state_ev(c, SP_DIR_EGRESS, EPH, SVC, SP_ST_FIN_WAIT2, SP_ST_CLOSE);
		socktab_enrich(t, &ev);
	}
	ev = state_ev(21, SP_DIR_UNKNOWN, EPH, SVC, SP_ST_CLOSE, SP_ST_CLOSE);
	ev.action = SP_ACT_RESET;
	socktab_enrich(t, &ev);
	assert_int_equal(ev.conn.pid, 201);
	/* ...until one more pushes it out */
	ev = state_ev(999, SP_DIR_EGRESS, EPH, SVC, SP_ST_FIN_WAIT2, SP_ST_CLOSE);
	socktab_enrich(t, &ev);
	ev = state_ev(21, SP_DIR_UNKNOWN, EPH, SVC, SP_ST_CLOSE, SP_ST_CLOSE);
	ev.action = SP_ACT_RESET;
	socktab_enrich(t, &ev);
	assert_false(ev.conn.has_pid);
	socktab_free(t);
}

static void test_listener_lines(void **state)
{
	struct socktab *t = socktab_new(64, 8);
	struct sp_conn l = walked(1, SP_DIR_UNKNOWN, SVC, 0, 100, "server");
	struct sp_event ev;

	(void)state;
	socktab_walked(t, &l, true);
	/* an old listener's close carries the walk's owner, and then it is gone */
	ev = state_ev(1, SP_DIR_UNKNOWN, SVC, 0, SP_ST_LISTEN, SP_ST_CLOSE);
	socktab_enrich(t, &ev);
	assert_int_equal(ev.conn.pid, 100);
	assert_int_equal(ev.conn.owner_source, SP_OWNER_TABLE);
	ev = state_ev(8, SP_DIR_UNKNOWN, SVC, EPH, SP_ST_ESTABLISHED, SP_ST_CLOSE_WAIT);
	socktab_enrich(t, &ev);
	assert_false(ev.conn.has_pid);
	assert_int_equal(ev.conn.direction, SP_DIR_UNKNOWN);

	/* a new listener, seen in its task: its children's lines name it */
	ev = state_ev(2, SP_DIR_UNKNOWN, SVC, 0, SP_ST_CLOSE, SP_ST_LISTEN);
	owned(&ev.conn, 300, "nginx", SP_OWNER_TASK);
	socktab_enrich(t, &ev);
	ev = state_ev(9, SP_DIR_UNKNOWN, SVC, EPH, SP_ST_ESTABLISHED, SP_ST_CLOSE_WAIT);
	socktab_enrich(t, &ev);
	assert_int_equal(ev.conn.pid, 300);
	assert_int_equal(ev.conn.owner_source, SP_OWNER_LISTENER);
	assert_int_equal(ev.conn.direction, SP_DIR_INGRESS);
	assert_int_equal(ev.conn.dport, SVC);
	socktab_free(t);
}

static void test_walk_wanted_once(void **state)
{
	struct socktab *t = socktab_new(64, 8);
	struct sp_event ev = state_ev(30, SP_DIR_UNKNOWN, EPH, SVC, SP_ST_ESTABLISHED,
				      SP_ST_FIN_WAIT1);

	(void)state;
	assert_true(socktab_enrich(t, &ev));
	ev = state_ev(30, SP_DIR_UNKNOWN, EPH, SVC, SP_ST_FIN_WAIT1, SP_ST_FIN_WAIT2);
	assert_false(socktab_enrich(t, &ev));
	/* an owner seen in the task needs no walk */
	ev = state_ev(31, SP_DIR_EGRESS, EPH, SVC, SP_ST_CLOSE, SP_ST_SYN_SENT);
	owned(&ev.conn, 5, "curl", SP_OWNER_TASK);
	assert_false(socktab_enrich(t, &ev));
	socktab_free(t);
}

static void test_full_table(void **state)
{
	struct socktab *t = socktab_new(16, 2);
	struct socktab_stats st;
	struct sp_event ev;

	(void)state;
	for (uint64_t c = 1; c <= 100; c++) {
		struct sp_conn w = walked(c, SP_DIR_EGRESS, EPH, SVC, (uint32_t)c, "p");

		socktab_walked(t, &w, false);
	}
	socktab_stats(t, &st);
	assert_int_equal(st.socks, 16);
	assert_int_equal(st.evicted, 84);
	/* the newest is there; what is there is right */
	ev = state_ev(100, SP_DIR_UNKNOWN, EPH, SVC, SP_ST_ESTABLISHED, SP_ST_FIN_WAIT1);
	socktab_enrich(t, &ev);
	assert_int_equal(ev.conn.pid, 100);
	/* removals (after SOCKTAB_CLOSED_DELAY later closes) keep every remaining entry reachable */
	for (uint64_t c = 1; c <= 100; c++) {
		ev = state_ev(c, SP_DIR_UNKNOWN, EPH, SVC, SP_ST_FIN_WAIT1, SP_ST_CLOSE);
		socktab_enrich(t, &ev);
		assert_true(!ev.conn.has_pid || ev.conn.pid == c);
	}
	for (uint64_t c = 1000; c < 1000 + SOCKTAB_CLOSED_DELAY; c++) {
		ev = state_ev(c, SP_DIR_EGRESS, EPH, SVC, SP_ST_FIN_WAIT1, SP_ST_CLOSE);
		socktab_enrich(t, &ev);
	}
	socktab_stats(t, &st);
	assert_true(st.socks <= 16);
	for (uint64_t c = 1; c <= 100; c++) {
		ev = state_ev(c, SP_DIR_UNKNOWN, EPH, SVC, SP_ST_CLOSE, SP_ST_CLOSE);
		ev.action = SP_ACT_RESET;
		socktab_enrich(t, &ev);
		assert_false(ev.conn.has_pid);
	}
	assert_null(socktab_new(0, 1));
	socktab_free(t);
}

/* The table grows as sockets arrive (from a small start to its limit) and keeps every one. */
static void test_growth(void **state)
{
	struct socktab *t = socktab_new(1u << 14, 2);
	struct socktab_stats st;
	struct sp_event ev;

	(void)state;
	for (uint64_t c = 1; c <= (1u << 14); c++) {
		struct sp_conn w = walked(c * 7919, SP_DIR_EGRESS, EPH, SVC, (uint32_t)c, "g");

		socktab_walked(t, &w, false);
	}
	socktab_stats(t, &st);
	assert_int_equal(st.socks, 1u << 14);
	assert_int_equal(st.evicted, 0);
	for (uint64_t c = 1; c <= (1u << 14); c++) {
		ev = state_ev(c * 7919, SP_DIR_UNKNOWN, EPH, SVC, SP_ST_ESTABLISHED, SP_ST_FIN_WAIT1);
		socktab_enrich(t, &ev);
		assert_true(ev.conn.has_pid);
		assert_int_equal(ev.conn.pid, c);
	}
	/* at the limit it forgets to make room, as before */
	for (uint64_t c = 1; c <= 100; c++) {
		struct sp_conn w = walked(c, SP_DIR_EGRESS, EPH, SVC, (uint32_t)c, "h");

		socktab_walked(t, &w, false);
	}
	socktab_stats(t, &st);
	assert_int_equal(st.socks, 1u << 14);
	assert_int_equal(st.evicted, 100);
	socktab_free(t);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_child_of_old_listener),
		cmocka_unit_test(test_old_connection_both_ends),
		cmocka_unit_test(test_listener_lines),
		cmocka_unit_test(test_walk_wanted_once),
		cmocka_unit_test(test_full_table),
		cmocka_unit_test(test_growth),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
