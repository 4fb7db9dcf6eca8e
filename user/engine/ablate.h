/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Parts of the agent switched off for the benchmark's attribution of its cost
 * (`BENCH_ABLATE=1 make bench`, tools/bench.sh): SOCKPULSE_ABLATE=PART[,PART...] in the
 * environment, read once at start. Not a user setting: an agent with a part off writes wrong or
 * missing lines, and says so at start. The parts inside BPF programs (socket storage, owner
 * lookups) are build-time switches instead: see build/ablate/ in the Makefile.
 */
#ifndef SP_ABLATE_H
#define SP_ABLATE_H

#include <stdbool.h>

#define ABLATE_ENV "SOCKPULSE_ABLATE"

enum ablate_part {
	ABLATE_SYSCALLS = 1u << 0,  /* connect/accept hooks: not loaded, not attached */
	ABLATE_TCP_PROBE = 1u << 1, /* the per-segment program: not loaded, not attached */
	ABLATE_ENGINE = 1u << 2,    /* no lease or spike engine (nor its lines, nor table walks) */
	ABLATE_FORMAT = 1u << 3,    /* lines are counted, not formatted (nor written) */
	ABLATE_WRITE = 1u << 4,	    /* lines are formatted, then discarded */
};

/* Parses "part,part": 0 and the bits in @mask, or -EINVAL naming the bad part in @bad. */
int ablate_parse(const char *s, unsigned int *mask, const char **bad, int *bad_len);
/* The parts SOCKPULSE_ABLATE switches off (0 when unset); warns once about each, or a bad value. */
unsigned int ablate_from_env(void);
/* Whether the BPF program @name stays unloaded under @mask. */
bool ablate_prog_off(unsigned int mask, const char *name);

#endif
