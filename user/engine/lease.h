/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Lease table: one lease per established connection, keyed by socket cookie, with two kinds of
 * liveness: transport (any inbound segment) and payload (inbound data; armed on the first data).
 * Each kind goes ALIVE -> SUSPECT -> EXPIRED on silence and back to ALIVE on renewal; the
 * connection ends CLOSED or LOST. Every state change is one event handed to the emit callback;
 * a state that holds is never reported twice.
 *
 * Renewal is lazy: it stores the arrival time and feeds the phi estimate; the timing wheel fires
 * at the earliest possible verdict and the lease is re-armed from the stored time then. Expiry is
 * never early: the kernel reports activity at the first segment of a coalescing interval, so the
 * true last arrival can be up to one interval later than the reported time, and silence is counted
 * from the reported time plus that interval.
 *
 * Closing rule. A tcp-reset, tcp-keepalive-timeout or tcp-retransmit-timeout on a leased cookie
 * ends the lease as LOST at once (the kernel has killed, or is killing, the socket). Leaving
 * ESTABLISHED for FIN_WAIT1 or CLOSE_WAIT (an orderly shutdown began) ends it as CLOSED at once.
 * A direct ESTABLISHED -> CLOSE (abort, reset, timeout) waits close_grace for the record that
 * explains it, because the kernel reports a keepalive or retransmission timeout (and the reset
 * of an abort) after the state change: LOST if one arrives in time, CLOSED otherwise.
 *
 * Memory: a 64-byte lease slab (one cache line), a 16-byte wheel node and a 4-byte hash bucket
 * per lease slot; addresses, owners (pid + comm) and peers are interned and shared.
 */
#ifndef SP_LEASE_H
#define SP_LEASE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "event.h"

#define LEASE_MAX_PORT_TTL 64

enum lease_state {
	LEASE_ALIVE = 0,
	LEASE_SUSPECT,
	LEASE_EXPIRED,
	LEASE_STATE_MAX,
};

struct lease_port_ttl {
	uint16_t port;
	uint64_t ttl_ns;
};

struct lease_config {
	uint64_t ttl_ns;	/* default TTL (30 s) */
	struct lease_port_ttl port_ttl[LEASE_MAX_PORT_TTL]; /* by service port; last one wins */
	uint32_t n_port_ttl;
	uint32_t max_leases;	/* table bound; the oldest silent lease is evicted beyond it */
	uint64_t coalesce_ns;	/* the kernel's activity coalescing interval (1 s) */
	double phi_threshold;	/* suspicion before TTL/2 when phi reaches this (8); 0: off */
	uint32_t phi_min_samples; /* intervals needed before phi is trusted (8) */
	uint64_t phi_min_sd_ns;	/* floor of the interval standard deviation (the coalescing interval) */
	uint64_t close_grace_ns; /* wait for the cause of a bare ESTABLISHED -> CLOSE (1 s) */
};

struct lease_stats {
	uint64_t created;
	uint64_t evicted;	/* dropped to stay within max_leases (no line is emitted) */
	uint64_t closed;
	uint64_t lost;
	uint64_t late_activity;	/* activity for a cookie whose lease just ended: ignored */
	uint64_t unobserved;	/* ended because the socket table no longer had them, or because records
				 * were lost where no walk could check (also in lost) */
	uint64_t suspects[SP_LEASE_KIND_MAX];
	uint64_t expirations[SP_LEASE_KIND_MAX];
	uint64_t recoveries[SP_LEASE_KIND_MAX];
	uint32_t live;		/* connections holding a lease */
	uint32_t peers;
	uint32_t count[SP_LEASE_KIND_MAX][LEASE_STATE_MAX]; /* leases by kind and state */
};

/* Per-peer rollup: remote address and service port (the port that was connected to). */
struct lease_peer_info {
	struct sp_addr addr;
	uint32_t netns;
	uint16_t port;
	uint32_t conns;
	uint32_t count[SP_LEASE_KIND_MAX][LEASE_STATE_MAX];
	uint64_t last_seen_ns;	/* latest transport renewal, refreshed at least every TTL/2 */
	uint64_t closed;	/* connections of this peer ended normally / lost, while it was tracked */
	uint64_t lost;
};

/*
 * The leases of one owner (the process and cgroup a connection belongs to, as the lines carry
 * them), for per-service numbers. Leases with no owner known have cgroup_id 0 and no pid.
 */
struct lease_owner_info {
	uint64_t cgroup_id;	/* 0: not known */
	bool has_pid;
	uint32_t pid;
	char comm[SP_COMM_MAX];	/* "" without a pid */
	uint32_t count[SP_LEASE_KIND_MAX][LEASE_STATE_MAX]; /* its leases by kind and state */
};

struct lease_info {
	uint8_t state[SP_LEASE_KIND_MAX];
	bool payload_armed;
	bool closing;
	uint8_t samples[SP_LEASE_KIND_MAX];
	float mean_s[SP_LEASE_KIND_MAX];
	uint64_t last_ns[SP_LEASE_KIND_MAX];
	uint64_t ttl_ns;
};

typedef void (*lease_emit_fn)(void *ctx, const struct sp_event *ev);

struct lease_table;

void lease_config_default(struct lease_config *cfg);
/* NULL on allocation failure or an invalid config (max_leases 0, ttl 0). */
struct lease_table *lease_new(const struct lease_config *cfg, lease_emit_fn emit, void *ctx,
			      uint64_t now_ns);
void lease_free(struct lease_table *t);

/* Any event; the lease table acts on state changes, activity, resets and timeouts. */
void lease_feed(struct lease_table *t, const struct sp_event *ev);
/*
 * A connection found established in the socket table (sock_diag) at start: its transport
 * lease starts at now, as if the peer had just been heard. false when it already has a lease,
 * when it has no cookie, or when the table cannot take it.
 */
bool lease_seed(struct lease_table *t, const struct sp_conn *c, uint64_t now);
/*
 * Optional: starts loading the hash buckets, then the leases, of a batch of events about to be
 * fed, so their cache misses overlap instead of queueing one renewal behind the other.
 */
void lease_prefetch(const struct lease_table *t, const struct sp_event *evs, size_t n);
/* Runs verdicts due at or before now_ns; emitted events carry the tick they fired at. */
void lease_advance(struct lease_table *t, uint64_t now_ns);
/* Holds SUSPECT/EXPIRED verdicts until until_ns (stall guard); renewals still apply. */
void lease_hold(struct lease_table *t, uint64_t until_ns);

/*
 * Reconciliation with socket-table walks, for connections whose end never reached the agent (a
 * record the kernel did not make or could not hand over). During a walk, _seen() for every
 * socket found; _end() once it is over, with the namespaces it covered completely. A lease
 * there that the walk did not find, last heard from before the walk began (so it existed when
 * its part of the table was read) and not already ending, becomes a candidate; a candidate
 * that the next walk does not find either, and that no event ended in between, ends as LOST
 * with reason "unobserved" (one line per armed kind). Two walks, not one: a socket leaves the
 * table just before the kernel reports its state change, and a walk may miss a socket that
 * moves while it runs. Returns how many leases it ended.
 */
void lease_resync_seen(struct lease_table *t, uint64_t cookie);
/*
 * Ring records were lost at now_ns: a connection whose namespace is not in @walked (the last
 * walk's) may have ended unseen. When a verdict comes due on one (after the hold) and it has not
 * been heard from since the loss, it ends as LOST with reason "unobserved" instead of SUSPECT or
 * EXPIRED: no alert about what the agent could not see.
 */
void lease_blind(struct lease_table *t, const uint32_t *walked, size_t n_walked, uint64_t now_ns);
size_t lease_resync_end(struct lease_table *t, const uint32_t *netns, size_t n_netns,
			uint64_t walk_start_ns, uint64_t now_ns);

const struct lease_stats *lease_stats(const struct lease_table *t);
bool lease_get(const struct lease_table *t, uint64_t cookie, struct lease_info *out);
bool lease_peer_get(const struct lease_table *t, const struct sp_addr *addr, uint32_t netns,
		    uint16_t port, struct lease_peer_info *out);
/* Calls fn for every tracked peer; returns the count. */
size_t lease_for_each_peer(const struct lease_table *t,
			   void (*fn)(void *ctx, const struct lease_peer_info *p), void *ctx);
/*
 * Calls fn for every owner holding leases, then once for the leases without an owner (if any);
 * returns the count. The table keeps these counts as states change: O(owners), no lease walk.
 */
size_t lease_for_each_owner(const struct lease_table *t,
			    void (*fn)(void *ctx, const struct lease_owner_info *o), void *ctx);
size_t lease_bytes(const struct lease_table *t); /* memory held (slab, wheel, hash, interns) */
size_t lease_slot_bytes(void);			  /* fixed cost per lease slot */

#endif
