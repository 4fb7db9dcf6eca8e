/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Stuck half-closed connections (an engine part). A socket in CLOSE_WAIT got the peer's FIN and
 * its application never closed it: a descriptor leak. A socket in FIN_WAIT2 closed its side and
 * the peer never closes its own. Either one sitting there longer than after_ns raises one
 * tcp-stuck alert (event.type start); when it finally leaves the state, a tcp-stuck end line
 * says how long it sat. Per owning process, a rollup counts the stuck sockets it holds now and
 * whether that count grows (compared with one after_ns earlier).
 *
 * Fed state changes (live or replayed) and sockets found in the socket table at start (seeded:
 * their age is a lower bound). Deadlines sit on a timing wheel: O(1) per state change. Bounded:
 * sockets beyond max_sockets and processes beyond max_procs are not tracked, and counted.
 * No clock: time is what it is fed.
 */
#ifndef SP_STUCK_H
#define SP_STUCK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "event.h"

#define STUCK_STATES 2 /* CLOSE_WAIT, FIN_WAIT2: index with stuck_state_index() */

struct stuck_config {
	uint64_t after_ns;    /* --stuck-after (60 s); 0: off */
	uint32_t max_sockets; /* sockets watched in CLOSE_WAIT/FIN_WAIT2 at once (65536) */
	uint32_t max_procs;   /* processes in the rollup (1024) */
};

struct stuck_stats {
	uint64_t watched;	       /* sockets in a watched state now */
	uint64_t stuck[STUCK_STATES];  /* of those, past the threshold now */
	uint64_t alerts[STUCK_STATES]; /* tcp-stuck start lines */
	uint64_t resolved;	       /* tcp-stuck end lines */
	uint64_t seeded;	       /* found in the socket table */
	uint64_t untracked;	       /* not watched: the table was full */
	uint64_t procs_untracked;      /* alerts whose owner found no rollup slot */
	uint64_t unobserved;	       /* dropped without an alert: records were lost (stuck_blind) */
};

/* One process of the rollup. */
struct stuck_proc {
	uint64_t cgroup_id; /* of its first stuck socket: whose service it is */
	uint32_t pid; /* 0: owner unknown */
	char comm[SP_COMM_MAX];
	uint32_t stuck[STUCK_STATES]; /* stuck sockets it holds now */
	uint32_t prev_total;	      /* its total one after_ns ago */
	uint32_t peak;		      /* the most it held at once */
	int8_t trend;		      /* 1 growing, 0 steady, -1 shrinking */
};

typedef void (*stuck_emit_fn)(void *ctx, const struct sp_event *ev);
struct stuck;

void stuck_config_default(struct stuck_config *cfg);
/* 0 CLOSE_WAIT, 1 FIN_WAIT2, -1 for states that are not watched. */
int stuck_state_index(uint8_t state);

/* NULL on allocation failure or a zero bound; after_ns 0 makes a table that ignores everything. */
struct stuck *stuck_new(const struct stuck_config *cfg, stuck_emit_fn emit, void *ctx,
			uint64_t now_ns);
void stuck_free(struct stuck *s);
/* State changes: entering CLOSE_WAIT/FIN_WAIT2 starts the clock, leaving it stops it. */
void stuck_feed(struct stuck *s, const struct sp_event *ev);
/*
 * A socket found in @state in the socket table, in that state since at least @entered_ns.
 * false when the state is not watched, the socket has no cookie, it is watched already, or the
 * table is full.
 */
bool stuck_seed(struct stuck *s, const struct sp_conn *c, uint8_t state, uint64_t entered_ns,
		uint64_t now_ns);
/* Whether a socket is watched now (in CLOSE_WAIT/FIN_WAIT2 as far as the table knows). */
bool stuck_watching(const struct stuck *s, uint64_t cookie);
/* Raises the alerts due at or before now_ns. */
void stuck_advance(struct stuck *s, uint64_t now_ns);
/*
 * Ring records were lost at now_ns: a socket not yet alerted whose namespace is not in @walked
 * may have left its state unseen. If no event about it arrives before its threshold, it is
 * dropped without a tcp-stuck alert (counted in unobserved).
 */
void stuck_blind(struct stuck *s, const uint32_t *walked, size_t n_walked, uint64_t now_ns);

const struct stuck_stats *stuck_stats(const struct stuck *s);
/* The processes holding stuck sockets, most first; returns how many were written (<= n). */
size_t stuck_top_procs(const struct stuck *s, struct stuck_proc *out, size_t n);
size_t stuck_bytes(const struct stuck *s);

#endif
