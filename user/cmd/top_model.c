// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * `sockpulse top`: the tables events feed. Peers (a remote address and the service port, with
 * their connect attempts and failures per second over the last minute), connections by socket
 * cookie, the recent events and the open spikes; each event updates them in O(1), without
 * allocating. sock_diag dumps and the socket-table walk add what events do not carry (timers,
 * keepalive settings, exact state counts) and drop connections whose close was lost.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "audit.h"
#include "sockdiag.h"
#include "top_int.h"
#include "topfmt.h"
#include "util.h"

#define CONN_BUCKETS (1u << 17)
#define PEER_BUCKETS 8192

/* ---- tables ------------------------------------------------------------------------------- */

static uint32_t peer_hash(const struct sp_addr *a, uint32_t netns, uint16_t port)
{
	uint64_t h = 1469598103934665603ULL;

	for (int i = 0; i < 16; i++)
		h = (h ^ a->bytes[i]) * 1099511628211ULL;
	h = (h ^ a->family) * 1099511628211ULL;
	h = (h ^ netns) * 1099511628211ULL;
	h = (h ^ port) * 1099511628211ULL;
	return (uint32_t)(sp_hash64(h) & (PEER_BUCKETS - 1));
}

uint32_t top_peer_find(const struct top *t, const struct sp_addr *a, uint32_t netns, uint16_t port)
{
	uint32_t i = t->peer_hash[peer_hash(a, netns, port)];

	for (; i != NIL; i = t->peers[i].hnext)
		if (t->peers[i].port == port && t->peers[i].netns == netns &&
		    top_same_addr(&t->peers[i].addr, a))
			return i;
	return NIL;
}

static uint32_t peer_get(struct top *t, const struct sp_addr *a, uint32_t netns, uint16_t port,
			 uint64_t now)
{
	uint32_t i = top_peer_find(t, a, netns, port), b;
	struct peer *p;

	if (i != NIL || !a->family)
		return i;
	for (i = 0; i < PEERS_MAX && t->peers[i].used; i++)
		;
	if (i == PEERS_MAX) {
		t->peers_dropped++;
		return NIL;
	}
	p = &t->peers[i];
	memset(p, 0, sizeof(*p));
	p->used = true;
	p->addr = *a;
	p->netns = netns;
	p->port = port;
	p->sec = now / NSEC_PER_SEC;
	p->touched_ns = now;
	b = peer_hash(a, netns, port);
	p->hnext = t->peer_hash[b];
	t->peer_hash[b] = i;
	t->n_peers++;
	return i;
}

void top_peer_free(struct top *t, uint32_t i)
{
	struct peer *p = &t->peers[i];
	uint32_t *pp = &t->peer_hash[peer_hash(&p->addr, p->netns, p->port)];

	while (*pp != NIL && *pp != i)
		pp = &t->peers[*pp].hnext;
	if (*pp == i)
		*pp = p->hnext;
	p->used = false;
	t->n_peers--;
}

/* Moves a per-second ring to the second of now, zeroing the seconds skipped. */
void top_ring_roll(uint64_t *sec, uint32_t *fail, uint32_t *att, uint64_t now)
{
	uint64_t s = now / NSEC_PER_SEC, k;

	if (s <= *sec)
		return;
	for (k = 1; k <= s - *sec && k <= SPARK_SECS; k++) {
		fail[(*sec + k) % SPARK_SECS] = 0;
		att[(*sec + k) % SPARK_SECS] = 0;
	}
	*sec = s;
}

static void set_owner(struct peer *p, const struct sp_conn *c)
{
	if (!c->has_pid)
		return;
	p->pid = c->pid;
	if (c->cgroup_id)
		p->cgroup_id = c->cgroup_id;
	memcpy(p->comm, c->comm, SP_COMM_MAX);
	p->comm[SP_COMM_MAX - 1] = '\0';
}

/* The peer of a connection as the lease table keys it: remote address + service port. */
static void peer_key(const struct sp_conn *c, struct sp_addr *remote, uint16_t *svc,
		     struct sp_addr *local, uint16_t *lport)
{
	if (c->direction == SP_DIR_INGRESS) {
		*remote = c->src;
		*local = c->dst;
		*lport = c->dport;
		*svc = c->dport;
		return;
	}
	*remote = c->dst;
	*local = c->src;
	*lport = c->sport;
	*svc = c->dport;
	if (c->direction != SP_DIR_EGRESS && c->sport && c->sport < c->dport)
		*svc = c->sport; /* no direction: guess the lower port, as the lease table does */
}

static uint32_t conn_find(const struct top *t, uint64_t cookie)
{
	uint32_t i = t->conn_hash[sp_hash64(cookie) & (CONN_BUCKETS - 1)];

	for (; i != NIL; i = t->conns[i].hnext)
		if (t->conns[i].cookie == cookie)
			return i;
	return NIL;
}

static struct conn *conn_get(struct top *t, const struct sp_event *ev)
{
	const struct sp_conn *c = &ev->conn;
	struct sp_addr remote;
	uint16_t svc;
	uint32_t i, b;
	struct conn *cn;

	if (!c->cookie)
		return NULL;
	i = conn_find(t, c->cookie);
	if (i != NIL) {
		cn = &t->conns[i];
		if (!cn->lport && c->has_ports) /* the local port is bound after SYN_SENT */
			peer_key(c, &remote, &svc, &cn->local, &cn->lport);
		return cn;
	}
	if (t->conn_free != NIL) {
		i = t->conn_free;
		t->conn_free = t->conns[i].hnext;
	} else if (t->conn_hwm < CONNS_MAX) {
		i = t->conn_hwm++;
	} else {
		t->conns_dropped++;
		return NULL;
	}
	cn = &t->conns[i];
	memset(cn, 0, sizeof(*cn));
	cn->used = true;
	cn->cookie = c->cookie;
	cn->netns = c->netns;
	cn->first_ns = ev->mono_ns;
	cn->diag_gen = t->diag_gen;
	peer_key(c, &remote, &svc, &cn->local, &cn->lport);
	cn->peer = peer_get(t, &remote, c->netns, svc, ev->mono_ns);
	if (cn->peer != NIL)
		t->peers[cn->peer].live++;
	b = sp_hash64(c->cookie) & (CONN_BUCKETS - 1);
	cn->hnext = t->conn_hash[b];
	t->conn_hash[b] = i;
	t->n_conns++;
	return cn;
}

static void conn_free(struct top *t, uint32_t i)
{
	struct conn *cn = &t->conns[i];
	uint32_t *pp = &t->conn_hash[sp_hash64(cn->cookie) & (CONN_BUCKETS - 1)];

	while (*pp != NIL && *pp != i)
		pp = &t->conns[*pp].hnext;
	if (*pp == i)
		*pp = cn->hnext;
	if (cn->peer != NIL && t->peers[cn->peer].used && t->peers[cn->peer].live)
		t->peers[cn->peer].live--;
	cn->used = false;
	cn->hnext = t->conn_free;
	t->conn_free = i;
	t->n_conns--;
}

static void conn_owner(struct conn *cn, const struct sp_conn *c)
{
	if (!c->has_pid)
		return;
	cn->pid = c->pid;
	memcpy(cn->comm, c->comm, SP_COMM_MAX);
	cn->comm[SP_COMM_MAX - 1] = '\0';
}

/* ---- events (the hot path: O(1), no allocation) ------------------------------------------ */

static void on_state(struct top *t, const struct sp_event *ev)
{
	uint8_t st = ev->state.new_state;
	struct conn *cn;
	uint32_t i;

	if (st == SP_ST_CLOSE || ev->state.time_wait) {
		i = conn_find(t, ev->conn.cookie);
		if (i != NIL)
			conn_free(t, i);
		return;
	}
	if (st == SP_ST_LISTEN || st >= SP_ST_MAX)
		return;
	if (st != SP_ST_SYN_SENT && st != SP_ST_ESTABLISHED && st != SP_ST_SYN_RECV) {
		i = conn_find(t, ev->conn.cookie);
		if (i != NIL)
			t->conns[i].state = st;
		return;
	}
	cn = conn_get(t, ev);
	if (!cn)
		return;
	cn->state = st;
	conn_owner(cn, &ev->conn);
	if (cn->peer == NIL)
		return;
	t->peers[cn->peer].touched_ns = ev->mono_ns;
	set_owner(&t->peers[cn->peer], &ev->conn);
	if (st == SP_ST_ESTABLISHED) {
		cn->last_act_ns = ev->mono_ns;
		t->peers[cn->peer].last_seen_ns = ev->mono_ns;
	}
}

static void on_activity(struct top *t, const struct sp_event *ev)
{
	uint32_t i = conn_find(t, ev->conn.cookie);
	struct conn *cn;

	if (i != NIL) {
		cn = &t->conns[i];
	} else {
		/* a connection older than us: follow it from now on */
		cn = conn_get(t, ev);
		if (!cn)
			return;
		cn->state = SP_ST_ESTABLISHED;
		conn_owner(cn, &ev->conn);
	}
	cn->last_act_ns = ev->mono_ns;
	if (cn->peer != NIL) {
		t->peers[cn->peer].last_seen_ns = ev->mono_ns;
		t->peers[cn->peer].touched_ns = ev->mono_ns;
	}
}

static void on_connect(struct top *t, const struct sp_event *ev)
{
	const struct sp_conn *c = &ev->conn;
	bool failed = !ev->connect.success;
	struct peer *p;
	uint32_t i;

	if (failed && ev->connect.failure == SP_FAIL_CANCELED)
		return; /* the application gave up: neither attempt nor failure (as spikes count) */
	top_ring_roll(&t->global.sec, t->global.fail, t->global.att, ev->mono_ns);
	t->global.att[t->global.sec % SPARK_SECS]++;
	if (failed)
		t->global.fail[t->global.sec % SPARK_SECS]++;
	i = peer_get(t, &c->dst, c->netns, c->dport, ev->mono_ns);
	if (i == NIL)
		return;
	p = &t->peers[i];
	top_ring_roll(&p->sec, p->fail, p->att, ev->mono_ns);
	p->att[p->sec % SPARK_SECS]++;
	if (failed)
		p->fail[p->sec % SPARK_SECS]++;
	p->touched_ns = ev->mono_ns;
	set_owner(p, c);
}

static void on_spike(struct top *t, const struct sp_event *ev)
{
	const struct sp_conn *c = &ev->conn;
	bool host = ev->spike.host_wide;
	struct spike_row *s = NULL;
	size_t i;

	for (i = 0; i < t->n_spikes; i++) {
		s = &t->spikes[i];
		if (s->host_wide == host &&
		    (host || (s->port == c->dport && s->netns == c->netns &&
			      top_same_addr(&s->addr, &c->dst))))
			break;
	}
	if (!ev->spike.start) {
		if (i < t->n_spikes)
			t->spikes[i] = t->spikes[--t->n_spikes];
		return;
	}
	if (i == t->n_spikes) {
		if (t->n_spikes == SPIKES_MAX)
			return;
		s = &t->spikes[t->n_spikes++];
		memset(s, 0, sizeof(*s));
		s->host_wide = host;
		s->addr = c->dst;
		s->netns = c->netns;
		s->port = c->dport;
		s->start_real_ns = ev->real_ns;
	}
	s->failures = ev->spike.failures;
	s->window_s = ev->spike.window_s;
	s->baseline = ev->spike.baseline_per_s;
	s->destinations = ev->spike.destinations;
}

void top_on_event(void *ctx, const struct sp_event *ev)
{
	struct top *t = ctx;

	switch (ev->action) {
	case SP_ACT_STATE_CHANGE:
		if (ev->has_conn)
			on_state(t, ev);
		break;
	case SP_ACT_ACTIVITY:
		if (ev->has_conn)
			on_activity(t, ev);
		return; /* too many for the pane */
	case SP_ACT_CONNECT:
		if (ev->has_conn)
			on_connect(t, ev);
		break;
	case SP_ACT_SPIKE:
		on_spike(t, ev);
		break;
	default:
		break;
	}
	if (!tf_event_interesting(ev))
		return;
	t->recent[t->recent_head] = *ev;
	t->recent_head = (t->recent_head + 1) % RECENT_MAX;
	if (t->n_recent < RECENT_MAX)
		t->n_recent++;
}

/* ---- sock_diag ------------------------------------------------------------------------------ */

/* The socket-table walk: each established connection's keepalive settings, for the details. */
void top_walk_sock(void *ctx, const struct audit_sock *as, uint64_t target_ms)
{
	struct top *t = ctx;
	uint32_t i;

	(void)target_ms;
	if (!as->conn.cookie || as->state != SP_ST_ESTABLISHED)
		return;
	i = conn_find(t, as->conn.cookie);
	if (i == NIL)
		return;
	t->conns[i].has_ka = true;
	t->conns[i].ka = as->ka;
}

static void diag_sock(void *ctx, const struct diag_tally *tally, const struct diag_sock *ds)
{
	struct top *t = ctx;
	uint32_t i;

	/* the header counts the sockets that pass the filters the kernel applies to events */
	if (ds->state < SP_ST_MAX &&
	    tf_filter_match(&t->cfg->filter.ports, t->cfg->filter.family, &ds->local, ds->lport, ds->rport))
		t->diag_pending[ds->state]++;
	if (!ds->cookie)
		return;
	i = conn_find(t, ds->cookie);
	if (i == NIL)
		return;
	t->conns[i].has_diag = true;
	t->conns[i].diag_timer = ds->timer;
	t->conns[i].diag_retrans = ds->retrans;
	t->conns[i].diag_expires_ms = ds->expires_ms;
	t->conns[i].diag_gen = t->diag_gen;
}

static bool dumped_netns(const struct top *t, uint32_t netns)
{
	for (int i = 0; i < t->diag.n_ns; i++)
		if (t->diag.ns[i].inode == netns)
			return true;
	return false;
}

void top_diag_done(void *ctx, const struct diag_tally *tally, bool ok)
{
	struct top *t = ctx;

	memcpy(t->diag_states, t->diag_pending, sizeof(t->diag_states));
	t->diag_valid = true;
	if (!ok)
		return;
	/* A connection a whole dump of its namespace did not see is gone (its close was lost). */
	for (uint32_t i = 0; i < t->conn_hwm; i++) {
		struct conn *cn = &t->conns[i];

		if (cn->used && cn->diag_gen != t->diag_gen && cn->first_ns < t->diag.started_ns &&
		    dumped_netns(t, cn->netns))
			conn_free(t, i);
	}
}

/* Starts a dump of the socket tables, unless the last one still runs. */
void top_diag_start(struct top *t)
{
	/* -EBUSY: the last dump still runs; a dump's sockets carry its generation */
	if (t->diag_on && !t->diag.busy) {
		t->diag_gen++;
		memset(t->diag_pending, 0, sizeof(t->diag_pending));
		if (sockdiag_start(&t->diag, diag_sock))
			t->diag_gen--;
	}
}

/* ---- allocation ----------------------------------------------------------------------------- */

int top_alloc_tables(struct top *t)
{
	t->conns = calloc(CONNS_MAX, sizeof(*t->conns));
	t->conn_hash = malloc(CONN_BUCKETS * sizeof(*t->conn_hash));
	t->peers = calloc(PEERS_MAX, sizeof(*t->peers));
	t->peer_hash = malloc(PEER_BUCKETS * sizeof(*t->peer_hash));
	t->snap.rows = calloc(PEERS_MAX, sizeof(*t->snap.rows));
	t->snap.details = calloc(DETAILS_MAX, sizeof(*t->snap.details));
	t->view = calloc(PEERS_MAX, sizeof(*t->view));
	t->groups = calloc(PEERS_MAX, sizeof(*t->groups));
	if (!t->conns || !t->conn_hash || !t->peers || !t->peer_hash || !t->snap.rows ||
	    !t->snap.details || !t->view || !t->groups)
		return -ENOMEM;
	memset(t->conn_hash, 0xff, CONN_BUCKETS * sizeof(*t->conn_hash));
	memset(t->peer_hash, 0xff, PEER_BUCKETS * sizeof(*t->peer_hash));
	t->conn_free = NIL;
	return 0;
}

void top_free_tables(struct top *t)
{
	free(t->conns);
	free(t->conn_hash);
	free(t->peers);
	free(t->peer_hash);
	free(t->snap.rows);
	free(t->snap.details);
	free(t->view);
	free(t->groups);
}
