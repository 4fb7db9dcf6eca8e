// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * Metrics registry and Prometheus text exposition 0.0.4. Every family is printed with HELP and
 * TYPE lines, label values are escaped, counters over fixed enumerations are printed for every
 * value (zeros included) so rate() works from the first scrape.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "format.h"
#include "metrics.h"
#include "names.h"
#include "parse.h"
#include "util.h"

_Static_assert((int)SVC_LEASE_STATES == (int)LEASE_STATE_MAX &&
		       (int)SVC_LEASE_ALIVE == (int)LEASE_ALIVE &&
		       (int)SVC_LEASE_EXPIRED == (int)LEASE_EXPIRED,
	       "the service table counts leases by the lease table's states");

/*
 * Connect latency buckets (seconds). A lost SYN is retransmitted after 1 s, then 2, 4, 8 ...:
 * connects that needed one retransmission land just above 1 s, two just above 3 s, three above
 * 7 s. Bucket pairs around those points (0.9/1.5, 2.9/3.5, 6.9/7.5) count each case apart.
 */
static const uint64_t connect_bucket_ns[METRICS_CONNECT_BUCKETS] = {
	1000000ULL,    2500000ULL,    5000000ULL,    10000000ULL,    25000000ULL,    50000000ULL,
	100000000ULL,  250000000ULL,  500000000ULL,  900000000ULL,   1500000000ULL,  2900000000ULL,
	3500000000ULL, 6900000000ULL, 7500000000ULL, 15500000000ULL, 31500000000ULL, 63500000000ULL,
};

static const char *const kind_names[MK_MAX] = {
	[MK_STATE] = "state",
	[MK_CONNECT] = "connect",
	[MK_KEEPALIVE_TIMEOUT] = "keepalive-timeout",
	[MK_RETRANSMIT_TIMEOUT] = "retransmit-timeout",
	[MK_RESET] = "reset",
	[MK_ACTIVITY] = "activity",
	[MK_LEASE] = "lease",
	[MK_SPIKE] = "connect-failure-spike",
	[MK_EVENTS_LOST] = "events-lost",
	[MK_STUCK] = "tcp-stuck",
	[MK_PORT_RISK] = "port-exhaustion-risk",
	[MK_OTHER] = "other",
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

static const char *const lease_state_names[LEASE_STATE_MAX] = {
	[LEASE_ALIVE] = "alive",
	[LEASE_SUSPECT] = "suspect",
	[LEASE_EXPIRED] = "expired",
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

	for (int i = 0; i < 16; i += 4) {
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
		if (ns <= connect_bucket_ns[i]) {
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
		p->eta_s = top[i].eta_ms == UINT64_MAX ? -1 : top[i].eta_ms / 1e3;
		p->alert = top[i].alert;
	}
	m->n_ports_top = (unsigned int)n;
}

static const double ka_bucket_s[METRICS_KA_BUCKETS] = {
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
		if (ms <= ka_bucket_s[i] * 1000) {
			k->buckets[i]++;
			break;
		}
	}
	k->count++;
	k->sum_s += ms / 1e3;
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

/* ---- exposition ---- */

struct sbuf {
	char *p;
	size_t len, cap;
	bool oom;
};

static void __attribute__((format(printf, 2, 3))) sb_printf(struct sbuf *b, const char *fmt, ...)
{
	va_list ap;
	int n;

	if (b->oom)
		return;
	for (;;) {
		va_start(ap, fmt);
		n = vsnprintf(b->p + b->len, b->cap - b->len, fmt, ap);
		va_end(ap);
		if (n < 0) {
			b->oom = true;
			return;
		}
		if ((size_t)n < b->cap - b->len) {
			b->len += n;
			return;
		}
		size_t cap = (b->cap + n + 1) * 2;
		char *p = realloc(b->p, cap);

		if (!p) {
			b->oom = true;
			return;
		}
		b->p = p;
		b->cap = cap;
	}
}

/* Label value escaping per the text format: backslash, double quote and newline. */
static const char *esc(char *tmp, size_t cap, const char *s)
{
	size_t o = 0;

	for (; *s && o + 3 < cap; s++) {
		if (*s == '\\' || *s == '"') {
			tmp[o++] = '\\';
			tmp[o++] = *s;
		} else if (*s == '\n') {
			tmp[o++] = '\\';
			tmp[o++] = 'n';
		} else {
			tmp[o++] = *s;
		}
	}
	tmp[o] = '\0';
	return tmp;
}

static void family(struct sbuf *b, const char *name, const char *type, const char *help)
{
	sb_printf(b, "# HELP sockpulse_%s %s\n# TYPE sockpulse_%s %s\n", name, help, name, type);
}

static void sample(struct sbuf *b, const char *name, uint64_t v)
{
	sb_printf(b, "sockpulse_%s %llu\n", name, (unsigned long long)v);
}

static void sample1(struct sbuf *b, const char *name, const char *label, const char *value,
		    uint64_t v)
{
	char tmp[2 * METRICS_DEST_LABEL_MAX];

	sb_printf(b, "sockpulse_%s{%s=\"%s\"} %llu\n", name, label, esc(tmp, sizeof(tmp), value),
		  (unsigned long long)v);
}

static void render_hist(struct sbuf *b, const char *name, const char *outcome,
			const struct metrics_hist *h)
{
	uint64_t cum = 0;

	for (int i = 0; i < METRICS_CONNECT_BUCKETS; i++) {
		cum += h->buckets[i];
		sb_printf(b, "sockpulse_%s_bucket{outcome=\"%s\",le=\"%g\"} %llu\n", name, outcome,
			  connect_bucket_ns[i] / 1e9, (unsigned long long)cum);
	}
	sb_printf(b, "sockpulse_%s_bucket{outcome=\"%s\",le=\"+Inf\"} %llu\n", name, outcome,
		  (unsigned long long)h->count);
	sb_printf(b, "sockpulse_%s_sum{outcome=\"%s\"} %.9f\n", name, outcome, h->sum_ns / 1e9);
	sb_printf(b, "sockpulse_%s_count{outcome=\"%s\"} %llu\n", name, outcome,
		  (unsigned long long)h->count);
}

static int spike_cmp(const void *a, const void *b)
{
	const struct metrics_spike *x = *(const struct metrics_spike *const *)a;
	const struct metrics_spike *y = *(const struct metrics_spike *const *)b;

	if (x->active != y->active)
		return x->active ? -1 : 1;
	if (x->changed_ns != y->changed_ns)
		return x->changed_ns > y->changed_ns ? -1 : 1;
	return strcmp(x->label, y->label);
}

static void render_spikes(struct sbuf *b, const struct metrics *m)
{
	const struct metrics_spike *list[METRICS_SPIKES_MAX];
	const char *shown[METRICS_TOP_N];
	unsigned int n = 0, n_shown = 0;
	uint64_t other = m->spikes_untracked_active;

	family(b, "connect_failure_spike_active", "gauge",
	       "1 while connect failures to the destination spike (top destinations, the rest "
	       "under \"other\", host-wide spikes under \"host\")");
	for (int i = 0; i < METRICS_SPIKES_MAX; i++)
		if (m->spikes[i].used)
			list[n++] = &m->spikes[i];
	qsort(list, n, sizeof(list[0]), spike_cmp);
	for (unsigned int i = 0; i < n; i++) {
		bool dup = false;

		/* the same label in two namespaces is one series */
		for (unsigned int j = 0; j < n_shown; j++)
			dup = dup || strcmp(shown[j], list[i]->label) == 0;
		if (dup)
			continue;
		if (n_shown < METRICS_TOP_N && strcmp(list[i]->label, "other") != 0) {
			bool active = false;

			for (unsigned int j = i; j < n; j++)
				if (strcmp(list[j]->label, list[i]->label) == 0)
					active = active || list[j]->active;
			shown[n_shown++] = list[i]->label;
			sample1(b, "connect_failure_spike_active", "destination", list[i]->label,
				active);
		} else {
			other += list[i]->active;
		}
	}
	sample1(b, "connect_failure_spike_active", "destination", "other", other ? 1 : 0);
}

static void render_ka(struct sbuf *b, const struct metrics *m)
{
	family(b, "tcp_keepalive_detection_seconds", "histogram",
	       "Worst-case time for TCP to notice a dead peer on an idle established connection "
	       "with keepalive, per service port (the last audit's connections; the rest under "
	       "\"other\")");
	for (unsigned int i = 0; i < m->n_ka; i++) {
		const struct metrics_ka *k = &m->ka[i];
		char port[8];
		uint64_t cum = 0;

		snprintf(port, sizeof(port), "%u", k->port);
		for (int j = 0; j < METRICS_KA_BUCKETS; j++) {
			cum += k->buckets[j];
			sb_printf(b,
				  "sockpulse_tcp_keepalive_detection_seconds_bucket"
				  "{port=\"%s\",le=\"%g\"} %llu\n",
				  k->port ? port : "other", ka_bucket_s[j],
				  (unsigned long long)cum);
		}
		sb_printf(b,
			  "sockpulse_tcp_keepalive_detection_seconds_bucket"
			  "{port=\"%s\",le=\"+Inf\"} %llu\n",
			  k->port ? port : "other", (unsigned long long)k->count);
		sb_printf(b, "sockpulse_tcp_keepalive_detection_seconds_sum{port=\"%s\"} %.3f\n",
			  k->port ? port : "other", k->sum_s);
		sb_printf(b, "sockpulse_tcp_keepalive_detection_seconds_count{port=\"%s\"} %llu\n",
			  k->port ? port : "other", (unsigned long long)k->count);
	}
	family(b, "tcp_connections_without_keepalive", "gauge",
	       "Established connections without SO_KEEPALIVE: an idle one never notices a dead "
	       "peer");
	for (unsigned int i = 0; i < m->n_ka; i++) {
		char port[8];

		snprintf(port, sizeof(port), "%u", m->ka[i].port);
		sample1(b, "tcp_connections_without_keepalive", "port",
			m->ka[i].port ? port : "other", m->ka[i].without);
	}
	family(b, "tcp_keepalive_worst_detection_seconds", "gauge",
	       "The slowest detection of a dead idle peer per service port; +Inf when a "
	       "connection has no keepalive");
	for (unsigned int i = 0; i < m->n_ka; i++) {
		const struct metrics_ka *k = &m->ka[i];
		char port[8];

		if (!k->count && !k->without)
			continue;
		snprintf(port, sizeof(port), "%u", k->port);
		if (k->worst_ms == UINT64_MAX)
			sb_printf(b,
				  "sockpulse_tcp_keepalive_worst_detection_seconds"
				  "{port=\"%s\"} +Inf\n",
				  k->port ? port : "other");
		else
			sb_printf(b,
				  "sockpulse_tcp_keepalive_worst_detection_seconds"
				  "{port=\"%s\"} %.3f\n",
				  k->port ? port : "other", k->worst_ms / 1e3);
	}
}

static void render_insights(struct sbuf *b, const struct metrics *m)
{
	static const char *const stuck_names[STUCK_STATES] = {"close_wait", "fin_wait2"};
	char t0[2 * METRICS_DEST_LABEL_MAX], t1[2 * METRICS_DEST_LABEL_MAX];

	family(b, "tcp_stuck_alerts_total", "counter",
	       "Sockets that sat in CLOSE_WAIT or FIN_WAIT2 past --stuck-after");
	for (int k = 0; k < STUCK_STATES; k++)
		sample1(b, "tcp_stuck_alerts_total", "state", stuck_names[k], m->stuck_alerts[k]);
	if (m->have_stuck) {
		family(b, "tcp_stuck_sockets", "gauge",
		       "Sockets stuck in CLOSE_WAIT or FIN_WAIT2 now, by owning process name (the "
		       "top ones; the rest, and unknown owners, under \"other\")");
		for (unsigned int i = 0; i < m->n_stuck_top; i++)
			for (int k = 0; k < STUCK_STATES; k++)
				sb_printf(b,
					  "sockpulse_tcp_stuck_sockets{state=\"%s\",process=\"%s\"}"
					  " %llu\n",
					  stuck_names[k],
					  esc(t0, sizeof(t0), m->stuck_top[i].process),
					  (unsigned long long)m->stuck_top[i].sockets[k]);
		for (int k = 0; k < STUCK_STATES; k++)
			sb_printf(b,
				  "sockpulse_tcp_stuck_sockets{state=\"%s\",process=\"other\"}"
				  " %llu\n",
				  stuck_names[k], (unsigned long long)m->stuck_other[k]);
	}
	family(b, "port_exhaustion_alerts_total", "counter", "port-exhaustion-risk alerts raised");
	sample(b, "port_exhaustion_alerts_total", m->port_risk_alerts);
	if (m->have_ports && m->n_ports_top) {
		static const char *const names[] = {
		    "ephemeral_ports_used",
		    "ephemeral_ports_time_wait",
		    "ephemeral_ports_capacity",
		    "port_exhaustion_risk_active",
		};
		static const char *const helps[] = {
		    "Local ports in use towards the destination, TIME_WAIT included",
		    "TIME_WAIT sockets holding local ports towards the destination",
		    "Local ports a connect() can pick (ip_local_port_range)",
		    "1 while a port-exhaustion-risk alert is open",
		};

		for (int f = 0; f < 4; f++) {
			family(b, names[f], "gauge", helps[f]);
			for (unsigned int i = 0; i < m->n_ports_top; i++) {
				const struct metrics_ports *p = &m->ports_top[i];
				uint64_t v = f == 0   ? p->used
					     : f == 1 ? p->time_wait
					     : f == 2 ? p->capacity
						      : p->alert;

				sb_printf(
				    b, "sockpulse_%s{source=\"%s\",destination=\"%s\"} %llu\n",
				    names[f], esc(t0, sizeof(t0), p->source),
				    esc(t1, sizeof(t1), p->destination), (unsigned long long)v);
			}
		}
		family(b, "port_exhaustion_seconds", "gauge",
		       "Predicted time until the destination's local ports run out at the current "
		       "growth; +Inf when none is predicted");
		for (unsigned int i = 0; i < m->n_ports_top; i++) {
			const struct metrics_ports *p = &m->ports_top[i];

			if (p->eta_s < 0)
				sb_printf(b,
					  "sockpulse_port_exhaustion_seconds{source=\"%s\","
					  "destination=\"%s\"} +Inf\n",
					  esc(t0, sizeof(t0), p->source),
					  esc(t1, sizeof(t1), p->destination));
			else
				sb_printf(b,
					  "sockpulse_port_exhaustion_seconds{source=\"%s\","
					  "destination=\"%s\"} %.3f\n",
					  esc(t0, sizeof(t0), p->source),
					  esc(t1, sizeof(t1), p->destination), p->eta_s);
		}
	}
	if (m->have_audit)
		render_ka(b, m);
}

/*
 * The service label: the top services by activity under their own name, the rest (owners not
 * known, names past the table) summed under "other". A service moving in or out of the top makes
 * "other"'s counters step back: rate() reads that as a reset, which is why the choice is kept to
 * a few services and the host-wide families stay without the label.
 */
static void render_services(struct sbuf *b, const struct metrics *m)
{
	static const char *const stuck_names[STUCK_STATES] = {"close_wait", "fin_wait2"};
	uint16_t top[SVC_TOP_MAX];
	const char *names[SVC_TOP_MAX + 1];
	const struct svc_stat *rows[SVC_TOP_MAX + 1];
	const struct metrics_spike *list[METRICS_SPIKES_MAX];
	const char *shown_svc[METRICS_TOP_N], *shown_dst[METRICS_TOP_N];
	struct svc_stat other;
	char t0[2 * SVC_NAME_MAX], t1[2 * METRICS_DEST_LABEL_MAX];
	unsigned int n_list = 0, n_shown = 0;
	uint32_t folded;
	size_t n = svc_top(&m->svc, m->services_top < SVC_TOP_MAX ? m->services_top : SVC_TOP_MAX,
			   top, &folded), i;

	other = m->svc.s[SVC_OTHER];
	for (uint32_t s = 1; s < m->svc.n; s++) {
		const struct svc_stat *st = &m->svc.s[s];
		bool shown = false;

		for (i = 0; i < n && !shown; i++)
			shown = top[i] == s;
		if (shown)
			continue;
		for (int k = 0; k < 2; k++)
			other.connects[k] += st->connects[k];
		for (int f = 0; f < SP_FAIL_MAX; f++)
			other.failures[f] += st->failures[f];
		for (int k = 0; k < SP_LEASE_KIND_MAX; k++)
			for (int l = 0; l < SVC_LEASE_STATES; l++)
				other.leases[k][l] += st->leases[k][l];
		for (int k = 0; k < STUCK_STATES; k++)
			other.stuck[k] += st->stuck[k];
	}
	for (i = 0; i < n; i++) {
		rows[i] = &m->svc.s[top[i]];
		names[i] = rows[i]->name;
	}
	rows[n] = &other;
	names[n] = "other";

	family(b, "service_tcp_connects_total", "counter",
	       "Outgoing connects by the owner's service and outcome");
	for (i = 0; i <= n; i++)
		for (int k = 0; k < 2; k++)
			sb_printf(b, "sockpulse_service_tcp_connects_total{service=\"%s\",outcome=\"%s\"} "
				  "%llu\n", esc(t0, sizeof(t0), names[i]), k ? "failure" : "success",
				  (unsigned long long)rows[i]->connects[k]);
	family(b, "service_tcp_connect_failures_total", "counter",
	       "Failed outgoing connects by the owner's service and reason");
	for (i = 0; i <= n; i++)
		for (int f = 1; f < SP_FAIL_MAX; f++)
			if (rows[i]->failures[f] && failure_name(f))
				sb_printf(b,
					  "sockpulse_service_tcp_connect_failures_total{service="
					  "\"%s\",reason=\"%s\"} %llu\n",
					  esc(t0, sizeof(t0), names[i]), failure_name(f),
					  (unsigned long long)rows[i]->failures[f]);
	family(b, "service_leases", "gauge", "Connection leases by the owner's service, kind and state");
	for (i = 0; i <= n; i++)
		for (int k = 0; k < SP_LEASE_KIND_MAX; k++)
			for (int l = 0; l < SVC_LEASE_STATES; l++)
				sb_printf(b,
					  "sockpulse_service_leases{service=\"%s\",kind=\"%s\","
					  "state=\"%s\"} %lld\n",
					  esc(t0, sizeof(t0), names[i]), lease_kind_name(k),
					  lease_state_names[l],
					  (long long)rows[i]->leases[k][l]);
	if (m->have_stuck) {
		family(b, "service_tcp_stuck_sockets", "gauge",
		       "Sockets stuck in CLOSE_WAIT or FIN_WAIT2 now, by the owner's service");
		for (i = 0; i <= n; i++)
			for (int k = 0; k < STUCK_STATES; k++)
				sb_printf(b,
					  "sockpulse_service_tcp_stuck_sockets{service=\"%s\","
					  "state=\"%s\"} %llu\n",
					  esc(t0, sizeof(t0), names[i]), stuck_names[k],
					  (unsigned long long)rows[i]->stuck[k]);
	}

	family(b, "service_connect_failure_spike_active", "gauge",
	       "1 while connect failures to the destination spike, by the service whose connects "
	       "failed last (the top spikes; host-wide ones are in connect_failure_spike_active)");
	for (int s = 0; s < METRICS_SPIKES_MAX; s++)
		if (m->spikes[s].used && strcmp(m->spikes[s].label, "host") != 0 &&
		    strcmp(m->spikes[s].label, "other") != 0)
			list[n_list++] = &m->spikes[s];
	qsort(list, n_list, sizeof(list[0]), spike_cmp);
	for (unsigned int s = 0; s < n_list && n_shown < METRICS_TOP_N; s++) {
		const char *svc = "other";
		bool dup = false;

		for (i = 0; i < n; i++)
			if (top[i] == list[s]->svc)
				svc = names[i];
		/* sorted active first: a pair already shown was shown with its latest state */
		for (unsigned int j = 0; j < n_shown && !dup; j++)
			dup = shown_svc[j] == svc && !strcmp(shown_dst[j], list[s]->label);
		if (dup)
			continue;
		shown_svc[n_shown] = svc;
		shown_dst[n_shown++] = list[s]->label;
		sb_printf(b,
			  "sockpulse_service_connect_failure_spike_active{service=\"%s\","
			  "destination=\"%s\"} %d\n",
			  esc(t0, sizeof(t0), svc), esc(t1, sizeof(t1), list[s]->label),
			  list[s]->active ? 1 : 0);
	}

	family(b, "services_folded", "gauge",
	       "Services summed under service=\"other\": past --metrics-services");
	sample(b, "services_folded", folded);
	family(b, "service_table_full_total", "counter",
	       "Events of services counted under \"other\" because the service table was full");
	sample(b, "service_table_full_total", m->svc.full);
}

long metrics_render(const struct metrics *m, char **out)
{
	struct sbuf b = {0};
	char tmp[3][2 * METRICS_DEST_LABEL_MAX];
	const struct metrics_self *s = &m->self;

	b.cap = 16384;
	b.p = malloc(b.cap);
	if (!b.p)
		return -ENOMEM;
	b.p[0] = '\0';

	family(&b, "build_info", "gauge", "Build and run facts; value 1");
	sb_printf(
	    &b,
	    "sockpulse_build_info{version=\"%s\",libbpf_version=\"%s\",connect_hook=\"%s\"} 1\n",
	    esc(tmp[0], sizeof(tmp[0]), m->version), esc(tmp[1], sizeof(tmp[1]), m->libbpf_version),
	    esc(tmp[2], sizeof(tmp[2]), m->connect_hook));
	family(&b, "start_time_seconds", "gauge",
	       "Start time of the agent, seconds since the epoch");
	sample(&b, "start_time_seconds", s->start_time_s);

	family(&b, "tcp_state_transitions_total", "counter",
	       "TCP state changes, exactly as the kernel made them");
	for (int f = 0; f < SP_ST_MAX; f++)
		for (int t = 0; t < SP_ST_MAX; t++)
			if (m->transitions[f][t] && tcp_state_name(f) && tcp_state_name(t))
				sb_printf(&b,
					  "sockpulse_tcp_state_transitions_total"
					  "{from=\"%s\",to=\"%s\"} %llu\n",
					  tcp_state_name(f), tcp_state_name(t),
					  (unsigned long long)m->transitions[f][t]);

	family(&b, "tcp_connects_total", "counter", "Outgoing connects by outcome");
	sample1(&b, "tcp_connects_total", "outcome", "success", m->connects[0]);
	sample1(&b, "tcp_connects_total", "outcome", "failure", m->connects[1]);
	family(&b, "tcp_connect_failures_total", "counter", "Failed outgoing connects by reason");
	for (int f = 1; f < SP_FAIL_MAX; f++)
		if (failure_name(f))
			sample1(&b, "tcp_connect_failures_total", "reason", failure_name(f),
				m->failures[f]);
	family(&b, "tcp_connect_duration_seconds", "histogram",
	       "Time from connect start to its outcome; SYN retransmissions land above 1, 3, 7 s");
	render_hist(&b, "tcp_connect_duration_seconds", "success", &m->connect_duration[0]);
	render_hist(&b, "tcp_connect_duration_seconds", "failure", &m->connect_duration[1]);

	family(&b, "tcp_keepalive_timeouts_total", "counter",
	       "Established connections killed because keepalive probes went unanswered");
	sample(&b, "tcp_keepalive_timeouts_total", m->keepalive_timeouts);
	family(&b, "tcp_retransmit_timeouts_total", "counter",
	       "Established connections killed because retransmissions went unanswered");
	sample(&b, "tcp_retransmit_timeouts_total", m->retransmit_timeouts);
	family(&b, "tcp_resets_total", "counter", "Resets received or sent");
	for (int d = 1; d < SP_RST_MAX; d++)
		sample1(&b, "tcp_resets_total", "direction", reset_dir_name(d), m->resets[d]);

	if (m->have_diag) {
		family(&b, "tcp_connections", "gauge",
		       "TCP sockets by state in the watched namespaces (sock_diag)");
		for (int st = 1; st < SP_ST_MAX; st++)
			if (st != SP_ST_NEW_SYN_RECV && tcp_state_name(st))
				sample1(&b, "tcp_connections", "state", tcp_state_name(st),
					m->conn_states[st]);
		family(&b, "tcp_time_wait_sockets", "gauge",
		       "TIME_WAIT sockets in the watched namespaces (sock_diag)");
		sample(&b, "tcp_time_wait_sockets", m->time_wait);
		family(
		    &b, "tcp_time_wait_sockets_by_destination", "gauge",
		    "TIME_WAIT sockets of the top destinations (the side that was connected to), "
		    "the rest under \"other\"");
		for (unsigned int i = 0; i < m->n_tw_top; i++)
			sample1(&b, "tcp_time_wait_sockets_by_destination", "destination",
				m->tw_top[i].label, m->tw_top[i].value);
		sample1(&b, "tcp_time_wait_sockets_by_destination", "destination", "other",
			m->tw_other);
	}

	family(&b, "leases", "gauge", "Connection leases by kind and state");
	for (int k = 0; k < SP_LEASE_KIND_MAX; k++)
		for (int st = 0; st < LEASE_STATE_MAX; st++)
			sb_printf(&b, "sockpulse_leases{kind=\"%s\",state=\"%s\"} %llu\n",
				  lease_kind_name(k), lease_state_names[st],
				  (unsigned long long)m->lease_gauge[k][st]);
	family(&b, "lease_expirations_total", "counter", "Leases that went silent past their TTL");
	for (int k = 0; k < SP_LEASE_KIND_MAX; k++)
		sample1(&b, "lease_expirations_total", "kind", lease_kind_name(k),
			m->lease_expirations[k]);
	family(&b, "lease_unobserved_total", "counter",
	       "Connections whose end never reached the agent: a socket-table walk found them gone");
	sample(&b, "lease_unobserved_total", m->lease_unobserved);
	family(&b, "lease_table_overflows_total", "counter",
	       "Connections not counted in sockpulse_leases because the table was full");
	sample(&b, "lease_table_overflows_total", m->lease_overflows);

	render_insights(&b, m);
	render_spikes(&b, m);
	render_services(&b, m);
	family(&b, "connect_failure_spikes_total", "counter", "Connect failure spikes started");
	sample(&b, "connect_failure_spikes_total", m->spikes_total);

	family(&b, "events_total", "counter",
	       "Events handled, by kind (ring record kinds as in events_lost_total, then the "
	       "engine's)");
	for (int k = 0; k < MK_MAX; k++)
		if (k != MK_OTHER || m->events[k])
			sample1(&b, "events_total", "kind", kind_names[k], m->events[k]);
	family(&b, "events_lost_total", "counter",
	       "Records the kernel could not hand to the agent, by kind");
	for (int t = 1; t < SP_REC_TYPE_MAX; t++)
		sample1(&b, "events_lost_total", "kind", rec_type_name(t), m->lost[t]);
	if (m->lost[0])
		sample1(&b, "events_lost_total", "kind", "other", m->lost[0]);
	family(&b, "decode_errors_total", "counter", "Malformed ring records dropped");
	sample(&b, "decode_errors_total", s->decode_errors);
	family(&b, "loop_stalls_total", "counter", "Event loop ticks that came more than 1 s late");
	sample(&b, "loop_stalls_total", s->loop_stalls);

	if (s->log_enabled) {
		family(&b, "log_lines_total", "counter", "Lines written to the JSON lines log");
		sample(&b, "log_lines_total", s->log_lines_written);
		family(&b, "log_bytes_total", "counter", "Bytes written to the JSON lines log");
		sample(&b, "log_bytes_total", s->log_bytes_written);
		family(&b, "log_lines_dropped_total", "counter",
		       "Log lines dropped because the file could not be written in time");
		sample(&b, "log_lines_dropped_total", s->log_lines_dropped);
		family(&b, "log_write_errors_total", "counter",
		       "Failed writes, opens and renames of the log file");
		sample(&b, "log_write_errors_total", s->log_write_errors);
		family(&b, "log_rotations_total", "counter", "Log rotations by size");
		sample(&b, "log_rotations_total", s->log_rotations);
		family(&b, "log_reopens_total", "counter",
		       "Log reopens (SIGHUP, or the file was renamed or removed)");
		sample(&b, "log_reopens_total", s->log_reopens);
	}

	family(&b, "http_requests_total", "counter", "Requests to the metrics server by status");
	sample1(&b, "http_requests_total", "code", "200", s->http_requests[0]);
	sample1(&b, "http_requests_total", "code", "404", s->http_requests[1]);
	sample1(&b, "http_requests_total", "code", "other", s->http_requests[2]);
	family(&b, "sockdiag_dumps_total", "counter", "Completed socket table dumps (sock_diag)");
	sample(&b, "sockdiag_dumps_total", s->diag_dumps);
	family(&b, "sockdiag_errors_total", "counter", "Failed socket table dumps (sock_diag)");
	sample(&b, "sockdiag_errors_total", s->diag_errors);
	family(&b, "sockdiag_duration_seconds", "gauge", "Duration of the last socket table dump");
	sb_printf(&b, "sockpulse_sockdiag_duration_seconds %.6f\n", s->diag_last_duration_s);

	if (b.oom) {
		free(b.p);
		return -ENOMEM;
	}
	*out = b.p;
	return (long)b.len;
}

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
