/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* Seeded PRNG for deterministic unit tests and benchmarks (splitmix64). */
#ifndef SP_TEST_PRNG_H
#define SP_TEST_PRNG_H

#include <stdint.h>

static inline uint64_t prng_next(uint64_t *s)
{
	uint64_t z = (*s += 0x9e3779b97f4a7c15ull);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

/* Uniform in [0, n), n > 0 (modulo bias is irrelevant for tests). */
static inline uint64_t prng_below(uint64_t *s, uint64_t n)
{
	return prng_next(s) % n;
}

/* Uniform double in [0, 1). */
static inline double prng_unit(uint64_t *s)
{
	return (double)(prng_next(s) >> 11) * (1.0 / 9007199254740992.0);
}

#endif
