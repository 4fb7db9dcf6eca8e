// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
#include <time.h>

#include "clock.h"
#include "util.h"

static uint64_t read_clock(clockid_t id)
{
	struct timespec ts;

	clock_gettime(id, &ts);
	return (uint64_t)ts.tv_sec * NSEC_PER_SEC + (uint64_t)ts.tv_nsec;
}

uint64_t clock_mono_ns(void)
{
	return read_clock(CLOCK_MONOTONIC);
}

uint64_t clock_real_ns(void)
{
	return read_clock(CLOCK_REALTIME);
}

int64_t clock_real_offset_ns(void)
{
	/* Bracket the realtime read so the offset is accurate to the mid-point. */
	uint64_t m1 = clock_mono_ns();
	uint64_t r = clock_real_ns();
	uint64_t m2 = clock_mono_ns();

	return (int64_t)(r - (m1 + (m2 - m1) / 2));
}
