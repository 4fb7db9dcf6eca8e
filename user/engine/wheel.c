/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Timing wheel (see wheel.h). Each slot is a circular doubly linked list through a sentinel node
 * that lives in the same array as the timers, so unlinking needs no branch on "is it the head".
 * Links are stored as index + 1: a zeroed (calloc'ed, untouched) node reads as "not pending",
 * and the slab costs no memory until timers are armed. A 64-bit occupancy bitmap per level finds
 * the next non-empty slot with one count-trailing-zeros, so advancing across a long idle gap costs
 * one step per slot that holds timers, not one per tick.
 */
#include <stdlib.h>

#include "wheel.h"

#define NSLOTS (WHEEL_LEVELS * WHEEL_LVL_SIZE)
#define LVL_MASK (WHEEL_LVL_SIZE - 1)

struct wnode {
	uint64_t expires; /* ns, as armed */
	uint32_t next;	  /* index + 1; 0: not linked */
	uint32_t prev;
};

struct wheel {
	struct wnode *n; /* cap timers, then NSLOTS slot sentinels, then the "firing" sentinel */
	uint32_t cap;
	uint32_t count;
	uint64_t tick_ns;
	uint64_t clk; /* last processed tick */
	uint64_t bitmap[WHEEL_LEVELS];
};

static inline uint32_t sentinel(const struct wheel *w, uint32_t slot)
{
	return w->cap + slot;
}

static inline unsigned int lvl_shift(unsigned int lvl)
{
	return lvl * WHEEL_CLK_SHIFT;
}

static void list_init(struct wheel *w, uint32_t head)
{
	w->n[head].next = head + 1;
	w->n[head].prev = head + 1;
}

static bool list_empty(const struct wheel *w, uint32_t head)
{
	return w->n[head].next == head + 1;
}

static void list_add_tail(struct wheel *w, uint32_t head, uint32_t id)
{
	uint32_t last = w->n[head].prev - 1;

	w->n[id].next = head + 1;
	w->n[id].prev = last + 1;
	w->n[last].next = id + 1;
	w->n[head].prev = id + 1;
}

static void list_del(struct wheel *w, uint32_t id)
{
	uint32_t p = w->n[id].prev - 1, nx = w->n[id].next - 1;

	w->n[p].next = nx + 1;
	w->n[nx].prev = p + 1;
	w->n[id].next = 0;
	w->n[id].prev = 0;
	/* The slot emptied: clear its bit (p is then the slot's sentinel). */
	if (p == nx && p >= w->cap && p < w->cap + NSLOTS) {
		uint32_t slot = p - w->cap;

		w->bitmap[slot / WHEEL_LVL_SIZE] &= ~(1ull << (slot & LVL_MASK));
	}
}

struct wheel *wheel_new(uint32_t capacity, uint64_t tick_ns, uint64_t now_ns)
{
	struct wheel *w;
	uint32_t i;

	if (!tick_ns || capacity > UINT32_MAX - NSLOTS - 2)
		return NULL;
	w = calloc(1, sizeof(*w));
	if (!w)
		return NULL;
	w->n = calloc((size_t)capacity + NSLOTS + 1, sizeof(*w->n));
	if (!w->n) {
		free(w);
		return NULL;
	}
	w->cap = capacity;
	w->tick_ns = tick_ns;
	w->clk = now_ns / tick_ns;
	for (i = 0; i <= NSLOTS; i++)
		list_init(w, sentinel(w, i));
	return w;
}

void wheel_free(struct wheel *w)
{
	if (!w)
		return;
	free(w->n);
	free(w);
}

bool wheel_pending(const struct wheel *w, uint32_t id)
{
	return id < w->cap && w->n[id].prev != 0;
}

uint64_t wheel_expires(const struct wheel *w, uint32_t id)
{
	return id < w->cap ? w->n[id].expires : 0;
}

uint32_t wheel_count(const struct wheel *w)
{
	return w->count;
}

uint64_t wheel_now_ns(const struct wheel *w)
{
	return w->clk * w->tick_ns;
}

size_t wheel_bytes(const struct wheel *w)
{
	return sizeof(*w) + ((size_t)w->cap + NSLOTS + 1) * sizeof(*w->n);
}

/*
 * Slot for a timer due at tick @e (> clk): the finest level where the rounded-up position is at
 * most 64 positions ahead of the level's last processed position, so every position pending on
 * a level maps to a distinct slot. Beyond the last level's range the timer is parked in the
 * farthest slot and re-queued when that slot fires (wheel_advance checks the expiry).
 */
static uint32_t calc_slot(const struct wheel *w, uint64_t e)
{
	unsigned int lvl, shift = 0;
	uint64_t pos;

	for (lvl = 0; lvl < WHEEL_LEVELS; lvl++) {
		shift = lvl_shift(lvl);
		pos = (e >> shift) + ((e & ((1ull << shift) - 1)) != 0);
		if (pos - (w->clk >> shift) <= WHEEL_LVL_SIZE)
			return lvl * WHEEL_LVL_SIZE + (uint32_t)(pos & LVL_MASK);
	}
	lvl = WHEEL_LEVELS - 1;
	pos = (w->clk >> shift) + WHEEL_LVL_SIZE;
	return lvl * WHEEL_LVL_SIZE + (uint32_t)(pos & LVL_MASK);
}

static void enqueue(struct wheel *w, uint32_t id)
{
	uint64_t exp = w->n[id].expires, e;
	uint32_t slot;

	/* First tick at or after exp, computed without overflow. */
	e = exp / w->tick_ns + (exp % w->tick_ns != 0);
	if (e <= w->clk)
		e = w->clk + 1;
	slot = calc_slot(w, e);
	list_add_tail(w, sentinel(w, slot), id);
	w->bitmap[slot / WHEEL_LVL_SIZE] |= 1ull << (slot & LVL_MASK);
}

void wheel_arm(struct wheel *w, uint32_t id, uint64_t expires_ns)
{
	if (id >= w->cap)
		return;
	if (w->n[id].prev)
		list_del(w, id);
	else
		w->count++;
	w->n[id].expires = expires_ns;
	enqueue(w, id);
}

void wheel_cancel(struct wheel *w, uint32_t id)
{
	if (!wheel_pending(w, id))
		return;
	list_del(w, id);
	w->count--;
}

/* First tick after clk at which a non-empty slot fires, UINT64_MAX if none. */
static uint64_t next_tick(const struct wheel *w)
{
	uint64_t best = UINT64_MAX;
	unsigned int lvl;

	for (lvl = 0; lvl < WHEEL_LEVELS; lvl++) {
		unsigned int shift = lvl_shift(lvl), r;
		uint64_t bm = w->bitmap[lvl], p0, t;

		if (!bm)
			continue;
		p0 = (w->clk >> shift) + 1;
		r = p0 & LVL_MASK;
		if (r)
			bm = (bm >> r) | (bm << (WHEEL_LVL_SIZE - r));
		t = (p0 + (uint64_t)__builtin_ctzll(bm)) << shift;
		if (t < best)
			best = t;
	}
	return best;
}

uint64_t wheel_next_ns(const struct wheel *w)
{
	uint64_t t = next_tick(w);

	return t == UINT64_MAX || t > UINT64_MAX / w->tick_ns ? UINT64_MAX : t * w->tick_ns;
}

static size_t run_slot(struct wheel *w, uint32_t slot, wheel_fn fn, void *ctx)
{
	uint32_t head = sentinel(w, slot), firing = sentinel(w, NSLOTS);
	uint64_t now = w->clk * w->tick_ns;
	size_t fired = 0;

	/* Splice the slot onto the firing list: callbacks may then arm or cancel anything. */
	w->n[firing].next = w->n[head].next;
	w->n[firing].prev = w->n[head].prev;
	w->n[w->n[head].next - 1].prev = firing + 1;
	w->n[w->n[head].prev - 1].next = firing + 1;
	list_init(w, head);
	w->bitmap[slot / WHEEL_LVL_SIZE] &= ~(1ull << (slot & LVL_MASK));

	while (!list_empty(w, firing)) {
		uint32_t id = w->n[firing].next - 1;

		list_del(w, id);
		if (w->n[id].expires > now) {
			enqueue(w, id); /* parked beyond the wheel's range */
			continue;
		}
		w->count--;
		fn(ctx, id, now);
		fired++;
	}
	return fired;
}

size_t wheel_advance(struct wheel *w, uint64_t now_ns, wheel_fn fn, void *ctx)
{
	uint64_t target = now_ns / w->tick_ns;
	size_t fired = 0;

	while (w->clk < target) {
		uint64_t t = next_tick(w);
		unsigned int lvl;

		if (t > target) {
			w->clk = target;
			break;
		}
		w->clk = t;
		for (lvl = 0; lvl < WHEEL_LEVELS; lvl++) {
			unsigned int shift = lvl_shift(lvl);
			uint32_t idx = (uint32_t)((t >> shift) & LVL_MASK);

			if (lvl && (t & ((1ull << shift) - 1)))
				break;
			if (w->bitmap[lvl] & (1ull << idx))
				fired += run_slot(w, lvl * WHEEL_LVL_SIZE + idx, fn, ctx);
		}
	}
	return fired;
}
