// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* Ephemeral-port exhaustion forecast: see portfc.h. */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "portfc.h"
#include "sockpulse.h"
#include "util.h"

#define NIL	 UINT32_MAX
#define TW_LEN_S 60	 /* TCP_TIMEWAIT_LEN */
#define TW_REUSE_S 2 /* a reusable TIME_WAIT port: free a second after its last segment */
#define MIN_HIST 3	 /* seconds of history before a forecast counts */

struct key {
	uint32_t netns;
	uint16_t dport;
	uint16_t family;
	uint8_t src[16], dst[16];
};

struct tup {
	struct key k;
	uint32_t hnext;
	bool used, alert, forecast;
	uint8_t hist_n;	 /* completed seconds in the history, <= PORTFC_HIST */
	uint8_t hold_s;	 /* how long a TIME_WAIT entry holds its port */
	uint32_t active; /* sockets other than TIME_WAIT */
	uint32_t tw_total;
	uint64_t sec;			 /* the second the counters below are at */
	uint64_t quiet_since;		 /* alert: first verdict under the thresholds, 0 none */
	uint32_t used_hist[PORTFC_HIST]; /* used at the end of each second */
	uint16_t conn_hist[PORTFC_HIST]; /* connects started in each second */
	uint16_t tw[PORTFC_TW_S];	 /* TIME_WAIT entries by second */
	double connect_rate, growth_rate;
	uint64_t eta_ms;
	uint64_t cgroup_id; /* the cgroup of the last connect: who the line names */
};

struct ns_range {
	uint32_t netns;
	uint16_t lo, hi;
	uint8_t tw_reuse;
};

struct portfc {
	struct portfc_config cfg;
	portfc_emit_fn emit;
	void *ctx;
	portfc_range_fn range_fn;
	void *range_ctx;
	struct tup *t;
	uint32_t *buckets;
	uint32_t nbuckets, free_head;
	uint32_t hwm; /* tuples ever handed out: the slab is touched only up to here */
	struct ns_range ns[PORTFC_NETNS_MAX];
	uint32_t n_ns;
	uint64_t now, sec;
	struct portfc_stats st;
};

void portfc_config_default(struct portfc_config *cfg)
{
	memset(cfg, 0, sizeof(*cfg));
	cfg->usage_ratio = 0.8;
	cfg->horizon_ns = 60 * NSEC_PER_SEC;
	cfg->quiet_ns = 10 * NSEC_PER_SEC;
	cfg->max_tuples = 4096;
	cfg->default_lo = 32768; /* the kernel's defaults */
	cfg->default_hi = 60999;
	cfg->default_tw_reuse = 2;
}

uint64_t portfc_eta_ms(uint32_t free, double growth)
{
	double ms;

	if (!(growth > 0))
		return UINT64_MAX;
	ms = (double)free / growth * 1000.0;
	return ms >= 1.8e19 ? UINT64_MAX : (uint64_t)ms;
}

struct portfc *portfc_new(const struct portfc_config *cfg, portfc_emit_fn emit, void *ctx)
{
	struct portfc *p;

	if (!cfg || !emit || !cfg->max_tuples || cfg->max_tuples >= NIL / 2 ||
	    cfg->default_lo > cfg->default_hi || !(cfg->usage_ratio > 0))
		return NULL;
	p = calloc(1, sizeof(*p));
	if (!p)
		return NULL;
	p->cfg = *cfg;
	p->emit = emit;
	p->ctx = ctx;
	for (p->nbuckets = 16; p->nbuckets < cfg->max_tuples; p->nbuckets <<= 1)
		;
	p->t = calloc(cfg->max_tuples, sizeof(*p->t));
	p->buckets = malloc(p->nbuckets * sizeof(*p->buckets));
	if (!p->t || !p->buckets) {
		portfc_free(p);
		return NULL;
	}
	memset(p->buckets, 0xff, p->nbuckets * sizeof(*p->buckets));
	p->free_head = NIL;
	return p;
}

void portfc_free(struct portfc *p)
{
	if (!p)
		return;
	free(p->t);
	free(p->buckets);
	free(p);
}

void portfc_set_range_fn(struct portfc *p, portfc_range_fn fn, void *ctx)
{
	p->range_fn = fn;
	p->range_ctx = ctx;
}

static const struct ns_range *range_of(struct portfc *p, uint32_t netns);

static struct ns_range *ns_find(struct portfc *p, uint32_t netns)
{
	for (uint32_t i = 0; i < p->n_ns; i++)
		if (p->ns[i].netns == netns)
			return &p->ns[i];
	return NULL;
}

void portfc_set_ns(struct portfc *p, uint32_t netns, const struct portfc_ns *ns)
{
	struct ns_range *r = ns_find(p, netns);

	if (ns->lo > ns->hi)
		return;
	if (!r) {
		if (p->n_ns >= PORTFC_NETNS_MAX)
			return;
		r = &p->ns[p->n_ns++];
		r->netns = netns;
	}
	r->lo = ns->lo;
	r->hi = ns->hi;
	r->tw_reuse = ns->tw_reuse;
}

static const struct ns_range *range_of(struct portfc *p, uint32_t netns)
{
	static struct ns_range fallback;
	struct ns_range *r = ns_find(p, netns);
	struct portfc_ns def = {
		.lo = p->cfg.default_lo,
		.hi = p->cfg.default_hi,
		.tw_reuse = p->cfg.default_tw_reuse,
	}, got = def;

	if (r)
		return r;
	/* a full table: the defaults, without asking again and again */
	if (p->range_fn && p->n_ns < PORTFC_NETNS_MAX && p->range_fn(p->range_ctx, netns, &got))
		got = def;
	portfc_set_ns(p, netns, &got);
	r = ns_find(p, netns);
	if (r)
		return r;
	fallback.lo = def.lo;
	fallback.hi = def.hi;
	fallback.tw_reuse = def.tw_reuse;
	return &fallback;
}

static uint32_t hash_key(const struct portfc *p, const struct key *k)
{
	const uint8_t *b = (const uint8_t *)k;
	uint64_t h = 0xcbf29ce484222325ULL;

	for (size_t i = 0; i < sizeof(*k); i++)
		h = (h ^ b[i]) * 0x100000001b3ULL;
	return (uint32_t)(h ^ (h >> 32)) & (p->nbuckets - 1);
}

static bool make_key(struct key *k, uint32_t netns, const struct sp_addr *src,
		     const struct sp_addr *dst, uint16_t dport)
{
	if (!src->family || src->family != dst->family || !dport)
		return false;
	memset(k, 0, sizeof(*k));
	k->netns = netns;
	k->dport = dport;
	k->family = src->family;
	memcpy(k->src, src->bytes, sizeof(k->src));
	memcpy(k->dst, dst->bytes, sizeof(k->dst));
	return true;
}

static uint32_t find(const struct portfc *p, const struct key *k, uint32_t **link)
{
	uint32_t *pp = &p->buckets[hash_key(p, k)];

	while (*pp != NIL && memcmp(&p->t[*pp].k, k, sizeof(*k)))
		pp = &p->t[*pp].hnext;
	if (link)
		*link = pp;
	return *pp;
}

static uint32_t used_of(const struct tup *t)
{
	return t->active + t->tw_total;
}

static void unlink_tup(struct portfc *p, uint32_t id)
{
	uint32_t *link;

	if (find(p, &p->t[id].k, &link) != id)
		return;
	*link = p->t[id].hnext;
	if (p->t[id].alert)
		p->st.active--;
	memset(&p->t[id], 0, sizeof(p->t[id]));
	p->t[id].hnext = p->free_head;
	p->free_head = id;
	p->st.tuples--;
}

/* When full: the least used tuple without an open alert makes room. */
static bool evict_one(struct portfc *p)
{
	uint32_t victim = NIL, best = UINT32_MAX;

	for (uint32_t i = 0; i < p->hwm; i++) {
		const struct tup *t = &p->t[i];

		if (t->used && !t->alert && used_of(t) < best) {
			best = used_of(t);
			victim = i;
		}
	}
	if (victim == NIL)
		return false;
	unlink_tup(p, victim);
	p->st.evicted++;
	return true;
}

static bool loopback(const struct key *k, const uint8_t *a)
{
	static const uint8_t v6_lo[16] = { [15] = 1 };
	static const uint8_t mapped[12] = { [10] = 0xff, [11] = 0xff };

	if (k->family == AF_INET)
		return a[0] == 127;
	return !memcmp(a, v6_lo, 16) || (!memcmp(a, mapped, 12) && a[12] == 127);
}

/* tcp_twsk_unique(): with reuse on (or on for loopback), connect() takes TIME_WAIT ports. */
static uint8_t tw_hold_s(const struct ns_range *r, const struct key *k)
{
	if (r->tw_reuse == 1 || (r->tw_reuse == 2 && (loopback(k, k->src) || loopback(k, k->dst))))
		return TW_REUSE_S;
	return TW_LEN_S;
}

static struct tup *get(struct portfc *p, const struct key *k, bool create)
{
	uint32_t id = find(p, k, NULL);
	struct tup *t;

	if (id != NIL)
		return &p->t[id];
	if (!create)
		return NULL;
	if (p->free_head == NIL && p->hwm < p->cfg.max_tuples)
		id = p->hwm++;
	else if (p->free_head != NIL || evict_one(p))
		id = p->free_head, p->free_head = p->t[id].hnext;
	else
		return NULL;
	t = &p->t[id];
	memset(t, 0, sizeof(*t));
	t->k = *k;
	t->used = true;
	t->sec = p->sec;
	t->hold_s = tw_hold_s(range_of(p, k->netns), k);
	t->eta_ms = UINT64_MAX;
	t->hnext = p->buckets[hash_key(p, k)];
	p->buckets[hash_key(p, k)] = id;
	p->st.tuples++;
	return t;
}

/* Moves a tuple's counters to second @sec: TIME_WAIT entries expire, history shifts. */
static void roll(struct tup *t, uint64_t sec)
{
	uint64_t steps;

	if (sec <= t->sec)
		return;
	steps = sec - t->sec;
	if (steps > PORTFC_TW_S) {
		memset(t->tw, 0, sizeof(t->tw));
		t->tw_total = 0;
	}
	for (uint64_t s = t->sec + 1, n = 0; s <= sec && n < PORTFC_TW_S; s++, n++) {
		/* the second just finished goes into the history */
		uint64_t done = s - 1;
		uint16_t *b;

		if (steps <= PORTFC_TW_S && done + 1 >= t->hold_s) {
			b = &t->tw[(done + 1 - t->hold_s) % PORTFC_TW_S];
			t->tw_total -= *b < t->tw_total ? *b : t->tw_total;
			*b = 0;
		}
		if (n < PORTFC_HIST) {
			t->used_hist[done % PORTFC_HIST] = used_of(t);
			if (t->hist_n < PORTFC_HIST)
				t->hist_n++;
			t->conn_hist[s % PORTFC_HIST] = 0;
		}
	}
	if (steps > PORTFC_HIST) {
		/* a long quiet gap: the whole history is the present */
		for (int i = 0; i < PORTFC_HIST; i++) {
			t->used_hist[i] = used_of(t);
			t->conn_hist[i] = 0;
		}
	}
	t->sec = sec;
}

static const struct ns_range *tup_range(struct portfc *p, const struct tup *t)
{
	return range_of(p, t->k.netns);
}

static void emit(struct portfc *p, struct tup *t, bool start, uint64_t now)
{
	const struct ns_range *r = tup_range(p, t);
	struct sp_event ev = {
	    .action = SP_ACT_PORT_RISK,
	    .mono_ns = now,
	    .has_conn = true,
	};

	ev.conn.src.family = ev.conn.dst.family = t->k.family;
	memcpy(ev.conn.src.bytes, t->k.src, 16);
	memcpy(ev.conn.dst.bytes, t->k.dst, 16);
	ev.conn.dport = t->k.dport;
	ev.conn.has_ports = true;
	ev.conn.netns = t->k.netns;
	ev.conn.direction = SP_DIR_EGRESS;
	ev.conn.cgroup_id = t->cgroup_id;
	ev.ports.start = start;
	ev.ports.forecast = t->forecast;
	ev.ports.range_lo = r->lo;
	ev.ports.range_hi = r->hi;
	ev.ports.used = used_of(t);
	ev.ports.time_wait = t->tw_total;
	ev.ports.capacity = (uint32_t)r->hi - r->lo + 1;
	ev.ports.connect_rate = t->connect_rate;
	ev.ports.growth_rate = t->growth_rate;
	ev.ports.eta_ms = t->eta_ms;
	p->emit(p->ctx, &ev);
}

static void verdict(struct portfc *p, struct tup *t, uint64_t now)
{
	const struct ns_range *r = tup_range(p, t);
	uint32_t cap = (uint32_t)r->hi - r->lo + 1, used = used_of(t), conns = 0, n;
	uint32_t free = cap > used ? cap - used : 0;
	bool by_usage, by_forecast;

	n = t->hist_n;
	for (uint32_t i = 0; i < PORTFC_HIST; i++)
		if (i != t->sec % PORTFC_HIST)
			conns += t->conn_hist[i];
	t->connect_rate = n ? (double)conns / (n < PORTFC_HIST ? n : PORTFC_HIST - 1) : 0;
	if (n) {
		/* the oldest completed second against now */
		uint32_t span = n < PORTFC_HIST ? n : PORTFC_HIST;
		uint32_t old = t->used_hist[(t->sec + PORTFC_HIST - span) % PORTFC_HIST];

		t->growth_rate = ((double)used - (double)old) / span;
	} else {
		t->growth_rate = 0;
	}
	t->eta_ms = used ? portfc_eta_ms(free, t->growth_rate) : UINT64_MAX;
	by_usage = (double)used >= p->cfg.usage_ratio * cap;
	by_forecast = p->cfg.horizon_ns && n >= MIN_HIST && used &&
		      t->eta_ms <= p->cfg.horizon_ns / NSEC_PER_MSEC;
	if (!t->alert) {
		if (!by_usage && !by_forecast)
			return;
		t->alert = true;
		t->forecast = !by_usage;
		t->quiet_since = 0;
		p->st.alerts++;
		p->st.active++;
		emit(p, t, true, now);
		return;
	}
	if (by_usage || by_forecast) {
		t->quiet_since = 0;
		return;
	}
	if (!t->quiet_since)
		t->quiet_since = now;
	if (now - t->quiet_since >= p->cfg.quiet_ns) {
		emit(p, t, false, now);
		t->alert = false;
		p->st.active--;
	}
}

static bool idle(const struct tup *t)
{
	if (t->alert || used_of(t))
		return false;
	for (int i = 0; i < PORTFC_HIST; i++)
		if (t->conn_hist[i] || t->used_hist[i])
			return false;
	return true;
}

void portfc_advance(struct portfc *p, uint64_t now_ns)
{
	uint64_t sec = now_ns / NSEC_PER_SEC;

	if (p->cfg.off || now_ns < p->now)
		return;
	p->now = now_ns;
	if (sec <= p->sec)
		return;
	p->sec = sec;
	for (uint32_t i = 0; i < p->hwm; i++) {
		struct tup *t = &p->t[i];

		if (!t->used)
			continue;
		roll(t, sec);
		verdict(p, t, now_ns);
		if (idle(t))
			unlink_tup(p, i);
	}
}

void portfc_feed(struct portfc *p, const struct sp_event *ev)
{
	const struct sp_conn *c = &ev->conn;
	uint8_t from = ev->state.old_state, to = ev->state.new_state;
	struct key k;
	struct tup *t;

	if (p->cfg.off || ev->action != SP_ACT_STATE_CHANGE || !ev->has_conn ||
	    c->direction != SP_DIR_EGRESS)
		return;
	if (!(from == SP_ST_CLOSE && to == SP_ST_SYN_SENT) && !(to == SP_ST_CLOSE && from != to))
		return;
	if (!make_key(&k, c->netns, &c->src, &c->dst, c->dport))
		return;
	if (ev->mono_ns > p->now)
		p->now = ev->mono_ns;
	t = get(p, &k, to == SP_ST_SYN_SENT);
	if (!t)
		return;
	roll(t, p->now / NSEC_PER_SEC > p->sec ? p->now / NSEC_PER_SEC : p->sec);
	if (to == SP_ST_SYN_SENT) {
		t->active++;
		if (c->cgroup_id)
			t->cgroup_id = c->cgroup_id;
		if (t->conn_hist[t->sec % PORTFC_HIST] < UINT16_MAX)
			t->conn_hist[t->sec % PORTFC_HIST]++;
		(void)range_of(p, k.netns);
		return;
	}
	if (t->active)
		t->active--;
	if (ev->state.time_wait && t->tw[t->sec % PORTFC_TW_S] < UINT16_MAX) {
		t->tw[t->sec % PORTFC_TW_S]++;
		t->tw_total++;
	}
}

void portfc_resync_begin(struct portfc *p, uint32_t netns, uint64_t now_ns)
{
	if (now_ns > p->now)
		p->now = now_ns;
	for (uint32_t i = 0; i < p->hwm; i++) {
		struct tup *t = &p->t[i];

		if (!t->used || t->k.netns != netns)
			continue;
		roll(t, p->now / NSEC_PER_SEC);
		t->active = 0;
		t->tw_total = 0;
		memset(t->tw, 0, sizeof(t->tw));
	}
	p->st.resyncs++;
}

void portfc_resync_add(struct portfc *p, uint32_t netns, const struct sp_addr *src,
		       const struct sp_addr *dst, uint16_t dport, bool time_wait,
		       uint64_t tw_left_ms)
{
	uint64_t sec = p->now / NSEC_PER_SEC, left_s, entered;
	struct key k;
	struct tup *t;

	if (p->cfg.off || !make_key(&k, netns, src, dst, dport))
		return;
	t = get(p, &k, true);
	if (!t)
		return;
	roll(t, sec);
	if (!time_wait) {
		t->active++;
		return;
	}
	/* file it under the second it entered TIME_WAIT, so it expires when the kernel's does
	 * (or when its port becomes reusable) */
	left_s = (tw_left_ms + 999) / 1000;
	if (left_s > TW_LEN_S)
		left_s = TW_LEN_S;
	entered = sec + left_s >= TW_LEN_S ? sec + left_s - TW_LEN_S : 0;
	if (entered + t->hold_s <= sec)
		return; /* its port is reusable already */
	if (t->tw[entered % PORTFC_TW_S] < UINT16_MAX) {
		t->tw[entered % PORTFC_TW_S]++;
		t->tw_total++;
	}
}

const struct portfc_stats *portfc_stats(const struct portfc *p)
{
	return &p->st;
}

/* Ports a connect() can pick in @netns: its range as known, else the default (no lookup). */
static uint32_t capacity_of(const struct portfc *p, uint32_t netns)
{
	for (uint32_t i = 0; i < p->n_ns; i++)
		if (p->ns[i].netns == netns)
			return (uint32_t)p->ns[i].hi - p->ns[i].lo + 1;
	return (uint32_t)p->cfg.default_hi - p->cfg.default_lo + 1;
}

static double usage_of(const struct portfc *p, const struct tup *t)
{
	return (double)used_of(t) / capacity_of(p, t->k.netns);
}

static int by_usage(const void *a, const void *b)
{
	const struct portfc_tuple *x = a, *y = b;
	double ux = (double)x->used / x->capacity, uy = (double)y->used / y->capacity;

	return ux < uy ? 1 : ux > uy ? -1 : 0;
}

size_t portfc_top(const struct portfc *p, struct portfc_tuple *out, size_t n)
{
	size_t k = 0;

	if (!n)
		return 0;
	for (uint32_t i = 0; i < p->hwm; i++) {
		const struct tup *t = &p->t[i];
		size_t slot = k;

		if (!t->used || !used_of(t))
			continue;
		if (k == n) {
			size_t min = 0;

			for (size_t j = 1; j < k; j++)
				if (by_usage(&out[j], &out[min]) > 0)
					min = j;
			if (usage_of(p, t) <= (double)out[min].used / out[min].capacity)
				continue;
			slot = min;
		} else {
			k++;
		}
		struct portfc_tuple *o = &out[slot];

		memset(o, 0, sizeof(*o));
		o->netns = t->k.netns;
		o->src.family = o->dst.family = t->k.family;
		memcpy(o->src.bytes, t->k.src, 16);
		memcpy(o->dst.bytes, t->k.dst, 16);
		o->dport = t->k.dport;
		o->used = used_of(t);
		o->time_wait = t->tw_total;
		o->capacity = capacity_of(p, t->k.netns);
		o->connect_rate = t->connect_rate;
		o->growth_rate = t->growth_rate;
		o->eta_ms = t->eta_ms;
		o->alert = t->alert;
	}
	qsort(out, k, sizeof(*out), by_usage);
	return k;
}

size_t portfc_bytes(const struct portfc *p)
{
	return sizeof(*p) + (size_t)p->cfg.max_tuples * sizeof(*p->t) +
	       (size_t)p->nbuckets * sizeof(*p->buckets);
}
