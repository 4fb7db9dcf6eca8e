// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * The runtime every command shares: the BPF side, the ring, the engine and the loop (loop.h)
 * over the ring buffer, the tick and the mode's descriptors. The ring wakes us only past a fill
 * threshold; the timer drains it every tick, so quiet hosts still see events within a tick and
 * busy hosts are not woken once per event.
 */
#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <bpf/libbpf.h>

#include "ablate.h"
#include "cgroup.h"
#include "clock.h"
#include "engine.h"
#include "log.h"
#include "loop.h"
#include "names.h"
#include "netns.h"
#include "runtime.h"
#include "socktab.h"
#include "tablewalk.h"
#include "util.h"

#define TICK_NS (100 * NSEC_PER_MSEC)	    /* drain and flush period */
#define LOST_CHECK_NS (1000 * NSEC_PER_MSEC) /* kernel drop counters read period */

static void deliver(struct runtime *a, struct sp_event *ev)
{
	if (!ev->real_ns)
		ev->real_ns = ev->mono_ns + a->real_offset;
	if (a->sink.on_event)
		a->sink.on_event(a->sink.ctx, ev);
}

/* Batches let the engine overlap the cache misses of many lease lookups. */
static void feed_engine(struct runtime *a)
{
	if (a->engine && a->n_batch)
		engine_feed_batch(a->engine, a->batch, a->n_batch);
	a->n_batch = 0;
}

static void engine_emit(void *ctx, const struct sp_event *ev)
{
	struct runtime *a = ctx;
	struct sp_event out = *ev;

	a->counts.engine_events++;
	deliver(a, &out);
}

/* The stall guard holds verdicts: say so in one line, in the stream. */
static void engine_hold(void *ctx, const struct engine_hold *hold)
{
	struct runtime *a = ctx;
	struct sp_event ev;

	engine_hold_event(hold, &ev);
	deliver(a, &ev);
}

static int on_record(void *ctx, void *data, size_t size)
{
	struct runtime *a = ctx;
	struct sp_event ev;
	enum decode_result r = decode_record(data, size, a->real_offset, &ev);
	__u32 type;

	if (r != DECODE_OK) {
		a->counts.decode_errors[r]++;
		if (a->counts.decode_errors[r] == 1)
			pr_warn("dropped a malformed ring record (%s, %zu bytes); further ones are "
				"counted in the summary",
				decode_result_name(r), size);
		return 0;
	}
	memcpy(&type, data, sizeof(type)); /* decode checked size and range */
	a->counts.received[type]++;
	if (socktab_enrich(a->socks, &ev) && a->walk && tablewalk_covers(a->walk, ev.conn.netns))
		a->owners_wanted = true;
	deliver(a, &ev);
	if (a->engine) {
		a->batch[a->n_batch++] = ev;
		if (a->n_batch == RUNTIME_BATCH)
			feed_engine(a);
	}
	return 0;
}

/* Turns growth of the kernel's drop counters into events-lost events. */
static void check_lost(struct runtime *a, uint64_t now)
{
	struct sp_stats st;
	struct sp_event ev;
	uint64_t total = 0;

	a->last_lost_check = now;
	if (loader_read_stats(&a->loader, &st))
		return;
	a->counts.no_storage = st.no_storage;
	for (int t = 1; t < SP_REC_TYPE_MAX; t++) {
		if (st.dropped[t] <= a->counts.lost[t])
			continue;
		memset(&ev, 0, sizeof(ev));
		ev.action = SP_ACT_EVENTS_LOST;
		ev.mono_ns = now;
		ev.lost.count = st.dropped[t] - a->counts.lost[t];
		ev.lost.kind = rec_type_name(t);
		a->counts.lost[t] = st.dropped[t];
		total += ev.lost.count;
		deliver(a, &ev);
	}
	/* One loss for the stall guard, all kinds together: its hold line tells the total. */
	if (total && a->engine) {
		feed_engine(a);
		ev.lost.count = total;
		ev.lost.kind = "all";
		engine_feed(a->engine, &ev);
	}
}

static void drain(struct runtime *a)
{
	int n = ring_buffer__consume(a->ring);

	if (n < 0 && n != -EINTR)
		pr_warn("ring buffer: %s", strerror(-n));
	feed_engine(a);
}

static void on_signal(void *ctx, int signo)
{
	struct runtime *a = ctx;

	if (signo != SIGHUP)
		a->stop = true;
	else if (a->sink.on_hup)
		a->sink.on_hup(a->sink.ctx);
}

static void on_tick(void *ctx)
{
	struct runtime *a = ctx;
	uint64_t now = clock_mono_ns();

	/* A tick a second late means we were not running: say so once per stall. */
	if (a->last_tick && now - a->last_tick > 10 * TICK_NS)
		a->counts.loop_stalls++;
	a->last_tick = now;
	a->real_offset = clock_real_offset_ns();
	drain(a);
	if (now - a->last_lost_check >= LOST_CHECK_NS)
		check_lost(a, now);
	if (a->engine)
		engine_tick(a->engine, now);
	if (a->walk)
		tablewalk_tick(a->walk, now);
	/* after the tick's walk: a periodic walk found the owners too */
	if (a->owners_wanted && a->walk && tablewalk_owners(a->walk, now) != -EAGAIN)
		a->owners_wanted = false;
	if (a->sink.on_tick)
		a->sink.on_tick(a->sink.ctx, now);
	if (a->deadline && now >= a->deadline)
		a->stop = true;
}

static void on_ring(void *ctx, int fd, uint32_t events)
{
	drain(ctx);
}

static int setup_loop(struct runtime *a)
{
	const struct loop_ops ops = { .ctx = a, .on_tick = on_tick, .on_signal = on_signal };
	int err = loop_open(&a->loop, TICK_NS, &ops);

	return err ? err : loop_add_fd(&a->loop, ring_buffer__epoll_fd(a->ring), on_ring, a);
}

static void walk_start(void *ctx)
{
	struct runtime *a = ctx;

	if (a->sink.on_walk_start)
		a->sink.on_walk_start(a->sink.ctx);
}

static void walk_sock(void *ctx, const struct audit_sock *s, uint64_t target_ms)
{
	struct runtime *a = ctx;

	if (a->sink.on_walk_sock)
		a->sink.on_walk_sock(a->sink.ctx, s, target_ms);
}

static void walk_done(void *ctx, const struct audit *au, bool ok)
{
	struct runtime *a = ctx;

	if (a->sink.on_walk_done)
		a->sink.on_walk_done(a->sink.ctx, au, ok);
}

/*
 * The socket table, walked once now (the programs are attached: whatever changes from here on
 * arrives as events) and then every --audit-interval. Without it the engine still sees every
 * change from now on; only the past is missing, which is said once.
 */
void runtime_walk_start(struct runtime *a)
{
	struct tablewalk_hooks hooks = {
	    .ctx = a,
	    .on_start = walk_start,
	    .on_sock = walk_sock,
	    .on_done = walk_done,
	};
	int err;

	if (!a->engine)
		return;
	a->walk = calloc(1, sizeof(*a->walk));
	if (!a->walk)
		return;
	err = tablewalk_open(a->walk, a->cfg, a->engine, &hooks);
	if (!err) {
		/* sockets older than the agent: their owners and ends, once, from /proc */
		a->walk->socks = a->socks;
		a->walk->owners_next = true;
		err = tablewalk_run(a->walk, clock_mono_ns());
	}
	if (err) {
		pr_warn("socket table walk unavailable (%s): sockets stuck before the start, "
			"keepalive audit and exact port counts are missing",
			strerror(-err));
		tablewalk_close(a->walk);
		free(a->walk);
		a->walk = NULL;
		return;
	}
	pr_debug("socket table: %llu sockets, %llu stuck already, walk took %.1f ms",
		 (unsigned long long)a->walk->sockets, (unsigned long long)a->walk->seeded_stuck,
		 a->walk->last_duration_ns / (double)NSEC_PER_MSEC);
}

/*
 * The port forecast asks once per namespace it sees: its ip_local_port_range, read from inside
 * it (a namespace with no name and no process left cannot be entered: the default range).
 */
static int port_range(void *ctx, uint32_t netns, struct portfc_ns *out)
{
	int err = netns_port_settings(netns, &out->lo, &out->hi, &out->tw_reuse);

	(void)ctx;
	if (err)
		pr_debug("port forecast: no ip_local_port_range for namespace %u (%s): the default "
			 "range counts",
			 netns, strerror(-err));
	return err;
}

/* Attribution is best effort: without a cgroup2 mount lines carry no cgroup fields. */
static void open_cgroups(struct runtime *a)
{
	struct cg_cache_config cc = { .clock = clock_mono_ns };
	char root[PATH_MAX];
	int err = cg_find_mount("/proc/mounts", root, sizeof(root));

	if (err) {
		pr_info("no cgroup v2 mount (%s): lines carry no unit, container or pod",
			strerror(-err));
		return;
	}
	cc.root = root;
	a->cg = cg_cache_new(&cc);
	if (!a->cg) {
		pr_warn("cannot set up the cgroup cache: out of memory");
		return;
	}
	err = cg_cache_walk(a->cg);
	pr_debug("cgroup v2 at %s: %d cgroups known", root, err);
}

int runtime_open(struct runtime *a, const struct config *cfg, const struct runtime_sink *sink)
{
	int ret, err;

	memset(a, 0, sizeof(*a));
	a->cfg = cfg;
	a->loop.epfd = a->loop.tfd = a->loop.sfd = -1;
	if (sink)
		a->sink = *sink;
	if (!cfg->no_engine && !(cfg->ablate & ABLATE_ENGINE)) {
		a->engine = engine_new(&cfg->engine, engine_emit, a);
		if (!a->engine) {
			pr_warn("cannot set up the lease engine (%u leases): out of memory",
				cfg->engine.lease.max_leases);
			return SP_EXIT_FAILURE;
		}
		engine_set_hold_fn(a->engine, engine_hold, a);
		portfc_set_range_fn(engine_ports(a->engine), port_range, a);
	}
	a->socks = socktab_new(cfg->kernel.max_socks, RUNTIME_SOCKTAB_LISTENERS);
	if (!a->socks) {
		pr_warn("cannot set up the socket table (%u sockets): out of memory",
			cfg->kernel.max_socks);
		return SP_EXIT_FAILURE;
	}
	open_cgroups(a);
	ret = loader_start(&a->loader, cfg);
	if (ret)
		return ret;
	a->real_offset = clock_real_offset_ns();
	a->ring = ring_buffer__new(loader_ring_map_fd(&a->loader), on_record, a, NULL);
	if (!a->ring) {
		pr_warn("cannot set up the ring buffer: %s", strerror(errno));
		return SP_EXIT_FAILURE;
	}
	err = setup_loop(a);
	if (err) {
		pr_warn("cannot set up the event loop: %s", strerror(-err));
		return SP_EXIT_FAILURE;
	}
	return SP_EXIT_OK;
}

int runtime_programs(const struct runtime *a)
{
	return a->loader.n_links + (a->walk ? 1 : 0);
}

int runtime_add_fd(struct runtime *a, int fd, loop_fd_fn fn, void *ctx)
{
	return loop_add_fd(&a->loop, fd, fn, ctx);
}

int runtime_run(struct runtime *a)
{
	int n;

	a->start_mono = clock_mono_ns();
	a->last_lost_check = a->start_mono;
	a->deadline = a->cfg->duration_ns ? a->start_mono + a->cfg->duration_ns : 0;
	while (!a->stop) {
		n = loop_wait(&a->loop, -1);
		if (n < 0) {
			pr_warn("epoll_wait: %s", strerror(-n));
			return SP_EXIT_FAILURE;
		}
		if (a->sink.on_flush && !a->sink.on_flush(a->sink.ctx))
			a->stop = true;
	}
	/* Everything the kernel handed over before we stopped goes out. */
	drain(a);
	check_lost(a, clock_mono_ns());
	if (a->sink.on_flush)
		a->sink.on_flush(a->sink.ctx);
	return a->exit_code;
}

void runtime_drain(struct runtime *a)
{
	drain(a);
}

void runtime_stop(struct runtime *a, int exit_code)
{
	a->stop = true;
	if (exit_code)
		a->exit_code = exit_code;
}

static uint64_t sum_kinds(const uint64_t *counts)
{
	uint64_t total = 0;

	for (int t = 1; t < SP_REC_TYPE_MAX; t++)
		total += counts[t];
	return total;
}

/* "summary: events 15: state=12 connect=1 ...": every kind, so scripts can read any of them. */
static void summary_line(const char *what, const uint64_t *counts)
{
	char buf[512];
	size_t off;

	off = snprintf(buf, sizeof(buf), "summary: %s %llu:", what,
		       (unsigned long long)sum_kinds(counts));
	for (int t = 1; t < SP_REC_TYPE_MAX && off < sizeof(buf); t++)
		off += snprintf(buf + off, sizeof(buf) - off, " %s=%llu", rec_type_name(t),
				(unsigned long long)counts[t]);
	pr_info("%s", buf);
}

/* Stuck sockets, the port forecast, the socket-table walks: what was raised, what was dropped. */
static void summary_health(const struct runtime *a, bool all)
{
	const struct stuck_stats *st = stuck_stats(engine_stuck(a->engine));
	const struct portfc_stats *ps = portfc_stats(engine_ports(a->engine));

	if (all || st->alerts[0] || st->alerts[1] || st->seeded || st->untracked || ps->alerts ||
	    ps->evicted)
		pr_info("summary: tcp-stuck %llu (close_wait %llu, fin_wait2 %llu, %llu found at "
			"start), %llu untracked (table full); port-exhaustion-risk %llu, "
			"destinations evicted %llu",
			(unsigned long long)(st->alerts[0] + st->alerts[1]),
			(unsigned long long)st->alerts[0], (unsigned long long)st->alerts[1],
			(unsigned long long)st->seeded, (unsigned long long)st->untracked,
			(unsigned long long)ps->alerts, (unsigned long long)ps->evicted);
	if (a->walk && (all || a->walk->errors))
		pr_info("summary: socket table walks %llu (%llu incomplete), last %.1f ms",
			(unsigned long long)a->walk->walks, (unsigned long long)a->walk->errors,
			a->walk->last_duration_ns / (double)NSEC_PER_MSEC);
}

static void summary_engine(const struct runtime *a, bool all)
{
	const struct lease_stats *ls = engine_lease_stats(a->engine);
	const struct spike_stats *ss = engine_spike_stats(a->engine);
	uint64_t holds = engine_stats(a->engine)->holds;

	if (all || ls->created || ss->incidents || holds)
		pr_info("summary: leases created %llu closed %llu lost %llu (unobserved %llu) "
			"expired %llu/%llu (transport/payload) evicted %llu; spikes %llu (host-wide "
			"%llu); holds %llu",
			(unsigned long long)ls->created, (unsigned long long)ls->closed,
			(unsigned long long)ls->lost, (unsigned long long)ls->unobserved,
			(unsigned long long)ls->expirations[SP_LEASE_TRANSPORT],
			(unsigned long long)ls->expirations[SP_LEASE_PAYLOAD],
			(unsigned long long)ls->evicted, (unsigned long long)ss->incidents,
			(unsigned long long)ss->host_incidents, (unsigned long long)holds);
	summary_health(a, all);
}

/* The owner table is a cache: what it forgot to make room is said (and looked up again). */
static void summary_owners(const struct runtime *a, bool all)
{
	struct socktab_stats ts;

	if (!a->socks)
		return;
	socktab_stats(a->socks, &ts);
	if (all || ts.evicted)
		pr_info("summary: owners: %llu lines completed, %llu sockets forgotten to make room, "
			"%llu owner walks",
			(unsigned long long)ts.inferred, (unsigned long long)ts.evicted,
			(unsigned long long)(a->walk ? a->walk->owner_walks : 0));
}

/*
 * At exit, what has something to say: the events and losses always (scripts read them), the
 * engine's and the walks' counts when they counted anything; all of it with -v.
 */
void runtime_summary(const struct runtime *a)
{
	bool all = log_get_level() >= LOG_DEBUG;
	uint64_t bad = 0;

	if (!all && !sum_kinds(a->counts.received) && !sum_kinds(a->counts.lost)) {
		pr_info("summary: no events, nothing lost");
	} else {
		summary_line("events", a->counts.received);
		if (all || sum_kinds(a->counts.lost))
			summary_line("lost", a->counts.lost);
		else
			pr_info("summary: lost 0: nothing dropped");
	}
	if (a->engine)
		summary_engine(a, all);
	if (a->counts.no_storage)
		pr_warn("summary: %llu events of sockets the kernel's socket table had no room for "
			"(their lines lack durations and owners)",
			(unsigned long long)a->counts.no_storage);
	for (int r = 1; r < DECODE_RESULT_MAX; r++)
		bad += a->counts.decode_errors[r];
	if (bad)
		pr_warn("summary: %llu malformed ring records dropped", (unsigned long long)bad);
	summary_owners(a, all);
}

void runtime_close(struct runtime *a)
{
	if (!a)
		return;
	ring_buffer__free(a->ring);
	a->ring = NULL;
	tablewalk_close(a->walk);
	free(a->walk);
	a->walk = NULL;
	socktab_free(a->socks);
	a->socks = NULL;
	cg_cache_free(a->cg);
	a->cg = NULL;
	engine_free(a->engine);
	a->engine = NULL;
	loader_stop(&a->loader);
	loop_close(&a->loop);
}
