/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* Small things every part of the agent shares. */
#ifndef SP_UTIL_H
#define SP_UTIL_H

#include <stdint.h>

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

#define NSEC_PER_SEC 1000000000ULL
#define NSEC_PER_MSEC 1000000ULL

/*
 * The agent's hash for 64-bit keys (socket cookies, inodes, packed tuples): the finaliser of
 * splitmix64. Keys that come from one counter (cookies, inodes) differ in their low bits only;
 * every output bit depends on every input bit, so table indexes taken from the low bits spread.
 */
static inline uint64_t sp_hash64(uint64_t x)
{
	x ^= x >> 30;
	x *= 0xbf58476d1ce4e5b9ULL;
	x ^= x >> 27;
	x *= 0x94d049bb133111ebULL;
	x ^= x >> 31;
	return x;
}

#endif
