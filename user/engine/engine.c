/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* The engine (see engine.h): clock, stall guard, and the fan-out to leases and spikes. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "engine.h"
#include "parse.h"
#include "util.h"

struct engine {
	struct engine_config cfg;
	engine_emit_fn emit;
	void *ctx;
	engine_hold_fn hold_fn;
	void *hold_ctx;
	struct lease_table *leases;
	struct spike *spikes;
	struct stuck *stuck;
	struct portfc *ports;
	uint64_t now;
	uint64_t last_tick; /* 0: no tick yet */
	uint32_t walked[ENGINE_WALKED_MAX]; /* namespaces the last socket-table walk covered */
	size_t n_walked;
	struct engine_stats st;
};

void engine_config_default(struct engine_config *cfg)
{
	memset(cfg, 0, sizeof(*cfg));
	lease_config_default(&cfg->lease);
	spike_config_default(&cfg->spike);
	stuck_config_default(&cfg->stuck);
	portfc_config_default(&cfg->ports);
	cfg->stall_ns = 2000000000ull;
	cfg->hold_ns = 5000000000ull;
}

int engine_parse_lease_ttl(struct engine_config *cfg, const char *arg)
{
	struct lease_config *lc = &cfg->lease;
	const char *eq = arg ? strchr(arg, '=') : NULL;
	uint64_t ttl, port;
	char buf[8];
	uint32_t i;
	int err;

	if (!arg)
		return -EINVAL;
	err = parse_duration(eq ? eq + 1 : arg, &ttl);
	if (err)
		return err;
	if (!ttl)
		return -EINVAL;
	if (!eq) {
		lc->ttl_ns = ttl;
		return 0;
	}
	if ((size_t)(eq - arg) >= sizeof(buf))
		return -EINVAL;
	memcpy(buf, arg, (size_t)(eq - arg));
	buf[eq - arg] = '\0';
	err = parse_u64(buf, 1, 65535, &port);
	if (err)
		return err == -ERANGE ? -EINVAL : err;
	for (i = 0; i < lc->n_port_ttl; i++) {
		if (lc->port_ttl[i].port == port) {
			lc->port_ttl[i].ttl_ns = ttl;
			return 0;
		}
	}
	if (lc->n_port_ttl >= LEASE_MAX_PORT_TTL)
		return -ENOSPC;
	lc->port_ttl[lc->n_port_ttl].port = (uint16_t)port;
	lc->port_ttl[lc->n_port_ttl].ttl_ns = ttl;
	lc->n_port_ttl++;
	return 0;
}

static void relay(void *ctx, const struct sp_event *ev)
{
	struct engine *e = ctx;

	e->st.emitted++;
	e->emit(e->ctx, ev);
}

struct engine *engine_new(const struct engine_config *cfg, engine_emit_fn emit, void *ctx)
{
	struct engine *e;

	if (!cfg || !emit)
		return NULL;
	e = calloc(1, sizeof(*e));
	if (!e)
		return NULL;
	e->cfg = *cfg;
	e->emit = emit;
	e->ctx = ctx;
	e->leases = lease_new(&cfg->lease, relay, e, 0);
	e->spikes = spike_new(&cfg->spike, relay, e);
	e->stuck = stuck_new(&cfg->stuck, relay, e, 0);
	e->ports = portfc_new(&cfg->ports, relay, e);
	if (!e->leases || !e->spikes || !e->stuck || !e->ports) {
		engine_free(e);
		return NULL;
	}
	return e;
}

void engine_free(struct engine *e)
{
	if (!e)
		return;
	lease_free(e->leases);
	spike_free(e->spikes);
	stuck_free(e->stuck);
	portfc_free(e->ports);
	free(e);
}

void engine_set_hold_fn(struct engine *e, engine_hold_fn fn, void *ctx)
{
	e->hold_fn = fn;
	e->hold_ctx = ctx;
}

static void hold(struct engine *e, uint64_t now, const char *reason, uint64_t stall, uint64_t lost)
{
	uint64_t until = now + e->cfg.hold_ns;
	bool fresh = now >= e->st.hold_until_ns;

	if (!e->cfg.hold_ns || until <= e->st.hold_until_ns)
		return;
	e->st.hold_until_ns = until;
	lease_hold(e->leases, until);
	if (!fresh)
		return;
	e->st.holds++;
	if (e->hold_fn) {
		struct engine_hold h = {
			.mono_ns = now,
			.until_ns = until,
			.reason = reason,
			.stall_ns = stall,
			.lost = lost,
		};

		e->hold_fn(e->hold_ctx, &h);
	}
}

static void advance(struct engine *e, uint64_t now)
{
	if (now > e->now)
		e->now = now;
	lease_advance(e->leases, e->now);
	spike_advance(e->spikes, e->now);
	stuck_advance(e->stuck, e->now);
	portfc_advance(e->ports, e->now);
}

void engine_feed(struct engine *e, const struct sp_event *ev)
{
	e->st.fed++;
	advance(e, ev->mono_ns);
	switch (ev->action) {
	case SP_ACT_CONNECT:
		spike_feed(e->spikes, ev);
		break;
	case SP_ACT_EVENTS_LOST:
		if (ev->lost.count) {
			hold(e, e->now, "events-lost", 0, ev->lost.count);
			/* what was lost may have ended connections no walk can check */
			lease_blind(e->leases, e->walked, e->n_walked, e->now);
			stuck_blind(e->stuck, e->walked, e->n_walked, e->now);
		}
		break;
	case SP_ACT_STATE_CHANGE:
		lease_feed(e->leases, ev);
		stuck_feed(e->stuck, ev);
		portfc_feed(e->ports, ev);
		break;
	default:
		lease_feed(e->leases, ev);
		break;
	}
}

void engine_feed_batch(struct engine *e, const struct sp_event *evs, size_t n)
{
	size_t i;

	lease_prefetch(e->leases, evs, n);
	for (i = 0; i < n; i++)
		engine_feed(e, &evs[i]);
}

void engine_hold_event(const struct engine_hold *hold, struct sp_event *ev)
{
	memset(ev, 0, sizeof(*ev));
	ev->action = SP_ACT_LEASE_HOLD;
	ev->mono_ns = hold->mono_ns;
	ev->hold.reason = hold->reason;
	ev->hold.grace_ms = (hold->until_ns - hold->mono_ns) / NSEC_PER_MSEC;
	ev->hold.stall_ms = hold->stall_ns / NSEC_PER_MSEC;
	ev->hold.lost = hold->lost;
}

bool engine_seed(struct engine *e, const struct sp_conn *c, uint64_t now_ns)
{
	advance(e, now_ns);
	return lease_seed(e->leases, c, now_ns);
}

bool engine_seed_stuck(struct engine *e, const struct sp_conn *c, uint8_t state,
		       uint64_t entered_ns, uint64_t now_ns)
{
	advance(e, now_ns);
	return stuck_seed(e->stuck, c, state, entered_ns, now_ns);
}

void engine_tick(struct engine *e, uint64_t now_ns)
{
	/* A late tick means our own silence: hold before the verdicts it would release. */
	if (e->cfg.stall_ns && e->last_tick && now_ns > e->last_tick + e->cfg.stall_ns)
		hold(e, now_ns, "agent-stall", now_ns - e->last_tick, 0);
	if (now_ns > e->last_tick)
		e->last_tick = now_ns;
	advance(e, now_ns);
}

const struct engine_stats *engine_stats(const struct engine *e)
{
	return &e->st;
}

const struct lease_stats *engine_lease_stats(const struct engine *e)
{
	return lease_stats(e->leases);
}

const struct spike_stats *engine_spike_stats(const struct engine *e)
{
	return spike_stats(e->spikes);
}

const struct lease_table *engine_leases(const struct engine *e)
{
	return e->leases;
}

void engine_resync_seen(struct engine *e, uint64_t cookie)
{
	lease_resync_seen(e->leases, cookie);
}

size_t engine_resync_end(struct engine *e, const uint32_t *netns, size_t n_netns,
			 uint64_t walk_start_ns, uint64_t now_ns)
{
	e->n_walked = n_netns < ENGINE_WALKED_MAX ? n_netns : ENGINE_WALKED_MAX;
	memcpy(e->walked, netns, e->n_walked * sizeof(*netns));
	return lease_resync_end(e->leases, netns, n_netns, walk_start_ns, now_ns);
}

const struct spike *engine_spikes(const struct engine *e)
{
	return e->spikes;
}

struct stuck *engine_stuck(const struct engine *e)
{
	return e->stuck;
}

struct portfc *engine_ports(const struct engine *e)
{
	return e->ports;
}
