/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Hierarchical timing wheel after the Linux 2016 timer wheel: 64 slots a level, each level 8x
 * coarser than the one below, no cascading. A timer is put on the finest level whose range holds
 * it and its expiry is rounded up to that level's granularity, so it never fires early and fires
 * at most about 1/8 of its remaining time late. Timers live in a slab addressed by 32-bit ids
 * (0 .. capacity-1) chosen by the caller, so the caller can use the id of its own slab entry and
 * no timer needs an allocation. Time is injected: nothing here reads a clock.
 */
#ifndef SP_WHEEL_H
#define SP_WHEEL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define WHEEL_NIL UINT32_MAX
#define WHEEL_LVL_BITS 6
#define WHEEL_LVL_SIZE (1u << WHEEL_LVL_BITS)
#define WHEEL_CLK_SHIFT 3
#define WHEEL_LEVELS 9

struct wheel;

/*
 * Called for each timer whose expiry is <= the time passed to wheel_advance(). The timer is no
 * longer pending when called; the callback may re-arm or cancel any timer, this one included.
 * now_ns is the wheel tick at which the timer fired (>= its expiry, <= the advance target).
 */
typedef void (*wheel_fn)(void *ctx, uint32_t id, uint64_t now_ns);

/* tick_ns is the resolution of level 0; now_ns the current time. NULL on allocation failure. */
struct wheel *wheel_new(uint32_t capacity, uint64_t tick_ns, uint64_t now_ns);
void wheel_free(struct wheel *w);

/* Arms (or moves) timer @id to fire at the first tick >= expires_ns. Past expiries fire next tick. */
void wheel_arm(struct wheel *w, uint32_t id, uint64_t expires_ns);
void wheel_cancel(struct wheel *w, uint32_t id);
bool wheel_pending(const struct wheel *w, uint32_t id);
uint64_t wheel_expires(const struct wheel *w, uint32_t id); /* as armed; valid while pending */

/* Fires every timer due at or before now_ns, in tick order. Returns the number of callbacks. */
size_t wheel_advance(struct wheel *w, uint64_t now_ns, wheel_fn fn, void *ctx);

/* Tick at which the next slot fires (>= the earliest expiry), UINT64_MAX when nothing is armed. */
uint64_t wheel_next_ns(const struct wheel *w);
uint64_t wheel_now_ns(const struct wheel *w); /* time of the last processed tick */
uint32_t wheel_count(const struct wheel *w);  /* pending timers */
size_t wheel_bytes(const struct wheel *w);    /* memory held */

#endif
