/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * The lease table's insides, shared by its files: lease.c (the table, a connection's lease from
 * creation to its end, the events fed), lease_expiry.c (deadlines, renewal, the timing wheel's
 * verdicts, socket-table reconciliation) and lease_intern.c (interned addresses, owners and
 * peers, and the rollups read through them). lease.h is the interface.
 */
#ifndef SP_LEASE_PRIV_H
#define SP_LEASE_PRIV_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "lease.h"
#include "phi.h"
#include "sockpulse.h"
#include "util.h"
#include "wheel.h"

#define NIL UINT32_MAX
#define WHEEL_TICK_NS (1 * NSEC_PER_MSEC)
#define TOMB_SIZE 4096 /* recently ended cookies, direct-mapped (a power of two) */
#define EVICT_SCAN 64  /* slots the eviction hand looks at */

/* lease.flags */
#define LF_DIR_MASK 0x03     /* enum sp_direction */
#define LF_SVC_LOCAL 0x04    /* the service port (peer key) is the local port */
#define LF_PAYLOAD 0x08	     /* payload lease armed */
#define LF_CLOSING 0x10	     /* bare ESTABLISHED -> CLOSE seen: waiting for its cause */
#define LF_RST_SENT 0x20     /* we sent a reset: the kernel also does so as it gives up on
			      * keepalive, just before the timeout record that names the cause */

/*
 * A peer's FIN is an inbound segment: reported as activity just before the close, it would
 * "recover" a silent lease at the moment the connection ends. So a recovery waits a moment in
 * a small queue (renewals after a suspicion are rare) and is dropped if the lease ends first.
 */
#define RECOVER_DELAY_NS 10000000ull /* 10 ms: the close follows the FIN within microseconds */
#define RECOVER_MAX 64		     /* more at once: reported without waiting */

struct recovery {
	uint32_t idx;	   /* the lease's slot */
	uint8_t kind;
	uint64_t at;	   /* the renewal that ended the silence */
	uint64_t silent_ns; /* the silence it ended */
};

/* lease.mark */
#define LM_SEEN 0x01 /* the socket-table walk under way found the connection */
#define LM_GONE 0x02 /* the last walk did not: ended as unobserved if the next one does not either */
#define LM_BLIND 0x04 /* ring records were lost and no walk covers its namespace: its end may
		       * have been among them */

/* One cache line: everything a renewal touches is here. cookie 0 marks a free slot. */
struct lease {
	uint64_t cookie;
	uint64_t last[SP_LEASE_KIND_MAX]; /* reported arrival time, ns */
	struct phi_stats phi[SP_LEASE_KIND_MAX];
	uint32_t hnext;	 /* hash chain; free list when unused */
	uint32_t peer;	 /* peer rollup (remote address + service port) */
	uint32_t laddr;	 /* interned local address */
	uint32_t owner;	 /* interned pid + comm, NIL when unknown */
	uint16_t oport;	 /* the port that is not the peer's service port */
	uint8_t samples[SP_LEASE_KIND_MAX];
	uint8_t state;	 /* 2 bits per kind: enum lease_state */
	uint8_t flags;	 /* LF_* */
	uint8_t ttl_idx; /* index into the TTL table */
	uint8_t mark;	 /* LM_*: socket-table reconciliation */
};
_Static_assert(sizeof(struct lease) == 64, "a lease is one cache line");

/*
 * Interning table: fixed-size keys with a record behind each, reference counted, growing by
 * doubling (indices stay valid: arrays, not pointers). Used for addresses, owners and peers.
 */
struct itab {
	uint8_t *recs; /* cap * rec_size, key first */
	uint32_t *ref;
	uint32_t *hnext;
	uint32_t *buckets;
	uint32_t key_size, rec_size;
	uint32_t cap, used, count, free_head;
	uint32_t nbuckets; /* power of two */
};

struct addr_key {
	uint32_t netns;
	uint16_t family;
	uint8_t pad[2];
	uint8_t bytes[16];
};

struct owner_key {
	uint64_t cgroup_id; /* the socket's cgroup: who the owner is, for the lines */
	uint32_t pid;
	char comm[SP_COMM_MAX];
	uint8_t source; /* enum sp_owner_source, or OWNER_CGROUP_ONLY */
	uint8_t pad[3];
};

/*
 * A socket's cgroup is known without its process (a connection older than the agent): kept for
 * the per-owner counts (services), not shown in the lines, and replaced by the first process.
 */
#define OWNER_CGROUP_ONLY 0xff

struct owner_rec {
	struct owner_key key;
	uint32_t count[SP_LEASE_KIND_MAX][LEASE_STATE_MAX]; /* its leases by kind and state */
};

struct peer_rec {
	uint32_t addr; /* key: interned remote address */
	uint16_t port; /* key: service port */
	uint8_t pad[2];
	uint32_t conns;
	uint32_t count[SP_LEASE_KIND_MAX][LEASE_STATE_MAX];
	uint64_t last_seen;
	uint64_t closed, lost;
};
#define PEER_KEY_SIZE 8

struct lease_table {
	struct lease_config cfg;
	lease_emit_fn emit;
	void *ctx;
	struct lease *slab;
	size_t slab_bytes;
	uint32_t cap, hwm, free_head, hand;
	uint32_t *buckets;
	uint32_t bucket_bits, bucket_mask;
	struct wheel *wheel;
	struct itab addrs, owners, peers;
	uint64_t ttl_ns[LEASE_MAX_PORT_TTL + 1]; /* [0]: default */
	uint64_t now;
	uint64_t hold_until;
	uint64_t blind_since; /* the last ring loss (lease_blind) */
	double phi_z;
	uint64_t tomb[TOMB_SIZE];
	struct lease_stats st;
	uint32_t unowned[SP_LEASE_KIND_MAX][LEASE_STATE_MAX]; /* leases of no known owner */
	/* recoveries waiting RECOVER_DELAY_NS for a close to make them moot */
	struct recovery recov[RECOVER_MAX];
	uint32_t n_recov;
};

/* ---- small accessors ---- */

static inline void *itab_rec(const struct itab *t, uint32_t i)
{
	return t->recs + (size_t)i * t->rec_size;
}

static inline unsigned int kstate(const struct lease *l, unsigned int k)
{
	return (l->state >> (2 * k)) & 3;
}

static inline bool karmed(const struct lease *l, unsigned int k)
{
	return k == SP_LEASE_TRANSPORT || (l->flags & LF_PAYLOAD);
}

static inline struct peer_rec *peer_of(const struct lease_table *t, const struct lease *l)
{
	return itab_rec(&t->peers, l->peer);
}

static inline const struct owner_key *owner_of(const struct lease_table *t, const struct lease *l)
{
	return l->owner == NIL ? NULL : itab_rec(&t->owners, l->owner);
}

/* Has a process: the lines carry it, and a later line's owner does not replace it. */
static inline bool owner_known(const struct lease_table *t, const struct lease *l)
{
	const struct owner_key *o = owner_of(t, l);

	return o && o->source != OWNER_CGROUP_ONLY;
}

/* The owner's counts of kind k (by state), or the unowned ones. */
static inline uint32_t *owner_count(struct lease_table *t, const struct lease *l, unsigned int k)
{
	struct owner_rec *o = l->owner == NIL ? NULL : itab_rec(&t->owners, l->owner);

	return o ? o->count[k] : t->unowned[k];
}

static inline uint32_t lease_idx(const struct lease_table *t, const struct lease *l)
{
	return (uint32_t)(l - t->slab);
}

static inline uint32_t *bucket_of(const struct lease_table *t, uint64_t cookie)
{
	/*
	 * Cookies come from a kernel counter (no one chooses them): folding keeps a dense range
	 * dense, so connections created together share bucket cache lines, and mixes in high bits.
	 */
	return &t->buckets[(cookie ^ (cookie >> t->bucket_bits) ^ (cookie >> 2 * t->bucket_bits)) &
			   t->bucket_mask];
}

static inline uint64_t ttl_of(const struct lease_table *t, const struct lease *l)
{
	return t->ttl_ns[l->ttl_idx];
}

static inline uint64_t sat_add(uint64_t a, uint64_t b)
{
	return a > UINT64_MAX - b ? UINT64_MAX : a + b;
}

/* ---- lease_intern.c ---- */

int itab_init(struct itab *t, uint32_t key_size, uint32_t rec_size);
void itab_destroy(struct itab *t);
size_t itab_bytes(const struct itab *t);
uint32_t itab_get(struct itab *t, const void *key, bool *fresh);
bool itab_put(struct itab *t, uint32_t i);
uint32_t lease_intern_addr(struct lease_table *t, const struct sp_addr *a, uint32_t netns);

/* ---- lease.c ---- */

struct lease *lease_lookup(const struct lease_table *t, uint64_t cookie);
void lease_emit(struct lease_table *t, const struct lease *l, enum sp_action action,
		unsigned int k, uint64_t now, const char *reason);
void lease_emit_at(struct lease_table *t, const struct lease *l, enum sp_action action,
		   unsigned int k, uint64_t at, uint64_t silent_ns);
void lease_end(struct lease_table *t, struct lease *l, uint64_t now, const char *reason);

/* ---- lease_expiry.c ---- */

uint64_t lease_silence(const struct lease_table *t, const struct lease *l, unsigned int k,
		       uint64_t now);
void lease_ensure_timer(struct lease_table *t, struct lease *l);
void lease_recoveries_take(struct lease_table *t, uint32_t idx, bool report);
void lease_renew(struct lease_table *t, struct lease *l, unsigned int k, uint64_t now);
void lease_arm_payload(struct lease_table *t, struct lease *l, uint64_t now);

#endif
