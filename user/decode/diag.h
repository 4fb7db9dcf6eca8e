/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * sock_diag (inet_diag) messages: parsing of SOCK_DIAG_BY_FAMILY replies into struct diag_sock,
 * and the tally a dump makes (sockets per state, TIME_WAIT per destination). Pure logic, no
 * netlink socket: user/sockdiag.c does the I/O. Every message is untrusted: lengths, family and
 * state are checked before use.
 */
#ifndef SP_DIAG_H
#define SP_DIAG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "event.h"
#include "metrics.h"

#define DIAG_DEST_MAX 4096 /* distinct TIME_WAIT destinations counted apart per dump */

struct diag_sock {
	struct sp_addr local, remote;
	uint16_t lport, rport; /* host order */
	uint8_t state;	       /* enum sp_tcp_state */
	uint8_t timer, retrans;
	uint32_t expires_ms;
	uint32_t rqueue, wqueue;
	uint32_t uid, inode;
	uint64_t cookie; /* the socket cookie: the same value BPF reports */
	uint32_t netns;	 /* set by the caller: the namespace dumped */
};

/*
 * Parses one netlink message of @len bytes (header included). 0, -EINVAL (not an inet_diag reply,
 * truncated, unknown family) or -ERANGE (state out of range).
 */
int diag_parse(const void *msg, size_t len, struct diag_sock *out);

/*
 * Builds an inet_diag dump request for TCP sockets of @family in every state into @buf.
 * Returns its length, or 0 if @cap is too small.
 */
size_t diag_build_request(void *buf, size_t cap, uint8_t family, uint32_t seq);

struct diag_dest_count {
	struct sp_addr addr;
	uint16_t port;
	uint64_t count;
};

struct diag_tally {
	uint64_t states[SP_ST_MAX];
	uint64_t sockets;
	uint64_t established_seen;
	uint8_t listen_ports[65536 / 8]; /* of the namespace being dumped */
	uint16_t port_lo, port_hi;	 /* its ip_local_port_range; 0: not known */
	struct diag_dest_count *dests;	 /* open addressing, DIAG_DEST_MAX * 2 slots */
	uint32_t n_dests;
	uint64_t dest_overflow; /* TIME_WAIT sockets not counted apart */
};

int diag_tally_init(struct diag_tally *t);
void diag_tally_free(struct diag_tally *t);
/* Starts a new dump cycle: zero counts. */
void diag_tally_reset(struct diag_tally *t);
/* Starts a new namespace within a cycle: listening ports and the port range are per namespace
 * (@lo..@hi its ip_local_port_range, 0..0 when not known). */
void diag_tally_next_netns(struct diag_tally *t, uint16_t lo, uint16_t hi);
void diag_tally_add(struct diag_tally *t, const struct diag_sock *s);
/*
 * Which side of a connection was connected to, for a socket of the namespace being dumped: the
 * local side when a listener there has the local port (listeners come first in a dump), or when
 * only the remote port is in the namespace's ephemeral range (the listener is gone, say a server
 * side in TIME_WAIT), else the remote side. SP_DIR_INGRESS (we accepted it) or SP_DIR_EGRESS.
 */
uint8_t diag_direction(const struct diag_tally *t, const struct diag_sock *s);
/* The connection facts of an existing socket, as an event would carry them. */
void diag_to_conn(const struct diag_tally *t, const struct diag_sock *s, struct sp_conn *c);
/* Top @n destinations by TIME_WAIT sockets, largest first; returns how many; *other the rest. */
unsigned int diag_tally_top(const struct diag_tally *t, struct metrics_dest *out, unsigned int n,
			    uint64_t *other);

#endif
