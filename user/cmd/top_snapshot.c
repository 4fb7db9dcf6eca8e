// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * `sockpulse top`: what the screen shows. Once per refresh the tables, the lease engine and the
 * last sock_diag dump are read into a snapshot (frozen while paused): the header's counts, one
 * row per peer, the spikes, the recent events, a peer's connections. The view is the snapshot's
 * rows filtered, sorted and perhaps grouped by service, with the selection following its peer.
 */
#define _GNU_SOURCE
#include <stdio.h>
#include <string.h>

#include "cgroup.h"
#include "clock.h"
#include "engine.h"
#include "top_int.h"
#include "topfmt.h"
#include "util.h"

#define PEER_IDLE_NS (120 * NSEC_PER_SEC) /* a peer with nothing left to show is forgotten */

/* Of the connections holding a lease of one kind, how many are in the given state. */
static void worst_share(const uint32_t count[LEASE_STATE_MAX], uint8_t st, uint32_t *n,
			uint32_t *of)
{
	*of = count[LEASE_ALIVE] + count[LEASE_SUSPECT] + count[LEASE_EXPIRED];
	*n = st == TF_LEASE_EXPIRED   ? count[LEASE_EXPIRED]
	     : st == TF_LEASE_SUSPECT ? count[LEASE_SUSPECT]
				      : count[LEASE_ALIVE];
}

static uint8_t worst(const uint32_t count[LEASE_STATE_MAX])
{
	if (count[LEASE_EXPIRED])
		return TF_LEASE_EXPIRED;
	if (count[LEASE_SUSPECT])
		return TF_LEASE_SUSPECT;
	if (count[LEASE_ALIVE])
		return TF_LEASE_ALIVE;
	return TF_LEASE_NONE;
}

/* Time left on the leases of each peer: the earliest verdict among its connections. */
static void compute_left(struct top *t, const struct lease_table *lt, uint64_t now)
{
	struct lease_info li;

	for (uint32_t i = 0; i < PEERS_MAX; i++)
		t->peers[i].has_left = false;
	if (!lt)
		return;
	for (uint32_t i = 0; i < t->conn_hwm; i++) {
		struct conn *cn = &t->conns[i];
		struct peer *p;
		int64_t left;

		if (!cn->used || cn->peer == NIL || !lease_get(lt, cn->cookie, &li))
			continue;
		p = &t->peers[cn->peer];
		for (int k = 0; k < SP_LEASE_KIND_MAX; k++) {
			if (k == SP_LEASE_PAYLOAD && !li.payload_armed)
				continue;
			left = (int64_t)(li.last_ns[k] + li.ttl_ns) - (int64_t)now;
			if (!p->has_left || left < p->min_left_ns) {
				p->min_left_ns = left;
				p->has_left = true;
			}
		}
	}
}

/* The owner's unit, else its container's short id, else its command. */
static void row_service(struct top *t, struct tf_row *r, uint64_t cgroup_id)
{
	const struct cg_attr *a = cgroup_id ? cg_lookup(t->rt.cg, cgroup_id) : NULL;
	const char *name = NULL;
	size_t len = 0;

	if (a)
		name = cg_service(a, &len);
	if (!len) {
		name = r->comm;
		len = strnlen(r->comm, SP_COMM_MAX);
	}
	if (len >= sizeof(r->service))
		len = sizeof(r->service) - 1;
	memcpy(r->service, name, len);
	r->service[len] = '\0';
}

static void build_rows(struct top *t, uint64_t now)
{
	const struct lease_table *lt = t->rt.engine ? engine_leases(t->rt.engine) : NULL;
	struct snapshot *s = &t->snap;
	struct lease_peer_info lp;

	compute_left(t, lt, now);
	s->n_rows = 0;
	for (uint32_t i = 0; i < PEERS_MAX; i++) {
		struct peer *p = &t->peers[i];
		struct tf_row *r = &s->rows[s->n_rows];
		bool leased = lt && lease_peer_get(lt, &p->addr, p->netns, p->port, &lp);
		uint64_t last;

		if (!p->used)
			continue;
		top_ring_roll(&p->sec, p->fail, p->att, now);
		memset(r, 0, sizeof(*r));
		for (int k = 0; k < SPARK_SECS; k++) {
			r->fails_min += p->fail[k];
			r->attempts_min += p->att[k];
		}
		if (!leased && !p->live && !r->attempts_min && now - p->touched_ns > PEER_IDLE_NS) {
			top_peer_free(t, i);
			continue;
		}
		r->addr = p->addr;
		r->netns = p->netns;
		r->port = p->port;
		r->conns = leased ? lp.conns : p->live;
		if (leased) {
			r->transport = worst(lp.count[SP_LEASE_TRANSPORT]);
			r->payload = worst(lp.count[SP_LEASE_PAYLOAD]);
			worst_share(lp.count[SP_LEASE_TRANSPORT], r->transport, &r->transport_n,
				    &r->transport_of);
			worst_share(lp.count[SP_LEASE_PAYLOAD], r->payload, &r->payload_n,
				    &r->payload_of);
			if (!lp.conns)
				r->transport = lp.lost ? TF_LEASE_LOST : TF_LEASE_CLOSED;
		}
		last = p->last_seen_ns;
		if (leased && lp.last_seen_ns > last)
			last = lp.last_seen_ns;
		if (last) {
			r->has_last = true;
			r->last_ago_ns = now > last ? now - last : 0;
		}
		r->has_left = p->has_left;
		r->left_ns = p->min_left_ns;
		r->pid = p->pid;
		memcpy(r->comm, p->comm, SP_COMM_MAX);
		row_service(t, r, p->cgroup_id);
		tf_row_prepare(r);
		s->n_rows++;
	}
}

static void incident_failures(void *ctx, const struct spike_incident *inc)
{
	struct snapshot *s = ctx;

	for (size_t i = 0; i < s->n_spikes; i++) {
		struct spike_row *r = &s->spikes[i];

		/* the window the panel names ("N failures in 10s"), not the incident's total */
		if (!r->host_wide && r->port == inc->port && r->netns == inc->netns &&
		    top_same_addr(&r->addr, &inc->addr))
			r->failures = inc->window_failures;
	}
}

void top_build_details(struct top *t, uint64_t now)
{
	const struct lease_table *lt = t->rt.engine ? engine_leases(t->rt.engine) : NULL;
	struct snapshot *s = &t->snap;
	uint32_t pi = top_peer_find(t, &t->det_peer.addr, t->det_peer.netns, t->det_peer.port);

	s->n_details = 0;
	if (pi == NIL)
		return;
	for (uint32_t i = 0; i < t->conn_hwm && s->n_details < DETAILS_MAX; i++) {
		struct detail_row *d = &s->details[s->n_details];

		if (!t->conns[i].used || t->conns[i].peer != pi)
			continue;
		d->c = t->conns[i];
		d->has_lease = lt && lease_get(lt, d->c.cookie, &d->li);
		s->n_details++;
	}
}

/* The dashboard's clock: the host's, or a replayed log's last timestamp. */
uint64_t top_mono_ns(const struct top *t)
{
	return t->replay ? t->replay_ns : clock_mono_ns();
}

static void refresh_snapshot(struct top *t)
{
	struct snapshot *s = &t->snap;
	uint64_t now = top_mono_ns(t), received = 0, lost = 0;
	size_t k;

	for (int r = 1; r < SP_REC_TYPE_MAX; r++) {
		received += t->rt.counts.received[r];
		lost += t->rt.counts.lost[r];
	}
	if (t->prev_mono && now > t->prev_mono)
		s->events_per_s = (double)(received - t->prev_received) * 1e9 /
				  (double)(now - t->prev_mono);
	t->prev_received = received;
	t->prev_mono = now;
	s->lost = t->replay ? t->replay_lost : lost;
	s->mono_ns = now;
	s->real_ns = t->replay ? now : clock_real_ns();

	memset(s->states, 0, sizeof(s->states));
	s->states_exact = t->diag_valid;
	if (t->diag_valid) {
		memcpy(s->states, t->diag_states, sizeof(s->states));
	} else {
		for (uint32_t i = 0; i < t->conn_hwm; i++)
			if (t->conns[i].used && t->conns[i].state < SP_ST_MAX)
				s->states[t->conns[i].state]++;
	}

	top_ring_roll(&t->global.sec, t->global.fail, t->global.att, now);
	s->fails_min = s->atts_min = 0;
	for (k = 0; k < SPARK_SECS; k++) {
		/* oldest first: the second after the current one is the oldest kept */
		uint64_t sec = t->global.sec + 1 + k;

		s->spark_fail[k] = t->global.fail[sec % SPARK_SECS];
		s->fails_min += t->global.fail[k];
		s->atts_min += t->global.att[k];
	}

	build_rows(t, now);
	memcpy(s->spikes, t->spikes, t->n_spikes * sizeof(t->spikes[0]));
	s->n_spikes = t->n_spikes;
	s->host_spike = false;
	for (k = 0; k < s->n_spikes; k++)
		s->host_spike |= s->spikes[k].host_wide;
	if (t->rt.engine) {
		spike_for_each_incident(engine_spikes(t->rt.engine), incident_failures, s);
		const struct stuck_stats *st = stuck_stats(engine_stuck(t->rt.engine));

		s->leases_live = engine_lease_stats(t->rt.engine)->live;
		s->stuck = st->stuck[0] + st->stuck[1];
		s->has_stuck_top = stuck_top_procs(engine_stuck(t->rt.engine), &s->stuck_top, 1);
		s->has_ports = portfc_top(engine_ports(t->rt.engine), &s->ports, 1) &&
			       (s->ports.alert || s->ports.used * 2 >= s->ports.capacity);
	}
	s->n_recent = t->n_recent;
	for (k = 0; k < t->n_recent; k++)
		s->recent[k] = t->recent[(t->recent_head + RECENT_MAX - 1 - k) % RECENT_MAX];
	if (t->view_mode == VIEW_DETAILS || t->back_mode == VIEW_DETAILS)
		top_build_details(t, now);
}

/* ---- the view: filtered, sorted, grouped; the selection ------------------------------------- */

static bool same_peer(const struct tf_row *a, const struct tf_row *b)
{
	if (a->peers || b->peers)
		return a->peers && b->peers && !strcmp(a->service, b->service);
	return a->port == b->port && a->netns == b->netns && top_same_addr(&a->addr, &b->addr);
}

/* The filtered rows folded into one row per service (services are few: a scan will do). */
static void group_view(struct top *t)
{
	size_t n_groups = 0;

	for (size_t i = 0; i < t->n_view; i++) {
		const struct tf_row *r = t->view[i];
		size_t g;

		for (g = 0; g < n_groups; g++)
			if (!strcmp(t->groups[g].service, r->service))
				break;
		if (g == n_groups)
			memset(&t->groups[n_groups++], 0, sizeof(t->groups[0]));
		tf_row_group(&t->groups[g], r);
	}
	for (size_t g = 0; g < n_groups; g++) {
		/* the selection follows a service by its name: ports and addresses are 0 */
		struct tf_row *r = &t->groups[g];

		snprintf(r->text, sizeof(r->text), "%.*s", (int)sizeof(r->text) - 1, r->service);
		t->view[g] = r;
	}
	t->n_view = n_groups;
}

/* Filter and sort the snapshot's rows; keep the selected peer selected. */
void top_apply_view(struct top *t)
{
	size_t i;

	t->n_view = 0;
	for (i = 0; i < t->snap.n_rows; i++)
		if (tf_row_match(&t->snap.rows[i], t->filter))
			t->view[t->n_view++] = &t->snap.rows[i];
	if (t->by_service)
		group_view(t);
	tf_sort(t->view, t->n_view, t->sort_col, t->reverse);
	if (t->have_sel_key) {
		for (i = 0; i < t->n_view; i++) {
			if (same_peer(t->view[i], &t->sel_key)) {
				t->sel = i;
				break;
			}
		}
	}
	if (t->sel >= t->n_view)
		t->sel = t->n_view ? t->n_view - 1 : 0;
	if (t->n_view) {
		t->sel_key = *t->view[t->sel];
		t->have_sel_key = true;
	}
}

/* A new snapshot and its view, and what that cost. */
void top_refresh(struct top *t)
{
	uint64_t t0 = clock_mono_ns(), d;

	refresh_snapshot(t);
	top_apply_view(t);
	d = clock_mono_ns() - t0;
	t->refreshes++;
	t->refresh_sum_ns += d;
	if (d > t->refresh_max_ns)
		t->refresh_max_ns = d;
}
