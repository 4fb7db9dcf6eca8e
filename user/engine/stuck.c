// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* Stuck half-closed connections: see stuck.h. */
#include <stdlib.h>
#include <string.h>

#include "stuck.h"
#include "util.h"
#include "wheel.h"

#define NIL		UINT32_MAX
#define TICK_NS		100000000ULL /* wheel resolution: the agent ticks every 100 ms */
#define MIN_SNAPSHOT_NS NSEC_PER_SEC

struct ent {
	uint64_t cookie;
	uint64_t entered_ns;
	struct sp_conn conn;
	uint32_t hnext; /* hash chain; free list when unused */
	uint32_t proc;	/* rollup slot while alerted, NIL otherwise */
	uint8_t state;
	bool used, alerted, seeded;
	bool blind; /* records were lost since it entered the state, and no walk covers it */
};

struct stuck {
	struct stuck_config cfg;
	stuck_emit_fn emit;
	void *ctx;
	struct ent *ents;
	uint32_t *buckets;
	uint32_t nbuckets, bucket_bits;
	uint32_t free_head; /* entries released, reused first */
	uint32_t hwm;	    /* entries ever handed out: the slab is touched only up to here */
	struct wheel *wheel;
	struct stuck_proc *procs;
	uint32_t n_procs;
	uint64_t now;
	uint64_t next_snapshot;
	struct stuck_stats st;
};

void stuck_config_default(struct stuck_config *cfg)
{
	cfg->after_ns = 60ULL * NSEC_PER_SEC;
	cfg->max_sockets = 65536;
	cfg->max_procs = 1024;
}

int stuck_state_index(uint8_t state)
{
	return state == SP_ST_CLOSE_WAIT ? 0 : state == SP_ST_FIN_WAIT2 ? 1 : -1;
}

/* How often the rollup remembers each process's count, to tell whether it grows. */
static uint64_t snapshot_period(const struct stuck_config *cfg)
{
	return cfg->after_ns > MIN_SNAPSHOT_NS ? cfg->after_ns : MIN_SNAPSHOT_NS;
}

/*
 * Cookies come from a kernel counter: folding the high bits in keeps a dense range of cookies
 * (the sockets of one burst) in neighbouring buckets, which share cache lines.
 */
static uint32_t bucket_of(const struct stuck *s, uint64_t cookie)
{
	return (uint32_t)(cookie ^ (cookie >> s->bucket_bits) ^ (cookie >> 2 * s->bucket_bits)) &
	       (s->nbuckets - 1);
}

struct stuck *stuck_new(const struct stuck_config *cfg, stuck_emit_fn emit, void *ctx,
			uint64_t now_ns)
{
	struct stuck *s;

	if (!cfg || !emit || !cfg->max_sockets || !cfg->max_procs || cfg->max_sockets >= NIL / 2)
		return NULL;
	s = calloc(1, sizeof(*s));
	if (!s)
		return NULL;
	s->cfg = *cfg;
	s->emit = emit;
	s->ctx = ctx;
	s->now = now_ns;
	for (s->nbuckets = 16, s->bucket_bits = 4; s->nbuckets < cfg->max_sockets;
	     s->nbuckets <<= 1)
		s->bucket_bits++;
	s->ents = calloc(cfg->max_sockets, sizeof(*s->ents));
	s->buckets = malloc(s->nbuckets * sizeof(*s->buckets));
	s->procs = calloc(cfg->max_procs, sizeof(*s->procs));
	s->wheel = wheel_new(cfg->max_sockets, TICK_NS, now_ns);
	if (!s->ents || !s->buckets || !s->procs || !s->wheel) {
		stuck_free(s);
		return NULL;
	}
	memset(s->buckets, 0xff, s->nbuckets * sizeof(*s->buckets));
	s->free_head = NIL;
	s->next_snapshot = now_ns + snapshot_period(cfg);
	return s;
}

void stuck_free(struct stuck *s)
{
	if (!s)
		return;
	wheel_free(s->wheel);
	free(s->ents);
	free(s->buckets);
	free(s->procs);
	free(s);
}

static uint32_t find(const struct stuck *s, uint64_t cookie, uint32_t **link)
{
	uint32_t *pp = &s->buckets[bucket_of(s, cookie)];

	while (*pp != NIL && s->ents[*pp].cookie != cookie)
		pp = &s->ents[*pp].hnext;
	if (link)
		*link = pp;
	return *pp;
}

static uint32_t proc_total(const struct stuck_proc *p)
{
	return p->stuck[0] + p->stuck[1];
}

static int8_t trend_of(const struct stuck_proc *p)
{
	uint32_t t = proc_total(p);

	return t > p->prev_total ? 1 : t < p->prev_total ? -1 : 0;
}

/* The rollup slot of the socket's owner (pid 0 + empty comm gathers unknown owners). */
static uint32_t proc_slot(struct stuck *s, const struct sp_conn *c)
{
	uint32_t pid = c->has_pid ? c->pid : 0, i, spare = NIL;

	for (i = 0; i < s->n_procs; i++) {
		struct stuck_proc *p = &s->procs[i];

		if (p->pid == pid && !strncmp(p->comm, c->comm, SP_COMM_MAX))
			return i;
		if (spare == NIL && !proc_total(p) && !p->prev_total)
			spare = i;
	}
	if (spare == NIL) {
		if (s->n_procs >= s->cfg.max_procs)
			return NIL;
		spare = s->n_procs++;
	}
	memset(&s->procs[spare], 0, sizeof(s->procs[spare]));
	s->procs[spare].pid = pid;
	s->procs[spare].cgroup_id = c->cgroup_id;
	memcpy(s->procs[spare].comm, c->comm, SP_COMM_MAX);
	s->procs[spare].comm[SP_COMM_MAX - 1] = '\0';
	return spare;
}

static void emit(struct stuck *s, const struct ent *e, bool start, uint64_t now)
{
	struct sp_event ev = {
	    .action = SP_ACT_TCP_STUCK,
	    .mono_ns = now,
	    .has_conn = true,
	    .conn = e->conn,
	};
	const struct stuck_proc *p = e->proc != NIL ? &s->procs[e->proc] : NULL;

	ev.stuck.start = start;
	ev.stuck.seeded = e->seeded;
	ev.stuck.state = e->state;
	ev.stuck.age_ms = (now - e->entered_ns) / NSEC_PER_MSEC;
	ev.stuck.after_ms = s->cfg.after_ns / NSEC_PER_MSEC;
	ev.stuck.proc_stuck = p ? proc_total(p) : 0;
	ev.stuck.trend = p ? trend_of(p) : 0;
	if (!start) {
		ev.has_duration = true;
		ev.duration_ns = now - e->entered_ns;
	}
	s->emit(s->ctx, &ev);
}

static void release(struct stuck *s, uint32_t id, uint32_t *link, uint64_t now)
{
	struct ent *e = &s->ents[id];
	int k = stuck_state_index(e->state);

	if (e->alerted) {
		if (e->proc != NIL && s->procs[e->proc].stuck[k])
			s->procs[e->proc].stuck[k]--;
		s->st.stuck[k]--;
		s->st.resolved++;
		emit(s, e, false, now);
	}
	wheel_cancel(s->wheel, id);
	*link = e->hnext;
	e->used = false;
	e->hnext = s->free_head;
	s->free_head = id;
	s->st.watched--;
}

static bool watch(struct stuck *s, const struct sp_conn *c, uint8_t state, uint64_t entered,
		  bool seeded)
{
	uint32_t *link, id = find(s, c->cookie, &link);
	struct ent *e;

	if (id != NIL) {
		if (s->ents[id].state == state)
			return false;
		release(s, id, link, s->now); /* CLOSE_WAIT and FIN_WAIT2 never follow each other */
	}
	if (s->free_head != NIL) {
		id = s->free_head;
		s->free_head = s->ents[id].hnext;
	} else if (s->hwm < s->cfg.max_sockets) {
		id = s->hwm++;
	} else {
		s->st.untracked++;
		return false;
	}
	e = &s->ents[id];
	memset(e, 0, sizeof(*e));
	e->cookie = c->cookie;
	e->entered_ns = entered;
	e->conn = *c;
	e->state = state;
	e->used = true;
	e->seeded = seeded;
	e->proc = NIL;
	e->hnext = s->buckets[bucket_of(s, c->cookie)];
	s->buckets[bucket_of(s, c->cookie)] = id;
	s->st.watched++;
	wheel_arm(s->wheel, id, entered + s->cfg.after_ns);
	return true;
}

void stuck_feed(struct stuck *s, const struct sp_event *ev)
{
	uint32_t *link, id;
	uint8_t to;

	if (!s->cfg.after_ns || ev->action != SP_ACT_STATE_CHANGE || !ev->has_conn ||
	    !ev->conn.cookie)
		return;
	if (ev->mono_ns > s->now)
		s->now = ev->mono_ns;
	to = ev->state.new_state;
	if (stuck_state_index(to) >= 0) {
		watch(s, &ev->conn, to, ev->mono_ns, false);
		return;
	}
	/* only a socket leaving a watched state, or dying, can be in the table: the other state
	 * changes (most of them) need no lookup */
	if (stuck_state_index(ev->state.old_state) < 0 && to != SP_ST_CLOSE)
		return;
	if (!s->st.watched)
		return; /* a storm of aborted connections: every socket dies, none was watched */
	id = find(s, ev->conn.cookie, &link);
	if (id != NIL)
		release(s, id, link, s->now);
}

bool stuck_seed(struct stuck *s, const struct sp_conn *c, uint8_t state, uint64_t entered_ns,
		uint64_t now_ns)
{
	if (!s->cfg.after_ns || stuck_state_index(state) < 0 || !c->cookie)
		return false;
	if (now_ns > s->now)
		s->now = now_ns;
	if (find(s, c->cookie, NULL) != NIL)
		return false;
	if (!watch(s, c, state, entered_ns > now_ns ? now_ns : entered_ns, true))
		return false;
	s->st.seeded++;
	return true;
}

bool stuck_watching(const struct stuck *s, uint64_t cookie)
{
	return cookie && find(s, cookie, NULL) != NIL;
}

static void fire(void *ctx, uint32_t id, uint64_t tick)
{
	struct stuck *s = ctx;
	/* the time we were told, not the slot's: a seeded deadline may lie far in the past */
	uint64_t now = tick > s->now ? tick : s->now;
	struct ent *e = &s->ents[id];
	int k = stuck_state_index(e->state);

	if (!e->used || e->alerted || k < 0)
		return;
	if (e->blind) {
		/* no event since records were lost: it may have left long ago, unseen */
		uint32_t *link;

		s->st.unobserved++;
		if (find(s, e->cookie, &link) == id)
			release(s, id, link, now);
		return;
	}
	e->alerted = true;
	s->st.stuck[k]++;
	s->st.alerts[k]++;
	e->proc = proc_slot(s, &e->conn);
	if (e->proc != NIL) {
		struct stuck_proc *p = &s->procs[e->proc];

		p->stuck[k]++;
		if (proc_total(p) > p->peak)
			p->peak = proc_total(p);
	} else {
		s->st.procs_untracked++;
	}
	emit(s, e, true, now);
}

static void snapshot(struct stuck *s)
{
	for (uint32_t i = 0; i < s->n_procs; i++) {
		struct stuck_proc *p = &s->procs[i];

		p->trend = trend_of(p);
		p->prev_total = proc_total(p);
	}
}

void stuck_advance(struct stuck *s, uint64_t now_ns)
{
	if (now_ns > s->now)
		s->now = now_ns;
	if (!s->cfg.after_ns)
		return;
	wheel_advance(s->wheel, s->now, fire, s);
	if (s->now >= s->next_snapshot) {
		snapshot(s);
		s->next_snapshot = s->now + snapshot_period(&s->cfg);
	}
}

void stuck_blind(struct stuck *s, const uint32_t *walked, size_t n_walked, uint64_t now_ns)
{
	if (now_ns > s->now)
		s->now = now_ns;
	for (uint32_t i = 0; i < s->hwm; i++) {
		struct ent *e = &s->ents[i];
		bool in = false;

		for (size_t j = 0; j < n_walked && !in; j++)
			in = walked[j] == e->conn.netns;
		if (e->used && !e->alerted && !in)
			e->blind = true;
	}
}

const struct stuck_stats *stuck_stats(const struct stuck *s)
{
	return &s->st;
}

static int by_total(const void *a, const void *b)
{
	uint32_t x = proc_total(a), y = proc_total(b);

	if (x != y)
		return x < y ? 1 : -1;
	return ((const struct stuck_proc *)a)->pid < ((const struct stuck_proc *)b)->pid ? -1 : 1;
}

size_t stuck_top_procs(const struct stuck *s, struct stuck_proc *out, size_t n)
{
	size_t k = 0;

	for (uint32_t i = 0; i < s->n_procs; i++) {
		struct stuck_proc p = s->procs[i];

		if (!proc_total(&p))
			continue;
		p.trend = trend_of(&p);
		if (k < n) {
			out[k++] = p;
		} else {
			/* keep the n largest: replace the smallest if this one is larger */
			size_t min = 0;

			for (size_t j = 1; j < k; j++)
				if (proc_total(&out[j]) < proc_total(&out[min]))
					min = j;
			if (k && proc_total(&p) > proc_total(&out[min]))
				out[min] = p;
		}
	}
	qsort(out, k, sizeof(*out), by_total);
	return k;
}

size_t stuck_bytes(const struct stuck *s)
{
	return sizeof(*s) + (size_t)s->cfg.max_sockets * sizeof(*s->ents) +
	       (size_t)s->nbuckets * sizeof(*s->buckets) +
	       (size_t)s->cfg.max_procs * sizeof(*s->procs) + wheel_bytes(s->wheel);
}
