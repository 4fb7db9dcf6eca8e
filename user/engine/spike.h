/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Connect-failure spike detector. Per destination (netns, address, port): 1 s buckets of
 * attempts and failures; a Poisson-scaled EWMA baseline of failures per second (lambda, frozen
 * during an incident, floored); each closed second computes F = failures in the last window,
 * E = window * lambda, z = (F - E) / sqrt(E).
 *
 *   QUIET  -> SPIKE   F >= min_failures, z >= z_enter and F/attempts >= min_ratio held in
 *                     confirm_need of the last confirm_of seconds: "start" line
 *   SPIKE  -> ENDING  leave_s consecutive seconds with z < z_leave and F < min_failures
 *   ENDING -> SPIKE   the start condition again within merge_s: same incident, no line
 *   ENDING -> QUIET   merge_s seconds without: "end" line
 *
 * When host_min_dests destinations start an incident within host_window_s, one host-wide
 * "start" line (no destination) is raised and destinations that start while it lasts say
 * nothing; it ends with one "end" line when no destination is in an incident any more.
 *
 * Canceled connects (the application gave up, as happy-eyeballs does) count as neither attempt
 * nor failure. Destinations are bounded (max_dests, least recently used evicted when quiet) and
 * evicted after idle_s without attempts. Time is injected: verdicts carry the end of the second
 * that decided them.
 */
#ifndef SP_SPIKE_H
#define SP_SPIKE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "event.h"

#define SPIKE_WINDOW_MAX 32

struct spike_config {
	uint32_t window_s;	 /* F is counted over this many seconds (10) */
	double half_life_s;	 /* of the lambda EWMA (600) */
	double floor_per_s;	 /* lambda never counts below this (1/60) */
	uint32_t min_failures;	 /* F needed to start, and F below it to leave (5) */
	double z_enter;		 /* (4) */
	double min_ratio;	 /* failures / attempts in the window (0.1) */
	uint32_t confirm_need;	 /* seconds meeting the start condition ... (2) */
	uint32_t confirm_of;	 /* ... among the last this many (3, at most 8) */
	double z_leave;		 /* (2) */
	uint32_t leave_s;	 /* quiet seconds before an incident may end (30) */
	uint32_t merge_s;	 /* a re-fire within this joins the incident (60) */
	uint32_t host_min_dests; /* destinations starting together for a host alert (3); 0: off */
	uint32_t host_window_s;	 /* "together" (10) */
	uint32_t max_dests;	 /* (65536) */
	uint32_t idle_s;	 /* evict a quiet destination without attempts for this long (900) */
};

struct spike_stats {
	uint64_t attempts;
	uint64_t failures;
	uint64_t incidents;	 /* destination incidents (started, including absorbed ones) */
	uint64_t host_incidents;
	uint64_t evicted;	 /* quiet destinations evicted (idle or for room) */
	uint64_t dropped;	 /* attempts not tracked: table full of destinations in incidents */
	uint32_t dests;		 /* destinations tracked */
	uint32_t open;		 /* destinations in an incident now */
	bool host_active;
};

/* A destination in an incident, for metrics (connect_failure_spike_active{destination}). */
struct spike_incident {
	struct sp_addr addr;
	uint32_t netns;
	uint16_t port;
	uint64_t start_ns;
	uint64_t failures;	  /* since the incident began */
	uint64_t window_failures; /* in the last window_s seconds, as the start line counts */
};

typedef void (*spike_emit_fn)(void *ctx, const struct sp_event *ev);

struct spike;

void spike_config_default(struct spike_config *cfg);
/* NULL on allocation failure or an invalid config. */
struct spike *spike_new(const struct spike_config *cfg, spike_emit_fn emit, void *ctx);
void spike_free(struct spike *s);

/* tcp-connect events; others are ignored. Closes the destination's seconds before ev->mono_ns. */
void spike_feed(struct spike *s, const struct sp_event *ev);
/* Closes every active destination's seconds that ended at or before now_ns; idle eviction. */
void spike_advance(struct spike *s, uint64_t now_ns);

const struct spike_stats *spike_stats(const struct spike *s);
size_t spike_for_each_incident(const struct spike *s,
			       void (*fn)(void *ctx, const struct spike_incident *inc), void *ctx);
size_t spike_bytes(const struct spike *s);

#endif
