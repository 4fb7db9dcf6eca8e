/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* Timing wheel: never early, bounded lateness, re-arm and cancel from callbacks, 1M timers. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include <cmocka.h>

#include "prng.h"
#include "wheel.h"

#define MS 1000000ull
#define SEC 1000000000ull

struct rec {
	uint64_t *fired_at; /* per id, 0 = not fired */
	uint64_t *armed_at; /* wheel time when armed */
	uint64_t *expires;
	uint32_t *fire_count;
	uint64_t advance_to;	/* current wheel_advance target */
	uint64_t max_late_excess; /* worst lateness beyond the allowed bound */
	struct wheel *w;
	uint32_t rearm_id;	/* id to re-arm once from the callback, or WHEEL_NIL */
	uint32_t cancel_id;	/* id to cancel from the callback, or WHEEL_NIL */
};

static struct rec *rec_new(uint32_t n)
{
	struct rec *r = calloc(1, sizeof(*r));

	r->fired_at = calloc(n, sizeof(uint64_t));
	r->armed_at = calloc(n, sizeof(uint64_t));
	r->expires = calloc(n, sizeof(uint64_t));
	r->fire_count = calloc(n, sizeof(uint32_t));
	r->rearm_id = WHEEL_NIL;
	r->cancel_id = WHEEL_NIL;
	assert_non_null(r->fire_count);
	return r;
}

static void rec_free(struct rec *r)
{
	free(r->fired_at);
	free(r->armed_at);
	free(r->expires);
	free(r->fire_count);
	free(r);
}

static void arm(struct rec *r, uint32_t id, uint64_t exp)
{
	r->armed_at[id] = wheel_now_ns(r->w);
	r->expires[id] = exp;
	wheel_arm(r->w, id, exp);
}

static void on_fire(void *ctx, uint32_t id, uint64_t now)
{
	struct rec *r = ctx;
	uint64_t delta, late, bound;

	/* Never early, never past the advance target. */
	assert_true(now >= r->expires[id]);
	assert_true(now <= r->advance_to);
	assert_false(wheel_pending(r->w, id));
	/* Lateness: under 8/62 of the distance at arm time, plus one tick of rounding. */
	delta = r->expires[id] > r->armed_at[id] ? r->expires[id] - r->armed_at[id] : 0;
	late = now - (delta ? r->expires[id] : r->armed_at[id]);
	bound = delta * 8 / 62 + 1 * MS;
	if (late > bound && late - bound > r->max_late_excess)
		r->max_late_excess = late - bound;
	r->fired_at[id] = now;
	r->fire_count[id]++;
	if (id == r->rearm_id) {
		r->rearm_id = WHEEL_NIL;
		arm(r, id, now + 5 * SEC);
	}
	if (r->cancel_id != WHEEL_NIL) {
		wheel_cancel(r->w, r->cancel_id);
		r->cancel_id = WHEEL_NIL;
	}
}

static size_t advance(struct rec *r, uint64_t to)
{
	r->advance_to = to;
	return wheel_advance(r->w, to, on_fire, r);
}

static void test_basic(void **state)
{
	struct rec *r = rec_new(8);

	r->w = wheel_new(8, MS, 1000 * SEC);
	assert_non_null(r->w);
	assert_int_equal(wheel_next_ns(r->w), UINT64_MAX);
	arm(r, 0, 1000 * SEC + 30 * SEC);
	arm(r, 1, 1000 * SEC + 10 * MS + 1); /* not on a tick: rounds up */
	arm(r, 2, 5 * SEC);		     /* in the past: next tick */
	assert_int_equal(wheel_count(r->w), 3);
	assert_true(wheel_pending(r->w, 0));
	assert_true(wheel_next_ns(r->w) <= 1000 * SEC + 1 * MS);

	assert_int_equal(advance(r, 1000 * SEC + 1 * MS), 1);
	assert_int_equal(r->fire_count[2], 1);
	assert_int_equal(advance(r, 1000 * SEC + 10 * MS), 0);
	assert_int_equal(advance(r, 1000 * SEC + 11 * MS), 1);
	assert_int_equal(r->fired_at[1], 1000 * SEC + 11 * MS);
	assert_int_equal(advance(r, 1000 * SEC + 30 * SEC - 1), 0);
	assert_true(wheel_next_ns(r->w) >= 1000 * SEC + 30 * SEC);
	assert_int_equal(advance(r, 1000 * SEC + 40 * SEC), 1);
	assert_int_equal(wheel_count(r->w), 0);
	assert_int_equal(wheel_next_ns(r->w), UINT64_MAX);
	assert_int_equal(r->max_late_excess, 0);
	wheel_free(r->w);
	rec_free(r);
}

static void test_rearm_cancel(void **state)
{
	struct rec *r = rec_new(8);

	r->w = wheel_new(8, MS, 0);
	arm(r, 0, 1 * SEC);
	arm(r, 1, 2 * SEC);
	arm(r, 2, 3 * SEC);
	arm(r, 3, 4 * SEC);
	arm(r, 1, 10 * SEC); /* moving a pending timer */
	assert_int_equal(wheel_count(r->w), 4);
	wheel_cancel(r->w, 3);
	wheel_cancel(r->w, 3); /* twice is harmless */
	assert_false(wheel_pending(r->w, 3));
	r->rearm_id = 0;   /* timer 0 re-arms itself at +5 s from its callback */
	r->cancel_id = 2;  /* and cancels timer 2 */
	assert_int_equal(advance(r, 5 * SEC), 1);
	assert_int_equal(r->fire_count[2], 0);
	assert_int_equal(r->fire_count[3], 0);
	assert_true(wheel_pending(r->w, 0));
	assert_int_equal(advance(r, 20 * SEC), 2);
	assert_int_equal(r->fire_count[0], 2);
	assert_int_equal(r->fire_count[1], 1);
	assert_true(r->fired_at[1] >= 10 * SEC);
	assert_int_equal(wheel_count(r->w), 0);
	/* Out-of-range id is ignored. */
	wheel_arm(r->w, 8, SEC);
	assert_int_equal(wheel_count(r->w), 0);
	wheel_free(r->w);
	rec_free(r);
}

/* Timers beyond the last level's range (~12 days at 1 ms) are parked and still never early. */
static void test_beyond_range(void **state)
{
	struct rec *r = rec_new(2);
	uint64_t far = 40ull * 24 * 3600 * SEC;

	r->w = wheel_new(2, MS, 0);
	arm(r, 0, far);
	assert_int_equal(advance(r, far - 1), 0);
	assert_int_equal(advance(r, far + 10 * 24 * 3600 * SEC), 1);
	assert_true(r->fired_at[0] >= far);
	wheel_free(r->w);
	rec_free(r);
}

/* Random expiries over all levels, random advance steps, timers re-armed as they fire. */
static void test_random_never_early(void **state)
{
	const uint32_t n = 50000;
	struct rec *r = rec_new(n);
	uint64_t seed = 42, now = 7 * SEC + 123, end;
	uint32_t i, fired = 0;

	r->w = wheel_new(n, MS, now);
	for (i = 0; i < n; i++) {
		/* Log-uniform distance: 1 ms .. ~1.2 days. */
		uint64_t d = (1ull << prng_below(&seed, 37)) + prng_below(&seed, 1000);

		arm(r, i, now + d);
	}
	end = now + (1ull << 37);
	while (now < end) {
		now += prng_below(&seed, 2 * 3600 * SEC) + 1;
		fired += advance(r, now);
	}
	fired += advance(r, end + (1ull << 37));
	assert_int_equal(fired, n);
	for (i = 0; i < n; i++)
		assert_int_equal(r->fire_count[i], 1);
	assert_int_equal(r->max_late_excess, 0);
	wheel_free(r->w);
	rec_free(r);
}

/* Fine-grained advances: the lateness bound is what the wheel adds, not the caller. */
static void test_lateness_bound(void **state)
{
	const uint32_t n = 20000;
	struct rec *r = rec_new(n);
	uint64_t seed = 7, now = 0;
	uint32_t i, fired = 0;

	r->w = wheel_new(n, MS, 0);
	for (i = 0; i < n; i++)
		arm(r, i, prng_below(&seed, 600 * SEC) + 1);
	while (wheel_count(r->w)) {
		now += MS;
		fired += advance(r, now);
		/* Re-arm a few timers mid-flight, relative to the current time. */
		if (now < 600 * SEC && now % (997 * MS) == 0) {
			uint32_t id = (uint32_t)prng_below(&seed, n);

			if (r->fire_count[id]) {
				r->fire_count[id]--;
				fired--;
				arm(r, id, now + prng_below(&seed, 60 * SEC));
			}
		}
	}
	assert_int_equal(fired, n);
	assert_int_equal(r->max_late_excess, 0);
	wheel_free(r->w);
	rec_free(r);
}

struct million {
	uint64_t *exp;
	uint64_t fired;
	uint64_t early;
	uint64_t max_late;
};

static void million_fire(void *ctx, uint32_t id, uint64_t now)
{
	struct million *m = ctx;

	if (now < m->exp[id])
		m->early++;
	else if (now - m->exp[id] > m->max_late)
		m->max_late = now - m->exp[id];
	m->fired++;
}

/* One million timers; the clock advances in 100 ms steps over 10 minutes. */
static void test_million(void **state)
{
	const uint32_t n = 1000000;
	struct wheel *w = wheel_new(n, MS, 0);
	struct million m = { .exp = malloc(n * sizeof(uint64_t)) };
	uint64_t seed = 1, now, ret = 0;
	uint32_t i;

	assert_non_null(w);
	assert_non_null(m.exp);
	for (i = 0; i < n; i++) {
		m.exp[i] = 1 + prng_below(&seed, 600 * SEC);
		wheel_arm(w, i, m.exp[i]);
	}
	assert_int_equal(wheel_count(w), n);
	for (now = 100 * MS; now <= 700 * SEC; now += 100 * MS) {
		ret += wheel_advance(w, now, million_fire, &m);
		/* Nothing armed is due at or before a time already processed. */
		if (wheel_count(w))
			assert_true(wheel_next_ns(w) > now);
	}
	assert_int_equal(ret, n);
	assert_int_equal(m.fired, n);
	assert_int_equal(m.early, 0);
	/* Armed at 0 for up to 600 s: at most 1/8 late (plus the 100 ms advance step). */
	assert_true(m.max_late <= 600 * SEC / 7 + 100 * MS);
	for (i = 0; i < n; i++)
		assert_false(wheel_pending(w, i));
	free(m.exp);
	wheel_free(w);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_basic),
		cmocka_unit_test(test_rearm_cancel),
		cmocka_unit_test(test_beyond_range),
		cmocka_unit_test(test_random_never_early),
		cmocka_unit_test(test_lateness_bound),
		cmocka_unit_test(test_million),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
