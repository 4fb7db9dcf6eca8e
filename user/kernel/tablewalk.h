/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Socket-table walks (iter/tcp through sockwalk.c) over the namespaces the agent watches: its
 * own (or --netns), plus every --netns-watch. Each walk:
 *   - finds each socket's owner (procsock: the process holding its inode),
 *   - audits the keepalive settings of established connections (audit.c),
 *   - hands the engine what only the table knows: sockets already stuck in CLOSE_WAIT/FIN_WAIT2
 *     (their age is a lower bound: the time since the last inbound segment), each namespace's
 *     ip_local_port_range, and exact port counts per destination for the forecast,
 *   - and passes every socket and the audit to the caller's hooks (dashboard, metrics).
 *   - reconciles the lease table: a connection that two walks in a row no longer find, and
 *     whose end no event told, is ended as lost ("unobserved"),
 * A walk is synchronous, run at start (before "ready") and every --audit-interval from the
 * event loop's tick: about 3 us per socket for the iterator, and, when owners are needed, about
 * 5 us per socket descriptor on the host to read /proc/PID/fd.
 */
#ifndef SP_TABLEWALK_H
#define SP_TABLEWALK_H

#include <stdbool.h>
#include <stdint.h>

#include "audit.h"
#include "cli.h"
#include "util.h"

struct engine;
struct socktab;
struct sockwalk;
struct tablewalk_pending;
struct procsock;

struct tablewalk_hooks {
	void *ctx;
	/* every socket's owner is wanted (the audit report): /proc is read before each walk;
	 * otherwise only when the walk finds sockets to seed as stuck */
	bool owners;
	/* a walk begins */
	void (*on_start)(void *ctx);
	/* every socket of the walk (listeners and timewait sockets too), owner filled if known */
	void (*on_sock)(void *ctx, const struct audit_sock *s, uint64_t target_ms);
	/* the walk ended; @a: its audit rows (sorted) */
	void (*on_done)(void *ctx, const struct audit *a, bool ok);
};

struct tablewalk {
	const struct config *cfg;
	struct engine *engine; /* NULL: audit only */
	struct sockwalk *sw;
	struct procsock *ps;
	struct audit audit;
	struct audit_walk aw;
	struct tablewalk_hooks hooks;
	struct socktab *socks;	/* NULL: owners and ends of walked sockets are not kept */
	bool owners_next;	/* the next walk reads /proc (owners for the socket table) */
	bool owners_now;	/* this walk did */
	uint64_t owner_walks;	/* owner-only walks (a socket showed up with no known owner) */
	uint64_t last_owner_walk_ns;
	const char *paths[SP_NETNS_WATCH_MAX + 1]; /* NULL: the agent's own namespace */
	char own_path[128];
	int n_paths;
	uint64_t now_ns, next_ns;
	bool ok;
	/* stats */
	uint64_t walks, errors, sockets, seeded_stuck, decode_errors;
	uint64_t owner_overflow; /* sockets whose owner did not fit the inode map */
	uint32_t owners_cap;	 /* the inode map's size: grows with the host's sockets */
	struct tablewalk_pending *pending; /* stuck sockets waiting for their owner */
	uint32_t n_pending;
	uint64_t owner_scans;
	uint64_t last_duration_ns;
	/* lease reconciliation: the namespaces the walk covered (the lease table counts the ends) */
	uint32_t walked[SP_NETNS_WATCH_MAX + 1];
};

/*
 * Loads the iterator. 0, or -errno with one line printed saying why (the caller goes on
 * without walks: stuck sockets and port counts then come from events only).
 */
int tablewalk_open(struct tablewalk *tw, const struct config *cfg, struct engine *engine,
		   const struct tablewalk_hooks *hooks);
/* One walk now. 0, or -errno when no namespace could be walked. */
int tablewalk_run(struct tablewalk *tw, uint64_t now_ns);
/* From the loop's tick, after the ring is drained: a walk when --audit-interval has passed. */
void tablewalk_tick(struct tablewalk *tw, uint64_t now_ns);
/*
 * Owners only: the sockets of the watched namespaces and the processes holding them, into
 * tw->socks, for sockets that showed up with no owner the BPF side could see (older than the
 * agent, or accepted by a listener older than the agent before accept() ran). No audit, no
 * engine. At most one every TABLEWALK_OWNER_GAP_NS; returns -EAGAIN before that.
 */
#define TABLEWALK_OWNER_GAP_NS (2 * NSEC_PER_SEC)
int tablewalk_owners(struct tablewalk *tw, uint64_t now_ns);
/* Whether walks cover network namespace @netns (the last walk did). */
bool tablewalk_covers(const struct tablewalk *tw, uint32_t netns);
/* The TTL whose detection the audit suggests (the service port's lease TTL). */
uint64_t tablewalk_target_ms(const struct config *cfg, uint16_t service_port);
void tablewalk_close(struct tablewalk *tw);

#endif
