/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Engine benchmark (numbers, not pass/fail): lease renewal cost and expiry cost with 1M live
 * leases, memory per lease, expiry lateness, spike detector cost per connect event and its
 * detection latency, the cost of one JSON line as the agent's log writes it, and what the
 * metrics cost with that many leases (per event, and per scrape). Usage:
 * bench_engine [leases] (default 1000000).
 */
#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "engine.h"
#include "format.h"
#include "lease.h"
#include "metrics.h"
#include "sockpulse.h"
#include "spike.h"
#include "util.h"

#define SEC NSEC_PER_SEC
#define MS NSEC_PER_MSEC
#define T0 (1000 * SEC)
#define BATCH 64

static uint64_t rng = 0x853c49e6748fea9bull;

/* splitmix64: a Weyl sequence through the agent's hash (its finaliser) */
static uint64_t rnd(void)
{
	return sp_hash64(rng += 0x9e3779b97f4a7c15ull);
}

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + (double)ts.tv_nsec / NSEC_PER_SEC;
}

static long rss_kb(void)
{
	long pages = 0, rss = 0;
	FILE *f = fopen("/proc/self/statm", "r");

	if (f) {
		if (fscanf(f, "%ld %ld", &pages, &rss) != 2)
			rss = 0;
		fclose(f);
	}
	return rss * 4;
}

struct sink {
	uint64_t lines[SP_ACT_MAX];
	uint64_t max_late_ms, sum_late_ms, late_n;
};

static void on_emit(void *ctx, const struct sp_event *ev)
{
	struct sink *s = ctx;

	if (ev->action < SP_ACT_MAX)
		s->lines[ev->action]++;
	if (ev->action == SP_ACT_LEASE_EXPIRED) {
		uint64_t late = ev->lease.silent_ms - ev->lease.ttl_ms;

		if (late > s->max_late_ms)
			s->max_late_ms = late;
		s->sum_late_ms += late;
		s->late_n++;
	}
}

static uint32_t n_owners = 16;

/* Connection i: 10.<peer>:443 from 10.255.x.y:<port>, owner one of n_owners processes. */
static void mk_conn(struct sp_event *ev, uint32_t i, uint32_t peers)
{
	uint32_t peer = i % peers;

	memset(&ev->conn, 0, sizeof(ev->conn));
	ev->has_conn = true;
	ev->conn.src.family = ev->conn.dst.family = AF_INET;
	ev->conn.src.bytes[0] = 10;
	ev->conn.src.bytes[1] = 255;
	ev->conn.src.bytes[3] = 1;
	ev->conn.dst.bytes[0] = 10;
	ev->conn.dst.bytes[1] = (uint8_t)(peer >> 16);
	ev->conn.dst.bytes[2] = (uint8_t)(peer >> 8);
	ev->conn.dst.bytes[3] = (uint8_t)peer;
	ev->conn.sport = (uint16_t)(1024 + i / peers % 60000);
	ev->conn.dport = 443;
	ev->conn.has_ports = true;
	ev->conn.direction = SP_DIR_EGRESS;
	ev->conn.has_pid = true;
	ev->conn.pid = 1000 + i % n_owners;
	snprintf(ev->conn.comm, sizeof(ev->conn.comm), "worker%u", i % 16);
	ev->conn.cookie = 4096 + (uint64_t)i;
	ev->conn.netns = 4026531840u;
}

static void bench_leases(uint32_t n)
{
	struct lease_config cfg;
	struct lease_table *t;
	struct sink sink = { 0 };
	struct sp_event ev = { 0 };
	uint32_t *order = malloc((size_t)n * sizeof(uint32_t));
	uint64_t now = T0;
	long rss0 = rss_kb();
	double t0, dt, best_rand = 1e9, best_seq = 1e9, best_rand_b = 1e9, best_seq_b = 1e9;
	static struct sp_event batch[BATCH];
	uint32_t i, peers = n / 100 ? n / 100 : 1;
	int round;

	lease_config_default(&cfg);
	cfg.max_leases = n;
	t = lease_new(&cfg, on_emit, &sink, now);
	if (!t || !order) {
		fprintf(stderr, "allocation failed\n");
		exit(1);
	}
	/* Establish n connections over ~1 s. */
	ev.action = SP_ACT_STATE_CHANGE;
	ev.state.old_state = SP_ST_SYN_SENT;
	ev.state.new_state = SP_ST_ESTABLISHED;
	t0 = now_s();
	for (i = 0; i < n; i++) {
		mk_conn(&ev, i, peers);
		ev.mono_ns = now + i;
		lease_feed(t, &ev);
	}
	dt = now_s() - t0;
	printf("leases: %u live, %u peers; create %.0f ns/lease\n", lease_stats(t)->live,
	       lease_stats(t)->peers, dt * NSEC_PER_SEC / n);
	printf("memory: %zu bytes/lease slot fixed (64 lease + 16 wheel + 4 hash), "
	       "%.1f bytes/lease total held, RSS +%.1f bytes/lease\n",
	       lease_slot_bytes(), (double)lease_bytes(t) / n, (rss_kb() - rss0) * 1024.0 / n);

	for (i = 0; i < n; i++)
		order[i] = i;
	/* Renewals: tcp-activity for live connections, 2 s apart per lease. */
	ev.action = SP_ACT_ACTIVITY;
	ev.activity.segments = 3;
	ev.activity.payload_bytes = 100;
	for (round = 0; round < 12; round++) {
		bool random_order = round % 2 == 0, batched = round % 4 >= 2;
		double *best = random_order ? (batched ? &best_rand_b : &best_rand)
					    : (batched ? &best_seq_b : &best_seq);

		if (random_order)
			for (i = n - 1; i > 0; i--) {
				uint32_t j = (uint32_t)(rnd() % (i + 1)), tmp = order[i];

				order[i] = order[j];
				order[j] = tmp;
			}
		else
			for (i = 0; i < n; i++)
				order[i] = i;
		now += 2 * SEC;
		lease_advance(t, now); /* timers due: measured below, not here */
		for (i = 0; i < n; i++) {
			batch[i % BATCH] = ev;
			batch[i % BATCH].conn.cookie = 4096 + (uint64_t)order[i];
			batch[i % BATCH].mono_ns = now;
		}
		t0 = now_s();
		for (i = 0; i < n; i += BATCH) {
			uint32_t k, m = n - i < BATCH ? n - i : BATCH;

			for (k = 0; k < m; k++)
				batch[k].conn.cookie = 4096 + (uint64_t)order[i + k];
			if (batched)
				lease_prefetch(t, batch, m);
			for (k = 0; k < m; k++)
				lease_feed(t, &batch[k]);
		}
		dt = now_s() - t0;
		if (dt * NSEC_PER_SEC / n < *best)
			*best = dt * NSEC_PER_SEC / n;
	}
	printf("renew (tcp-activity, transport+payload, %u leases), best of 3 rounds:\n"
	       "  one at a time:          %5.1f ns/op random order, %5.1f ns/op cookie order\n"
	       "  batches of %d, prefetch: %5.1f ns/op random order, %5.1f ns/op cookie order\n",
	       n, best_rand, best_seq, BATCH, best_rand_b, best_seq_b);

	/* Timer work while everything stays alive: one re-arm per lease per TTL/2. */
	memset(&sink, 0, sizeof(sink));
	{
		uint64_t steps = 0, end = now + 40 * SEC, at;

		t0 = now_s();
		for (at = now + 100 * MS; at <= end; at += 100 * MS) {
			lease_advance(t, at);
			steps++;
			if (at % (2 * SEC) == 0) { /* keep them alive: renew all, untimed */
				double p = now_s();

				for (i = 0; i < n; i++) {
					ev.conn.cookie = 4096 + (uint64_t)i;
					ev.mono_ns = at;
					lease_feed(t, &ev);
				}
				t0 += now_s() - p;
			}
		}
		dt = now_s() - t0;
		now = end;
		printf("timer upkeep, all alive: %.1f ns per lease per second of clock "
		       "(re-arms at TTL/2), %.1f us per 100 ms tick; lines %lu\n",
		       dt * NSEC_PER_SEC / n / 40, dt * 1e6 / steps,
		       (unsigned long)(sink.lines[SP_ACT_LEASE_SUSPECT] +
				       sink.lines[SP_ACT_LEASE_EXPIRED]));
	}

	/* Everyone goes silent: 2 verdicts per kind per lease (suspect, expired). */
	memset(&sink, 0, sizeof(sink));
	{
		uint64_t at, steps = 0, verdicts;
		double idle_dt;

		t0 = now_s();
		for (at = now + 100 * MS; at <= now + 50 * SEC; at += 100 * MS, steps++)
			lease_advance(t, at);
		dt = now_s() - t0;
		verdicts = sink.lines[SP_ACT_LEASE_SUSPECT] + sink.lines[SP_ACT_LEASE_EXPIRED];
		printf("expiry: %lu verdicts (suspect+expired, 2 kinds) in %.3f s: %.1f ns per "
		       "verdict incl. emit; lateness past TTL max %lu ms, mean %.1f ms (TTL 30 s)\n",
		       (unsigned long)verdicts, dt, dt * NSEC_PER_SEC / verdicts,
		       (unsigned long)sink.max_late_ms,
		       sink.late_n ? (double)sink.sum_late_ms / sink.late_n : 0.0);
		/* Nothing left to expire: a tick costs nothing. */
		t0 = now_s();
		for (steps = 0; steps < 100000; steps++)
			lease_advance(t, at + steps * MS);
		idle_dt = now_s() - t0;
		printf("idle tick with %u expired leases pending nothing: %.1f ns\n", n,
		       idle_dt * NSEC_PER_SEC / 100000);
	}
	lease_free(t);
	free(order);
}

/*
 * The metrics beside a lease table of n connections held by @owners processes, as the agent
 * wires them: what each event costs the metrics, and what one scrape costs: the lease gauges
 * taken from the table's per-owner counts (metrics_set_leases) and the rendering.
 */
static void bench_scrape(uint32_t n, uint32_t owners)
{
	static struct metrics m;
	struct lease_config cfg;
	struct lease_table *t;
	struct sink sink = { 0 };
	struct sp_event ev = { 0 };
	uint32_t i, peers = n / 100 ? n / 100 : 1;
	double t0, dt, best_set = 1e9, best_render = 1e9;
	char *body = NULL;
	long len = 0;

	n_owners = owners;
	lease_config_default(&cfg);
	cfg.max_leases = n;
	t = lease_new(&cfg, on_emit, &sink, T0);
	if (!t || metrics_init(&m, "bench", "1", "tracepoint")) {
		fprintf(stderr, "allocation failed\n");
		exit(1);
	}
	ev.action = SP_ACT_STATE_CHANGE;
	ev.state.old_state = SP_ST_SYN_SENT;
	ev.state.new_state = SP_ST_ESTABLISHED;
	for (i = 0; i < n; i++) {
		mk_conn(&ev, i, peers);
		ev.mono_ns = T0 + i;
		lease_feed(t, &ev);
		metrics_on_event(&m, &ev);
	}
	ev.action = SP_ACT_ACTIVITY;
	ev.activity.segments = 3;
	ev.activity.payload_bytes = 100;
	t0 = now_s();
	for (i = 0; i < n; i++) {
		ev.conn.cookie = 4096 + (uint64_t)(rnd() % n);
		ev.mono_ns = T0 + 2 * SEC;
		metrics_on_event(&m, &ev);
	}
	dt = now_s() - t0;
	printf("metrics: %.1f ns per tcp-activity event (%u leases, random order)\n", dt * NSEC_PER_SEC / n,
	       n);
	for (int round = 0; round < 5; round++) {
		t0 = now_s();
		metrics_set_leases(&m, t);
		dt = now_s() - t0;
		if (dt < best_set)
			best_set = dt;
		t0 = now_s();
		free(body);
		body = NULL;
		len = metrics_render(&m, &body);
		dt = now_s() - t0;
		if (dt < best_render)
			best_render = dt;
	}
	printf("metrics: scrape %.3f ms: lease gauges %.3f ms, render %.3f ms (%ld bytes, "
	       "%u leases, %u owners), best of 5\n",
	       (best_set + best_render) * 1e3, best_set * 1e3, best_render * 1e3, len, n, owners);
	free(body);
	metrics_free(&m);
	lease_free(t);
	n_owners = 16;
}

static void bench_spike(void)
{
	struct spike_config cfg;
	struct sink sink = { 0 };
	struct spike *s;
	struct sp_event ev = { .action = SP_ACT_CONNECT, .has_conn = true };
	const uint32_t ndest = 100000, nev = 10000000;
	uint64_t now = T0;
	double t0, dt;
	uint32_t i;

	spike_config_default(&cfg);
	cfg.max_dests = 1u << 17;
	s = spike_new(&cfg, on_emit, &sink);
	ev.conn.dst.family = AF_INET;
	ev.conn.has_ports = true;
	ev.conn.dport = 443;
	t0 = now_s();
	for (i = 0; i < nev; i++) {
		uint32_t d = (uint32_t)(rnd() % ndest);

		ev.conn.dst.bytes[0] = 10;
		ev.conn.dst.bytes[1] = (uint8_t)(d >> 16);
		ev.conn.dst.bytes[2] = (uint8_t)(d >> 8);
		ev.conn.dst.bytes[3] = (uint8_t)d;
		ev.connect.success = rnd() % 100 != 0;
		ev.connect.failure = ev.connect.success ? SP_FAIL_NONE : SP_FAIL_TIMEOUT;
		now += 10000; /* 100k connects/s */
		ev.mono_ns = now;
		spike_advance(s, now);
		spike_feed(s, &ev);
	}
	dt = now_s() - t0;
	printf("spike: %.1f ns per connect event (%u destinations, 100k connects/s, 1%% failing), "
	       "%lu alerts, %.0f bytes/destination\n",
	       dt * NSEC_PER_SEC / nev, ndest, (unsigned long)sink.lines[SP_ACT_SPIKE],
	       (double)spike_bytes(s) / cfg.max_dests);
	spike_free(s);
}

/* Detection latency of a 10/s refused burst on a quiet destination, over burst phases. */
struct lat {
	uint64_t at;
};

static void on_spike(void *ctx, const struct sp_event *ev)
{
	struct lat *l = ctx;

	if (ev->action == SP_ACT_SPIKE && ev->spike.start && !l->at)
		l->at = ev->mono_ns;
}

static void bench_latency(void)
{
	struct spike_config cfg;
	uint64_t worst = 0, sum = 0;
	int phase;

	spike_config_default(&cfg);
	for (phase = 0; phase < 10; phase++) {
		struct lat l = { 0 };
		struct spike *s = spike_new(&cfg, on_spike, &l);
		struct sp_event ev = { .action = SP_ACT_CONNECT, .has_conn = true };
		uint64_t t, t0 = 300 * SEC + (uint64_t)phase * 100 * MS;

		ev.conn.dst.family = AF_INET;
		ev.conn.dport = 80;
		for (t = 0; t < 300 * SEC; t += 200 * MS) {
			ev.mono_ns = t;
			ev.connect.success = true;
			spike_advance(s, t);
			spike_feed(s, &ev);
		}
		ev.connect.success = false;
		ev.connect.failure = SP_FAIL_REFUSED;
		for (t = t0; !l.at && t < t0 + 10 * SEC; t += 100 * MS) {
			ev.mono_ns = t;
			spike_advance(s, t);
			spike_feed(s, &ev);
		}
		if (l.at - t0 > worst)
			worst = l.at - t0;
		sum += l.at - t0;
		spike_free(s);
	}
	printf("spike detection latency, 10 failures/s on a quiet destination: mean %.2f s, "
	       "worst %.2f s (burst start at 10 phases within the second)\n",
	       sum / 10.0 / SEC, (double)worst / SEC);
}

/*
 * One loopback connection of the storm as the agent logs it: both ends' state changes (the
 * client's CLOSE..FIN_WAIT2->CLOSE with the TIME_WAIT hand-over, the server's LISTEN..CLOSE),
 * the activity carried on leaving ESTABLISHED, the connect outcome and the two lease-closed
 * lines: 13 lines, the mix `make bench` counts per connection.
 */
static void bench_format(void)
{
	enum { LINE_STATE, LINE_CONNECT, LINE_LEASE };
	static const struct {
		uint8_t kind, old_state, new_state, dir;
	} path[] = {
		{ LINE_STATE, SP_ST_CLOSE, SP_ST_SYN_SENT, SP_DIR_EGRESS },
		{ LINE_STATE, SP_ST_LISTEN, SP_ST_SYN_RECV, SP_DIR_INGRESS },
		{ LINE_CONNECT, 0, 0, SP_DIR_EGRESS },
		{ LINE_STATE, SP_ST_SYN_SENT, SP_ST_ESTABLISHED, SP_DIR_EGRESS },
		{ LINE_STATE, SP_ST_SYN_RECV, SP_ST_ESTABLISHED, SP_DIR_INGRESS },
		{ LINE_STATE, SP_ST_ESTABLISHED, SP_ST_FIN_WAIT1, SP_DIR_EGRESS },
		{ LINE_STATE, SP_ST_ESTABLISHED, SP_ST_CLOSE_WAIT, SP_DIR_INGRESS },
		{ LINE_LEASE, 0, 0, SP_DIR_EGRESS },
		{ LINE_LEASE, 0, 0, SP_DIR_INGRESS },
		{ LINE_STATE, SP_ST_FIN_WAIT1, SP_ST_FIN_WAIT2, SP_DIR_EGRESS },
		{ LINE_STATE, SP_ST_CLOSE_WAIT, SP_ST_LAST_ACK, SP_DIR_INGRESS },
		{ LINE_STATE, SP_ST_FIN_WAIT2, SP_ST_CLOSE, SP_DIR_EGRESS },
		{ LINE_STATE, SP_ST_LAST_ACK, SP_ST_CLOSE, SP_DIR_INGRESS },
	};
	const unsigned int per_conn = ARRAY_SIZE(path);
	const struct format_ctx ctx = { .connect_hook = "tracepoint" };
	const uint32_t conns = 200000;
	static char buf[SP_LINE_MAX];
	uint64_t bytes = 0, lines = 0, seq = 1;
	struct sp_event ev;
	double t0, dt;

	memset(&ev, 0, sizeof(ev));
	t0 = now_s();
	for (uint32_t i = 0; i < conns; i++) {
		mk_conn(&ev, i, 1);
		ev.conn.src.bytes[0] = ev.conn.dst.bytes[0] = 127;
		ev.conn.src.bytes[1] = ev.conn.dst.bytes[1] = 0;
		ev.conn.dst.bytes[3] = 1;
		ev.conn.sport = (uint16_t)(32768 + i % 28000);
		ev.conn.dport = 7431;
		snprintf(ev.conn.comm, sizeof(ev.conn.comm), "storm");
		ev.conn.pid = 7800 + i % 3;
		ev.conn.cookie = 12869072 + (uint64_t)i * 2;
		ev.conn.netns = 4026532177u;
		for (unsigned int k = 0; k < per_conn; k++) {
			ev.real_ns = 1795782744404321803ull + (uint64_t)i * 105000 + k * 4000;
			ev.conn.direction = path[k].dir;
			ev.has_duration = path[k].kind != LINE_LEASE && k > 1;
			ev.duration_ns = 4158 + (uint64_t)k * 9000;
			switch (path[k].kind) {
			case LINE_CONNECT:
				ev.action = SP_ACT_CONNECT;
				ev.connect.success = true;
				ev.connect.failure = 0;
				break;
			case LINE_LEASE:
				ev.action = SP_ACT_LEASE_CLOSED;
				ev.lease.kind = SP_LEASE_TRANSPORT;
				ev.lease.reason = NULL;
				break;
			default:
				ev.action = SP_ACT_STATE_CHANGE;
				ev.state.old_state = path[k].old_state;
				ev.state.new_state = path[k].new_state;
				ev.state.time_wait = path[k].old_state == SP_ST_FIN_WAIT2;
				ev.state.segments = path[k].old_state == SP_ST_ESTABLISHED ? 2 : 0;
				ev.state.payload_bytes = ev.state.segments ? 1 : 0;
				break;
			}
			bytes += format_json(buf, sizeof(buf), &ev, seq++, &ctx);
			lines++;
		}
	}
	dt = now_s() - t0;
	printf("format: %.1f ns per JSON line (%lu lines, %.0f bytes/line, storm mix)\n",
	       dt * NSEC_PER_SEC / (double)lines, lines, (double)bytes / (double)lines);
}

int main(int argc, char **argv)
{
	uint32_t n = argc > 1 ? (uint32_t)strtoul(argv[1], NULL, 10) : 1000000;

	if (!n)
		n = 1000000;
	bench_leases(n);
	bench_scrape(n, 16);
	bench_scrape(n, n);
	bench_spike();
	bench_latency();
	bench_format();
	return 0;
}
