/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* The agent's clocks. Ring records carry CLOCK_MONOTONIC (bpf_ktime_get_ns). */
#ifndef SP_CLOCK_H
#define SP_CLOCK_H

#include <stdint.h>

uint64_t clock_mono_ns(void);
uint64_t clock_real_ns(void);
/* CLOCK_REALTIME - CLOCK_MONOTONIC now: added to a record's stamp it gives wall time. */
int64_t clock_real_offset_ns(void);

#endif
