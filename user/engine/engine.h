/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * The engine: lease table, connect-failure spike detector, stuck half-closed sockets and the
 * ephemeral-port forecast behind one interface, fed with normalized events (live from the
 * decoder, or from `sockpulse replay`) and emitting its own events (lease-*,
 * connect-failure-spike, tcp-stuck, port-exhaustion-risk) through a callback. Plain C, no libbpf,
 * no clock: the engine's time is the mono_ns of what it is fed and the now_ns of engine_tick().
 *
 * Emitted events carry mono_ns = the engine's time of the verdict (a timer verdict carries the
 * tick it fired at, so replay and live agree) and real_ns = 0: the caller fills real_ns from its
 * monotonic -> realtime offset (replay: mono_ns itself). Lease lines carry the connection facts
 * of the lease's connection; spike lines carry destination address, port and netns only.
 *
 * Stall guard: when engine_tick() is called more than stall_ns after the previous call (the
 * agent's loop was descheduled or stuck), or an events-lost event is fed (the kernel dropped
 * records), SUSPECT/EXPIRED verdicts are held for hold_ns, renewals still apply, and the hold
 * callback (engine_set_hold_fn) is called once per hold; a trigger during a hold extends it
 * without a second call.
 */
#ifndef SP_ENGINE_H
#define SP_ENGINE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "event.h"
#include "lease.h"
#include "portfc.h"
#include "spike.h"
#include "stuck.h"

struct engine_config {
	struct lease_config lease;
	struct spike_config spike;
	struct stuck_config stuck;
	struct portfc_config ports;
	uint64_t stall_ns; /* tick gap that counts as an agent stall (2 s); 0: off (replay) */
	uint64_t hold_ns;  /* how long verdicts are held after a stall or loss (5 s) */
};

/* A stall-guard hold: verdicts wait until until_ns. */
struct engine_hold {
	uint64_t mono_ns;   /* when the hold started */
	uint64_t until_ns;
	const char *reason; /* "agent-stall" or "events-lost" */
	uint64_t stall_ns;  /* agent-stall: the gap between ticks */
	uint64_t lost;	    /* events-lost: records lost (the event's count) */
};

struct engine_stats {
	uint64_t fed;	  /* events fed */
	uint64_t emitted; /* events emitted */
	uint64_t holds;	  /* holds started */
	uint64_t hold_until_ns;
};

typedef void (*engine_emit_fn)(void *ctx, const struct sp_event *ev);

/* The lease-hold line that tells of a hold (the caller fills real_ns). */
void engine_hold_event(const struct engine_hold *hold, struct sp_event *ev);
typedef void (*engine_hold_fn)(void *ctx, const struct engine_hold *hold);

struct engine;

/* Defaults of DESIGN.md: TTL 30 s, 1M leases, phi 8, spike thresholds, 2 s stall, 5 s hold. */
void engine_config_default(struct engine_config *cfg);
/*
 * --lease-ttl: "DURATION" sets the default TTL, "PORT=DURATION" overrides one service port
 * (a later override of the same port replaces it). 0 or -EINVAL (syntax, port 0 or > 65535,
 * zero TTL), -ERANGE (overflow), -ENOSPC (more than LEASE_MAX_PORT_TTL ports).
 */
int engine_parse_lease_ttl(struct engine_config *cfg, const char *arg);

/* NULL when the config is invalid or memory is short. */
struct engine *engine_new(const struct engine_config *cfg, engine_emit_fn emit, void *ctx);
void engine_free(struct engine *e);
void engine_set_hold_fn(struct engine *e, engine_hold_fn fn, void *ctx);

/* Runs the verdicts due before ev->mono_ns, then applies the event. Any action is accepted. */
void engine_feed(struct engine *e, const struct sp_event *ev);
/*
 * The same as engine_feed() on each event in order, with the lease lookups of the batch
 * prefetched first: several times faster per renewal with a large table. Batch what one ring
 * drain delivered (e.g. up to 64 events).
 */
void engine_feed_batch(struct engine *e, const struct sp_event *evs, size_t n);
/* A connection already established when the agent started (see lease_seed()). */
bool engine_seed(struct engine *e, const struct sp_conn *c, uint64_t now_ns);
/* A socket already in CLOSE_WAIT/FIN_WAIT2 at start, since at least entered_ns (stuck_seed()). */
bool engine_seed_stuck(struct engine *e, const struct sp_conn *c, uint8_t state,
		       uint64_t entered_ns, uint64_t now_ns);
/* Periodic (the agent's timerfd, e.g. every 100 ms): verdicts due at now_ns, stall check. */
void engine_tick(struct engine *e, uint64_t now_ns);

const struct engine_stats *engine_stats(const struct engine *e);
const struct lease_stats *engine_lease_stats(const struct engine *e);
const struct spike_stats *engine_spike_stats(const struct engine *e);
/* Read-only access for dashboards and metrics (peer rollup, open incidents, memory). */
const struct lease_table *engine_leases(const struct engine *e);
#define ENGINE_WALKED_MAX 64 /* namespaces remembered from the last walk */

/*
 * Socket-table reconciliation of the lease table: see lease_resync_*(). The namespaces a walk
 * covered are remembered: after a ring loss, leases and stuck sockets elsewhere are ended as
 * unobserved rather than convicted (lease_blind, stuck_blind).
 */
void engine_resync_seen(struct engine *e, uint64_t cookie);
size_t engine_resync_end(struct engine *e, const uint32_t *netns, size_t n_netns,
			 uint64_t walk_start_ns, uint64_t now_ns);
const struct spike *engine_spikes(const struct engine *e);
struct stuck *engine_stuck(const struct engine *e);
struct portfc *engine_ports(const struct engine *e);

#endif
