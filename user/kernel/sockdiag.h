/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * The socket table over NETLINK_SOCK_DIAG (inet_diag, with libmnl), in each network namespace the
 * agent watches: one netlink socket per namespace, made inside it (setns) at start. A dump cycle
 * walks every namespace, IPv4 then IPv6, TCP sockets in every state; it runs incrementally from
 * the event loop (non-blocking sockets behind one epoll descriptor), so a large table never
 * stalls the ring. The start-up dump runs synchronously, before "ready", and hands every socket
 * to a callback: the seeding hook for connections older than the agent.
 */
#ifndef SP_SOCKDIAG_H
#define SP_SOCKDIAG_H

#include <stdbool.h>
#include <stdint.h>

#include "cli.h"
#include "diag.h"

#define SOCKDIAG_NS_MAX (SP_NETNS_WATCH_MAX + 1)

struct mnl_socket;

/* Every socket of a dump; @t says what the dump saw so far (listeners: direction). */
typedef void (*sockdiag_sock_fn)(void *ctx, const struct diag_tally *t, const struct diag_sock *s);
/* A cycle ended; @ok false if a namespace could not be dumped (counts cover the others). */
typedef void (*sockdiag_done_fn)(void *ctx, const struct diag_tally *t, bool ok);

struct sockdiag_ns {
	struct mnl_socket *nl;
	uint32_t inode;
	unsigned int portid;
	uint16_t port_lo, port_hi; /* ip_local_port_range; 0 when unreadable */
};

struct sockdiag {
	struct sockdiag_ns ns[SOCKDIAG_NS_MAX];
	int n_ns;
	int epfd;
	/* the cycle in progress */
	bool busy, cycle_ok;
	int cur, fam;
	uint32_t seq;
	uint64_t started_ns;
	struct diag_tally tally;
	sockdiag_sock_fn on_sock;
	sockdiag_done_fn on_done;
	void *ctx;
	char *buf;
	/* stats */
	uint64_t dumps, errors, parse_errors;
	uint64_t last_duration_ns;
};

/*
 * Opens a netlink socket in each namespace to watch: the --netns one if given, else the agent's
 * own, plus every --netns-watch path. A namespace that cannot be entered (setns needs
 * CAP_SYS_ADMIN) is reported and left out. 0, or -errno when no namespace is usable.
 */
int sockdiag_open(struct sockdiag *sd, const struct config *cfg, sockdiag_done_fn on_done,
		  void *ctx);
/* The descriptor for the event loop (EPOLLIN). */
int sockdiag_fd(const struct sockdiag *sd);
/* Starts a cycle; -EBUSY if one runs. @on_sock may be NULL. */
int sockdiag_start(struct sockdiag *sd, sockdiag_sock_fn on_sock);
/* Reads what arrived; call when sockdiag_fd() is readable. */
void sockdiag_process(struct sockdiag *sd);
/* A whole cycle, waiting up to @timeout_ms. 0, -ETIMEDOUT or -errno. */
int sockdiag_dump_sync(struct sockdiag *sd, sockdiag_sock_fn on_sock, int timeout_ms);
void sockdiag_close(struct sockdiag *sd);

#endif
