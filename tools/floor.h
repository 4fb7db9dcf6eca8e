/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* What tools/floor.bpf.c and its loader tools/floor.c share: the ways of keeping socket state. */
#ifndef SP_FLOOR_H
#define SP_FLOOR_H

enum keep_mode {
	KEEP_NONE = 0,
	KEEP_STORAGE = 1,    /* socket storage, created at the first transition, freed with it */
	KEEP_LRU = 2,	     /* an LRU hash keyed by cookie, one common LRU list */
	KEEP_LRU_PERCPU = 3, /* the same with per-CPU LRU lists (BPF_F_NO_COMMON_LRU) */
	KEEP_HASH = 4,	     /* a preallocated hash keyed by cookie */
};

/* The type of a ring record (its first 32 bits). */
enum record_type {
	TYPE_STATE = 1,
	TYPE_ACTIVITY = 2, /* --probe */
};

/* Inbound activity, coalesced to one record per socket per interval (tcp_probe). */
enum probe_mode {
	PROBE_NONE = 0,	   /* no per-segment program */
	PROBE_STORAGE = 1, /* counters and the last record's time in socket storage */
	PROBE_SLOTS = 2,   /* a fixed array of (cookie, last record) slots indexed by cookie; the
			    * counts are the kernel's own (tcp_sock segs_in, bytes_received) */
};

/* The connect/accept hooks whose mere presence costs, measured without the work they do. */
enum hook_mode {
	HOOK_NONE = 0,
	HOOK_SYSCALLS = 1, /* empty programs on the connect and accept syscall tracepoints: every
			    * syscall of every task takes the traced path while they are attached */
	HOOK_CGROUP = 2,   /* empty cgroup/connect4 and connect6 programs on the root cgroup: they
			    * run for connect() only */
};

#endif
