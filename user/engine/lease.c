/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Lease table (see lease.h): the table, a connection's lease from creation (or eviction) to its
 * end, the lines it emits, and the events it is fed.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "lease_priv.h"

static const char *const lost_reasons[] = {
	[SP_ACT_RESET] = "reset",
	[SP_ACT_KEEPALIVE_TIMEOUT] = "keepalive-timeout",
	[SP_ACT_RETRANS_TIMEOUT] = "retransmit-timeout",
};

struct lease *lease_lookup(const struct lease_table *t, uint64_t cookie)
{
	uint32_t i;

	for (i = *bucket_of(t, cookie); i != NIL; i = t->slab[i].hnext)
		if (t->slab[i].cookie == cookie)
			return &t->slab[i];
	return NULL;
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

void lease_emit(struct lease_table *t, const struct lease *l, enum sp_action action,
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
		ev.lease.silent_ms = lease_silence(t, l, k, now) / NSEC_PER_MSEC;
		ev.lease.ttl_ms = ttl_of(t, l) / NSEC_PER_MSEC;
	}
	t->emit(t->ctx, &ev);
}

/* A recovery line: stamped at the renewal, with the silence that renewal ended. */
void lease_emit_at(struct lease_table *t, const struct lease *l, enum sp_action action,
		   unsigned int k, uint64_t at, uint64_t silent_ns)
{
	struct sp_event ev;

	memset(&ev, 0, sizeof(ev));
	ev.action = action;
	ev.mono_ns = at;
	ev.has_conn = true;
	fill_conn(t, l, &ev.conn);
	ev.lease.kind = (uint8_t)k;
	ev.lease.silent_ms = silent_ns / NSEC_PER_MSEC;
	ev.lease.ttl_ms = ttl_of(t, l) / NSEC_PER_MSEC;
	t->emit(t->ctx, &ev);
}

static void tomb_add(struct lease_table *t, uint64_t cookie)
{
	t->tomb[sp_hash64(cookie) & (TOMB_SIZE - 1)] = cookie;
}

static bool tomb_has(const struct lease_table *t, uint64_t cookie)
{
	return t->tomb[sp_hash64(cookie) & (TOMB_SIZE - 1)] == cookie;
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
		lease_recoveries_take(t, i, false); /* ended within moments: no recovery to tell */
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
void lease_end(struct lease_table *t, struct lease *l, uint64_t now, const char *reason)
{
	struct peer_rec *p = peer_of(t, l);
	unsigned int k;

	for (k = 0; k < SP_LEASE_KIND_MAX; k++)
		if (karmed(l, k))
			lease_emit(t, l, reason ? SP_ACT_LEASE_LOST : SP_ACT_LEASE_CLOSED, k, now,
				   reason);
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

	laddr = lease_intern_addr(t, local, c->netns);
	raddr = lease_intern_addr(t, remote, c->netns);
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
	lease_ensure_timer(t, l);
	return l;
}

void lease_config_default(struct lease_config *cfg)
{
	memset(cfg, 0, sizeof(*cfg));
	cfg->ttl_ns = 30 * NSEC_PER_SEC;
	cfg->max_leases = 1u << 20;
	cfg->coalesce_ns = NSEC_PER_SEC;
	cfg->phi_threshold = 8;
	cfg->phi_min_samples = 8;
	cfg->phi_min_sd_ns = NSEC_PER_SEC;
	cfg->close_grace_ns = NSEC_PER_SEC;
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
		l = lease_lookup(t, ev->conn.cookie);
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
		lease_renew(t, l, SP_LEASE_TRANSPORT, now);
		if (ev->activity.payload_bytes) {
			if (l->flags & LF_PAYLOAD)
				lease_renew(t, l, SP_LEASE_PAYLOAD, now);
			else
				lease_arm_payload(t, l, now);
		}
		return;
	case SP_ACT_STATE_CHANGE:
		l = lease_lookup(t, ev->conn.cookie);
		if (ev->state.new_state == SP_ST_ESTABLISHED) {
			if (l && !(l->flags & LF_CLOSING))
				lease_renew(t, l, SP_LEASE_TRANSPORT, now);
			else if (!l)
				create(t, &ev->conn, now);
			return;
		}
		if (!l || (l->flags & LF_CLOSING))
			return;
		if (!owner_known(t, l) && ev->conn.has_pid)
			adopt_owner(t, l, &ev->conn);
		if (ev->state.new_state != SP_ST_CLOSE) {
			lease_end(t, l, now, l->flags & LF_RST_SENT ? "reset-sent" : NULL);
			return;
		}
		/* Abort or death: the record that says which may follow the transition. */
		l->flags |= LF_CLOSING;
		wheel_arm(t->wheel, lease_idx(t, l), sat_add(now, t->cfg.close_grace_ns));
		return;
	case SP_ACT_RESET:
	case SP_ACT_KEEPALIVE_TIMEOUT:
	case SP_ACT_RETRANS_TIMEOUT:
		l = lease_lookup(t, ev->conn.cookie);
		if (!l)
			return;
		if (ev->action == SP_ACT_RESET && ev->reset.direction == SP_RST_SENT) {
			/* The cause may still come (keepalive timeout): decided at the close. */
			l->flags |= LF_RST_SENT;
			return;
		}
		lease_end(t, l, now, lost_reasons[ev->action]);
		return;
	default:
		return;
	}
}

bool lease_seed(struct lease_table *t, const struct sp_conn *c, uint64_t now)
{
	if (!c->cookie || lease_lookup(t, c->cookie) || tomb_has(t, c->cookie))
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
	const struct lease *l = cookie ? lease_lookup(t, cookie) : NULL;
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
