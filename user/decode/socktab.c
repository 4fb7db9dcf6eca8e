// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* Owners and ends of sockets the ring records leave incomplete: see socktab.h. */
#include <stdlib.h>
#include <string.h>

#include "socktab.h"
#include "sockpulse.h"
#include "util.h"

struct st_entry {
	uint64_t key; /* 0: free; a cookie, or (netns << 16 | port) for a listener */
	uint32_t pid;
	char comm[SP_COMM_MAX];
	uint8_t source;	   /* enum sp_owner_source; SP_OWNER_NONE: no owner known */
	uint8_t direction; /* enum sp_direction */
	uint8_t looked;	   /* a walk was asked to find its owner */
};

struct st_table {
	struct st_entry *slot; /* a power of two, at least twice count: never full */
	uint32_t mask, count, max;
	uint32_t max_slots;    /* what it may grow to: the power of two at least twice max */
};

/*
 * A table starts this small and doubles as it fills: every ring record probes it, and a table
 * sized for its limit (4 MiB of sockets) spreads a storm's few thousand live sockets over lines
 * the cache does not keep; grown to what is live, they stay in cache.
 */
#define ST_SLOTS_MIN 1024u

#define CLOSED_DELAY SOCKTAB_CLOSED_DELAY

struct socktab {
	struct st_table socks, listeners;
	uint64_t closed[CLOSED_DELAY]; /* cookies, oldest at closed_next once full */
	uint32_t closed_next, closed_n;
	struct socktab_stats st;
};

static int table_init(struct st_table *t, uint32_t max)
{
	size_t slots = 2;

	while (slots < 2 * (size_t)max)
		slots <<= 1;
	t->max_slots = (uint32_t)slots;
	if (slots > ST_SLOTS_MIN)
		slots = ST_SLOTS_MIN;
	t->slot = calloc(slots, sizeof(*t->slot));
	if (!t->slot)
		return -1;
	t->mask = (uint32_t)(slots - 1);
	t->max = max;
	return 0;
}

struct socktab *socktab_new(uint32_t max_socks, uint32_t max_listeners)
{
	struct socktab *t = calloc(1, sizeof(*t));

	if (!t || !max_socks || !max_listeners || table_init(&t->socks, max_socks) ||
	    table_init(&t->listeners, max_listeners)) {
		socktab_free(t);
		return NULL;
	}
	return t;
}

void socktab_free(struct socktab *t)
{
	if (!t)
		return;
	free(t->socks.slot);
	free(t->listeners.slot);
	free(t);
}

/* The slot holding @key, or the free slot where it would go (linear probing). */
static struct st_entry *probe(const struct st_table *t, uint64_t key)
{
	uint32_t i = (uint32_t)sp_hash64(key) & t->mask;

	while (t->slot[i].key && t->slot[i].key != key)
		i = (i + 1) & t->mask;
	return &t->slot[i];
}

static struct st_entry *find(const struct st_table *t, uint64_t key)
{
	struct st_entry *e = probe(t, key);

	return e->key == key ? e : NULL;
}

static void del(struct st_table *t, uint64_t key);

/* Doubles the slots, rehashing every entry; false at the limit or without memory. */
static bool grow(struct st_table *t)
{
	uint32_t n = t->mask + 1, i;
	struct st_entry *old = t->slot, *e;

	if (n >= t->max_slots)
		return false;
	t->slot = calloc((size_t)n * 2, sizeof(*t->slot));
	if (!t->slot) {
		t->slot = old;
		return false;
	}
	t->mask = n * 2 - 1;
	for (i = 0; i < n; i++) {
		if (!old[i].key)
			continue;
		e = probe(t, old[i].key);
		*e = old[i];
	}
	free(old);
	return true;
}

/* The entry of @key, made if it is not there: a full table forgets another entry for it. */
static struct st_entry *get(struct socktab *st, struct st_table *t, uint64_t key)
{
	struct st_entry *e = probe(t, key);

	if (e->key == key)
		return e;
	if (t->count < t->max && (t->count + 1) * 2 > t->mask + 1 && grow(t))
		e = probe(t, key);
	/* full, or half full and no memory to grow: then up to one free slot is kept */
	if (t->count >= t->max || t->count + 2 > t->mask + 1) {
		/* a cache: forget the nearest other socket (a walk finds its owner again) */
		uint32_t i = (uint32_t)(e - t->slot);

		while (!t->slot[i].key)
			i = (i + 1) & t->mask;
		del(t, t->slot[i].key);
		st->st.evicted++;
		e = probe(t, key);
	}
	memset(e, 0, sizeof(*e));
	e->key = key;
	t->count++;
	return e;
}

/* Removal by backward shift: later entries of the same run move up, no tombstones. */
static void del(struct st_table *t, uint64_t key)
{
	uint32_t i = (uint32_t)(probe(t, key) - t->slot), j = i, home;

	if (t->slot[i].key != key)
		return;
	for (;;) {
		t->slot[i].key = 0;
		for (;;) {
			j = (j + 1) & t->mask;
			if (!t->slot[j].key)
				goto done;
			home = (uint32_t)sp_hash64(t->slot[j].key) & t->mask;
			/* stays unless its home lies cyclically in (i, j] */
			if (i <= j ? (home <= i || home > j) : (home <= i && home > j))
				break;
		}
		t->slot[i] = t->slot[j];
		i = j;
	}
done:
	t->count--;
}

static uint64_t listener_key(uint32_t netns, uint16_t port)
{
	return (uint64_t)netns << 16 | port | 1ULL << 63; /* never 0, even in namespace 0 */
}

static void set_owner(struct st_entry *e, const struct sp_conn *c, uint8_t source)
{
	e->pid = c->pid;
	memcpy(e->comm, c->comm, sizeof(e->comm));
	e->comm[sizeof(e->comm) - 1] = '\0';
	e->source = source;
}

static void put_owner(struct sp_conn *c, const struct st_entry *e, uint8_t source)
{
	c->has_pid = true;
	c->pid = e->pid;
	memcpy(c->comm, e->comm, sizeof(c->comm));
	c->owner_source = source;
}

void socktab_walked(struct socktab *t, const struct sp_conn *c, bool listener)
{
	struct st_entry *e;

	if (listener) {
		/* listeners are oriented local-first */
		e = get(t, &t->listeners, listener_key(c->netns, c->sport));
		if (e && c->has_pid && e->source != SP_OWNER_TASK)
			set_owner(e, c, SP_OWNER_TABLE);
		return;
	}
	if (!c->cookie)
		return;
	e = get(t, &t->socks, c->cookie);
	if (!e)
		return;
	if (!e->direction)
		e->direction = c->direction;
	/* a task's own word stays; the walk knows who holds the socket now */
	if (c->has_pid && e->source != SP_OWNER_TASK)
		set_owner(e, c, SP_OWNER_TABLE);
}

/* ECS source is the side that opened the connection: an accepted socket's is the remote one. */
static void make_ingress(struct sp_conn *c)
{
	struct sp_addr a = c->src;
	uint16_t p = c->sport;

	c->src = c->dst;
	c->sport = c->dport;
	c->dst = a;
	c->dport = p;
	c->direction = SP_DIR_INGRESS;
}

static uint16_t local_port(const struct sp_conn *c)
{
	return c->direction == SP_DIR_INGRESS ? c->dport : c->sport;
}

/* Listeners come and go with their LISTEN transitions; their owner is seen in the task. */
static void track_listener(struct socktab *t, const struct sp_event *ev)
{
	const struct sp_conn *c = &ev->conn;
	struct st_entry *e;
	uint64_t key = listener_key(c->netns, c->sport);

	if (ev->state.new_state == SP_ST_LISTEN) {
		e = get(t, &t->listeners, key);
		if (e && c->has_pid)
			set_owner(e, c, SP_OWNER_TASK);
	} else if (ev->state.old_state == SP_ST_LISTEN && ev->state.new_state == SP_ST_CLOSE) {
		del(&t->listeners, key);
	}
}

bool socktab_enrich(struct socktab *t, struct sp_event *ev)
{
	struct sp_conn *c = &ev->conn;
	const struct st_entry *l = NULL;
	struct st_entry *e;
	bool state, listen, inferred = false;

	if (!ev->has_conn || !c->cookie)
		return false;
	state = ev->action == SP_ACT_STATE_CHANGE;
	listen = state && (ev->state.new_state == SP_ST_LISTEN ||
			   (ev->state.old_state == SP_ST_LISTEN && ev->state.new_state == SP_ST_CLOSE));
	if (listen) {
		/* a listener older than the agent: the walk named its owner */
		if (!c->has_pid && (l = find(&t->listeners, listener_key(c->netns, c->sport))) &&
		    l->source) {
			put_owner(c, l, l->source);
			t->st.inferred++;
		}
		track_listener(t, ev);
		return false;
	}
	e = get(t, &t->socks, c->cookie);
	if (c->direction == SP_DIR_UNKNOWN && e->direction) {
		if (e->direction == SP_DIR_INGRESS)
			make_ingress(c);
		else
			c->direction = e->direction;
		inferred = true;
	}
	if (c->direction != SP_DIR_EGRESS)
		l = find(&t->listeners, listener_key(c->netns, local_port(c)));
	if (c->direction == SP_DIR_UNKNOWN && l) {
		/* the local port has a listener: this end was accepted */
		make_ingress(c);
		inferred = true;
	}
	if (!e->direction)
		e->direction = c->direction;

	if (c->has_pid && c->owner_source == SP_OWNER_TASK) {
		set_owner(e, c, SP_OWNER_TASK);
	} else if (e->source == SP_OWNER_TASK) {
		/* accept() named the process after the listener's owner was inherited */
		put_owner(c, e, SP_OWNER_TASK);
		inferred = true;
	} else if (!c->has_pid && e->source) {
		put_owner(c, e, e->source);
		inferred = true;
	} else if (!c->has_pid && l && l->source) {
		put_owner(c, l, SP_OWNER_LISTENER);
		set_owner(e, c, SP_OWNER_LISTENER);
		inferred = true;
	}
	if (inferred)
		t->st.inferred++;
	if (state && ev->state.new_state == SP_ST_CLOSE) {
		if (t->closed_n == CLOSED_DELAY)
			del(&t->socks, t->closed[t->closed_next]);
		else
			t->closed_n++;
		t->closed[t->closed_next] = c->cookie;
		t->closed_next = (t->closed_next + 1) % CLOSED_DELAY;
		return false;
	}
	if (!c->has_pid && !e->looked) {
		e->looked = 1;
		return true;
	}
	return false;
}

void socktab_stats(const struct socktab *t, struct socktab_stats *out)
{
	*out = t->st;
	out->socks = t->socks.count;
	out->listeners = t->listeners.count;
}
