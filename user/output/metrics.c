// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * Metrics state: what each event, snapshot and audit does to the counters, gauges and
 * histograms, and the --metrics address. The Prometheus text is rendered in metrics_expo.c.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "format.h"
#include "metrics_priv.h"
#include "names.h"
#include "parse.h"

_Static_assert((int)SVC_LEASE_STATES == (int)LEASE_STATE_MAX &&
		       (int)SVC_LEASE_ALIVE == (int)LEASE_ALIVE &&
		       (int)SVC_LEASE_EXPIRED == (int)LEASE_EXPIRED,
	       "the service table counts leases by the lease table's states");

/*
 * Connect latency buckets (seconds). A lost SYN is retransmitted after 1 s, then 2, 4, 8 ...:
 * connects that needed one retransmission land just above 1 s, two just above 3 s, three above
 * 7 s. Bucket pairs around those points (0.9/1.5, 2.9/3.5, 6.9/7.5) count each case apart.
 */
const uint64_t metrics_connect_bucket_ns[METRICS_CONNECT_BUCKETS] = {
	1000000ULL,    2500000ULL,    5000000ULL,    10000000ULL,    25000000ULL,    50000000ULL,
	100000000ULL,  250000000ULL,  500000000ULL,  900000000ULL,   1500000000ULL,  2900000000ULL,
	3500000000ULL, 6900000000ULL, 7500000000ULL, 15500000000ULL, 31500000000ULL, 63500000000ULL,
};

/* kind + 1 per action: 0 (an action added later and not listed here) counts as "other" */
static const uint8_t action_kind[SP_ACT_MAX] = {
	[SP_ACT_STATE_CHANGE] = MK_STATE + 1,
	[SP_ACT_ACTIVITY] = MK_ACTIVITY + 1,
	[SP_ACT_CONNECT] = MK_CONNECT + 1,
	[SP_ACT_KEEPALIVE_TIMEOUT] = MK_KEEPALIVE_TIMEOUT + 1,
	[SP_ACT_RETRANS_TIMEOUT] = MK_RETRANSMIT_TIMEOUT + 1,
	[SP_ACT_RESET] = MK_RESET + 1,
	[SP_ACT_LEASE_SUSPECT] = MK_LEASE + 1,
	[SP_ACT_LEASE_EXPIRED] = MK_LEASE + 1,
	[SP_ACT_LEASE_RECOVERED] = MK_LEASE + 1,
	[SP_ACT_LEASE_CLOSED] = MK_LEASE + 1,
	[SP_ACT_LEASE_LOST] = MK_LEASE + 1,
	[SP_ACT_LEASE_HOLD] = MK_LEASE + 1,
	[SP_ACT_SPIKE] = MK_SPIKE + 1,
	[SP_ACT_EVENTS_LOST] = MK_EVENTS_LOST + 1,
	[SP_ACT_TCP_STUCK] = MK_STUCK + 1,
	[SP_ACT_PORT_RISK] = MK_PORT_RISK + 1,
};

static void copy_str(char *dst, size_t cap, const char *src)
{
	snprintf(dst, cap, "%s", src ? src : "");
}

int metrics_init(struct metrics *m, const char *version, const char *libbpf_version,
		 const char *connect_hook)
{
	memset(m, 0, sizeof(*m));
	copy_str(m->version, sizeof(m->version), version);
	copy_str(m->libbpf_version, sizeof(m->libbpf_version), libbpf_version);
	copy_str(m->connect_hook, sizeof(m->connect_hook), connect_hook);
	m->services_top = SVC_TOP_DEFAULT;
	if (svc_init(&m->svc)) {
		metrics_free(m);
		return -ENOMEM;
	}
	return 0;
}

void metrics_free(struct metrics *m)
{
	if (!m)
		return;
	svc_free(&m->svc);
	free(m->ka_work);
	m->ka_work = NULL;
}

/* ---- services ---- */

static uint16_t service_index(struct metrics *m, uint64_t cgroup_id, const char *comm)
{
	const char *name = comm;
	size_t len;

	if (m->service_of)
		len = m->service_of(m->service_ctx, cgroup_id, comm, &name);
	else
		len = strnlen(comm, SP_COMM_MAX);
	return svc_intern(&m->svc, name, len);
}

static uint16_t conn_service(struct metrics *m, const struct sp_conn *c)
{
	return service_index(m, c->cgroup_id, c->has_pid ? c->comm : "");
}

static struct metrics_fail_dest *fail_dest_slot(struct metrics *m, const struct sp_addr *dst,
						 uint16_t port, uint32_t netns)
{
	uint64_t k = (uint64_t)port << 32 ^ netns;

	for (size_t i = 0; i < sizeof(dst->bytes); i += 4) {
		uint32_t w;

		memcpy(&w, dst->bytes + i, 4);
		k = sp_hash64(k ^ w);
	}
	return &m->fail_dest[k % METRICS_FAIL_DESTS];
}

static bool same_dest(const struct metrics_fail_dest *f, const struct sp_addr *dst, uint16_t port,
		      uint32_t netns)
{
	return f->port == port && f->netns == netns && f->dst.family == dst->family &&
	       !memcmp(f->dst.bytes, dst->bytes, sizeof(f->dst.bytes));
}

/* ---- lease gauges: the lease table's own counts ---- */

static void add_owner_leases(void *ctx, const struct lease_owner_info *o)
{
	struct metrics *m = ctx;
	struct svc_stat *st = &m->svc.s[service_index(m, o->cgroup_id, o->has_pid ? o->comm : "")];

	for (int k = 0; k < SP_LEASE_KIND_MAX; k++)
		for (int l = 0; l < LEASE_STATE_MAX; l++)
			st->leases[k][l] += o->count[k][l];
}

void metrics_set_leases(struct metrics *m, const struct lease_table *t)
{
	const struct lease_stats *ls = lease_stats(t);
	uint64_t full = m->svc.full;

	for (int k = 0; k < SP_LEASE_KIND_MAX; k++)
		for (int l = 0; l < LEASE_STATE_MAX; l++)
			m->lease_gauge[k][l] = ls->count[k][l];
	m->lease_overflows = ls->evicted;
	for (uint32_t i = 0; i < m->svc.n; i++)
		memset(m->svc.s[i].leases, 0, sizeof(m->svc.s[i].leases));
	lease_for_each_owner(t, add_owner_leases, m);
	/* a lease made under a full service table was counted in svc.full when it was made */
	m->svc.full = full;
}

/* ---- spike table ---- */

size_t metrics_dest_label(char *buf, size_t cap, const struct sp_addr *addr, uint16_t port)
{
	char ip[SP_ADDR_STR_MAX];
	int n;

	if (!addr->family)
		n = snprintf(buf, cap, "host");
	else if (!format_addr(ip, sizeof(ip), addr))
		n = snprintf(buf, cap, "other");
	else if (strchr(ip, ':'))
		n = snprintf(buf, cap, "[%s]:%u", ip, port);
	else
		n = snprintf(buf, cap, "%s:%u", ip, port);
	return n < 0 || (size_t)n >= cap ? 0 : (size_t)n;
}

static void on_spike(struct metrics *m, const struct sp_event *ev)
{
	char label[METRICS_DEST_LABEL_MAX];
	struct metrics_spike *s = NULL, *victim = NULL;
	uint32_t netns = ev->has_conn ? ev->conn.netns : 0;

	if (ev->spike.start)
		m->spikes_total++;
	if (ev->spike.host_wide || !ev->has_conn || !ev->conn.dst.family)
		snprintf(label, sizeof(label), "host");
	else if (!metrics_dest_label(label, sizeof(label), &ev->conn.dst, ev->conn.dport))
		snprintf(label, sizeof(label), "other");
	for (int i = 0; i < METRICS_SPIKES_MAX && !s; i++)
		if (m->spikes[i].used && m->spikes[i].netns == netns &&
		    strcmp(m->spikes[i].label, label) == 0)
			s = &m->spikes[i];
	/* a new destination takes a free slot, else the one inactive the longest */
	for (int i = 0; i < METRICS_SPIKES_MAX && !s; i++) {
		struct metrics_spike *c = &m->spikes[i];

		if (!c->used) {
			victim = c;
			break;
		}
		if (!c->active && (!victim || c->changed_ns < victim->changed_ns))
			victim = c;
	}
	if (!s) {
		if (!victim || victim->active) {
			/* every slot holds an active spike: count it without a label */
			if (ev->spike.start)
				m->spikes_untracked_active++;
			else if (m->spikes_untracked_active)
				m->spikes_untracked_active--;
			return;
		}
		s = victim;
		memset(s, 0, sizeof(*s));
		s->used = true;
		s->netns = netns;
		copy_str(s->label, sizeof(s->label), label);
	}
	if (ev->spike.start && !ev->spike.host_wide && ev->has_conn) {
		const struct metrics_fail_dest *f =
		    fail_dest_slot(m, &ev->conn.dst, ev->conn.dport, netns);

		s->svc = same_dest(f, &ev->conn.dst, ev->conn.dport, netns) ? f->svc : SVC_OTHER;
	}
	s->active = ev->spike.start;
	s->changed_ns = ev->mono_ns;
}

/* ---- events ---- */

static void hist_add(struct metrics_hist *h, uint64_t ns)
{
	for (int i = 0; i < METRICS_CONNECT_BUCKETS; i++) {
		if (ns <= metrics_connect_bucket_ns[i]) {
			h->buckets[i]++;
			break;
		}
	}
	h->count++;
	h->sum_ns += ns;
}

static int lost_kind_index(const char *name)
{
	for (int t = 1; t < SP_REC_TYPE_MAX; t++)
		if (name && strcmp(name, rec_type_name(t)) == 0)
			return t;
	return 0; /* unknown: counted under index 0, printed as "other" */
}

void metrics_on_event(struct metrics *m, const struct sp_event *ev)
{
	uint64_t cookie = ev->has_conn ? ev->conn.cookie : 0;

	if ((unsigned int)ev->action >= SP_ACT_MAX)
		return;
	m->events[action_kind[ev->action] ? action_kind[ev->action] - 1 : MK_OTHER]++;
	switch (ev->action) {
	case SP_ACT_STATE_CHANGE:
		if (ev->state.old_state < SP_ST_MAX && ev->state.new_state < SP_ST_MAX)
			m->transitions[ev->state.old_state][ev->state.new_state]++;
		/* the connection gets its lease: counts in choosing the services shown */
		if (ev->state.new_state == SP_ST_ESTABLISHED && cookie)
			m->svc.s[conn_service(m, &ev->conn)].activity++;
		break;
	case SP_ACT_CONNECT: {
		int i = ev->connect.success ? 0 : 1;
		uint16_t svc = ev->has_conn ? conn_service(m, &ev->conn) : SVC_OTHER;
		struct svc_stat *st = &m->svc.s[svc];

		m->connects[i]++;
		st->connects[i]++;
		st->activity++;
		if (!ev->connect.success && ev->connect.failure < SP_FAIL_MAX) {
			m->failures[ev->connect.failure]++;
			st->failures[ev->connect.failure]++;
		}
		if (!ev->connect.success && ev->has_conn) {
			struct metrics_fail_dest *f = fail_dest_slot(m, &ev->conn.dst, ev->conn.dport,
								     ev->conn.netns);

			f->dst = ev->conn.dst;
			f->port = ev->conn.dport;
			f->netns = ev->conn.netns;
			f->svc = svc;
		}
		if (ev->has_duration)
			hist_add(&m->connect_duration[i], ev->duration_ns);
		break;
	}
	case SP_ACT_KEEPALIVE_TIMEOUT:
		m->keepalive_timeouts++;
		break;
	case SP_ACT_RETRANS_TIMEOUT:
		m->retransmit_timeouts++;
		break;
	case SP_ACT_RESET:
		if (ev->reset.direction < SP_RST_MAX)
			m->resets[ev->reset.direction]++;
		break;
	case SP_ACT_LEASE_EXPIRED:
		if (ev->lease.kind < SP_LEASE_KIND_MAX)
			m->lease_expirations[ev->lease.kind]++;
		break;
	case SP_ACT_LEASE_LOST:
		/* one connection, counted by its transport line (every lease has one) */
		if (ev->lease.kind == SP_LEASE_TRANSPORT && ev->lease.reason &&
		    !strcmp(ev->lease.reason, SP_LEASE_REASON_UNOBSERVED))
			m->lease_unobserved++;
		break;
	case SP_ACT_SPIKE:
		on_spike(m, ev);
		break;
	case SP_ACT_EVENTS_LOST:
		m->lost[lost_kind_index(ev->lost.kind)] += ev->lost.count;
		break;
	case SP_ACT_TCP_STUCK: {
		int k = stuck_state_index(ev->stuck.state);

		if (ev->stuck.start && k >= 0)
			m->stuck_alerts[k]++;
		break;
	}
	case SP_ACT_PORT_RISK:
		if (ev->ports.start)
			m->port_risk_alerts++;
		break;
	default:
		break;
	}
}

void metrics_set_diag(struct metrics *m, const uint64_t states[SP_ST_MAX], uint64_t time_wait,
		      const struct metrics_dest *top, unsigned int n_top, uint64_t other)
{
	m->have_diag = true;
	memcpy(m->conn_states, states, sizeof(m->conn_states));
	m->time_wait = time_wait;
	if (n_top > METRICS_TOP_N)
		n_top = METRICS_TOP_N;
	memcpy(m->tw_top, top, n_top * sizeof(*top));
	m->n_tw_top = n_top;
	m->tw_other = other;
}

void metrics_set_stuck(struct metrics *m, const struct stuck_proc *procs, size_t n)
{
	m->have_stuck = true;
	m->n_stuck_top = 0;
	memset(m->stuck_other, 0, sizeof(m->stuck_other));
	for (uint32_t i = 0; i < m->svc.n; i++)
		memset(m->svc.s[i].stuck, 0, sizeof(m->svc.s[i].stuck));
	for (size_t i = 0; i < n; i++) {
		struct metrics_stuck *t = NULL;
		struct svc_stat *st = &m->svc.s[service_index(m, procs[i].cgroup_id, procs[i].comm)];

		for (int k = 0; k < STUCK_STATES; k++)
			st->stuck[k] += procs[i].stuck[k];

		for (unsigned int j = 0; j < m->n_stuck_top && !t; j++)
			if (!strncmp(m->stuck_top[j].process, procs[i].comm, SP_COMM_MAX))
				t = &m->stuck_top[j];
		if (!t && m->n_stuck_top < METRICS_TOP_N && procs[i].comm[0]) {
			t = &m->stuck_top[m->n_stuck_top++];
			memset(t, 0, sizeof(*t));
			memcpy(t->process, procs[i].comm, SP_COMM_MAX);
			t->process[SP_COMM_MAX - 1] = '\0';
		}
		for (int k = 0; k < STUCK_STATES; k++) {
			if (t)
				t->sockets[k] += procs[i].stuck[k];
			else
				m->stuck_other[k] += procs[i].stuck[k];
		}
	}
}

void metrics_set_ports(struct metrics *m, const struct portfc_tuple *top, size_t n)
{
	m->have_ports = true;
	if (n > METRICS_TOP_N)
		n = METRICS_TOP_N;
	for (size_t i = 0; i < n; i++) {
		struct metrics_ports *p = &m->ports_top[i];

		if (!format_addr(p->source, sizeof(p->source), &top[i].src))
			snprintf(p->source, sizeof(p->source), "other");
		metrics_dest_label(p->destination, sizeof(p->destination), &top[i].dst,
				   top[i].dport);
		p->used = top[i].used;
		p->time_wait = top[i].time_wait;
		p->capacity = top[i].capacity;
		p->eta_s = top[i].eta_ms == UINT64_MAX ? -1 : (double)top[i].eta_ms / MSEC_PER_SEC;
		p->alert = top[i].alert;
	}
	m->n_ports_top = (unsigned int)n;
}

/* Keepalive detection buckets (seconds): 10 s to 3 h. */
const double metrics_ka_bucket_s[METRICS_KA_BUCKETS] = {
    10, 30, 60, 120, 300, 900, 1800, 3600, 7200, 10800,
};

int metrics_ka_begin(struct metrics *m)
{
	if (!m->ka_work) {
		m->ka_work = calloc(METRICS_KA_PORTS_MAX + 1, sizeof(*m->ka_work));
		if (!m->ka_work)
			return -ENOMEM;
	}
	memset(m->ka_work, 0, (METRICS_KA_PORTS_MAX + 1) * sizeof(*m->ka_work));
	m->n_ka_work = 0;
	return 0;
}

static void ka_count(struct metrics_ka *k, uint64_t ms)
{
	if (ms == UINT64_MAX) {
		k->without++;
		k->worst_ms = UINT64_MAX;
		return;
	}
	for (int i = 0; i < METRICS_KA_BUCKETS; i++) {
		if (ms <= metrics_ka_bucket_s[i] * MSEC_PER_SEC) {
			k->buckets[i]++;
			break;
		}
	}
	k->count++;
	k->sum_s += (double)ms / MSEC_PER_SEC;
	if (k->worst_ms != UINT64_MAX && ms > k->worst_ms)
		k->worst_ms = ms;
}

void metrics_ka_add(struct metrics *m, uint16_t service_port, uint64_t detect_ms)
{
	struct metrics_ka *k = NULL;

	if (!m->ka_work)
		return;
	/* linear: an audit runs every minute or so over a few hundred ports at most */
	for (unsigned int i = 0; i < m->n_ka_work && !k; i++)
		if (m->ka_work[i].port == service_port)
			k = &m->ka_work[i];
	if (!k && m->n_ka_work < METRICS_KA_PORTS_MAX && service_port) {
		k = &m->ka_work[m->n_ka_work++];
		k->port = service_port;
	}
	if (!k)
		k = &m->ka_work[METRICS_KA_PORTS_MAX]; /* "other" */
	ka_count(k, detect_ms);
}

static int ka_cmp(const void *a, const void *b)
{
	const struct metrics_ka *x = a, *y = b;
	uint64_t nx = x->count + x->without, ny = y->count + y->without;

	if (nx != ny)
		return nx > ny ? -1 : 1;
	return x->port < y->port ? -1 : x->port > y->port;
}

static void ka_merge(struct metrics_ka *to, const struct metrics_ka *from)
{
	for (int i = 0; i < METRICS_KA_BUCKETS; i++)
		to->buckets[i] += from->buckets[i];
	to->count += from->count;
	to->sum_s += from->sum_s;
	to->without += from->without;
	if (from->without || to->worst_ms == UINT64_MAX)
		to->worst_ms = UINT64_MAX;
	else if (from->worst_ms > to->worst_ms)
		to->worst_ms = from->worst_ms;
}

void metrics_ka_end(struct metrics *m)
{
	struct metrics_ka other =
	    m->ka_work ? m->ka_work[METRICS_KA_PORTS_MAX] : (struct metrics_ka){0};
	unsigned int n = m->n_ka_work;

	if (!m->ka_work)
		return;
	qsort(m->ka_work, n, sizeof(*m->ka_work), ka_cmp);
	m->n_ka = n < METRICS_TOP_N ? n : METRICS_TOP_N;
	memcpy(m->ka, m->ka_work, m->n_ka * sizeof(*m->ka));
	for (unsigned int i = m->n_ka; i < n; i++)
		ka_merge(&other, &m->ka_work[i]);
	other.port = 0;
	m->ka[m->n_ka++] = other;
	m->have_audit = true;
}

/* ---- the --metrics address ---- */

int metrics_parse_listen(const char *s, struct sockaddr_storage *ss, socklen_t *len, bool *off)
{
	struct sockaddr_in *in4 = (struct sockaddr_in *)ss;
	struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)ss;
	char host[64];
	const char *port_str, *colon;
	uint64_t port;
	size_t hl;

	memset(ss, 0, sizeof(*ss));
	*off = false;
	if (!s || !*s)
		return -EINVAL;
	if (strcmp(s, "off") == 0) {
		*off = true;
		return 0;
	}
	if (s[0] == '[') {
		const char *end = strchr(s, ']');

		if (!end || end[1] != ':')
			return -EINVAL;
		hl = end - s - 1;
		port_str = end + 2;
		if (hl == 0 || hl >= sizeof(host))
			return -EINVAL;
		memcpy(host, s + 1, hl);
		host[hl] = '\0';
		if (parse_u64(port_str, 0, 65535, &port) ||
		    inet_pton(AF_INET6, host, &in6->sin6_addr) != 1)
			return -EINVAL;
		in6->sin6_family = AF_INET6;
		in6->sin6_port = htons((uint16_t)port);
		*len = sizeof(*in6);
		return 0;
	}
	colon = strchr(s, ':');
	if (!colon) {
		snprintf(host, sizeof(host), "127.0.0.1");
		port_str = s;
	} else {
		hl = colon - s;
		if (hl == 0 || hl >= sizeof(host) || strchr(colon + 1, ':'))
			return -EINVAL;
		memcpy(host, s, hl);
		host[hl] = '\0';
		port_str = colon + 1;
	}
	if (parse_u64(port_str, 0, 65535, &port) || inet_pton(AF_INET, host, &in4->sin_addr) != 1)
		return -EINVAL;
	in4->sin_family = AF_INET;
	in4->sin_port = htons((uint16_t)port);
	*len = sizeof(*in4);
	return 0;
}
