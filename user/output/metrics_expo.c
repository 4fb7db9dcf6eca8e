// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * Metrics exposition: the Prometheus text format 0.0.4, rendered from the state metrics.c keeps.
 * Every family is printed with HELP and TYPE lines, label values are escaped, counters over fixed
 * enumerations are printed for every value (zeros included) so rate() works from the first
 * scrape. One helper per group of families, in the order they are printed.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "metrics_priv.h"
#include "names.h"

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

static const char *const lease_state_names[LEASE_STATE_MAX] = {
	[LEASE_ALIVE] = "alive",
	[LEASE_SUSPECT] = "suspect",
	[LEASE_EXPIRED] = "expired",
};

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
			  (double)metrics_connect_bucket_ns[i] / NSEC_PER_SEC, (unsigned long long)cum);
	}
	sb_printf(b, "sockpulse_%s_bucket{outcome=\"%s\",le=\"+Inf\"} %llu\n", name, outcome,
		  (unsigned long long)h->count);
	sb_printf(b, "sockpulse_%s_sum{outcome=\"%s\"} %.9f\n", name, outcome, (double)h->sum_ns / NSEC_PER_SEC);
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
				  k->port ? port : "other", metrics_ka_bucket_s[j],
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
				  k->port ? port : "other", (double)k->worst_ms / MSEC_PER_SEC);
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

/* What runs: version, libbpf, the connect hook variant; since when. */
static void render_build(struct sbuf *b, const struct metrics *m)
{
	char tmp[3][2 * METRICS_DEST_LABEL_MAX];
	const struct metrics_self *s = &m->self;

	family(b, "build_info", "gauge", "Build and run facts; value 1");
	sb_printf(
	    b,
	    "sockpulse_build_info{version=\"%s\",libbpf_version=\"%s\",connect_hook=\"%s\"} 1\n",
	    esc(tmp[0], sizeof(tmp[0]), m->version), esc(tmp[1], sizeof(tmp[1]), m->libbpf_version),
	    esc(tmp[2], sizeof(tmp[2]), m->connect_hook));
	family(b, "start_time_seconds", "gauge",
	       "Start time of the agent, seconds since the epoch");
	sample(b, "start_time_seconds", s->start_time_s);
}

/* The kernel's events: state changes, connects, their latency, timeouts, resets. */
static void render_tcp(struct sbuf *b, const struct metrics *m)
{
	family(b, "tcp_state_transitions_total", "counter",
	       "TCP state changes, exactly as the kernel made them");
	for (int f = 0; f < SP_ST_MAX; f++)
		for (int t = 0; t < SP_ST_MAX; t++)
			if (m->transitions[f][t] && tcp_state_name(f) && tcp_state_name(t))
				sb_printf(b,
					  "sockpulse_tcp_state_transitions_total"
					  "{from=\"%s\",to=\"%s\"} %llu\n",
					  tcp_state_name(f), tcp_state_name(t),
					  (unsigned long long)m->transitions[f][t]);

	family(b, "tcp_connects_total", "counter", "Outgoing connects by outcome");
	sample1(b, "tcp_connects_total", "outcome", "success", m->connects[0]);
	sample1(b, "tcp_connects_total", "outcome", "failure", m->connects[1]);
	family(b, "tcp_connect_failures_total", "counter", "Failed outgoing connects by reason");
	for (int f = 1; f < SP_FAIL_MAX; f++)
		if (failure_name(f))
			sample1(b, "tcp_connect_failures_total", "reason", failure_name(f),
				m->failures[f]);
	family(b, "tcp_connect_duration_seconds", "histogram",
	       "Time from connect start to its outcome; SYN retransmissions land above 1, 3, 7 s");
	render_hist(b, "tcp_connect_duration_seconds", "success", &m->connect_duration[0]);
	render_hist(b, "tcp_connect_duration_seconds", "failure", &m->connect_duration[1]);

	family(b, "tcp_keepalive_timeouts_total", "counter",
	       "Established connections killed because keepalive probes went unanswered");
	sample(b, "tcp_keepalive_timeouts_total", m->keepalive_timeouts);
	family(b, "tcp_retransmit_timeouts_total", "counter",
	       "Established connections killed because retransmissions went unanswered");
	sample(b, "tcp_retransmit_timeouts_total", m->retransmit_timeouts);
	family(b, "tcp_resets_total", "counter", "Resets received or sent");
	for (int d = 1; d < SP_RST_MAX; d++)
		sample1(b, "tcp_resets_total", "direction", reset_dir_name(d), m->resets[d]);
}

/* The socket table (sock_diag) gauges, once a dump has run. */
static void render_diag(struct sbuf *b, const struct metrics *m)
{
	if (!m->have_diag)
		return;
	family(b, "tcp_connections", "gauge",
	       "TCP sockets by state in the watched namespaces (sock_diag)");
	for (int st = 1; st < SP_ST_MAX; st++)
		if (st != SP_ST_NEW_SYN_RECV && tcp_state_name(st))
			sample1(b, "tcp_connections", "state", tcp_state_name(st),
				m->conn_states[st]);
	family(b, "tcp_time_wait_sockets", "gauge",
	       "TIME_WAIT sockets in the watched namespaces (sock_diag)");
	sample(b, "tcp_time_wait_sockets", m->time_wait);
	family(
	    b, "tcp_time_wait_sockets_by_destination", "gauge",
	    "TIME_WAIT sockets of the top destinations (the side that was connected to), "
	    "the rest under \"other\"");
	for (unsigned int i = 0; i < m->n_tw_top; i++)
		sample1(b, "tcp_time_wait_sockets_by_destination", "destination",
			m->tw_top[i].label, m->tw_top[i].value);
	sample1(b, "tcp_time_wait_sockets_by_destination", "destination", "other",
		m->tw_other);
}

/* The lease table: gauges by kind and state, and what its lines counted. */
static void render_leases(struct sbuf *b, const struct metrics *m)
{
	family(b, "leases", "gauge", "Connection leases by kind and state");
	for (int k = 0; k < SP_LEASE_KIND_MAX; k++)
		for (int st = 0; st < LEASE_STATE_MAX; st++)
			sb_printf(b, "sockpulse_leases{kind=\"%s\",state=\"%s\"} %llu\n",
				  lease_kind_name(k), lease_state_names[st],
				  (unsigned long long)m->lease_gauge[k][st]);
	family(b, "lease_expirations_total", "counter", "Leases that went silent past their TTL");
	for (int k = 0; k < SP_LEASE_KIND_MAX; k++)
		sample1(b, "lease_expirations_total", "kind", lease_kind_name(k),
			m->lease_expirations[k]);
	family(b, "lease_unobserved_total", "counter",
	       "Connections whose end never reached the agent: a socket-table walk found them gone");
	sample(b, "lease_unobserved_total", m->lease_unobserved);
	family(b, "lease_table_overflows_total", "counter",
	       "Connections not counted in sockpulse_leases because the table was full");
	sample(b, "lease_table_overflows_total", m->lease_overflows);
}

/* The agent's intake: events by kind, records lost and malformed, loop stalls. */
static void render_events(struct sbuf *b, const struct metrics *m)
{
	const struct metrics_self *s = &m->self;

	family(b, "events_total", "counter",
	       "Events handled, by kind (ring record kinds as in events_lost_total, then the "
	       "engine's)");
	for (int k = 0; k < MK_MAX; k++)
		if (k != MK_OTHER || m->events[k])
			sample1(b, "events_total", "kind", kind_names[k], m->events[k]);
	family(b, "events_lost_total", "counter",
	       "Records the kernel could not hand to the agent, by kind");
	for (int t = 1; t < SP_REC_TYPE_MAX; t++)
		sample1(b, "events_lost_total", "kind", rec_type_name(t), m->lost[t]);
	if (m->lost[0])
		sample1(b, "events_lost_total", "kind", "other", m->lost[0]);
	family(b, "decode_errors_total", "counter", "Malformed ring records dropped");
	sample(b, "decode_errors_total", s->decode_errors);
	family(b, "loop_stalls_total", "counter", "Event loop ticks that came more than 1 s late");
	sample(b, "loop_stalls_total", s->loop_stalls);
}

/* The JSON lines log, when there is one. */
static void render_log(struct sbuf *b, const struct metrics *m)
{
	const struct metrics_self *s = &m->self;

	if (!s->log_enabled)
		return;
	family(b, "log_lines_total", "counter", "Lines written to the JSON lines log");
	sample(b, "log_lines_total", s->log_lines_written);
	family(b, "log_bytes_total", "counter", "Bytes written to the JSON lines log");
	sample(b, "log_bytes_total", s->log_bytes_written);
	family(b, "log_lines_dropped_total", "counter",
	       "Log lines dropped because the file could not be written in time");
	sample(b, "log_lines_dropped_total", s->log_lines_dropped);
	family(b, "log_write_errors_total", "counter",
	       "Failed writes, opens and renames of the log file");
	sample(b, "log_write_errors_total", s->log_write_errors);
	family(b, "log_rotations_total", "counter", "Log rotations by size");
	sample(b, "log_rotations_total", s->log_rotations);
	family(b, "log_reopens_total", "counter",
	       "Log reopens (SIGHUP, or the file was renamed or removed)");
	sample(b, "log_reopens_total", s->log_reopens);
}

/* The agent's own servers: the metrics server, the socket-table dumps. */
static void render_self(struct sbuf *b, const struct metrics *m)
{
	const struct metrics_self *s = &m->self;

	family(b, "http_requests_total", "counter", "Requests to the metrics server by status");
	sample1(b, "http_requests_total", "code", "200", s->http_requests[0]);
	sample1(b, "http_requests_total", "code", "404", s->http_requests[1]);
	sample1(b, "http_requests_total", "code", "other", s->http_requests[2]);
	family(b, "sockdiag_dumps_total", "counter", "Completed socket table dumps (sock_diag)");
	sample(b, "sockdiag_dumps_total", s->diag_dumps);
	family(b, "sockdiag_errors_total", "counter", "Failed socket table dumps (sock_diag)");
	sample(b, "sockdiag_errors_total", s->diag_errors);
	family(b, "sockdiag_duration_seconds", "gauge", "Duration of the last socket table dump");
	sb_printf(b, "sockpulse_sockdiag_duration_seconds %.6f\n", s->diag_last_duration_s);
}

long metrics_render(const struct metrics *m, char **out)
{
	struct sbuf sb = {0}, *b = &sb;

	sb.cap = 16384;
	sb.p = malloc(sb.cap);
	if (!sb.p)
		return -ENOMEM;
	sb.p[0] = '\0';

	render_build(b, m);
	render_tcp(b, m);
	render_diag(b, m);
	render_leases(b, m);
	render_insights(b, m);
	render_spikes(b, m);
	render_services(b, m);
	family(b, "connect_failure_spikes_total", "counter", "Connect failure spikes started");
	sample(b, "connect_failure_spikes_total", m->spikes_total);

	render_events(b, m);
	render_log(b, m);
	render_self(b, m);

	if (sb.oom) {
		free(sb.p);
		return -ENOMEM;
	}
	*out = sb.p;
	return (long)sb.len;
}
