/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Replay input: JSON lines as `sockpulse watch --json` or the agent's log write them
 * (docs/EVENTS.md) back into struct sp_event, for the engine. Fields may be nested ECS
 * objects ({"event":{"action":...}}) or flat dotted keys ({"event.action":...}).
 *
 * The clock is the log's: mono_ns = real_ns = @timestamp in ns since the epoch, so a replay is
 * deterministic. When formatting the engine's output, set each emitted event's real_ns to its
 * mono_ns (the engine leaves real_ns 0).
 *
 * Lines that are not engine input (the engine's own lease-* and connect-failure-spike lines,
 * actions this version does not know) are skipped; malformed lines are counted as bad. Neither
 * stops the replay.
 */
#ifndef SP_REPLAY_H
#define SP_REPLAY_H

#include <stdint.h>
#include <stdio.h>

#include "event.h"

#define REPLAY_LINE_MAX 65536

struct replay_stats {
	uint64_t lines;	   /* lines read, blank ones included */
	uint64_t events;   /* handed to the callback */
	uint64_t skipped;  /* valid, but not engine input */
	uint64_t bad;	   /* malformed: not JSON, no @timestamp/action, bad field values */
	uint64_t first_bad; /* line number of the first bad line, 0 if none */
};

/*
 * One line (no newline needed) -> *ev. 0: an engine input; -ENOENT: valid line, not an input;
 * -EINVAL: malformed. ev is only meaningful on 0.
 */
int replay_parse_line(const char *line, size_t len, struct sp_event *ev);
/*
 * The same, keeping the owner's cgroup: a sockpulse.cgroup path is interned in @cg and its id put
 * in ev->conn.cgroup_id, so a formatter given @cg writes the attribution fields again.
 */
struct cg_cache;
int replay_parse_line_cg(const char *line, size_t len, struct sp_event *ev, struct cg_cache *cg);

/*
 * Reads every line of @f and calls @fn for each engine input, in file order. Returns 0 when at
 * least one line was valid (an input or a skipped engine line), -ENODATA when none was, or
 * -errno on a read error. @st may be NULL.
 */
int replay_stream(FILE *f, void (*fn)(void *ctx, const struct sp_event *ev), void *ctx,
		  struct replay_stats *st);
int replay_stream_cg(FILE *f, void (*fn)(void *ctx, const struct sp_event *ev), void *ctx,
		     struct replay_stats *st, struct cg_cache *cg);

#endif
