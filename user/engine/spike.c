/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* Connect-failure spike detector (see spike.h). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "sockpulse.h"
#include "spike.h"
#include "util.h"

#define NIL UINT32_MAX
#define NS_PER_S 1000000000ull

enum dest_state {
	D_QUIET = 0,
	D_SPIKE,
	D_ENDING,
};

/* The first cache line holds what every attempt touches; counts of one second share another. */
struct dest {
	/* key */
	uint8_t addr[16];
	uint32_t netns;
	uint16_t family;
	uint16_t port;
	uint32_t hnext;	   /* hash chain; free list when unused */
	uint32_t act_next; /* active list */
	uint64_t sec;	   /* the open second */
	uint64_t last_ns;  /* last attempt */
	uint32_t win_att, win_fail;
	bool used, active;
	uint8_t state;	   /* enum dest_state */
	uint8_t hist;	   /* start condition, one bit per closed second, newest in bit 0 */
	/* second line onwards */
	bool absorbed;	   /* started while a host-wide incident lasted: no lines of its own */
	uint16_t quiet_s;  /* SPIKE: consecutive quiet seconds */
	uint16_t ending_s;
	double lambda;
	uint64_t incident_fail;
	uint64_t incident_start_ns;
	uint32_t by_class[SP_FAIL_MAX]; /* failures by class: the window, then the incident */
	struct {
		uint16_t att, fail;
	} cnt[SPIKE_WINDOW_MAX];
};

struct spike {
	struct spike_config cfg;
	spike_emit_fn emit;
	void *ctx;
	struct dest *d;
	uint32_t cap, hwm, free_head;
	uint32_t *buckets;
	uint32_t nbuckets;
	uint32_t act_head;	     /* destinations that may give a verdict without new attempts */
	uint32_t hand;		     /* eviction scan position */
	uint64_t sec;		     /* seconds closed for every active destination up to here */
	double decay;		     /* 1 - alpha, per second */
	uint64_t starts[8];	     /* recent incident start times, for the host-wide rule */
	uint32_t nstarts;
	uint64_t host_start_ns;
	uint64_t host_fail;
	struct spike_stats st;
};

void spike_config_default(struct spike_config *cfg)
{
	*cfg = (struct spike_config){
		.window_s = 10,
		.half_life_s = 600,
		.floor_per_s = 1.0 / 60,
		.min_failures = 5,
		.z_enter = 4,
		.min_ratio = 0.1,
		.confirm_need = 2,
		.confirm_of = 3,
		.z_leave = 2,
		.leave_s = 30,
		.merge_s = 60,
		.host_min_dests = 3,
		.host_window_s = 10,
		.max_dests = 65536,
		.idle_s = 900,
	};
}

struct spike *spike_new(const struct spike_config *cfg, spike_emit_fn emit, void *ctx)
{
	struct spike *s;
	uint32_t nb = 1;

	if (!emit || !cfg->window_s || cfg->window_s > SPIKE_WINDOW_MAX || !cfg->max_dests ||
	    cfg->max_dests > (1u << 28) || !cfg->confirm_of || cfg->confirm_of > 8 ||
	    !cfg->confirm_need || cfg->confirm_need > cfg->confirm_of || !(cfg->half_life_s > 0) ||
	    !(cfg->floor_per_s > 0) || cfg->host_min_dests > 8)
		return NULL;
	s = calloc(1, sizeof(*s));
	if (!s)
		return NULL;
	s->cfg = *cfg;
	s->emit = emit;
	s->ctx = ctx;
	s->cap = cfg->max_dests;
	s->free_head = NIL;
	s->act_head = NIL;
	s->decay = pow(2.0, -1.0 / cfg->half_life_s);
	while (nb < s->cap)
		nb <<= 1;
	s->nbuckets = nb;
	s->d = calloc(s->cap, sizeof(*s->d)); /* zero pages until used */
	s->buckets = malloc((size_t)nb * sizeof(uint32_t));
	if (!s->d || !s->buckets) {
		spike_free(s);
		return NULL;
	}
	memset(s->buckets, 0xff, (size_t)nb * sizeof(uint32_t));
	return s;
}

void spike_free(struct spike *s)
{
	if (!s)
		return;
	free(s->d);
	free(s->buckets);
	free(s);
}

const struct spike_stats *spike_stats(const struct spike *s)
{
	return &s->st;
}

size_t spike_bytes(const struct spike *s)
{
	return sizeof(*s) + (size_t)s->cap * sizeof(struct dest) + (size_t)s->nbuckets * 4;
}

/* ---- lists and table --------------------------------------------------------------------- */

static uint32_t hash_key(const struct spike *s, const uint8_t *addr, uint32_t netns,
			 uint16_t family, uint16_t port)
{
	uint64_t a, b, h;

	memcpy(&a, addr, 8);
	memcpy(&b, addr + 8, 8);
	h = sp_hash64(a ^ ((uint64_t)netns << 32 | (uint64_t)family << 16 | port));
	h = sp_hash64(h ^ b);
	return (uint32_t)h & (s->nbuckets - 1);
}

/* Singly linked: adding touches no other destination's cache line; spike_advance unlinks. */
static void act_add(struct spike *s, uint32_t i)
{
	struct dest *d = &s->d[i];

	if (d->active)
		return;
	d->active = true;
	d->act_next = s->act_head;
	s->act_head = i;
}

/* Only quiet destinations off the active list go: nothing about them is pending. */
static bool evictable(const struct dest *d)
{
	return d->used && !d->active && d->state == D_QUIET && !d->hist && !d->win_fail;
}

static void evict(struct spike *s, uint32_t i)
{
	struct dest *d = &s->d[i];
	uint32_t *pp = &s->buckets[hash_key(s, d->addr, d->netns, d->family, d->port)];

	while (*pp != i)
		pp = &s->d[*pp].hnext;
	*pp = d->hnext;
	d->used = false;
	d->hnext = s->free_head;
	s->free_head = i;
	s->st.dests--;
	s->st.evicted++;
}

/* Room when full: among the next 64 slots, the evictable one idle the longest. */
static uint32_t make_room(struct spike *s)
{
	uint32_t n, best = NIL;

	for (n = 0; n < 64 && n < s->hwm; n++) {
		uint32_t i = s->hand;

		s->hand = s->hand + 1 < s->hwm ? s->hand + 1 : 0;
		if (evictable(&s->d[i]) && (best == NIL || s->d[i].last_ns < s->d[best].last_ns))
			best = i;
	}
	if (best == NIL)
		return NIL;
	evict(s, best);
	s->free_head = s->d[best].hnext;
	return best;
}

static uint32_t lookup_or_add(struct spike *s, const struct sp_event *ev, uint64_t now)
{
	const struct sp_conn *c = &ev->conn;
	uint32_t b = hash_key(s, c->dst.bytes, c->netns, c->dst.family, c->dport), i;
	struct dest *d;

	for (i = s->buckets[b]; i != NIL; i = s->d[i].hnext) {
		d = &s->d[i];
		if (d->port == c->dport && d->netns == c->netns && d->family == c->dst.family &&
		    !memcmp(d->addr, c->dst.bytes, 16))
			return i;
	}
	if (s->free_head != NIL) {
		i = s->free_head;
		s->free_head = s->d[i].hnext;
	} else if (s->hwm < s->cap) {
		i = s->hwm++;
	} else if ((i = make_room(s)) == NIL) {
		return NIL;
	}
	d = &s->d[i];
	memset(d, 0, sizeof(*d));
	memcpy(d->addr, c->dst.bytes, 16);
	d->netns = c->netns;
	d->family = c->dst.family;
	d->port = c->dport;
	d->used = true;
	d->sec = now / NS_PER_S;
	d->hnext = s->buckets[b];
	s->buckets[b] = i;
	s->st.dests++;
	return i;
}

/* ---- detection --------------------------------------------------------------------------- */

static double lambda_eff(const struct spike *s, const struct dest *d)
{
	return d->lambda > s->cfg.floor_per_s ? d->lambda : s->cfg.floor_per_s;
}

static uint8_t top_class(const uint32_t *by_class)
{
	uint8_t best = SP_FAIL_NONE;
	unsigned int k;

	for (k = 1; k < SP_FAIL_MAX; k++)
		if (by_class[k] > by_class[best] || (best == SP_FAIL_NONE && by_class[k]))
			best = (uint8_t)k;
	return best;
}

static void emit_dest(struct spike *s, const struct dest *d, bool start, uint64_t now)
{
	struct sp_event ev;

	memset(&ev, 0, sizeof(ev));
	ev.action = SP_ACT_SPIKE;
	ev.mono_ns = now;
	ev.has_conn = true;
	ev.conn.dst.family = d->family;
	memcpy(ev.conn.dst.bytes, d->addr, 16);
	ev.conn.dport = d->port;
	ev.conn.has_ports = true;
	ev.conn.direction = SP_DIR_EGRESS;
	ev.conn.netns = d->netns;
	ev.spike.start = start;
	ev.spike.failures = start ? d->win_fail : d->incident_fail;
	ev.spike.window_s = start ? s->cfg.window_s
				  : (uint32_t)((now - d->incident_start_ns) / NS_PER_S);
	ev.spike.baseline_per_s = lambda_eff(s, d);
	ev.spike.failure = top_class(d->by_class);
	s->emit(s->ctx, &ev);
}

static void emit_host(struct spike *s, bool start, uint64_t now)
{
	struct sp_event ev;
	double base = 0;
	uint64_t fail = 0;
	uint32_t i, by_class[SP_FAIL_MAX] = { 0 }, k;

	for (i = s->act_head; i != NIL; i = s->d[i].act_next) {
		const struct dest *d = &s->d[i];

		if (d->state == D_QUIET)
			continue;
		base += lambda_eff(s, d);
		fail += d->win_fail;
		for (k = 0; k < SP_FAIL_MAX; k++)
			by_class[k] += d->by_class[k];
	}
	memset(&ev, 0, sizeof(ev));
	ev.action = SP_ACT_SPIKE;
	ev.mono_ns = now;
	ev.spike.start = start;
	ev.spike.host_wide = true;
	ev.spike.failures = start ? fail : s->host_fail;
	ev.spike.window_s = start ? s->cfg.window_s
				  : (uint32_t)((now - s->host_start_ns) / NS_PER_S);
	ev.spike.baseline_per_s = base;
	ev.spike.failure = top_class(by_class);
	ev.spike.destinations = s->st.open;
	s->emit(s->ctx, &ev);
}

/* Do host_min_dests incident starts (this one included) fall within host_window_s? */
static bool host_tipped(struct spike *s, uint64_t now)
{
	uint32_t n = s->cfg.host_min_dests, k;
	uint64_t oldest = now;

	if (!n)
		return false;
	s->starts[s->nstarts++ % n] = now;
	if (s->nstarts < n)
		return false;
	for (k = 0; k < n; k++)
		if (s->starts[k] < oldest)
			oldest = s->starts[k];
	return now - oldest <= (uint64_t)s->cfg.host_window_s * NS_PER_S;
}

/* Failures of destinations in an incident, closed seconds only (open ones are added later). */
static uint64_t closed_incident_failures(const struct spike *s)
{
	uint64_t sum = 0;
	uint32_t i;

	for (i = s->act_head; i != NIL; i = s->d[i].act_next) {
		const struct dest *o = &s->d[i];

		if (o->state != D_QUIET)
			sum += o->win_fail - o->cnt[o->sec % s->cfg.window_s].fail;
	}
	return sum;
}

/* @pending: failures of the open second, already in the window, added when it closes. */
static void incident_start(struct spike *s, struct dest *d, uint64_t now, uint32_t pending)
{
	d->state = D_SPIKE;
	d->quiet_s = 0;
	d->incident_fail = d->win_fail - pending;
	d->incident_start_ns = now;
	d->absorbed = s->st.host_active;
	s->st.incidents++;
	s->st.open++;
	if (s->st.host_active) {
		s->host_fail += d->win_fail - pending;
		return;
	}
	if (!host_tipped(s, now)) {
		emit_dest(s, d, true, now);
		return;
	}
	/* This one tips it: the host line replaces its own. */
	d->absorbed = true;
	s->st.host_active = true;
	s->st.host_incidents++;
	s->host_start_ns = now;
	s->host_fail = closed_incident_failures(s) + d->cnt[d->sec % s->cfg.window_s].fail - pending;
	emit_host(s, true, now);
}

static void incident_end(struct spike *s, struct dest *d, uint64_t now)
{
	d->state = D_QUIET;
	d->hist = 0;
	s->st.open--;
	if (!d->absorbed)
		emit_dest(s, d, false, now);
	d->absorbed = false;
	memset(d->by_class, 0, sizeof(d->by_class));
	if (s->st.host_active && !s->st.open) {
		emit_host(s, false, now);
		s->st.host_active = false;
		s->nstarts = 0;
	}
}

static double zscore(const struct spike *s, const struct dest *d)
{
	double e = s->cfg.window_s * lambda_eff(s, d);

	return (d->win_fail - e) / sqrt(e);
}

/* The start condition on the window as it stands. */
static bool start_cond(const struct spike *s, const struct dest *d, double z)
{
	const struct spike_config *c = &s->cfg;

	return d->win_fail >= c->min_failures && z >= c->z_enter && d->win_att &&
	       (double)d->win_fail >= c->min_ratio * d->win_att;
}

/* Closes second d->sec (verdict time: its end) and opens the next. */
static void close_second(struct spike *s, struct dest *d)
{
	const struct spike_config *c = &s->cfg;
	uint32_t slot = (uint32_t)(d->sec % c->window_s), nslot;
	uint64_t now = (d->sec + 1) * NS_PER_S;
	double z = zscore(s, d);
	bool cond, quiet;
	uint32_t mask = (1u << c->confirm_of) - 1;

	cond = start_cond(s, d, z);
	quiet = z < c->z_leave && d->win_fail < c->min_failures;
	d->hist = (uint8_t)(((d->hist << 1) | cond) & mask);

	switch (d->state) {
	case D_QUIET:
		if ((uint32_t)__builtin_popcount(d->hist) >= c->confirm_need) {
			incident_start(s, d, now, 0);
			break;
		}
		/* Baseline learns only outside incidents. */
		d->lambda = d->lambda * s->decay + (1 - s->decay) * d->cnt[slot].fail;
		break;
	case D_SPIKE:
		d->incident_fail += d->cnt[slot].fail;
		if (s->st.host_active)
			s->host_fail += d->cnt[slot].fail;
		d->quiet_s = quiet ? d->quiet_s + 1 : 0;
		if (d->quiet_s >= c->leave_s) {
			d->state = D_ENDING;
			d->ending_s = 0;
		}
		break;
	case D_ENDING:
		d->incident_fail += d->cnt[slot].fail;
		if (s->st.host_active)
			s->host_fail += d->cnt[slot].fail;
		if ((uint32_t)__builtin_popcount(d->hist) >= c->confirm_need) {
			d->state = D_SPIKE; /* merged */
			d->quiet_s = 0;
		} else if (++d->ending_s >= c->merge_s) {
			incident_end(s, d, now);
		}
		break;
	}

	d->sec++;
	nslot = (uint32_t)(d->sec % c->window_s);
	d->win_att -= d->cnt[nslot].att;
	d->win_fail -= d->cnt[nslot].fail;
	d->cnt[nslot].att = 0;
	d->cnt[nslot].fail = 0;
	if (d->state == D_QUIET && !d->win_fail) /* class counts describe the window when quiet */
		memset(d->by_class, 0, sizeof(d->by_class));
}

static bool settled(const struct dest *d)
{
	return d->state == D_QUIET && !d->hist && !d->win_att;
}

/*
 * Without new attempts, a quiet destination with no start condition pending and fewer than
 * min_failures in its window cannot give a verdict: its seconds are closed lazily, on its next
 * attempt (same arithmetic, same result), and the per-second walk skips it.
 */
static bool needs_walk(const struct spike *s, const struct dest *d)
{
	return d->state != D_QUIET || d->hist || d->win_fail >= s->cfg.min_failures;
}

/* Closes seconds up to (excluding) @to. Idle stretches cost O(1). */
static void roll(struct spike *s, struct dest *d, uint64_t to)
{
	while (d->sec < to) {
		if (settled(d)) {
			d->lambda *= pow(s->decay, (double)(to - d->sec));
			d->sec = to;
			break;
		}
		close_second(s, d);
	}
}

void spike_feed(struct spike *s, const struct sp_event *ev)
{
	uint64_t now = ev->mono_ns, sec = now / NS_PER_S;
	uint32_t i, slot;
	struct dest *d;
	bool failed;

	if (ev->action != SP_ACT_CONNECT || !ev->has_conn)
		return;
	if (!ev->connect.success &&
	    (ev->connect.failure == SP_FAIL_CANCELED || ev->connect.failure >= SP_FAIL_MAX))
		return;
	failed = !ev->connect.success && ev->connect.failure != SP_FAIL_NONE;
	i = lookup_or_add(s, ev, now);
	if (i == NIL) {
		s->st.dropped++;
		return;
	}
	d = &s->d[i];
	roll(s, d, sec);
	s->st.attempts++;
	if (now > d->last_ns)
		d->last_ns = now;
	/* An attempt stamped before the open second (late record) counts in the open one. */
	slot = (uint32_t)(d->sec % s->cfg.window_s);
	if (d->cnt[slot].att < UINT16_MAX) {
		d->cnt[slot].att++;
		d->win_att++;
	}
	if (!failed)
		return;
	s->st.failures++;
	if (d->cnt[slot].fail < d->cnt[slot].att) {
		d->cnt[slot].fail++;
		d->win_fail++;
	}
	d->by_class[ev->connect.failure]++;
	if (needs_walk(s, d))
		act_add(s, i);
	/*
	 * The open second counts as one of the confirming seconds as soon as the window meets
	 * the condition: a burst is flagged when it is confirmed, not at the next second boundary.
	 */
	if (d->state != D_SPIKE && d->win_fail >= s->cfg.min_failures &&
	    (uint32_t)__builtin_popcount(d->hist & ((1u << (s->cfg.confirm_of - 1)) - 1)) + 1 >=
		    s->cfg.confirm_need &&
	    start_cond(s, d, zscore(s, d))) {
		if (d->state == D_QUIET) {
			incident_start(s, d, now, d->cnt[slot].fail);
		} else {
			d->state = D_SPIKE; /* re-fire while ending: merged */
			d->quiet_s = 0;
		}
	}
}

void spike_advance(struct spike *s, uint64_t now_ns)
{
	uint64_t sec = now_ns / NS_PER_S, idle = (uint64_t)s->cfg.idle_s * NS_PER_S, budget;
	uint32_t *pp;

	if (sec <= s->sec)
		return;
	budget = (sec - s->sec) * (s->hwm / (s->cfg.idle_s ? s->cfg.idle_s : 1) + 16);
	s->sec = sec;
	for (pp = &s->act_head; *pp != NIL;) {
		uint32_t i = *pp;
		struct dest *d = &s->d[i];

		roll(s, d, sec);
		if (needs_walk(s, d)) {
			pp = &d->act_next;
		} else {
			*pp = d->act_next;
			d->active = false;
		}
	}
	/* Idle eviction: a clock hand over the table, every slot visited within idle_s. */
	if (budget > s->hwm)
		budget = s->hwm;
	for (; budget; budget--) {
		struct dest *d = &s->d[s->hand];

		if (evictable(d) && now_ns >= d->last_ns && now_ns - d->last_ns >= idle)
			evict(s, s->hand);
		s->hand = s->hand + 1 < s->hwm ? s->hand + 1 : 0;
	}
}

size_t spike_for_each_incident(const struct spike *s,
			       void (*fn)(void *ctx, const struct spike_incident *inc), void *ctx)
{
	struct spike_incident inc;
	size_t n = 0;
	uint32_t i;

	for (i = s->act_head; i != NIL; i = s->d[i].act_next) {
		const struct dest *d = &s->d[i];

		if (d->state == D_QUIET)
			continue;
		memset(&inc, 0, sizeof(inc));
		inc.addr.family = d->family;
		memcpy(inc.addr.bytes, d->addr, 16);
		inc.netns = d->netns;
		inc.port = d->port;
		inc.start_ns = d->incident_start_ns;
		inc.failures = d->incident_fail;
		inc.window_failures = d->win_fail;
		fn(ctx, &inc);
		n++;
	}
	return n;
}
