/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Lease table: when verdicts come due. Renewal stores the arrival time and feeds the phi
 * estimate; the timing wheel fires at the earliest possible verdict, and the lease is re-armed
 * from the stored time then. Also the stall hold, and the socket-table reconciliation that ends
 * leases whose end never reached the agent.
 */
#include <string.h>

#include "lease_priv.h"

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

/* Conservative silence: the true last arrival may be up to one coalescing interval later. */
uint64_t lease_silence(const struct lease_table *t, const struct lease *l, unsigned int k,
		       uint64_t now)
{
	uint64_t from = sat_add(l->last[k], t->cfg.coalesce_ns);

	return now > from ? now - from : 0;
}

static uint64_t suspect_at(const struct lease_table *t, const struct lease *l, unsigned int k)
{
	uint64_t at = sat_add(l->last[k], t->cfg.coalesce_ns + ttl_of(t, l) / 2);

	if (t->phi_z > 0 && l->samples[k] >= t->cfg.phi_min_samples) {
		double sd = phi_sd(&l->phi[k], (double)t->cfg.phi_min_sd_ns / (double)NSEC_PER_SEC);
		double after = (l->phi[k].mean + t->phi_z * sd) * (double)NSEC_PER_SEC;

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
void lease_ensure_timer(struct lease_table *t, struct lease *l)
{
	uint32_t id = lease_idx(t, l);
	uint64_t at = next_deadline(t, l);

	if (at == UINT64_MAX)
		return;
	if (!wheel_pending(t->wheel, id) || wheel_expires(t->wheel, id) > at)
		wheel_arm(t->wheel, id, at);
}

/* Reports (report) or forgets the waiting recoveries of slot idx. */
void lease_recoveries_take(struct lease_table *t, uint32_t idx, bool report)
{
	for (uint32_t i = 0; i < t->n_recov;) {
		struct recovery r = t->recov[i];

		if (r.idx != idx) {
			i++;
			continue;
		}
		t->recov[i] = t->recov[--t->n_recov]; /* order among slots does not matter */
		if (report)
			lease_emit_at(t, &t->slab[idx], SP_ACT_LEASE_RECOVERED, r.kind, r.at,
				      r.silent_ns);
	}
}

/* Renewal of one kind at @now: the hot path is "store the time, feed the estimate". */
void lease_renew(struct lease_table *t, struct lease *l, unsigned int k, uint64_t now)
{
	uint64_t interval, silent;
	unsigned int s;

	if (now <= l->last[k])
		return;
	interval = now - l->last[k];
	silent = lease_silence(t, l, k, now);
	l->last[k] = now;
	s = kstate(l, k);
	if (s == LEASE_ALIVE) {
		/* Arrivals closer than the kernel's coalescing interval are one arrival. */
		if (interval >= t->cfg.coalesce_ns) {
			uint64_t cap = ttl_of(t, l) / 2;

			phi_update(&l->phi[k], &l->samples[k],
				   (double)(interval < cap ? interval : cap) / (double)NSEC_PER_SEC);
			/* phi just became trusted: the pending timer may be far too late. */
			if (l->samples[k] == t->cfg.phi_min_samples && t->phi_z > 0)
				lease_ensure_timer(t, l);
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
	lease_emit_at(t, l, SP_ACT_LEASE_RECOVERED, k, now, silent);
	lease_ensure_timer(t, l);
}

void lease_arm_payload(struct lease_table *t, struct lease *l, uint64_t now)
{
	struct peer_rec *p = peer_of(t, l);

	l->flags |= LF_PAYLOAD;
	l->last[SP_LEASE_PAYLOAD] = now;
	l->state &= ~(3u << (2 * SP_LEASE_PAYLOAD));
	p->count[SP_LEASE_PAYLOAD][LEASE_ALIVE]++;
	t->st.count[SP_LEASE_PAYLOAD][LEASE_ALIVE]++;
	owner_count(t, l, SP_LEASE_PAYLOAD)[LEASE_ALIVE]++;
	lease_ensure_timer(t, l);
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
		lease_end(t, l, now, l->flags & LF_RST_SENT ? "reset-sent" : NULL);
		return;
	}
	if (t->n_recov)
		lease_recoveries_take(t, id, true);
	for (k = 0; k < SP_LEASE_KIND_MAX; k++) {
		unsigned int s = kstate(l, k);

		if (!karmed(l, k) || s == LEASE_EXPIRED)
			continue;
		if (!held && (l->mark & LM_BLIND) &&
		    (now >= expire_at(t, l, k) || (s == LEASE_ALIVE && now >= suspect_at(t, l, k)))) {
			/* a verdict is due on a connection unheard of since records were lost,
			 * where no walk can tell whether it still exists: no verdict */
			if (l->last[SP_LEASE_TRANSPORT] < t->blind_since) {
				lease_end(t, l, now, SP_LEASE_REASON_UNOBSERVED);
				t->st.unobserved++;
				return;
			}
			l->mark &= (uint8_t)~LM_BLIND;
		}
		if (now >= expire_at(t, l, k)) {
			if (held)
				continue;
			/* Straight from ALIVE when the verdict is late (a hold): one line. */
			lease_emit(t, l, SP_ACT_LEASE_EXPIRED, k, now, NULL);
			set_kstate(t, l, k, LEASE_EXPIRED);
			t->st.expirations[k]++;
		} else if (s == LEASE_ALIVE && now >= suspect_at(t, l, k)) {
			if (held)
				continue;
			lease_emit(t, l, SP_ACT_LEASE_SUSPECT, k, now, NULL);
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

static bool netns_in(uint32_t netns, const uint32_t *set, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (set[i] == netns)
			return true;
	return false;
}

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
	struct lease *l = cookie ? lease_lookup(t, cookie) : NULL;

	if (l)
		l->mark |= LM_SEEN;
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
			lease_end(t, l, t->now, SP_LEASE_REASON_UNOBSERVED);
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
