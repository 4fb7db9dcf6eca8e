/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* Lease table (see lease.h). */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "lease.h"
#include "phi.h"
#include "sockpulse.h"
#include "wheel.h"

#define NIL UINT32_MAX
#define NS_PER_S 1000000000.0
#define NS_PER_MS 1000000ull
#define WHEEL_TICK_NS (1 * NS_PER_MS)
#define TOMB_SIZE 4096 /* recently ended cookies, direct-mapped */
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
	uint32_t unowned[SP_LEASE_KIND_MAX][LEASE_STATE_MAX]; /* leases without an owner, by state */
	/* recoveries waiting RECOVER_DELAY_NS for a close to make them moot */
	struct recovery recov[RECOVER_MAX];
	uint32_t n_recov;
};

static const char *const lost_reasons[] = {
	[SP_ACT_RESET] = "reset",
	[SP_ACT_KEEPALIVE_TIMEOUT] = "keepalive-timeout",
	[SP_ACT_RETRANS_TIMEOUT] = "retransmit-timeout",
};

/* ---- interning ------------------------------------------------------------------------- */

static uint64_t hash_bytes(const void *p, size_t n)
{
	const uint8_t *b = p;
	uint64_t h = 0x9e3779b97f4a7c15ull ^ n;
	size_t i;

	for (i = 0; i + 8 <= n; i += 8) {
		uint64_t v;

		memcpy(&v, b + i, 8);
		h = (h ^ v) * 0xff51afd7ed558ccdull;
		h ^= h >> 32;
	}
	for (; i < n; i++)
		h = (h ^ b[i]) * 0x100000001b3ull;
	h ^= h >> 29;
	h *= 0xc4ceb9fe1a85ec53ull;
	return h ^ (h >> 32);
}

static int itab_init(struct itab *t, uint32_t key_size, uint32_t rec_size)
{
	memset(t, 0, sizeof(*t));
	t->key_size = key_size;
	t->rec_size = rec_size;
	t->free_head = NIL;
	t->nbuckets = 64;
	t->buckets = malloc(t->nbuckets * sizeof(uint32_t));
	if (!t->buckets)
		return -ENOMEM;
	memset(t->buckets, 0xff, t->nbuckets * sizeof(uint32_t));
	return 0;
}

static void itab_destroy(struct itab *t)
{
	free(t->recs);
	free(t->ref);
	free(t->hnext);
	free(t->buckets);
}

static size_t itab_bytes(const struct itab *t)
{
	return (size_t)t->cap * (t->rec_size + 8) + (size_t)t->nbuckets * 4;
}

static inline void *itab_rec(const struct itab *t, uint32_t i)
{
	return t->recs + (size_t)i * t->rec_size;
}

static uint32_t itab_find(const struct itab *t, const void *key, uint64_t h)
{
	uint32_t i;

	for (i = t->buckets[h & (t->nbuckets - 1)]; i != NIL; i = t->hnext[i])
		if (!memcmp(itab_rec(t, i), key, t->key_size))
			return i;
	return NIL;
}

static int itab_grow(struct itab *t)
{
	uint32_t ncap = t->cap ? t->cap * 2 : 64, i;
	uint8_t *recs;
	uint32_t *ref, *hnext;

	recs = realloc(t->recs, (size_t)ncap * t->rec_size);
	if (!recs)
		return -ENOMEM;
	t->recs = recs;
	ref = realloc(t->ref, ncap * sizeof(uint32_t));
	if (!ref)
		return -ENOMEM;
	t->ref = ref;
	hnext = realloc(t->hnext, ncap * sizeof(uint32_t));
	if (!hnext)
		return -ENOMEM;
	t->hnext = hnext;
	t->cap = ncap;
	if (t->cap > t->nbuckets) {
		uint32_t *b = malloc(t->cap * sizeof(uint32_t));

		if (!b)
			return 0; /* still correct, just longer chains */
		free(t->buckets);
		t->buckets = b;
		t->nbuckets = t->cap;
		memset(b, 0xff, t->nbuckets * sizeof(uint32_t));
		for (i = 0; i < t->used; i++) {
			uint64_t h;

			if (!t->ref[i])
				continue;
			h = hash_bytes(itab_rec(t, i), t->key_size) & (t->nbuckets - 1);
			t->hnext[i] = b[h];
			b[h] = i;
		}
	}
	return 0;
}

/* Finds or inserts @key and takes a reference; NIL when out of memory. *fresh says "inserted". */
static uint32_t itab_get(struct itab *t, const void *key, bool *fresh)
{
	uint64_t h = hash_bytes(key, t->key_size);
	uint32_t i = itab_find(t, key, h), b;

	*fresh = false;
	if (i != NIL) {
		t->ref[i]++;
		return i;
	}
	if (t->free_head != NIL) {
		i = t->free_head;
		t->free_head = t->hnext[i];
	} else {
		if (t->used == t->cap && itab_grow(t))
			return NIL;
		i = t->used++;
	}
	memset(itab_rec(t, i), 0, t->rec_size);
	memcpy(itab_rec(t, i), key, t->key_size);
	t->ref[i] = 1;
	b = h & (t->nbuckets - 1);
	t->hnext[i] = t->buckets[b];
	t->buckets[b] = i;
	t->count++;
	*fresh = true;
	return i;
}

/* Drops a reference; true when the entry was freed. */
static bool itab_put(struct itab *t, uint32_t i)
{
	uint32_t *pp;

	if (i == NIL || --t->ref[i])
		return false;
	pp = &t->buckets[hash_bytes(itab_rec(t, i), t->key_size) & (t->nbuckets - 1)];
	while (*pp != i)
		pp = &t->hnext[*pp];
	*pp = t->hnext[i];
	t->hnext[i] = t->free_head;
	t->free_head = i;
	t->count--;
	return true;
}

/* ---- helpers ----------------------------------------------------------------------------- */

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

static void set_kstate(struct lease_table *t, struct lease *l, unsigned int k, unsigned int s)
{
	struct peer_rec *p = peer_of(t, l);
	uint32_t *oc = owner_count(t, l, k);
	unsigned int old = kstate(l, k);

	p->count[k][old]--;
	t->st.count[k][old]--;
	oc[old]--;
	p->count[k][s]++;
	t->st.count[k][s]++;
	oc[s]++;
	l->state = (uint8_t)((l->state & ~(3u << (2 * k))) | (s << (2 * k)));
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

static struct lease *lookup(const struct lease_table *t, uint64_t cookie)
{
	uint32_t i;

	for (i = *bucket_of(t, cookie); i != NIL; i = t->slab[i].hnext)
		if (t->slab[i].cookie == cookie)
			return &t->slab[i];
	return NULL;
}

static inline uint64_t ttl_of(const struct lease_table *t, const struct lease *l)
{
	return t->ttl_ns[l->ttl_idx];
}

static uint64_t sat_add(uint64_t a, uint64_t b)
{
	return a > UINT64_MAX - b ? UINT64_MAX : a + b;
}

/* Conservative silence: the true last arrival may be up to one coalescing interval later. */
static uint64_t silence(const struct lease_table *t, const struct lease *l, unsigned int k,
			uint64_t now)
{
	uint64_t from = sat_add(l->last[k], t->cfg.coalesce_ns);

	return now > from ? now - from : 0;
}

static uint64_t suspect_at(const struct lease_table *t, const struct lease *l, unsigned int k)
{
	uint64_t at = sat_add(l->last[k], t->cfg.coalesce_ns + ttl_of(t, l) / 2);

	if (t->phi_z > 0 && l->samples[k] >= t->cfg.phi_min_samples) {
		double sd = phi_sd(&l->phi[k], (double)t->cfg.phi_min_sd_ns / NS_PER_S);
		double after = (l->phi[k].mean + t->phi_z * sd) * NS_PER_S;

		if (after >= 0 && after < (double)(UINT64_MAX / 2)) {
			uint64_t p = sat_add(l->last[k], (uint64_t)after);

			if (p < at)
				at = p;
		}
	}
	return at;
}

static uint64_t expire_at(const struct lease_table *t, const struct lease *l, unsigned int k)
{
	return sat_add(l->last[k], t->cfg.coalesce_ns + ttl_of(t, l));
}

/* Earliest time a verdict can change for this lease, UINT64_MAX for none. */
static uint64_t next_deadline(const struct lease_table *t, const struct lease *l)
{
	uint64_t best = UINT64_MAX;
	unsigned int k;

	for (k = 0; k < SP_LEASE_KIND_MAX; k++) {
		uint64_t at = UINT64_MAX;

		if (!karmed(l, k))
			continue;
		if (kstate(l, k) == LEASE_ALIVE)
			at = suspect_at(t, l, k);
		else if (kstate(l, k) == LEASE_SUSPECT)
			at = expire_at(t, l, k);
		if (at < best)
			best = at;
	}
	return best;
}

/* Arms the timer if the lease needs one earlier than what is pending. */
static void ensure_timer(struct lease_table *t, struct lease *l)
{
	uint32_t id = lease_idx(t, l);
	uint64_t at = next_deadline(t, l);

	if (at == UINT64_MAX)
		return;
	if (!wheel_pending(t->wheel, id) || wheel_expires(t->wheel, id) > at)
		wheel_arm(t->wheel, id, at);
}

/* Connection facts of a lease, as the input had them (source is the opener). */
static void fill_conn(const struct lease_table *t, const struct lease *l, struct sp_conn *c)
{
	const struct peer_rec *p = peer_of(t, l);
	const struct addr_key *la = itab_rec(&t->addrs, l->laddr);
	const struct addr_key *ra = itab_rec(&t->addrs, p->addr);
	struct sp_addr local = { .family = la->family }, remote = { .family = ra->family };
	uint16_t lport, rport;

	memcpy(local.bytes, la->bytes, 16);
	memcpy(remote.bytes, ra->bytes, 16);
	lport = l->flags & LF_SVC_LOCAL ? p->port : l->oport;
	rport = l->flags & LF_SVC_LOCAL ? l->oport : p->port;
	memset(c, 0, sizeof(*c));
	c->direction = l->flags & LF_DIR_MASK;
	if (c->direction == SP_DIR_INGRESS) {
		c->src = remote;
		c->sport = rport;
		c->dst = local;
		c->dport = lport;
	} else {
		c->src = local;
		c->sport = lport;
		c->dst = remote;
		c->dport = rport;
	}
	c->has_ports = true;
	c->cookie = l->cookie;
	c->netns = la->netns;
	if (owner_known(t, l)) {
		const struct owner_key *o = owner_of(t, l);

		c->has_pid = true;
		c->pid = o->pid;
		c->owner_source = o->source;
		c->cgroup_id = o->cgroup_id;
		memcpy(c->comm, o->comm, sizeof(c->comm));
	}
}

static void emit(struct lease_table *t, const struct lease *l, enum sp_action action,
		 unsigned int k, uint64_t now, const char *reason)
{
	struct sp_event ev;

	memset(&ev, 0, sizeof(ev));
	ev.action = action;
	ev.mono_ns = now;
	ev.has_conn = true;
	fill_conn(t, l, &ev.conn);
	ev.lease.kind = (uint8_t)k;
	ev.lease.reason = reason;
	if (action != SP_ACT_LEASE_CLOSED && action != SP_ACT_LEASE_LOST) {
		ev.lease.silent_ms = silence(t, l, k, now) / NS_PER_MS;
		ev.lease.ttl_ms = ttl_of(t, l) / NS_PER_MS;
	}
	t->emit(t->ctx, &ev);
}

/* A recovery line: stamped at the renewal, with the silence that renewal ended. */
static void emit_at(struct lease_table *t, const struct lease *l, enum sp_action action,
		    unsigned int k, uint64_t at, uint64_t silent_ns)
{
	struct sp_event ev;

	memset(&ev, 0, sizeof(ev));
	ev.action = action;
	ev.mono_ns = at;
	ev.has_conn = true;
	fill_conn(t, l, &ev.conn);
	ev.lease.kind = (uint8_t)k;
	ev.lease.silent_ms = silent_ns / NS_PER_MS;
	ev.lease.ttl_ms = ttl_of(t, l) / NS_PER_MS;
	t->emit(t->ctx, &ev);
}

/* Reports (report) or forgets the waiting recoveries of slot idx. */
static void recoveries_take(struct lease_table *t, uint32_t idx, bool report)
{
	for (uint32_t i = 0; i < t->n_recov;) {
		struct recovery r = t->recov[i];

		if (r.idx != idx) {
			i++;
			continue;
		}
		t->recov[i] = t->recov[--t->n_recov]; /* order among slots does not matter */
		if (report)
			emit_at(t, &t->slab[idx], SP_ACT_LEASE_RECOVERED, r.kind, r.at,
				r.silent_ns);
	}
}

/* ---- lifecycle of a lease ---------------------------------------------------------------- */

static void tomb_add(struct lease_table *t, uint64_t cookie)
{
	t->tomb[(cookie * 0x9e3779b97f4a7c15ull) >> 52] = cookie;
}

static bool tomb_has(const struct lease_table *t, uint64_t cookie)
{
	return t->tomb[(cookie * 0x9e3779b97f4a7c15ull) >> 52] == cookie;
}

/* Unlinks and frees a lease without a line. */
static void drop(struct lease_table *t, struct lease *l)
{
	uint32_t i = lease_idx(t, l), *pp = bucket_of(t, l->cookie);
	struct peer_rec *p = peer_of(t, l);
	unsigned int k;

	while (*pp != i)
		pp = &t->slab[*pp].hnext;
	*pp = l->hnext;
	wheel_cancel(t->wheel, i);
	if (t->n_recov)
		recoveries_take(t, i, false); /* it ended within moments: no recovery to tell */
	for (k = 0; k < SP_LEASE_KIND_MAX; k++) {
		if (!karmed(l, k))
			continue;
		p->count[k][kstate(l, k)]--;
		t->st.count[k][kstate(l, k)]--;
		owner_count(t, l, k)[kstate(l, k)]--;
	}
	p->conns--;
	/* The remote address is referenced by the peer, so it goes after it. */
	{
		uint32_t raddr = p->addr;

		if (itab_put(&t->peers, l->peer))
			itab_put(&t->addrs, raddr);
	}
	itab_put(&t->addrs, l->laddr);
	itab_put(&t->owners, l->owner);
	l->cookie = 0;
	l->hnext = t->free_head;
	t->free_head = i;
	t->st.live--;
	t->st.peers = t->peers.count;
}

/* Ends a lease with one line per armed kind. reason NULL: CLOSED, else LOST. */
static void end_lease(struct lease_table *t, struct lease *l, uint64_t now, const char *reason)
{
	struct peer_rec *p = peer_of(t, l);
	unsigned int k;

	for (k = 0; k < SP_LEASE_KIND_MAX; k++)
		if (karmed(l, k))
			emit(t, l, reason ? SP_ACT_LEASE_LOST : SP_ACT_LEASE_CLOSED, k, now, reason);
	if (reason) {
		p->lost++;
		t->st.lost++;
	} else {
		p->closed++;
		t->st.closed++;
	}
	tomb_add(t, l->cookie);
	drop(t, l);
}

/* Victim when full: among the next EVICT_SCAN slots, an expired lease, else the most silent. */
static struct lease *pick_victim(struct lease_table *t)
{
	struct lease *best = NULL;
	uint32_t n;

	for (n = 0; n < EVICT_SCAN; n++) {
		struct lease *l = &t->slab[t->hand];

		t->hand = t->hand + 1 < t->hwm ? t->hand + 1 : 0;
		if (!l->cookie)
			continue;
		if (kstate(l, SP_LEASE_TRANSPORT) == LEASE_EXPIRED || (l->flags & LF_CLOSING))
			return l;
		if (!best || l->last[SP_LEASE_TRANSPORT] < best->last[SP_LEASE_TRANSPORT])
			best = l;
	}
	return best;
}

static uint32_t intern_addr(struct lease_table *t, const struct sp_addr *a, uint32_t netns)
{
	struct addr_key key = { .netns = netns, .family = a->family };
	bool fresh;

	memcpy(key.bytes, a->bytes, 16);
	return itab_get(&t->addrs, &key, &fresh);
}

static uint8_t ttl_index(const struct lease_table *t, uint16_t svc, uint16_t other, bool unknown)
{
	uint32_t i;

	/* Later overrides win: scan backwards. */
	for (i = t->cfg.n_port_ttl; i > 0; i--)
		if (t->cfg.port_ttl[i - 1].port == svc)
			return (uint8_t)i;
	if (unknown)
		for (i = t->cfg.n_port_ttl; i > 0; i--)
			if (t->cfg.port_ttl[i - 1].port == other)
				return (uint8_t)i;
	return 0;
}

static struct lease *create(struct lease_table *t, const struct sp_conn *c, uint64_t now)
{
	const struct sp_addr *local, *remote;
	uint16_t lport, rport, svc, other;
	struct peer_rec *p;
	struct lease *l;
	uint32_t idx, laddr, raddr, peer, owner = NIL;
	uint8_t pkey[PEER_KEY_SIZE] = { 0 };
	bool svc_local, fresh;

	if (c->direction == SP_DIR_INGRESS) {
		local = &c->dst;
		lport = c->dport;
		remote = &c->src;
		rport = c->sport;
	} else {
		local = &c->src;
		lport = c->sport;
		remote = &c->dst;
		rport = c->dport;
	}
	/* The service port is the one connected to; without a direction, guess the lower one. */
	if (c->direction == SP_DIR_INGRESS)
		svc_local = true;
	else if (c->direction == SP_DIR_EGRESS)
		svc_local = false;
	else
		svc_local = lport && lport < rport;
	svc = svc_local ? lport : rport;
	other = svc_local ? rport : lport;

	if (t->free_head != NIL) {
		idx = t->free_head;
		t->free_head = t->slab[idx].hnext;
	} else if (t->hwm < t->cap) {
		idx = t->hwm++;
	} else {
		l = pick_victim(t);
		if (!l)
			return NULL;
		drop(t, l);
		t->st.evicted++;
		idx = t->free_head;
		t->free_head = t->slab[idx].hnext;
	}

	laddr = intern_addr(t, local, c->netns);
	raddr = intern_addr(t, remote, c->netns);
	memcpy(pkey, &raddr, 4);
	memcpy(pkey + 4, &svc, 2);
	peer = raddr == NIL ? NIL : itab_get(&t->peers, pkey, &fresh);
	if (peer != NIL && !fresh)
		itab_put(&t->addrs, raddr); /* the peer already holds a reference */
	if (c->has_pid) {
		struct owner_key ok = { .cgroup_id = c->cgroup_id, .pid = c->pid,
					.source = c->owner_source };

		memcpy(ok.comm, c->comm, sizeof(ok.comm));
		owner = itab_get(&t->owners, &ok, &fresh);
	} else if (c->cgroup_id) {
		struct owner_key ok = { .cgroup_id = c->cgroup_id, .source = OWNER_CGROUP_ONLY };

		owner = itab_get(&t->owners, &ok, &fresh); /* NIL (no memory): counted unowned */
	}
	if (laddr == NIL || peer == NIL || (c->has_pid && owner == NIL)) {
		if (peer != NIL) {
			if (itab_put(&t->peers, peer))
				itab_put(&t->addrs, raddr);
		} else {
			itab_put(&t->addrs, raddr);
		}
		itab_put(&t->addrs, laddr);
		itab_put(&t->owners, owner);
		t->slab[idx].hnext = t->free_head;
		t->free_head = idx;
		return NULL;
	}

	l = &t->slab[idx];
	memset(l, 0, sizeof(*l));
	l->cookie = c->cookie;
	l->last[SP_LEASE_TRANSPORT] = now;
	l->peer = peer;
	l->laddr = laddr;
	l->owner = owner;
	l->oport = other;
	l->flags = (uint8_t)((c->direction & LF_DIR_MASK) | (svc_local ? LF_SVC_LOCAL : 0));
	l->ttl_idx = ttl_index(t, svc, other, c->direction == SP_DIR_UNKNOWN);
	l->hnext = *bucket_of(t, l->cookie);
	*bucket_of(t, l->cookie) = idx;

	p = itab_rec(&t->peers, peer);
	p->conns++;
	p->count[SP_LEASE_TRANSPORT][LEASE_ALIVE]++;
	if (now > p->last_seen)
		p->last_seen = now;
	t->st.count[SP_LEASE_TRANSPORT][LEASE_ALIVE]++;
	owner_count(t, l, SP_LEASE_TRANSPORT)[LEASE_ALIVE]++;
	t->st.created++;
	t->st.live++;
	t->st.peers = t->peers.count;
	ensure_timer(t, l);
	return l;
}

/* Renewal of one kind at @now: the hot path is "store the time, feed the estimate". */
static void renew(struct lease_table *t, struct lease *l, unsigned int k, uint64_t now)
{
	uint64_t interval, silent;
	unsigned int s;

	if (now <= l->last[k])
		return;
	interval = now - l->last[k];
	silent = silence(t, l, k, now);
	l->last[k] = now;
	s = kstate(l, k);
	if (s == LEASE_ALIVE) {
		/* Arrivals closer than the kernel's coalescing interval are one arrival. */
		if (interval >= t->cfg.coalesce_ns) {
			uint64_t cap = ttl_of(t, l) / 2;

			phi_update(&l->phi[k], &l->samples[k],
				   (double)(interval < cap ? interval : cap) / NS_PER_S);
			/* phi just became trusted: the pending timer may be far too late. */
			if (l->samples[k] == t->cfg.phi_min_samples && t->phi_z > 0)
				ensure_timer(t, l);
		}
		return;
	}
	/* Recovery. The interval that spanned the suspicion is not a sample. */
	if (k == SP_LEASE_TRANSPORT && now > peer_of(t, l)->last_seen)
		peer_of(t, l)->last_seen = now;
	set_kstate(t, l, k, LEASE_ALIVE);
	t->st.recoveries[k]++;
	if (t->n_recov < RECOVER_MAX) {
		uint32_t id = lease_idx(t, l);

		t->recov[t->n_recov++] = (struct recovery){
			.idx = id, .kind = (uint8_t)k, .at = now, .silent_ns = silent
		};
		wheel_arm(t->wheel, id, sat_add(now, RECOVER_DELAY_NS));
		return; /* on_timer reports it, and re-arms the lease's own deadline */
	}
	emit_at(t, l, SP_ACT_LEASE_RECOVERED, k, now, silent);
	ensure_timer(t, l);
}

static void arm_payload(struct lease_table *t, struct lease *l, uint64_t now)
{
	struct peer_rec *p = peer_of(t, l);

	l->flags |= LF_PAYLOAD;
	l->last[SP_LEASE_PAYLOAD] = now;
	l->state &= ~(3u << (2 * SP_LEASE_PAYLOAD));
	p->count[SP_LEASE_PAYLOAD][LEASE_ALIVE]++;
	t->st.count[SP_LEASE_PAYLOAD][LEASE_ALIVE]++;
	owner_count(t, l, SP_LEASE_PAYLOAD)[LEASE_ALIVE]++;
	ensure_timer(t, l);
}

static void on_timer(void *ctx, uint32_t id, uint64_t now)
{
	struct lease_table *t = ctx;
	struct lease *l = &t->slab[id];
	struct peer_rec *p;
	bool held = now < t->hold_until;
	unsigned int k;

	if (!l->cookie)
		return;
	if (l->flags & LF_CLOSING) {
		end_lease(t, l, now, l->flags & LF_RST_SENT ? "reset-sent" : NULL);
		return;
	}
	if (t->n_recov)
		recoveries_take(t, id, true);
	for (k = 0; k < SP_LEASE_KIND_MAX; k++) {
		unsigned int s = kstate(l, k);

		if (!karmed(l, k) || s == LEASE_EXPIRED)
			continue;
		if (!held && (l->mark & LM_BLIND) &&
		    (now >= expire_at(t, l, k) || (s == LEASE_ALIVE && now >= suspect_at(t, l, k)))) {
			/* a verdict is due on a connection unheard of since records were lost,
			 * where no walk can tell whether it still exists: no verdict */
			if (l->last[SP_LEASE_TRANSPORT] < t->blind_since) {
				end_lease(t, l, now, SP_LEASE_REASON_UNOBSERVED);
				t->st.unobserved++;
				return;
			}
			l->mark &= (uint8_t)~LM_BLIND;
		}
		if (now >= expire_at(t, l, k)) {
			if (held)
				continue;
			/* Straight from ALIVE when the verdict is late (a hold): one line. */
			emit(t, l, SP_ACT_LEASE_EXPIRED, k, now, NULL);
			set_kstate(t, l, k, LEASE_EXPIRED);
			t->st.expirations[k]++;
		} else if (s == LEASE_ALIVE && now >= suspect_at(t, l, k)) {
			if (held)
				continue;
			emit(t, l, SP_ACT_LEASE_SUSPECT, k, now, NULL);
			set_kstate(t, l, k, LEASE_SUSPECT);
			t->st.suspects[k]++;
		}
	}
	p = peer_of(t, l);
	if (l->last[SP_LEASE_TRANSPORT] > p->last_seen)
		p->last_seen = l->last[SP_LEASE_TRANSPORT];
	{
		uint64_t at = next_deadline(t, l);

		if (at == UINT64_MAX)
			return;
		if (held && at < t->hold_until)
			at = t->hold_until;
		wheel_arm(t->wheel, id, at);
	}
}

/* ---- public ------------------------------------------------------------------------------ */

void lease_config_default(struct lease_config *cfg)
{
	memset(cfg, 0, sizeof(*cfg));
	cfg->ttl_ns = 30 * 1000000000ull;
	cfg->max_leases = 1u << 20;
	cfg->coalesce_ns = 1000000000ull;
	cfg->phi_threshold = 8;
	cfg->phi_min_samples = 8;
	cfg->phi_min_sd_ns = 1000000000ull;
	cfg->close_grace_ns = 1000000000ull;
}

struct lease_table *lease_new(const struct lease_config *cfg, lease_emit_fn emit_fn, void *ctx,
			      uint64_t now_ns)
{
	struct lease_table *t;
	uint32_t i, nb = 1, bits = 0;

	if (!cfg->max_leases || !cfg->ttl_ns || cfg->n_port_ttl > LEASE_MAX_PORT_TTL ||
	    cfg->max_leases > (1u << 31) || !emit_fn)
		return NULL;
	for (i = 0; i < cfg->n_port_ttl; i++)
		if (!cfg->port_ttl[i].ttl_ns)
			return NULL;
	t = calloc(1, sizeof(*t));
	if (!t)
		return NULL;
	t->cfg = *cfg;
	t->emit = emit_fn;
	t->ctx = ctx;
	t->now = now_ns;
	t->cap = cfg->max_leases;
	t->free_head = NIL;
	t->ttl_ns[0] = cfg->ttl_ns;
	for (i = 0; i < cfg->n_port_ttl; i++)
		t->ttl_ns[i + 1] = cfg->port_ttl[i].ttl_ns;
	t->phi_z = cfg->phi_threshold > 0 ? phi_z_for(cfg->phi_threshold) : 0;
	while (nb < t->cap || nb < 2) {
		nb <<= 1;
		bits++;
	}
	t->bucket_bits = bits;
	t->bucket_mask = nb - 1;
	/* mmap: pages are committed as the slab fills; huge pages cut TLB misses on renewals. */
	t->slab_bytes = ((size_t)t->cap * sizeof(struct lease) + 4095) & ~(size_t)4095;
	t->slab = mmap(NULL, t->slab_bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
		       -1, 0);
	if (t->slab == MAP_FAILED) {
		t->slab = NULL;
		goto err;
	}
#ifdef MADV_HUGEPAGE
	madvise(t->slab, t->slab_bytes, MADV_HUGEPAGE);
#endif
	t->buckets = malloc((size_t)nb * sizeof(uint32_t));
	t->wheel = wheel_new(t->cap, WHEEL_TICK_NS, now_ns);
	if (!t->buckets || !t->wheel)
		goto err;
	memset(t->buckets, 0xff, (size_t)nb * sizeof(uint32_t));
	if (itab_init(&t->addrs, sizeof(struct addr_key), sizeof(struct addr_key)) ||
	    itab_init(&t->owners, sizeof(struct owner_key), sizeof(struct owner_rec)) ||
	    itab_init(&t->peers, PEER_KEY_SIZE, sizeof(struct peer_rec)))
		goto err;
	return t;
err:
	lease_free(t);
	return NULL;
}

void lease_free(struct lease_table *t)
{
	if (!t)
		return;
	if (t->slab)
		munmap(t->slab, t->slab_bytes);
	free(t->buckets);
	wheel_free(t->wheel);
	itab_destroy(&t->addrs);
	itab_destroy(&t->owners);
	itab_destroy(&t->peers);
	free(t);
}

void lease_advance(struct lease_table *t, uint64_t now_ns)
{
	if (now_ns > t->now)
		t->now = now_ns;
	wheel_advance(t->wheel, now_ns, on_timer, t);
}

void lease_hold(struct lease_table *t, uint64_t until_ns)
{
	if (until_ns > t->hold_until)
		t->hold_until = until_ns;
}

/* ---- socket-table reconciliation --------------------------------------------------------- */

static bool netns_in(uint32_t netns, const uint32_t *set, size_t n);

void lease_blind(struct lease_table *t, const uint32_t *walked, size_t n_walked, uint64_t now_ns)
{
	if (now_ns > t->blind_since)
		t->blind_since = now_ns;
	for (uint32_t i = 0; i < t->hwm; i++) {
		struct lease *l = &t->slab[i];

		if (l->cookie &&
		    !netns_in(((const struct addr_key *)itab_rec(&t->addrs, l->laddr))->netns,
			      walked, n_walked))
			l->mark |= LM_BLIND;
	}
}

void lease_resync_seen(struct lease_table *t, uint64_t cookie)
{
	struct lease *l = cookie ? lookup(t, cookie) : NULL;

	if (l)
		l->mark |= LM_SEEN;
}

static bool netns_in(uint32_t netns, const uint32_t *set, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (set[i] == netns)
			return true;
	return false;
}

size_t lease_resync_end(struct lease_table *t, const uint32_t *netns, size_t n_netns,
			uint64_t walk_start_ns, uint64_t now_ns)
{
	size_t ended = 0;

	if (now_ns > t->now)
		t->now = now_ns;
	for (uint32_t i = 0; i < t->hwm; i++) {
		struct lease *l = &t->slab[i];
		const struct addr_key *la;
		uint8_t mark = l->mark;

		if (!l->cookie)
			continue;
		la = itab_rec(&t->addrs, l->laddr);
		if (!netns_in(la->netns, netns, n_netns)) {
			l->mark &= (uint8_t)~LM_SEEN; /* not walked (completely): a candidate stays one */
			continue;
		}
		l->mark = 0;
		if ((mark & LM_SEEN) || (l->flags & LF_CLOSING))
			continue;
		if (mark & LM_GONE) {
			/* missing from two walks in a row, and no event ended it in between */
			end_lease(t, l, t->now, SP_LEASE_REASON_UNOBSERVED);
			t->st.unobserved++;
			ended++;
			continue;
		}
		/* heard from since the walk began: it may have been made after the walk passed */
		if (l->last[SP_LEASE_TRANSPORT] < walk_start_ns)
			l->mark = LM_GONE;
	}
	return ended;
}

/*
 * A lease made before its owner was known (seeded from the socket table, or from a line whose
 * owner was not known yet) takes the first owner a later line carries, and its counts move along.
 */
static void adopt_owner(struct lease_table *t, struct lease *l, const struct sp_conn *c)
{
	struct owner_key ok = { .cgroup_id = c->cgroup_id, .pid = c->pid,
				.source = c->owner_source };
	bool fresh;
	uint32_t o, old = l->owner;
	unsigned int k;

	memcpy(ok.comm, c->comm, sizeof(ok.comm));
	o = itab_get(&t->owners, &ok, &fresh);
	if (o == NIL)
		return;
	for (k = 0; k < SP_LEASE_KIND_MAX; k++)
		if (karmed(l, k))
			owner_count(t, l, k)[kstate(l, k)]--;
	l->owner = o;
	for (k = 0; k < SP_LEASE_KIND_MAX; k++)
		if (karmed(l, k))
			owner_count(t, l, k)[kstate(l, k)]++;
	itab_put(&t->owners, old);
}

void lease_feed(struct lease_table *t, const struct sp_event *ev)
{
	uint64_t now = ev->mono_ns;
	struct lease *l;

	if (!ev->has_conn || !ev->conn.cookie)
		return;
	switch (ev->action) {
	case SP_ACT_ACTIVITY:
		l = lookup(t, ev->conn.cookie);
		if (!l) {
			/* A connection older than the agent: its lease starts now. */
			if (tomb_has(t, ev->conn.cookie)) {
				t->st.late_activity++;
				return;
			}
			l = create(t, &ev->conn, now);
			if (!l)
				return;
		}
		if (!owner_known(t, l) && ev->conn.has_pid)
			adopt_owner(t, l, &ev->conn);
		if (l->flags & LF_CLOSING)
			return;
		renew(t, l, SP_LEASE_TRANSPORT, now);
		if (ev->activity.payload_bytes) {
			if (l->flags & LF_PAYLOAD)
				renew(t, l, SP_LEASE_PAYLOAD, now);
			else
				arm_payload(t, l, now);
		}
		return;
	case SP_ACT_STATE_CHANGE:
		l = lookup(t, ev->conn.cookie);
		if (ev->state.new_state == SP_ST_ESTABLISHED) {
			if (l && !(l->flags & LF_CLOSING))
				renew(t, l, SP_LEASE_TRANSPORT, now);
			else if (!l)
				create(t, &ev->conn, now);
			return;
		}
		if (!l || (l->flags & LF_CLOSING))
			return;
		if (!owner_known(t, l) && ev->conn.has_pid)
			adopt_owner(t, l, &ev->conn);
		if (ev->state.new_state != SP_ST_CLOSE) {
			end_lease(t, l, now, l->flags & LF_RST_SENT ? "reset-sent" : NULL);
			return;
		}
		/* Abort or death: the record that says which may follow the transition. */
		l->flags |= LF_CLOSING;
		wheel_arm(t->wheel, lease_idx(t, l), sat_add(now, t->cfg.close_grace_ns));
		return;
	case SP_ACT_RESET:
	case SP_ACT_KEEPALIVE_TIMEOUT:
	case SP_ACT_RETRANS_TIMEOUT:
		l = lookup(t, ev->conn.cookie);
		if (!l)
			return;
		if (ev->action == SP_ACT_RESET && ev->reset.direction == SP_RST_SENT) {
			/* The cause may still come (keepalive timeout): decided at the close. */
			l->flags |= LF_RST_SENT;
			return;
		}
		end_lease(t, l, now, lost_reasons[ev->action]);
		return;
	default:
		return;
	}
}

bool lease_seed(struct lease_table *t, const struct sp_conn *c, uint64_t now)
{
	if (!c->cookie || lookup(t, c->cookie) || tomb_has(t, c->cookie))
		return false;
	return create(t, c, now) != NULL;
}

void lease_prefetch(const struct lease_table *t, const struct sp_event *evs, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (evs[i].has_conn && evs[i].conn.cookie)
			__builtin_prefetch(bucket_of(t, evs[i].conn.cookie));
	for (i = 0; i < n; i++) {
		uint32_t idx;

		if (!evs[i].has_conn || !evs[i].conn.cookie)
			continue;
		idx = *bucket_of(t, evs[i].conn.cookie);
		if (idx != NIL)
			__builtin_prefetch(&t->slab[idx], 1);
	}
}

const struct lease_stats *lease_stats(const struct lease_table *t)
{
	return &t->st;
}

bool lease_get(const struct lease_table *t, uint64_t cookie, struct lease_info *out)
{
	const struct lease *l = cookie ? lookup(t, cookie) : NULL;
	unsigned int k;

	if (!l)
		return false;
	memset(out, 0, sizeof(*out));
	for (k = 0; k < SP_LEASE_KIND_MAX; k++) {
		out->state[k] = (uint8_t)kstate(l, k);
		out->samples[k] = l->samples[k];
		out->mean_s[k] = l->phi[k].mean;
		out->last_ns[k] = l->last[k];
	}
	out->payload_armed = l->flags & LF_PAYLOAD;
	out->closing = l->flags & LF_CLOSING;
	out->ttl_ns = ttl_of(t, l);
	return true;
}

static void peer_info(const struct lease_table *t, uint32_t i, struct lease_peer_info *out)
{
	const struct peer_rec *p = itab_rec(&t->peers, i);
	const struct addr_key *a = itab_rec(&t->addrs, p->addr);

	memset(out, 0, sizeof(*out));
	out->addr.family = a->family;
	memcpy(out->addr.bytes, a->bytes, 16);
	out->netns = a->netns;
	out->port = p->port;
	out->conns = p->conns;
	memcpy(out->count, p->count, sizeof(out->count));
	out->last_seen_ns = p->last_seen;
	out->closed = p->closed;
	out->lost = p->lost;
}

bool lease_peer_get(const struct lease_table *t, const struct sp_addr *addr, uint32_t netns,
		    uint16_t port, struct lease_peer_info *out)
{
	struct addr_key key = { .netns = netns, .family = addr->family };
	uint8_t pkey[PEER_KEY_SIZE] = { 0 };
	uint32_t a, p;

	memcpy(key.bytes, addr->bytes, 16);
	a = itab_find(&t->addrs, &key, hash_bytes(&key, sizeof(key)));
	if (a == NIL)
		return false;
	memcpy(pkey, &a, 4);
	memcpy(pkey + 4, &port, 2);
	p = itab_find(&t->peers, pkey, hash_bytes(pkey, sizeof(pkey)));
	if (p == NIL)
		return false;
	peer_info(t, p, out);
	return true;
}

size_t lease_for_each_peer(const struct lease_table *t,
			   void (*fn)(void *ctx, const struct lease_peer_info *p), void *ctx)
{
	struct lease_peer_info info;
	size_t n = 0;
	uint32_t i;

	for (i = 0; i < t->peers.used; i++) {
		if (!t->peers.ref[i])
			continue;
		peer_info(t, i, &info);
		fn(ctx, &info);
		n++;
	}
	return n;
}

size_t lease_for_each_owner(const struct lease_table *t,
			    void (*fn)(void *ctx, const struct lease_owner_info *o), void *ctx)
{
	struct lease_owner_info info;
	size_t n = 0;
	uint32_t i;

	for (i = 0; i < t->owners.used; i++) {
		const struct owner_rec *o = itab_rec(&t->owners, i);

		if (!t->owners.ref[i])
			continue;
		memset(&info, 0, sizeof(info));
		info.cgroup_id = o->key.cgroup_id;
		if (o->key.source != OWNER_CGROUP_ONLY) {
			info.has_pid = true;
			info.pid = o->key.pid;
			memcpy(info.comm, o->key.comm, sizeof(info.comm));
		}
		memcpy(info.count, o->count, sizeof(info.count));
		fn(ctx, &info);
		n++;
	}
	memset(&info, 0, sizeof(info));
	memcpy(info.count, t->unowned, sizeof(info.count));
	for (unsigned int k = 0; k < SP_LEASE_KIND_MAX; k++)
		for (unsigned int s = 0; s < LEASE_STATE_MAX; s++)
			if (info.count[k][s]) {
				fn(ctx, &info);
				return n + 1;
			}
	return n;
}

size_t lease_slot_bytes(void)
{
	return sizeof(struct lease) + 16 /* wheel node */ + sizeof(uint32_t) /* bucket */;
}

size_t lease_bytes(const struct lease_table *t)
{
	size_t nb = (size_t)t->bucket_mask + 1;

	return sizeof(*t) + t->slab_bytes + nb * sizeof(uint32_t) + wheel_bytes(t->wheel) +
	       itab_bytes(&t->addrs) + itab_bytes(&t->owners) + itab_bytes(&t->peers);
}
