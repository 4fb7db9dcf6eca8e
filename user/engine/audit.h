/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Keepalive audit: what each established connection's keepalive settings imply, and a rollup
 * per service port and process. Pure logic: fed the records of a socket-table walk
 * (struct sp_sockinfo, see bpf/sockwalk.bpf.c), no I/O but the report it prints.
 *
 * Detection time is the worst case, from the peer's death (or the path's) to TCP noticing:
 * - an idle connection notices only by keepalive: idle + probes * interval after the last
 *   segment heard (the kernel checks at idle, then every interval, and gives up once @probes
 *   probes are out); with TCP_USER_TIMEOUT the check instead gives up at the first probe time
 *   at or past the user timeout, at least one probe out. Without SO_KEEPALIVE: never.
 * - a connection with data in flight notices by retransmission timeout: TCP_USER_TIMEOUT when
 *   set, else the kernel's model of tcp_retries2 exponential backoffs (RTO 200 ms doubling to
 *   120 s: 924.6 s for the default 15).
 */
#ifndef SP_AUDIT_H
#define SP_AUDIT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "event.h"
#include "sockpulse.h"

#define KA_NEVER UINT64_MAX

struct ka_settings {
	bool enabled;	     /* SO_KEEPALIVE */
	uint8_t from_socket; /* SP_W_KA_* bits: set on the socket, not the sysctl */
	uint32_t idle_ms, intvl_ms, probes;
	uint32_t user_timeout_ms; /* 0: unset */
	uint32_t retries2;
};

/* Idle connection: worst-case ms until a dead peer is noticed; KA_NEVER without keepalive. */
uint64_t ka_idle_detect_ms(const struct ka_settings *k);
/* Data in flight: ms until retransmissions give up. */
uint64_t ka_busy_detect_ms(const struct ka_settings *k);
/*
 * Settings that notice a dead idle peer within @target_ms (whole seconds, as the socket
 * options take them): idle half the target, three probes over the other half, and the same
 * TCP_USER_TIMEOUT for data in flight. Targets under 4 s are raised to 4 s.
 */
void ka_suggest(uint64_t target_ms, struct ka_settings *out);

/* One socket of a walk, decoded. */
struct audit_sock {
	struct sp_conn conn;   /* ECS sides (source = the side that connected), owner if known */
	uint8_t state;	       /* enum sp_tcp_state */
	uint16_t flags;	       /* SP_W_* */
	uint16_t service_port; /* the listening side's port */
	uint64_t inode;
	struct ka_settings ka;
	uint64_t last_recv_ms; /* since the last inbound segment */
	uint64_t tw_left_ms;   /* timewait sockets: until they go */
};

/*
 * Decodes one walk record. @hz converts jiffies (the record's own when set). Listeners must come
 * before the connections of their namespace, as the kernel's walk gives them: they decide the
 * direction (a local port with a listener was accepted). 0, or -EINVAL (bad size, family,
 * state) / -ENODATA (no HZ known).
 */
struct audit_walk {
	uint32_t netns;
	uint8_t listen_ports[65536 / 8];
	uint16_t port_lo, port_hi; /* the namespace's ip_local_port_range; 0: not known */
};
void audit_walk_reset(struct audit_walk *w, uint32_t netns);
int audit_decode(struct audit_walk *w, const void *rec, size_t len, uint32_t hz,
		 struct audit_sock *out);

/* A rollup row: established connections of one service port, direction and process. */
struct audit_row {
	uint16_t service_port;
	uint8_t direction;
	uint32_t pid; /* 0: unknown */
	char comm[SP_COMM_MAX];
	uint32_t conns;
	uint32_t without_keepalive;
	uint32_t socket_set; /* connections with keepalive options set on the socket */
	uint64_t worst_ms;   /* worst idle detection; KA_NEVER if any lacks keepalive */
	uint64_t best_ms;
	struct ka_settings worst; /* the settings of the worst connection */
	/* among the connections with keepalive (worst_on_ms 0: none has it) */
	uint64_t worst_on_ms;
	struct ka_settings worst_on;
	uint64_t busy_worst_ms;
	uint64_t target_ms; /* what the suggestion aims at (the port's lease TTL) */
};

struct audit {
	struct audit_row *rows;
	size_t n, cap;
	uint64_t connections; /* established connections audited */
	uint64_t overflow;    /* connections whose row did not fit */
};

int audit_init(struct audit *a, size_t max_rows);
void audit_free(struct audit *a);
void audit_reset(struct audit *a);
/* Adds an established connection (others are ignored); @target_ms for its suggestion. */
void audit_add(struct audit *a, const struct audit_sock *s, uint64_t target_ms);
/* Rows ordered by service port, direction, then process. */
void audit_sort(struct audit *a);

/* "2h0m", "924.6s", "30s", "never" */
size_t audit_fmt_ms(char *buf, size_t cap, uint64_t ms);
/* The report: a table, or JSON lines (keepalive-audit, one per row; *seq numbers them). */
void audit_print_text(FILE *out, const struct audit *a);
void audit_print_json(FILE *out, const struct audit *a, uint64_t real_ns, uint64_t *seq);
/* One connection as a JSON line (keepalive-audit-connection) / a text line. */
void audit_print_sock_json(FILE *out, const struct audit_sock *s, uint64_t target_ms,
			   uint64_t real_ns, uint64_t *seq);
void audit_print_sock_text(FILE *out, const struct audit_sock *s, uint64_t target_ms);

#endif
