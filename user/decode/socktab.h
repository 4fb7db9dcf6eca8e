/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * What the agent knows of each socket beyond one ring record: its owner, where that owner was
 * learnt, and which end opened the connection. The BPF side sees the owner only where the
 * kernel runs in the owner's task (connect, listen, accept); for sockets older than the agent,
 * and for the children of listeners older than the agent, the socket-table walk (socket inode
 * -> /proc/PID/fd) and the listener's owner fill the gap. Every line of a socket then carries
 * the same owner and the same source/destination, whatever started first.
 *
 * Two bounded open-addressing tables in one allocation each: sockets by cookie (forgotten a
 * thousand closes after their CLOSE: records can follow it), listeners by (namespace, port). They are caches: a full table forgets an entry to
 * make room and counts it; what was forgotten is looked up again when its socket shows up.
 */
#ifndef SP_SOCKTAB_H
#define SP_SOCKTAB_H

#include <stdbool.h>
#include <stdint.h>

#include "event.h"

struct socktab;

/*
 * Records about a socket can follow its CLOSE in the ring (the reset an abortive close sends
 * right after it, the timeout that names a death): a closed socket is forgotten only after this
 * many later closes. They come within microseconds, and ring order differs from time order only
 * between CPUs; a storm of 130000 closes a second takes 8 ms for this many. Kept small: the
 * sockets remembered are the table's working set, probed by every record.
 */
#define SOCKTAB_CLOSED_DELAY 1024

struct socktab_stats {
	uint64_t socks;	    /* sockets known now */
	uint64_t listeners; /* listeners known now */
	uint64_t evicted;   /* forgotten to make room (their owner is looked up again) */
	uint64_t inferred;  /* lines whose owner or direction this table supplied */
};

struct socktab *socktab_new(uint32_t max_socks, uint32_t max_listeners);
void socktab_free(struct socktab *t);

/*
 * A socket found by a socket-table walk: @c as audit_decode() oriented it (direction from the
 * namespace's listeners), its owner (has_pid) from /proc. A listener (@listener) is kept by
 * namespace and port, for the children it accepts later.
 */
void socktab_walked(struct socktab *t, const struct sp_conn *c, bool listener);

/*
 * Before an event from the ring goes anywhere: learns from what it carries (an owner seen in
 * the task, a direction, a listener opening or closing) and fills what it lacks (owner,
 * direction, and then which end is source). Returns true when the socket's owner is still
 * unknown and was never looked for since it was first seen: a walk may find it.
 */
bool socktab_enrich(struct socktab *t, struct sp_event *ev);

void socktab_stats(const struct socktab *t, struct socktab_stats *out);

#endif
