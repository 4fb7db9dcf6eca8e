/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * The connect() return probe of the kprobe variant, made through tracefs so that it can follow
 * many calls at once. See retprobe.c.
 */
#ifndef SP_RETPROBE_H
#define SP_RETPROBE_H

#include <stdbool.h>
#include <stdint.h>

struct bpf_link;
struct bpf_program;

/* KRETPROBE_MAXACTIVE_MAX (kernel/trace/trace_kprobe.c): the most a tracefs kretprobe takes */
#define RETPROBE_MAXACTIVE 4096

struct retprobe {
	char dir[32];	    /* the tracefs mount it was made in; "" when none was made */
	char event[48];	    /* its event name in group "sockpulse" */
};

/*
 * Makes a kretprobe on @func with RETPROBE_MAXACTIVE instances in tracefs and attaches @prog to
 * it. Returns the link (the caller destroys it, then calls retprobe_remove()), or NULL with
 * errno set and @why saying what refused.
 */
struct bpf_link *retprobe_attach(struct retprobe *rp, struct bpf_program *prog, const char *func,
				 char *why, size_t len);
/* Removes the probe made by retprobe_attach() once nothing is attached to it any more. */
void retprobe_remove(struct retprobe *rp);
/* The returns the probe missed so far (no instance free, or a probe already running): 0 or -errno. */
int retprobe_missed(const struct retprobe *rp, uint64_t *missed);

#endif
